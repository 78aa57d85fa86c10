//! The hostile guest's neighbour (tests/configs/hostile.toml and its GICv2
//! twins): two vCPUs that each keep a periodic heartbeat and check every
//! interval themselves, and an IPI ping-pong between them that must stay
//! exact (through ICC_SGI1R_EL1 on a GICv3, GICD_SGIR on a GICv2).
//!
//! - Heartbeats: each vCPU's virtual timer fires every [`TICK_US`] on a
//!   fixed grid of deadlines (each programmed from the previous deadline,
//!   never from the time it was handled: no drift, no deadline skipped);
//!   vCPU 1's grid is half a tick after vCPU 0's. Every
//!   [`TICKS_PER_BEAT`]th tick is a heartbeat: it takes the counter its IRQ
//!   vector read, and the interval from the vCPU's previous beat must be
//!   within 1% of nominal ([`TICK_US`] x [`TICKS_PER_BEAT`]). Under
//!   `-icount` virtual time follows instructions, so a beat moves only if
//!   something ran where it should not.
//!
//!   Why the short, staggered ticks: QEMU runs the emulated CPUs in turn
//!   on one thread, each for a slice cut at the next timer deadline of the
//!   machine. Once a vCPU's deadline has passed and until it has set the
//!   next, the other CPUs' slices are bounded only by the other deadlines;
//!   the other vCPU's, never more than half a tick away, keeps them short,
//!   so that a neighbour's CPU waits for QEMU no longer than a few tens of
//!   microseconds, as it would not wait at all on hardware, where CPUs run
//!   at once. (With one vCPU and a 10 ms timer, QEMU alone moved beats by
//!   up to 25%, whatever the hypervisor did.)
//! - Ping-pong: after each of its ticks vCPU 0 sends SGI 1 (`ping`,
//!   numbered) to vCPU 1, whose handler answers SGI 2 (`pong`), whose
//!   handler on vCPU 0 checks the number: [`ROUNDS_PER_TICK`] rounds, each
//!   ping and pong once, in order, on the right vCPU.
//! - Any other interrupt is a stray: the hostile neighbour's SGIs and
//!   interrupts must reach nobody here.
//! - Exits: each vCPU counts the interrupts its handlers take and, once
//!   its timer is off, compares them with its interrupt exits
//!   (`EXIT_COUNT`), less those vCPU 0 had while printing its first line
//!   (a console line may wait for the UART the partitions share; it prints
//!   nothing more until it has watched). What is left,
//!   `unexplained_exits`, is what something else cost it: a kick meant
//!   for another partition's CPU, say, which delays nothing by 1%.
//!
//! It starts with its parameters and the physical counter, records
//! vCPU 0's progress every [`REPORT_EVERY`] beats (printed once it has
//! watched: see [`REPORTS`]), and after [`beats`] beats on both prints
//! them and the verdict:
//!
//! ```text
//! neighbour: vcpus=2 tick_us=<µs> ticks_per_beat=<n> beats=<n> rounds_per_tick=<n> t=<physical counter>
//! neighbour: beat <n> t=<counter> late=<k>
//! ...
//! neighbour: vcpu <v> heartbeats=<n> nominal=<ticks> min=<ticks> max=<ticks> late=<k> first_late=<beat>/<ticks> max_tick_delay=<ticks>@<tick>
//! neighbour: vcpu <v> irq_exits=<n> printing_exits=<n> taken=<n> unexplained_exits=<n>
//! neighbour: pingpong rounds=<r> received=<r> replies=<r> errors=<e> strays=<s>
//! neighbour: done t=<physical counter>
//! ```
//!
//! and exits with code 0 (1 if vCPU 1 could not start or did not finish).
//! How long it watches follows the hostile guest's operation count
//! (`BULKHEAD_HOSTILE_OPS` at build time, read by both) and the GIC (the
//! hostile guest is slower on a GICv2), so that it outlives the hostile
//! guest: the test checks that it did.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::abi::Counter;
use guest_lib::gic::{self, INTID_LIMIT, SgiTargets};
use guest_lib::{hvc, irq, println, smp, timer};

guest_lib::entry!(main);

/// The timer's period: short, so that QEMU's slices stay short.
const TICK_US: u64 = 50;
/// A heartbeat every this many ticks (10 ms).
const TICKS_PER_BEAT: u64 = 200;
/// Ping-pong rounds after each of vCPU 0's ticks.
const ROUNDS_PER_TICK: u64 = 1;
/// A progress line every this many beats (100 ms).
const REPORT_EVERY: u64 = 10;

