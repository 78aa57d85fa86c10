//! Makes an undefined hypercall, shows that the guest keeps running (three
//! heartbeats), then exits with code 0.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use guest_lib::abi::bulkhead_call;
use guest_lib::{hvc, println, timer};

guest_lib::entry!(main);

const BEATS: u64 = 3;
static FINISHED: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    let [x0, ..] = hvc::call(bulkhead_call(0x7ff), []);
    println!("badcall: returned {}", x0 as i64);
    println!("badcall: still running");
    timer::start_periodic(Duration::from_millis(100), heartbeat);
    guest_lib::irq::enable();
    while !FINISHED.load(Ordering::Relaxed) {
        guest_lib::wfi();
    }
    guest_lib::exit(0)
}

fn heartbeat(count: u64) {
    println!("heartbeat {} t={}", count, timer::physical_now());
    if count == BEATS {
        timer::stop();
        FINISHED.store(true, Ordering::Relaxed);
    }
}
