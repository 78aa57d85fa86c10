//! The console: [`print!`](crate::print) and [`println!`](crate::println);
//! and input from the PL011, on its interrupt ([`pl011_start_receiving`],
//! [`pl011_read_byte`]; under Bulkhead what is typed while the partition
//! has the console's focus).
//!
//! Under Bulkhead the bytes go out with the `CONSOLE_WRITE` hypercall, 48 a
//! call; natively they go to QEMU virt's PL011 UART, polled. Bytes are sent
//! as given (no `\r` is added), so what a test reads is what was printed.
//!
//! One lock serialises the whole guest: a `println!` is one line even when
//! several CPUs print at once. The lock also masks IRQs on its CPU while held,
//! so an interrupt handler that prints cannot deadlock against the code it
//! interrupted; if an exception or panic prints while its own CPU holds the
//! lock, it writes anyway instead of waiting forever.

use core::fmt::{self, Write};
use core::hint::spin_loop;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use bulkhead_abi::CONSOLE_WRITE_MAX;

use crate::arch::{self, Daif, Mmio};

/// QEMU virt's PL011 (also where Bulkhead puts an emulated one).
const PL011_BASE: usize = 0x0900_0000;
/// UARTDR: data register, a write sends one byte, a read takes one.
const UARTDR: usize = 0x00;
/// UARTFR: flag register.
const UARTFR: usize = 0x18;
/// UARTFR.RXFE: receive FIFO empty.
const UARTFR_RXFE: u32 = 1 << 4;
/// UARTFR.TXFF: transmit FIFO full.
const UARTFR_TXFF: u32 = 1 << 5;
/// UARTLCR_H, and its FEN bit (FIFOs on) and 8-bit words.
const UARTLCR_H: usize = 0x2c;
const UARTLCR_H_FEN_8BIT: u32 = (1 << 4) | (3 << 5);
/// UARTCR, and UARTEN, TXE, RXE.
const UARTCR: usize = 0x30;
const UARTCR_ON: u32 = (1 << 0) | (1 << 8) | (1 << 9);
/// UARTIMSC, UARTMIS, UARTICR; the receive and receive-timeout bits.
const UARTIMSC: usize = 0x38;
const UARTMIS: usize = 0x40;
const UARTICR: usize = 0x44;
const UART_RX_RT: u32 = (1 << 4) | (1 << 6);

/// The PL011's interrupt: QEMU virt's SPI 1, and under Bulkhead the
/// emulated PL011's (level-sensitive).
pub const PL011_INTID: u32 = 33;

/// Who holds the console: 0 = nobody, else CPU index + 1.
static OWNER: AtomicUsize = AtomicUsize::new(0);

/// Held while printing; released (and IRQs restored) on drop.
struct Guard {
    saved: Daif,
    /// This CPU already held the lock (exception or panic while printing).
    nested: bool,
}

fn lock() -> Guard {
    let saved = arch::irq_save_and_disable();
    let me = arch::cpu_index() + 1;
    if OWNER.load(Ordering::Relaxed) == me {
        return Guard {
            saved,
            nested: true,
        };
    }
    while OWNER
        .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spin_loop();
    }
    Guard {
        saved,
        nested: false,
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.nested {
            OWNER.store(0, Ordering::Release);
        }
        arch::irq_restore(self.saved);
    }
}

fn pl011() -> Mmio {
    // SAFETY: QEMU virt's PL011, mapped as Device memory by the identity map;
    // natively it exists, and under Bulkhead it is only used by guests whose
    // partition has an emulated PL011 there.
    unsafe { Mmio::new(PL011_BASE) }
}

fn pl011_write_bytes(bytes: &[u8]) {
    let uart = pl011();
    // SAFETY: UARTFR and UARTDR are 32-bit registers of the PL011.
    let (fr, dr) = unsafe { (uart.offset(UARTFR), uart.offset(UARTDR)) };
    for &b in bytes {
        while fr.read32() & UARTFR_TXFF != 0 {
            spin_loop();
        }
        dr.write32(u32::from(b));
    }
}

/// Writes `s` straight to the PL011's registers at 0x0900_0000, whatever the
/// mode: under Bulkhead each access traps to the hypervisor's emulated
/// PL011 (a partition without one is stopped by its stage 2).
pub fn raw_pl011_write(s: &str) {
    let _guard = lock();
    pl011_write_bytes(s.as_bytes());
}