/// The hostile guest's operations (its build reads the same variable).
const HOSTILE_OPS: u64 = match option_env!("BULKHEAD_HOSTILE_OPS") {
    Some(text) => decimal(text),
    None => 100_000,
};
/// Virtual time to outlive the hostile guest, and not by much, so that
/// most beats are kept while it runs: `margin_us` and 1.5 µs for each of
/// its operations (the test checks that the neighbour outlived it). On a
/// GICv3 it takes about 1.1 µs an operation at 100,000 and 0.8 at
/// 1,000,000 under `-icount` (its console lines, as many either way, cost
/// the difference): a 40 ms margin. On a GICv2 it takes 1.6 to 1.9 µs at
/// 100,000 and 0.8 to 1 at 1,000,000, and on the Raspberry Pi 4 it starts
/// some 80 ms after this partition: a 200 ms margin.
const fn watch_us(margin_us: u64) -> u64 {
    margin_us + HOSTILE_OPS * 3 / 2
}
/// The beats each vCPU keeps (whole reports) for a watch of `us`.
const fn beats_for(us: u64) -> u64 {
    (us / (TICK_US * TICKS_PER_BEAT)).div_ceil(REPORT_EVERY) * REPORT_EVERY
}
const BEATS_GICV3: u64 = beats_for(watch_us(40_000));
const BEATS_GICV2: u64 = beats_for(watch_us(200_000));
/// The beats each vCPU keeps on this GIC (set by vCPU 0 at start).
static BEATS: AtomicU64 = AtomicU64::new(BEATS_GICV3);

fn beats() -> u64 {
    BEATS.load(Ordering::Relaxed)
}

/// A decimal number (with optional `_`), at compile time.
const fn decimal(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut value: u64 = 0;
    let mut i = 0;
    assert!(!bytes.is_empty(), "BULKHEAD_HOSTILE_OPS is empty");
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'_' {
            assert!(b.is_ascii_digit(), "BULKHEAD_HOSTILE_OPS is not a number");
            value = value * 10 + (b - b'0') as u64;
        }
        i += 1;
    }
    value
}

const CPUS: usize = 2;
const PING: u32 = 1;
const PONG: u32 = 2;
const VTIMER: u32 = timer::VIRTUAL_TIMER_INTID;

/// One vCPU's ticks and heartbeats.
struct Beats {
    /// The deadline of the tick in flight.
    deadline: AtomicU64,
    ticks: AtomicU64,
    beat: AtomicU64,
    last_stamp: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    late: AtomicU64,
    /// The first late beat and its interval.
    first_late: AtomicU64,
    first_late_interval: AtomicU64,
    /// The longest a watched tick's interrupt came after its deadline.
    max_delay: AtomicU64,
    /// The tick it was (1 is the first).
    max_delay_at: AtomicU64,
}

static BEATS_OF: [Beats; CPUS] = [const {
    Beats {
        deadline: AtomicU64::new(0),
        ticks: AtomicU64::new(0),
        beat: AtomicU64::new(0),
        last_stamp: AtomicU64::new(0),
        min: AtomicU64::new(u64::MAX),
        max: AtomicU64::new(0),
        late: AtomicU64::new(0),
        first_late: AtomicU64::new(0),
        first_late_interval: AtomicU64::new(0),
        max_delay: AtomicU64::new(0),
        max_delay_at: AtomicU64::new(0),
    }
}; CPUS];

/// vCPU 0's progress reports, one every [`REPORT_EVERY`] beats: the
/// physical counter and its late beats so far. Printed once the watch is
/// over: a line printed during it would be this partition's own console
/// output waiting for the UART the hostile guest's lines hold, and the
/// retry timer's exits it costs (on either vCPU, after the print) could not
/// be told from exits others cause.
const REPORTS_MAX: usize = (max(BEATS_GICV2, BEATS_GICV3) / REPORT_EVERY) as usize;
static REPORTS: [[AtomicU64; 2]; REPORTS_MAX] =
    [const { [const { AtomicU64::new(0) }; 2] }; REPORTS_MAX];

const fn max(a: u64, b: u64) -> u64 {
    if a > b { a } else { b }
}

