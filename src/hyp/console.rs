//! Output on the board UART: the hypervisor's own lines and each
//! partition's, one whole line at a time under one lock.

use core::fmt::{self, Write};

use crate::arch::pl011::Pl011;

static UART: spin::Mutex<Option<Pl011>> = spin::Mutex::new(None);

/// Takes the board UART at `base`.
pub fn init(base: u64) {
    // SAFETY: `base` is the board's PL011 from the checked board description;
    // from here on only this module drives it.
    *UART.lock() = Some(unsafe { Pl011::new(base as usize) });
}

/// Prints one line, `[prefix] text`, atomically with respect to every other line.
pub fn line(prefix: &str, text: fmt::Arguments<'_>) {
    let mut uart = UART.lock();
    if let Some(uart) = uart.as_mut() {
        // The PL011 writer cannot fail.
        let _ = writeln!(uart, "[{prefix}] {text}");
    }
}

/// Prints a partition's line: its bytes are already sanitised by `LineBuffer`.
pub fn partition_line(name: &str, bytes: &[u8]) {
    let text = core::str::from_utf8(bytes).unwrap_or("<non-ASCII line>");
    line(name, format_args!("{text}"));
}

/// `[bulkhead] ...` on the console.
macro_rules! hyp_println {
    ($($arg:tt)*) => {
        $crate::hyp::console::line("bulkhead", format_args!($($arg)*))
    };
}
pub(crate) use hyp_println;

/// For the panic handler: prints even if the lock is held (by the CPU that
/// panicked, perhaps) after a bounded wait.
pub fn emergency(text: fmt::Arguments<'_>) {
    for _ in 0..1_000_000 {
        if let Some(mut uart) = UART.try_lock() {
            if let Some(uart) = uart.as_mut() {
                let _ = writeln!(uart, "[bulkhead] {text}");
            }
            return;
        }
    }
    // SAFETY: last resort after the lock stayed held (by a CPU that will
    // never release it: it panicked or hung): a garbled line beats silence.
    unsafe { UART.force_unlock() };
    if let Some(uart) = UART.lock().as_mut() {
        let _ = writeln!(uart, "[bulkhead] {text}");
    }
}
