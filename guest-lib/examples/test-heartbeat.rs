//! 20 heartbeats 100 ms apart, then "done" and exit code 0.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use guest_lib::{println, timer};

guest_lib::entry!(main);

const BEATS: u64 = 20;
static FINISHED: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    timer::start_periodic(Duration::from_millis(100), heartbeat);
    guest_lib::irq::enable();
    while !FINISHED.load(Ordering::Relaxed) {
        guest_lib::wfi();
    }
    println!("done");
    guest_lib::exit(0)
}

fn heartbeat(count: u64) {
    println!("heartbeat {} t={}", count, timer::physical_now());
    if count == BEATS {
        timer::stop();
        FINISHED.store(true, Ordering::Relaxed);
    }
}