/// vCPU 1 has started (its handlers are in place).
static STARTED: AtomicBool = AtomicBool::new(false);
/// Both vCPUs have all their beats: the timers stop. (Until then each
/// keeps ticking, so that the other's last beats keep short slices too.)
static FINISHED: AtomicBool = AtomicBool::new(false);

// --- Ping-pong ---

/// The ping in flight, numbered from 1.
static PING_SEQ: AtomicU64 = AtomicU64::new(0);
static LAST_PING: AtomicU64 = AtomicU64::new(0);
static PINGS: AtomicU64 = AtomicU64::new(0);
/// The ping the pong in flight answers.
static PONG_SEQ: AtomicU64 = AtomicU64::new(0);
static LAST_PONG: AtomicU64 = AtomicU64::new(0);
static REPLIES: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);
static STRAYS: AtomicU64 = AtomicU64::new(0);

// --- What interrupted each vCPU ---

/// Interrupts each vCPU's handlers took, of every kind.
static TAKEN: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
/// Each vCPU's interrupt exits (`EXIT_COUNT`) and interrupts taken, read
/// together at the end, once its timer is off.
static IRQ_EXITS: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
static TAKEN_AT_END: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
static COUNTED: [AtomicBool; CPUS] = [const { AtomicBool::new(false) }; CPUS];

/// Interrupt exits of vCPU 0 while it printed its first line: its
/// console's own, whose lines may wait for the hostile guest's (they share
/// the UART).
static PRINTING_EXITS: AtomicU64 = AtomicU64::new(0);

/// This vCPU's interrupt exits so far.
fn irq_exits() -> u64 {
    hvc::exit_count(Counter::Irq).unwrap_or(0)
}

/// Runs `print` (on vCPU 0, interrupts masked), counting its exits.
fn printing(print: impl FnOnce()) {
    let before = irq_exits();
    print();
    PRINTING_EXITS.fetch_add(irq_exits() - before, Ordering::Relaxed);
}

/// One interrupt taken on this vCPU.
fn taken() {
    if let Some(taken) = TAKEN.get(smp::cpu_index()) {
        taken.fetch_add(1, Ordering::Relaxed);
    }
}

/// This vCPU's interrupt exits and interrupts taken so far, read with
/// interrupts masked so that the two agree.
fn count_exits(v: usize) {
    irq::without_interrupts(|| {
        IRQ_EXITS[v].store(irq_exits(), Ordering::Relaxed);
        TAKEN_AT_END[v].store(TAKEN[v].load(Ordering::Relaxed), Ordering::Relaxed);
    });
    COUNTED[v].store(true, Ordering::Release);
}

fn tick_ticks() -> u64 {
    timer::ticks(Duration::from_micros(TICK_US))
}

fn nominal() -> u64 {
    tick_ticks() * TICKS_PER_BEAT
}

/// CNTV_CVAL_EL0 = `deadline` and enabled, or off.
fn set_timer(deadline: Option<u64>) {
    // SAFETY: programs this vCPU's own virtual timer; writing the deadline
    // first deasserts its interrupt when the deadline is ahead.
    unsafe {
        match deadline {
            Some(cval) => asm!(
                "msr cntv_cval_el0, {}",
                "msr cntv_ctl_el0, {}",
                "isb",
                in(reg) cval,
                in(reg) 1u64,
                options(nomem, nostack)
            ),
            None => asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)),
        }
    }
}

/// Starts this vCPU's grid at `first`.
fn start_ticks(first: u64) {
    let me = &BEATS_OF[smp::cpu_index()];
    me.deadline.store(first, Ordering::Relaxed);
    let _ = irq::register(VTIMER, on_tick);
    let _ = gic::enable(VTIMER);
    set_timer(Some(first));
}

/// The timer's interrupt: the next deadline on the grid, then the tick.
fn on_tick(_: u32) {
    // The counter as the IRQ vector read it: the tick's arrival.
    let stamp = irq::last_vector_timestamp();
    taken();
    let Some(me) = BEATS_OF.get(smp::cpu_index()) else {
        return;
    };
    let due = me.deadline.load(Ordering::Relaxed);
    let ticks = me.ticks.fetch_add(1, Ordering::Relaxed) + 1;
    // Over the watched ticks only (this vCPU's handler alone writes these).
    let watched = ticks <= beats() * TICKS_PER_BEAT;
    if watched && stamp >= due && stamp - due > me.max_delay.load(Ordering::Relaxed) {
        me.max_delay.store(stamp - due, Ordering::Relaxed);
        me.max_delay_at.store(ticks, Ordering::Relaxed);
    }
    let next = due + tick_ticks();
    me.deadline.store(next, Ordering::Relaxed);
    set_timer((!FINISHED.load(Ordering::Acquire)).then_some(next));
    if ticks.is_multiple_of(TICKS_PER_BEAT) && ticks <= beats() * TICKS_PER_BEAT {
        heartbeat(me, ticks / TICKS_PER_BEAT, stamp);
    }
}

