//! Heartbeats that end: one every `period`, each a line `heartbeat <n>
//! t=<physical counter>`, `count` of them, then "done" and exit code 0.
//! Shared by the test guests that beat and stop (test-heartbeat,
//! test-steady), each with its own period and count.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::{println, timer};

/// How many beats this guest makes; set once, before the first.
static COUNT: AtomicU64 = AtomicU64::new(0);
static FINISHED: AtomicBool = AtomicBool::new(false);

/// Beats `count` times, `period` apart, then exits.
pub fn beat(period: Duration, count: u64) -> ! {
    COUNT.store(count, Ordering::Relaxed);
    timer::start_periodic(period, heartbeat);
    guest_lib::irq::enable();
    while !FINISHED.load(Ordering::Relaxed) {
        guest_lib::wfi();
    }
    println!("done");
    guest_lib::exit(0)
}

fn heartbeat(n: u64) {
    println!("heartbeat {} t={}", n, timer::physical_now());
    if n == COUNT.load(Ordering::Relaxed) {
        timer::stop();
        FINISHED.store(true, Ordering::Relaxed);
    }
}
