//! The board's PL011 UART, transmit only, polled. The hypervisor owns it;
//! partitions reach it through `console`.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// The flag register.
    FR [
        /// The transmit FIFO is full.
        TXFF OFFSET(5) NUMBITS(1) [],
    ]
}

register_structs! {
    Regs {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => @END),
    }
}

/// A PL011 at a fixed address (an address, not a reference: tock-registers
/// blocks are not `Sync`).
#[derive(Debug)]
pub struct Pl011 {
    base: usize,
}

impl Pl011 {
    /// # Safety
    /// `base` is a PL011's register block, mapped as device memory, and
    /// nothing else drives it.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    fn regs(&self) -> &Regs {
        // SAFETY: `new`'s contract: `base` is this UART's register block.
        unsafe { &*(self.base as *const Regs) }
    }

    /// Sends `byte` if the transmit FIFO has room; `false` (nothing sent)
    /// if it is full. Never waits.
    pub fn try_write_byte(&mut self, byte: u8) -> bool {
        let regs = self.regs();
        if regs.fr.is_set(FR::TXFF) {
            return false;
        }
        regs.dr.set(u32::from(byte));
        true
    }

    /// Sends `byte`, waiting while the transmit FIFO is full (boot and
    /// power-off only: see `hyp::output`).
    pub fn write_byte(&mut self, byte: u8) {
        let regs = self.regs();
        while regs.fr.is_set(FR::TXFF) {}
        regs.dr.set(u32::from(byte));
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}
