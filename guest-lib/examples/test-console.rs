//! A line reader on the PL011 (under Bulkhead: the emulated PL011), driven
//! by its interrupt: prints `console: ready` and a prompt `> ` without a
//! newline, then waits. Its interrupt handler takes what came (UARTDR until
//! UARTFR.RXFE), echoes each byte; at a carriage return or newline it
//! prints `got: <line> spurious=<n>` (n: interrupts taken while UARTMIS was
//! zero, which must never happen) and the prompt again. A line `exit`
//! ends it with code 0.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use guest_lib::console::{self, Line};
use guest_lib::{irq, println, raw_pl011_write};

guest_lib::entry!(main);

/// The line being typed (the handler's; one CPU takes the interrupt).
static LINE: Line = Line::new();
static SPURIOUS: AtomicU32 = AtomicU32::new(0);
static EXIT: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    console::receive_with(on_input);
    raw_pl011_write("console: ready\n> ");
    irq::wait_until(|| EXIT.load(Ordering::Relaxed));
    guest_lib::exit(0)
}

fn on_input(_: u32) {
    if console::pl011_masked_status() == 0 {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
    }
    while let Some(byte) = console::pl011_read_byte() {
        match byte {
            b'\r' | b'\n' => {
                raw_pl011_write("\n");
                println!("got: {LINE} spurious={}", SPURIOUS.load(Ordering::Relaxed));
                let exit = LINE.is(b"exit");
                LINE.clear();
                if exit {
                    EXIT.store(true, Ordering::Relaxed);
                    return;
                }
                raw_pl011_write("> ");
            }
            _ => {
                LINE.push(byte);
                let mut echo = [0u8; 4];
                raw_pl011_write(char::from(byte.min(0x7f)).encode_utf8(&mut echo));
            }
        }
    }
}
