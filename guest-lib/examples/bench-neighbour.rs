//! A busy neighbour for the growth rows of `scripts/bench.sh`
//! (tests/configs/bench-growth-*.toml): one vCPU that, through the first
//! phase of the interference benchmark's schedule (bench-schedule/mod.rs,
//! `idle`: the phase whose samples the growth rows take), keeps the
//! hypervisor busy on its own CPU with what every partition does: a
//! self-SGI taken, a null hypercall (VERSION), a trapped GICD_TYPER read
//! and a virtual timer expiry taken, round after round. Before and after,
//! it waits in WFI. The victim (bench-victim.rs) measures its timer beside
//! one, two or three of these.
//!
//! Prints `neighbour: ops=<rounds> first=<tick> last=<tick>` (physical:
//! when its first round began and its last ended; bench.sh checks the
//! victim's samples lie between) and `neighbour: done` once the schedule
//! is over, and exits with code 0.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use guest_lib::abi::call;
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{hvc, irq, println, timer};

#[path = "bench-schedule/mod.rs"]
#[allow(dead_code)] // its phases are the victim's and the aggressor's
mod schedule;

guest_lib::entry!(main);

/// The SGI this vCPU sends itself.
const SGI_SELF: u32 = 5;
/// The virtual GICD_TYPER.
const GICD_TYPER: usize = 0x0800_0004;
/// How far ahead the timer is set each round, in ticks: the neighbour
/// sleeps for most of each round. Busier, three of them starve the other
/// CPUs under `-icount`, where QEMU runs every CPU in one thread, round
/// robin: with 500 the victim's timer expiry and two of the neighbours'
/// went unserved (no exception taken on their CPUs, `-d int`) for the
/// 1.2 million ticks the third neighbour kept running; without `-icount`,
/// and with two neighbours, they were served at once.
const TIMER_AHEAD: u64 = 10_000;

static TAKEN: AtomicU64 = AtomicU64::new(0);
static EXPIRED: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    let _ = irq::register(SGI_SELF, |_| {
        TAKEN.fetch_add(1, Ordering::Release);
    });
    let _ = gic::enable(SGI_SELF);
    // Wait for the phase: its timer armed for the start, nothing else.
    let start = schedule::START;
    let ahead = start.saturating_sub(timer::physical_now());
    timer::start_one_shot_at(timer::now() + ahead, |_| {});
    irq::wait_until(|| timer::physical_now() >= start);
    let end = start + schedule::PHASE;
    let first = timer::physical_now();
    let mut rounds = 0u64;
    while timer::physical_now() < end {
        let taken = TAKEN.load(Ordering::Acquire);
        let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_SELF);
        irq::wait_until(|| TAKEN.load(Ordering::Acquire) > taken);
        let _ = hvc::call(call::VERSION, []);
        // SAFETY: a 32-bit read of the virtual distributor's GICD_TYPER,
        // read-only and without side effects, in the identity map's Device
        // range.
        let _ = unsafe { core::ptr::read_volatile(GICD_TYPER as *const u32) };
        let expired = EXPIRED.load(Ordering::Acquire);
        timer::start_one_shot_at(timer::now() + TIMER_AHEAD, |_| {
            EXPIRED.fetch_add(1, Ordering::Release);
        });
        irq::wait_until(|| EXPIRED.load(Ordering::Acquire) > expired);
        rounds += 1;
    }
    let last = timer::physical_now();
    // Print (hypercalls, console) only once the victim's schedule is over:
    // output in one of its later phases made its figures there differ
    // between two runs (30 and 34 ticks).
    let over = schedule::START + schedule::PHASES.len() as u64 * schedule::PHASE;
    let ahead = over.saturating_sub(timer::physical_now());
    timer::start_one_shot_at(timer::now() + ahead, |_| {});
    irq::wait_until(|| timer::physical_now() >= over);
    timer::stop();
    println!("neighbour: ops={} first={} last={}", rounds, first, last);
    println!("neighbour: done");
    guest_lib::exit(0)
}
