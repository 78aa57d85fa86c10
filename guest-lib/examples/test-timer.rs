//! Two vCPUs, each with a periodic 2 ms virtual timer for 100 beats. Each
//! callback reads CNTVCT first thing; the intervals between successive
//! callbacks give, per vCPU, `timer: vcpu N beats=100 period=<ticks>
//! mean=<ticks> min=<ticks> max=<ticks>` (the mean over the 99 intervals,
//! rounded down). Then exits with code 0 (1 if vCPU 1 could not start or
//! did not finish). vCPU 0 waits for vCPU 1 in WFI, woken by an SGI from
//! it, not by spinning: under -icount the vCPUs take turns on one thread,
//! and a spinning vCPU 0 would delay vCPU 1's beats.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::gic::{self, SgiTargets};
use guest_lib::{irq, println, smp, timer};

guest_lib::entry!(main);

const CPUS: usize = 2;
const PERIOD: Duration = Duration::from_millis(2);
const BEATS: u64 = 100;
/// How long vCPU 0 waits for vCPU 1 once its own beats are done.
const TIMEOUT: Duration = Duration::from_secs(5);
/// vCPU 1 to vCPU 0: "my beats are done".
const SGI_DONE: u32 = 0;

static TIMED_OUT: AtomicBool = AtomicBool::new(false);

/// One vCPU's measurements.
struct Stats {
    beats: AtomicU64,
    /// CNTVCT at the latest callback.
    last: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    done: AtomicBool,
}

static STATS: [Stats; CPUS] = [const {
    Stats {
        beats: AtomicU64::new(0),
        last: AtomicU64::new(0),
        sum: AtomicU64::new(0),
        min: AtomicU64::new(u64::MAX),
        max: AtomicU64::new(0),
        done: AtomicBool::new(false),
    }
}; CPUS];

fn main() -> ! {
    // Only fail for INTIDs of 1020 or more. The handler has nothing to do:
    // the SGI only wakes vCPU 0's WFI.
    let _ = irq::register(SGI_DONE, |_| {});
    let _ = gic::enable(SGI_DONE);
    if let Err(error) = smp::start_cpu(1, run) {
        println!("timer: could not start vcpu 1: {:?}", error);
        guest_lib::exit(1);
    }
    measure();
    timer::start_one_shot(TIMEOUT, |_| TIMED_OUT.store(true, Ordering::Relaxed));
    irq::wait_until(|| STATS[1].done.load(Ordering::Acquire) || TIMED_OUT.load(Ordering::Relaxed));
    timer::stop();
    if !STATS[1].done.load(Ordering::Acquire) {
        println!("timer: vcpu 1 did not finish");
        guest_lib::exit(1);
    }
    for cpu in 0..CPUS {
        report(cpu);
    }
    guest_lib::exit(0)
}

fn run(_cpu: usize) -> ! {
    measure();
    // SGI 0 is below 16: cannot fail.
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_DONE);
    guest_lib::idle()
}

/// Runs this vCPU's 100 beats; returns when they are done.
fn measure() {
    let stats = &STATS[smp::cpu_index()];
    timer::start_periodic(PERIOD, on_beat);
    irq::wait_until(|| stats.done.load(Ordering::Acquire));
}

fn on_beat(_count: u64) {
    let now = timer::now();
    let stats = &STATS[smp::cpu_index()];
    let beats = stats.beats.fetch_add(1, Ordering::Relaxed) + 1;
    let last = stats.last.swap(now, Ordering::Relaxed);
    if beats > 1 {
        let interval = now - last;
        stats.sum.fetch_add(interval, Ordering::Relaxed);
        stats.min.fetch_min(interval, Ordering::Relaxed);
        stats.max.fetch_max(interval, Ordering::Relaxed);
    }
    if beats == BEATS {
        timer::stop();
        stats.done.store(true, Ordering::Release);
    }
}

fn report(cpu: usize) {
    let stats = &STATS[cpu];
    let beats = stats.beats.load(Ordering::Relaxed);
    let intervals = beats.saturating_sub(1).max(1);
    println!(
        "timer: vcpu {} beats={} period={} mean={} min={} max={}",
        cpu,
        beats,
        timer::ticks(PERIOD),
        stats.sum.load(Ordering::Relaxed) / intervals,
        stats.min.load(Ordering::Relaxed),
        stats.max.load(Ordering::Relaxed)
    );
}
