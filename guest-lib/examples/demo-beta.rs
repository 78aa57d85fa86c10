//! One vCPU: counts primes, a block of numbers per 300 ms heartbeat, and
//! prints its progress; answers what comes in through its channel
//! (`channel-echo`: `channel: got <text>`). Runs forever.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::{println, timer};

#[path = "channel-echo/mod.rs"]
mod channel_echo;

guest_lib::entry!(main);

const PERIOD: Duration = Duration::from_millis(300);
/// Numbers examined between two progress lines.
const BLOCK: u64 = 20_000;

/// Heartbeats so far; the main loop does one block per beat.
static BEATS: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    println!("beta: booted ({})", guest_lib::hypervisor());
    timer::start_periodic(PERIOD, heartbeat);
    channel_echo::answer();
    guest_lib::irq::enable();

    let (mut below, mut count, mut done) = (0u64, 0u64, 0u64);
    loop {
        let end = below + BLOCK;
        count += (below..end).filter(|&n| is_prime(n)).count() as u64;
        below = end;
        println!("beta: primes below {}: {}", below, count);
        // Wait for the next heartbeat before the next block.
        done += 1;
        while BEATS.load(Ordering::Relaxed) < done {
            guest_lib::wfi();
        }
    }
}

fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

fn heartbeat(count: u64) {
    BEATS.store(count, Ordering::Relaxed);
    println!("heartbeat {} t={}", count, timer::physical_now());
}