/// Turns the PL011's receiver on (FIFOs, 8-bit words, the UART, its
/// receiver and transmitter enabled) and lets its receive and
/// receive-timeout interrupts out ([`PL011_INTID`]; enable it in the GIC
/// too). A handler then takes what came with [`pl011_read_byte`] until
/// it returns `None`, which takes the interrupt down.
pub fn pl011_start_receiving() {
    let uart = pl011();
    // SAFETY: 32-bit PL011 registers.
    unsafe {
        uart.offset(UARTLCR_H).write32(UARTLCR_H_FEN_8BIT);
        uart.offset(UARTCR).write32(UARTCR_ON);
        uart.offset(UARTICR).write32(0x7ff);
        uart.offset(UARTIMSC).write32(UART_RX_RT);
    }
}

/// The next received byte, if one waits (UARTFR.RXFE clear): one read of
/// UARTDR. Its error bits (overrun and the like) are dropped.
pub fn pl011_read_byte() -> Option<u8> {
    let uart = pl011();
    // SAFETY: 32-bit PL011 registers.
    let (fr, dr) = unsafe { (uart.offset(UARTFR), uart.offset(UARTDR)) };
    if fr.read32() & UARTFR_RXFE != 0 {
        return None;
    }
    Some(dr.read32() as u8)
}

/// Takes console input in `handler`, run for each of the PL011's
/// interrupts: registers it, starts the receiver
/// ([`pl011_start_receiving`]) and enables [`PL011_INTID`] in the GIC.
pub fn receive_with(handler: crate::irq::Handler) {
    // Only fails for INTIDs of 1020 or more.
    let _ = crate::irq::register(PL011_INTID, handler);
    pl011_start_receiving();
    let _ = crate::gic::enable(PL011_INTID);
}

/// Most bytes a [`Line`] keeps; the rest of a longer line is dropped.
pub const LINE_MAX: usize = 64;

/// A line being typed, filled byte by byte by an input handler (one CPU at
/// a time: the one the PL011's interrupt goes to).
pub struct Line {
    bytes: [AtomicU8; LINE_MAX],
    len: AtomicUsize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Line {
        Line {
            bytes: [const { AtomicU8::new(0) }; LINE_MAX],
            len: AtomicUsize::new(0),
        }
    }

    /// Adds `byte` (dropped when the line is full).
    pub fn push(&self, byte: u8) {
        let n = self.len.load(Ordering::Relaxed);
        if n < LINE_MAX {
            self.bytes[n].store(byte, Ordering::Relaxed);
            self.len.store(n + 1, Ordering::Relaxed);
        }
    }

    /// Whether the line is `text`.
    pub fn is(&self, text: &[u8]) -> bool {
        let n = self.len.load(Ordering::Relaxed);
        n == text.len()
            && self
                .bytes
                .iter()
                .zip(text)
                .all(|(b, &t)| b.load(Ordering::Relaxed) == t)
    }

    /// Starts a new line.
    pub fn clear(&self) {
        self.len.store(0, Ordering::Relaxed);
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

/// The line as text: ASCII as typed (control characters included), any
/// other byte as `?`.
impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for slot in &self.bytes[..self.len.load(Ordering::Relaxed)] {
            let b = slot.load(Ordering::Relaxed);
            f.write_char(if b.is_ascii() { char::from(b) } else { '?' })?;
        }
        Ok(())
    }
}

/// UARTMIS: the PL011's interrupts that are raised and unmasked (what a
/// handler has to do).
pub fn pl011_masked_status() -> u32 {
    // SAFETY: a 32-bit PL011 register.
    unsafe { pl011().offset(UARTMIS) }.read32()
}

/// Batches bytes into `CONSOLE_WRITE` hypercalls.
struct HypercallWriter {
    buf: [u8; CONSOLE_WRITE_MAX],
    len: usize,
}

impl HypercallWriter {
    fn flush(&mut self) {
        if self.len > 0 {
            // Nowhere to report a console failure: the text is dropped.
            let _ = crate::hvc::console_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for HypercallWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == CONSOLE_WRITE_MAX {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

struct Pl011Writer;

impl Write for Pl011Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        pl011_write_bytes(s.as_bytes());
        Ok(())
    }
}

/// The backend of `print!`; holds the console lock for the whole call.
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _guard = lock();
    if crate::mode::under_bulkhead() {
        let mut w = HypercallWriter {
            buf: [0; CONSOLE_WRITE_MAX],
            len: 0,
        };
        // Only a Display impl can fail; print what was formatted so far.
        let _ = w.write_fmt(args);
        w.flush();
    } else {
        let _ = Pl011Writer.write_fmt(args);
    }
}

/// Prints to the guest's console (see [`crate::console`]).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!($($arg)*))
    };
}

/// Prints a line to the guest's console; the line is never interleaved with
/// another CPU's output.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}
