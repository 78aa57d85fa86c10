//! The RTOS beside Linux in tests/configs/linux.toml: a heartbeat every
//! 100 ms (`heartbeat <n> t=<physical counter>`, from its virtual timer's
//! periodic interrupt), and console input read from its emulated PL011 in
//! that interrupt's handler: each line typed while it has the console's
//! focus comes back as `got: <line>`. The line `exit` ends it: `done
//! beats=<n>`, exit code 0. It runs as long as the test needs, through
//! Linux's boots, reboot and power-off beside it. It answers what Linux
//! sends through their channel (`channel-echo`: `channel: got <text>`).

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::console::{self, Line};
use guest_lib::{irq, println, timer};

#[path = "channel-echo/mod.rs"]
mod channel_echo;

guest_lib::entry!(main);

/// The line being typed (its handler's only).
static LINE: Line = Line::new();
static BEATS: AtomicU64 = AtomicU64::new(0);
static EXIT: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    console::receive_with(on_input);
    println!("rtos: ready");
    timer::start_periodic(Duration::from_millis(100), heartbeat);
    channel_echo::answer();
    irq::wait_until(|| EXIT.load(Ordering::Relaxed));
    timer::stop();
    println!("done beats={}", BEATS.load(Ordering::Relaxed));
    guest_lib::exit(0)
}

fn heartbeat(n: u64) {
    BEATS.store(n, Ordering::Relaxed);
    println!("heartbeat {} t={}", n, timer::physical_now());
}

fn on_input(_: u32) {
    while let Some(byte) = console::pl011_read_byte() {
        if byte != b'\r' && byte != b'\n' {
            LINE.push(byte);
            continue;
        }
        println!("got: {LINE}");
        if LINE.is(b"exit") {
            EXIT.store(true, Ordering::Relaxed);
        }
        LINE.clear();
    }
}
