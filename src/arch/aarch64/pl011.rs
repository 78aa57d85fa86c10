//! The board's PL011 UART: transmit polled, receive on its interrupt. The
//! hypervisor owns it; partitions reach it through `console`.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// The data register.
    DR [
        DATA OFFSET(0) NUMBITS(8) [],
    ],
    /// The flag register.
    FR [
        /// The receive FIFO is empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// The transmit FIFO is full.
        TXFF OFFSET(5) NUMBITS(1) [],
    ],
    /// The line control register.
    LCR_H [
        /// The FIFOs are on.
        FEN OFFSET(4) NUMBITS(1) [],
    ],
    /// The control register.
    CR [
        UARTEN OFFSET(0) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        RXE OFFSET(9) NUMBITS(1) [],
    ],
    /// The interrupt mask, raw status and clear registers.
    INT [
        /// Receive: the FIFO reached its trigger level.
        RX OFFSET(4) NUMBITS(1) [],
        /// Receive timeout: characters wait and the line is idle.
        RT OFFSET(6) NUMBITS(1) [],
        /// Every interrupt.
        ALL OFFSET(0) NUMBITS(11) [],
    ]
}

register_structs! {
    Regs {
        (0x00 => dr: ReadWrite<u32, DR::Register>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x2c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => imsc: ReadWrite<u32, INT::Register>),
        (0x3c => _reserved3),
        (0x44 => icr: WriteOnly<u32, INT::Register>),
        (0x48 => @END),
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

    /// Boot: turns the receiver on (FIFOs, receiver and transmitter
    /// enabled, the line format left as the firmware set it), clears what
    /// was raised, and unmasks the receive and receive-timeout interrupts.
    pub fn start_receiving(&mut self) {
        let regs = self.regs();
        regs.lcr_h.modify(LCR_H::FEN::SET);
        regs.cr
            .modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        regs.icr.write(INT::ALL::SET);
        self.receive_interrupts(true);
    }

    /// Unmasks or masks the receive interrupts (the line drops while masked).
    pub fn receive_interrupts(&mut self, on: bool) {
        let value = if on {
            INT::RX::SET + INT::RT::SET
        } else {
            INT::RX::CLEAR + INT::RT::CLEAR
        };
        self.regs().imsc.write(value);
    }

    /// The oldest received character, if any (its error bits ignored).
    /// Reading them until none is left takes the receive interrupts down.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        let regs = self.regs();
        if regs.fr.is_set(FR::RXFE) {
            return None;
        }
        Some(regs.dr.read(DR::DATA) as u8)
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