fn heartbeat(me: &Beats, beat: u64, stamp: u64) {
    let previous = me.last_stamp.swap(stamp, Ordering::Relaxed);
    if beat > 1 {
        let interval = stamp.wrapping_sub(previous);
        me.min.fetch_min(interval, Ordering::Relaxed);
        me.max.fetch_max(interval, Ordering::Relaxed);
        let nominal = nominal();
        if interval.abs_diff(nominal) * 100 > nominal
            && me.late.fetch_add(1, Ordering::Relaxed) == 0
        {
            me.first_late.store(beat, Ordering::Relaxed);
            me.first_late_interval.store(interval, Ordering::Relaxed);
        }
    }
    me.beat.store(beat, Ordering::Release);
    if smp::cpu_index() == 0
        && beat.is_multiple_of(REPORT_EVERY)
        && let Some(report) = REPORTS.get((beat / REPORT_EVERY) as usize - 1)
    {
        report[0].store(timer::physical_now(), Ordering::Relaxed);
        report[1].store(me.late.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Checks that `seq` follows the previous receipt's number.
fn in_order(last: &AtomicU64, seq: u64) {
    if last.swap(seq, Ordering::Relaxed) + 1 != seq {
        ERRORS.fetch_add(1, Ordering::Relaxed);
    }
}

/// SGI 1, on vCPU 1: check the ping's number, answer.
fn on_ping(_: u32) {
    taken();
    if smp::cpu_index() != 1 {
        ERRORS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let seq = PING_SEQ.load(Ordering::Acquire);
    in_order(&LAST_PING, seq);
    PINGS.fetch_add(1, Ordering::Relaxed);
    PONG_SEQ.store(seq, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), PONG);
}

/// SGI 2, on vCPU 0: check the reply's number.
fn on_pong(_: u32) {
    taken();
    if smp::cpu_index() != 0 {
        ERRORS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    in_order(&LAST_PONG, PONG_SEQ.load(Ordering::Acquire));
    REPLIES.fetch_add(1, Ordering::Release);
}

fn on_stray(_: u32) {
    taken();
    STRAYS.fetch_add(1, Ordering::Relaxed);
}

fn done(v: usize) -> bool {
    BEATS_OF[v].beat.load(Ordering::Acquire) >= beats()
}

/// One round: ping, and wait for its pong (or two more ticks: an error).
fn round(seq: u64) {
    PING_SEQ.store(seq, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 1), PING);
    let me = &BEATS_OF[0];
    let ticks = me.ticks.load(Ordering::Acquire);
    irq::wait_until(|| {
        REPLIES.load(Ordering::Acquire) >= seq
            || me.ticks.load(Ordering::Acquire) > ticks + 1
            || done(0)
    });
    if REPLIES.load(Ordering::Acquire) < seq {
        ERRORS.fetch_add(1, Ordering::Relaxed);
    }
}

fn enable_sgis() {
    for intid in [PING, PONG] {
        let _ = gic::enable(intid);
    }
}

/// vCPU 1: its heartbeat, half a tick after vCPU 0's, and the pings.
fn secondary(_: usize) -> ! {
    enable_sgis();
    let first = BEATS_OF[0].deadline.load(Ordering::Acquire) + tick_ticks() / 2;
    start_ticks(first);
    STARTED.store(true, Ordering::Release);
    irq::wait_until(|| done(1));
    // The timer goes off at its first tick after this.
    irq::wait_until(|| FINISHED.load(Ordering::Acquire));
    timer::delay(Duration::from_micros(2 * TICK_US));
    count_exits(1);
    loop {
        guest_lib::wfi();
    }
}

fn main() -> ! {
    if gic::version() == gic::Version::V2 {
        BEATS.store(BEATS_GICV2, Ordering::Relaxed);
    }
    for intid in 0..INTID_LIMIT {
        let _ = irq::register(intid, on_stray);
    }
    let _ = irq::register(PING, on_ping);
    let _ = irq::register(PONG, on_pong);
    enable_sgis();
    printing(|| {
        println!(
            "neighbour: vcpus={} tick_us={} ticks_per_beat={} beats={} rounds_per_tick={} t={}",
            CPUS,
            TICK_US,
            TICKS_PER_BEAT,
            beats(),
            ROUNDS_PER_TICK,
            timer::physical_now()
        )
    });
    // vCPU 0's grid starts a millisecond ahead: time for vCPU 1 to start.
    start_ticks(timer::now() + timer::ticks(Duration::from_millis(1)));
    if smp::start_cpu(1, secondary).is_err() {
        println!("neighbour: could not start vCPU 1");
        guest_lib::exit(1);
    }
    irq::enable();
    let mut rounds = 0;
    let mut seen = 0;
    while !done(0) {
        irq::wait_until(|| BEATS_OF[0].ticks.load(Ordering::Acquire) > seen);
        seen = BEATS_OF[0].ticks.load(Ordering::Acquire);
        if !done(0) && STARTED.load(Ordering::Acquire) {
            for _ in 0..ROUNDS_PER_TICK {
                rounds += 1;
                round(rounds);
            }
        }
    }
    // vCPU 1's last beat comes half a tick after vCPU 0's.
    let deadline = timer::now() + timer::ticks(Duration::from_millis(100));
    irq::wait_until(|| done(1) || timer::now() > deadline);
    FINISHED.store(true, Ordering::Release);
    if !done(1) {
        println!("neighbour: vCPU 1 did not finish");
        guest_lib::exit(1);
    }
    timer::delay(Duration::from_micros(2 * TICK_US));
    count_exits(0);
    // Polled, as no timer wakes this vCPU any more; YIELD ends QEMU's
    // slice of this CPU (it runs one CPU at a time), so vCPU 1 gets on.
    let deadline = timer::now() + timer::ticks(Duration::from_millis(10));
    while !COUNTED[1].load(Ordering::Acquire) && timer::now() < deadline {
        // SAFETY: a hint instruction, no effect on state.
        unsafe { asm!("yield", options(nomem, nostack, preserves_flags)) };
    }
    for (r, report) in REPORTS
        .iter()
        .enumerate()
        .take((beats() / REPORT_EVERY) as usize)
    {
        println!(
            "neighbour: beat {} t={} late={}",
            (r as u64 + 1) * REPORT_EVERY,
            report[0].load(Ordering::Relaxed),
            report[1].load(Ordering::Relaxed)
        );
    }
    for (v, me) in BEATS_OF.iter().enumerate() {
        let exits = IRQ_EXITS[v].load(Ordering::Relaxed);
        let printing = if v == 0 {
            PRINTING_EXITS.load(Ordering::Relaxed)
        } else {
            0
        };
        let taken = TAKEN_AT_END[v].load(Ordering::Relaxed);
        println!(
            "neighbour: vcpu {} heartbeats={} nominal={} min={} max={} late={} first_late={}/{} max_tick_delay={}@{}",
            v,
            me.beat.load(Ordering::Relaxed),
            nominal(),
            me.min.load(Ordering::Relaxed),
            me.max.load(Ordering::Relaxed),
            me.late.load(Ordering::Relaxed),
            me.first_late.load(Ordering::Relaxed),
            me.first_late_interval.load(Ordering::Relaxed),
            me.max_delay.load(Ordering::Relaxed),
            me.max_delay_at.load(Ordering::Relaxed),
        );
        println!(
            "neighbour: vcpu {} irq_exits={} printing_exits={} taken={} unexplained_exits={}",
            v,
            exits,
            printing,
            taken,
            exits.saturating_sub(printing + taken)
        );
    }
    let received = PINGS.load(Ordering::Relaxed);
    let replies = REPLIES.load(Ordering::Relaxed);
    let missing = (rounds - received.min(rounds)) + received.saturating_sub(replies);
    println!(
        "neighbour: pingpong rounds={} received={} replies={} errors={} strays={}",
        rounds,
        received,
        replies,
        ERRORS.load(Ordering::Relaxed) + missing,
        STRAYS.load(Ordering::Relaxed)
    );
    println!("neighbour: done t={}", timer::physical_now());
    guest_lib::exit(0)
}
