//! A line reader on the PL011 (under Bulkhead: the emulated PL011), driven
//! by its interrupt: prints `console: ready` and a prompt `> ` without a
//! newline, then waits. Its interrupt handler takes what came (UARTDR until
//! UARTFR.RXFE), echoes each byte; at a carriage return or newline it
//! prints `got: <line> spurious=<n>` (n: interrupts taken while UARTMIS was
//! zero, which must never happen) and the prompt again. A line `exit`
//! ends it with code 0.
#![no_std]
#![no_main]

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};

use guest_lib::console::{self, PL011_INTID};
use guest_lib::{gic, irq, println, raw_pl011_write};

guest_lib::entry!(main);

const LINE_MAX: usize = 64;

/// The line being typed (the handler's; one CPU takes the interrupt).
static LINE: [AtomicU8; LINE_MAX] = [const { AtomicU8::new(0) }; LINE_MAX];
static LEN: AtomicUsize = AtomicUsize::new(0);
static SPURIOUS: AtomicU32 = AtomicU32::new(0);
static EXIT: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    // Only fails for INTIDs of 1020 or more.
    let _ = irq::register(PL011_INTID, on_input);
    console::pl011_start_receiving();
    let _ = gic::enable(PL011_INTID);
    raw_pl011_write("console: ready\n> ");
    irq::wait_until(|| EXIT.load(Ordering::Relaxed));
    guest_lib::exit(0)
}

/// The line so far, as text (bytes that are not UTF-8 shown as `?`).
struct Line;

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for slot in &LINE[..LEN.load(Ordering::Relaxed)] {
            let b = slot.load(Ordering::Relaxed);
            f.write_char(if b.is_ascii() { char::from(b) } else { '?' })?;
        }
        Ok(())
    }
}

fn on_input(_: u32) {
    if console::pl011_masked_status() == 0 {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
    }
    while let Some(byte) = console::pl011_read_byte() {
        match byte {
            b'\r' | b'\n' => {
                raw_pl011_write("\n");
                println!(
                    "got: {} spurious={}",
                    Line,
                    SPURIOUS.load(Ordering::Relaxed)
                );
                let exit = {
                    let n = LEN.load(Ordering::Relaxed);
                    n == 4
                        && LINE
                            .iter()
                            .zip(b"exit")
                            .all(|(s, &b)| s.load(Ordering::Relaxed) == b)
                };
                LEN.store(0, Ordering::Relaxed);
                if exit {
                    EXIT.store(true, Ordering::Relaxed);
                    return;
                }
                raw_pl011_write("> ");
            }
            _ => {
                let n = LEN.load(Ordering::Relaxed);
                if n < LINE_MAX {
                    LINE[n].store(byte, Ordering::Relaxed);
                    LEN.store(n + 1, Ordering::Relaxed);
                }
                let mut echo = [0u8; 4];
                raw_pl011_write(char::from(byte.min(0x7f)).encode_utf8(&mut echo));
            }
        }
    }
}
