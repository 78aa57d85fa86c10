//! Interrupt masking through the control page's flag word, on two vCPUs.
//! vCPU 0 drives three phases:
//!
//! 1. Window: vCPU 0 starts a 1 ms periodic virtual timer, masks with
//!    `irq::mask()` and spins (no WFI) for 10 ms, while vCPU 1 sends it
//!    SGIs 1..=5, once each, 1 ms apart, starting half a period after the
//!    first timer deadline (so that the timer is the window's first
//!    deferral). No handler may run inside the window; after the unmask
//!    each SGI handler runs once and the timer's once for its deferred
//!    (level) interrupt (the callback then stops the timer, so the count
//!    is stable). Prints
//!    `mask: in_window=0 after: timer=1 sgi=1:1,2:1,3:1,4:1,5:1`, then the
//!    hypervisor's deferral statistics beside the guest's own view of the
//!    wait: `guest_wait` = the unmask time minus the first timer deadline
//!    after the mask, and `guest_window` = the unmask time minus the moment
//!    the guest first saw its pending bit set (the hypervisor's first
//!    deferral as the guest sees it; without -icount the host can deliver
//!    the timer to the hypervisor late, which this one does not depend on).
//! 2. Cost: 1000 mask/unmask pairs with nothing pending; the exits they
//!    cause (all counters summed, the reads' own exits subtracted): 0.
//!    Then one masked window with a self-SGI sent inside it: the unmask
//!    makes one `IRQ_UNMASK` hypercall (`hvc=1`) and the SGI is handled
//!    once (`delivered=1`); and one with the timer firing inside it, alone:
//!    `mask: timer_unmask deferred=1 delivered=1` (`deferred=0` natively,
//!    where the IRQ vector holds it back), and the hypervisor's longest
//!    wait and window, which that window sets, beside the guest's view
//!    (`mask: timer_stats ...`).
//!    Then the race the IRQ vector handles (an interrupt already signalled
//!    when the flag is set): `mask: lazy inside=0 vector_masked=1 after=1`.
//! 3. `critical_section::with` on both vCPUs, 10,000 increments each of a
//!    shared non-atomic counter, with both vCPUs' timers firing every
//!    200 µs and their handlers taking the critical section too: the total
//!    is 20000, and no handler ran inside a critical section
//!    (`handler_inside=0`).
//!
//! Under Bulkhead a last line, `mask: final_stats ...`, gives the deferral
//! statistics of the whole run (phases 2 and 3 defer more), which the
//! hypervisor's report at the partition's stop must repeat.
//!
//! Exits with code 0 (1 if vCPU 1 could not be started or stopped
//! answering). Natively (`-smp 2`) every line prints too, guest-lib's own
//! mask byte and its IRQ vector holding back what arrives, and
//! "unsupported" where only the hypervisor can count.
#![no_std]
#![no_main]

use core::arch::asm;
use core::cell::Cell;
use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::abi::Counter;
use guest_lib::critical_section::{self, Mutex};
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{MAX_CPUS, hvc, irq, println, smp, timer};

guest_lib::entry!(main);

const TIMER_PERIOD: Duration = Duration::from_millis(1);
const WINDOW: Duration = Duration::from_millis(10);
const SGI_SPACING: Duration = Duration::from_millis(1);
/// Time for the deferred interrupts to be handled after the unmask.
const AFTER: Duration = Duration::from_millis(5);
/// Longest wait for vCPU 1 or for an interrupt.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The SGIs of phase 1 (1..=5) and the self-SGI of phase 2.
const FIRST_SGI: u32 = 1;
const LAST_SGI: u32 = 5;
const SELF_SGI: u32 = 6;
/// The SGI of the lazy-masking check.
const LAZY_SGI: u32 = 7;
const PAIRS: u64 = 1000;
const INCREMENTS: u64 = 10_000;
const CS_TIMER_PERIOD: Duration = Duration::from_micros(200);
/// Spins between the read and the write of the shared counter.
const WIDEN: u32 = 32;

/// vCPU 0's steps, for vCPU 1.
const STEP_WINDOW_OPEN: u32 = 1;
const STEP_CRITICAL: u32 = 2;
static STEP: AtomicU32 = AtomicU32::new(0);
/// vCPU 1's answers: ready, SGIs sent, increments done.
const VCPU1_READY: u32 = 1;
const VCPU1_SENT: u32 = 2;
const VCPU1_INCREMENTED: u32 = 3;
static VCPU1: AtomicU32 = AtomicU32::new(0);

/// Phase 1's first timer deadline (CNTV_CVAL), for vCPU 1.
static FIRST_DEADLINE: AtomicU64 = AtomicU64::new(0);
/// Set by vCPU 0 right after `irq::mask()`, cleared right before `unmask`.
static WINDOW_OPEN: AtomicBool = AtomicBool::new(false);
/// Handler runs that found the window open or the mask byte set.
static SEEN_MASKED: AtomicU64 = AtomicU64::new(0);
/// Handler runs on vCPU 0, by SGI (index = INTID), and of the timer.
static SGI_RUNS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];
static TIMER_RUNS: AtomicU64 = AtomicU64::new(0);
/// After the unmask, the timer callback stops the timer.
static STOP_TIMER: AtomicBool = AtomicBool::new(false);

/// Phase 3: the shared counter, the handlers' counter, and per vCPU
/// whether it is inside a critical section.
static SHARED: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
static HANDLER_SHARED: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
static INSIDE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static HANDLER_INSIDE: AtomicU64 = AtomicU64::new(0);
/// vCPUs that have reached phase 3's start line.
static STARTED: AtomicU32 = AtomicU32::new(0);

fn main() -> ! {
    for intid in FIRST_SGI..=LAZY_SGI {
        // Both only fail for INTIDs of 1020 or more.
        let _ = irq::register(intid, on_sgi);
        let _ = gic::enable(intid);
    }
    if let Err(error) = smp::start_cpu(1, secondary) {
        println!("mask: could not start vcpu 1: {:?}", error);
        guest_lib::exit(1);
    }
    irq::enable();
    wait_for(&VCPU1, VCPU1_READY);

    window();
    cost();
    lazy();
    critical();
    // Everything deferred over the run, for comparison with the
    // hypervisor's report when the partition stops.
    if let Some(stats) = hvc::defer_stats() {
        println!(
            "mask: final_stats deferred={} max_wait={} max_window={}",
            stats.deferred, stats.max_wait, stats.max_window
        );
    }
    guest_lib::exit(0)
}

// --- Phase 1 ---

fn window() {
    timer::start_periodic(TIMER_PERIOD, on_timer);
    let state = irq::mask();
    WINDOW_OPEN.store(true, Ordering::SeqCst);
    let t0 = timer::now();
    // No handler can move the deadline while masked: this is the first one
    // due after t0 (or, if it passed already, the one deferred).
    let first_deadline = compare();
    FIRST_DEADLINE.store(first_deadline, Ordering::Relaxed);
    let before = runs();
    STEP.store(STEP_WINDOW_OPEN, Ordering::Release);
    let end = t0 + timer::ticks(WINDOW);
    let timeout = t0 + timer::ticks(TIMEOUT);
    // When this vCPU first saw its pending bit: the hypervisor's first
    // deferral, as the guest sees it.
    let mut first_pending = None;
    while (timer::now() < end || VCPU1.load(Ordering::Acquire) < VCPU1_SENT)
        && timer::now() < timeout
    {
        if first_pending.is_none() && irq::deferred_pending() {
            first_pending = Some(timer::now());
        }
        spin_loop();
    }
    let inside = runs() - before;
    STOP_TIMER.store(true, Ordering::SeqCst);
    WINDOW_OPEN.store(false, Ordering::SeqCst);
    let timer_before = TIMER_RUNS.load(Ordering::Relaxed);
    let unmasked_at = timer::now();
    irq::unmask(state);
    timer::delay(AFTER);

    let timer_runs = TIMER_RUNS.load(Ordering::Relaxed) - timer_before;
    let sgi = |intid: u32| SGI_RUNS[intid as usize].load(Ordering::Relaxed);
    println!(
        "mask: in_window={} after: timer={} sgi=1:{},2:{},3:{},4:{},5:{}",
        inside + SEEN_MASKED.load(Ordering::Relaxed),
        timer_runs,
        sgi(1),
        sgi(2),
        sgi(3),
        sgi(4),
        sgi(5)
    );
    let guest_wait = unmasked_at.wrapping_sub(first_deadline) as i64;
    let guest_window = first_pending.map_or(0, |at| unmasked_at.wrapping_sub(at) as i64);
    match hvc::defer_stats() {
        Some(stats) => println!(
            "mask: stats deferred={} max_wait={} max_window={} guest_wait={} guest_window={}",
            stats.deferred, stats.max_wait, stats.max_window, guest_wait, guest_window
        ),
        None => println!("mask: stats unsupported guest_wait={}", guest_wait),
    }
}

/// All handler runs on vCPU 0 so far.
fn runs() -> u64 {
    TIMER_RUNS.load(Ordering::Relaxed)
        + SGI_RUNS
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .sum::<u64>()
}

fn note_if_masked() {
    if WINDOW_OPEN.load(Ordering::Relaxed) || irq::mask_bit_set() {
        SEEN_MASKED.fetch_add(1, Ordering::Relaxed);
    }
}

fn on_sgi(intid: u32) {
    if smp::cpu_index() == 0 {
        note_if_masked();
        SGI_RUNS[intid as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn on_timer(_expiries: u64) {
    note_if_masked();
    TIMER_RUNS.fetch_add(1, Ordering::Relaxed);
    if STOP_TIMER.load(Ordering::Relaxed) {
        timer::stop();
    }
}

/// CNTV_CVAL_EL0: this CPU's virtual timer deadline.
fn compare() -> u64 {
    let value: u64;
    // SAFETY: reading the deadline has no side effects.
    unsafe {
        asm!("mrs {}, cntv_cval_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

// --- Phase 2 ---

/// All of this vCPU's exit counters, summed (`None` natively).
fn all_exits() -> Option<u64> {
    Counter::ALL.iter().map(|&c| hvc::exit_count(c)).sum()
}

/// `after - before - own`, or "unsupported".
struct Delta {
    before: Option<u64>,
    after: Option<u64>,
    own: Option<u64>,
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.before, self.after, self.own) {
            (Some(b), Some(a), Some(own)) => {
                write!(f, "{}", a.wrapping_sub(b).wrapping_sub(own) as i64)
            }
            _ => f.write_str("unsupported"),
        }
    }
}

/// What `read()` itself adds to what it reads: two readings back to back.
fn own_exits(read: impl Fn() -> Option<u64>) -> Option<u64> {
    let first = read()?;
    Some(read()?.wrapping_sub(first))
}

fn cost() {
    timer::stop();
    let own = own_exits(all_exits);
    let before = all_exits();
    for _ in 0..PAIRS {
        let state = irq::mask();
        irq::unmask(state);
    }
    let after = all_exits();
    println!(
        "mask: pairs={} traps={}",
        PAIRS,
        Delta { before, after, own }
    );

    let hvcs = || hvc::exit_count(Counter::Hvc);
    let own = own_exits(hvcs);
    let delivered = SGI_RUNS[SELF_SGI as usize].load(Ordering::Relaxed);
    let before = hvcs();
    let state = irq::mask();
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SELF_SGI);
    irq::unmask(state);
    wait_while(|| SGI_RUNS[SELF_SGI as usize].load(Ordering::Relaxed) == delivered);
    let after = hvcs();
    println!("mask: pending_unmask hvc={}", Delta { before, after, own });
    println!(
        "mask: pending_unmask delivered={}",
        SGI_RUNS[SELF_SGI as usize].load(Ordering::Relaxed) - delivered
    );

    // The timer alone deferred (a forwarded interrupt: the hypervisor's
    // IRQ_UNMASK lists it with its physical INTID), for longer than phase
    // 1's window, so that the wait it ends is the longest so far.
    let runs = || TIMER_RUNS.load(Ordering::Relaxed);
    let before = runs();
    let state = irq::mask();
    timer::start_one_shot(TIMER_PERIOD, on_timer);
    let fires_at = compare();
    timer::delay(WINDOW * 3 / 2);
    let deferred = irq::deferred_pending();
    let unmasked_at = timer::now();
    irq::unmask(state);
    wait_while(|| runs() == before);
    println!(
        "mask: timer_unmask deferred={} delivered={}",
        u8::from(deferred),
        runs() - before
    );
    let guest_wait = unmasked_at.wrapping_sub(fires_at) as i64;
    match hvc::defer_stats() {
        Some(stats) => println!(
            "mask: timer_stats max_wait={} max_window={} guest_wait={}",
            stats.max_wait, stats.max_window, guest_wait
        ),
        None => println!("mask: timer_stats unsupported"),
    }
}

/// The race the IRQ vector handles: an interrupt already in a list register
/// (sent to itself with PSTATE.I set and the flag clear, so the hypervisor
/// delivered it) when the flag is set, then PSTATE.I cleared inside the
/// masked section. The vector must leave it pending and set PSTATE.I in the
/// interrupted context; the unmask then lets it in. Prints
/// `mask: lazy inside=0 vector_masked=1 after=1`. Natively the same: the
/// vector holds back every interrupt that arrives while guest-lib's own
/// mask byte is set.
fn lazy() {
    let runs = || SGI_RUNS[LAZY_SGI as usize].load(Ordering::Relaxed);
    let before = runs();
    irq::disable();
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), LAZY_SGI);
    let state = irq::mask();
    WINDOW_OPEN.store(true, Ordering::SeqCst);
    irq::enable();
    timer::delay(Duration::from_millis(1));
    let inside = runs() - before;
    let vector_masked = daif() & (1 << 7) != 0;
    WINDOW_OPEN.store(false, Ordering::SeqCst);
    irq::unmask(state);
    wait_while(|| runs() == before);
    println!(
        "mask: lazy inside={} vector_masked={} after={}",
        inside + SEEN_MASKED.load(Ordering::Relaxed),
        u8::from(vector_masked),
        runs() - before
    );
}

/// DAIF: PSTATE.I is bit 7.
fn daif() -> u64 {
    let value: u64;
    // SAFETY: reading DAIF has no side effects.
    unsafe { asm!("mrs {}, daif", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

// --- Phase 3 ---

fn critical() {
    STEP.store(STEP_CRITICAL, Ordering::Release);
    increment_shared();
    wait_for(&VCPU1, VCPU1_INCREMENTED);
    timer::stop();
    let total = critical_section::with(|cs| SHARED.borrow(cs).get());
    println!("mask: critical_section total={}", total);
    println!(
        "mask: critical_section handler_inside={}",
        HANDLER_INSIDE.load(Ordering::Relaxed)
    );
}

/// Both vCPUs: INCREMENTS read-wait-write increments of SHARED, each in a
/// critical section (every 100th one nested), with this vCPU's timer firing
/// meanwhile.
fn increment_shared() {
    // Start together, so that the two vCPUs' increments overlap.
    STARTED.fetch_add(1, Ordering::AcqRel);
    while STARTED.load(Ordering::Acquire) < 2 {
        spin_loop();
    }
    timer::start_periodic(CS_TIMER_PERIOD, on_timer_critical);
    let inside = &INSIDE[smp::cpu_index()];
    for i in 0..INCREMENTS {
        critical_section::with(|cs| {
            inside.store(true, Ordering::Relaxed);
            if i % 100 == 0 {
                critical_section::with(add_one);
            } else {
                add_one(cs);
            }
            inside.store(false, Ordering::Relaxed);
        });
    }
    timer::stop();
}

/// SHARED += 1, reading and writing it apart.
fn add_one(cs: critical_section::CriticalSection<'_>) {
    let shared = SHARED.borrow(cs);
    let value = shared.get();
    // Widen the window a lost update would need.
    for _ in 0..WIDEN {
        spin_loop();
    }
    shared.set(value + 1);
}

fn on_timer_critical(_expiries: u64) {
    if INSIDE[smp::cpu_index()].load(Ordering::Relaxed) {
        HANDLER_INSIDE.fetch_add(1, Ordering::Relaxed);
    }
    critical_section::with(|cs| {
        let count = HANDLER_SHARED.borrow(cs);
        count.set(count.get() + 1);
    });
}

// --- vCPU 1 ---

fn secondary(_cpu: usize) -> ! {
    irq::enable();
    VCPU1.store(VCPU1_READY, Ordering::Release);
    wait_for(&STEP, STEP_WINDOW_OPEN);
    // After the first timer deadline: the timer is the window's first
    // deferral, so the hypervisor's window and the guest's wait (both from
    // that deadline) measure the same span.
    let start = FIRST_DEADLINE.load(Ordering::Relaxed) + timer::ticks(SGI_SPACING) / 2;
    while timer::now() < start {
        spin_loop();
    }
    for intid in FIRST_SGI..=LAST_SGI {
        let _ = gic::send_sgi(SgiTargets::List(1 << 0), intid);
        timer::delay(SGI_SPACING);
    }
    VCPU1.store(VCPU1_SENT, Ordering::Release);
    wait_for(&STEP, STEP_CRITICAL);
    increment_shared();
    VCPU1.store(VCPU1_INCREMENTED, Ordering::Release);
    guest_lib::idle()
}

// --- Helpers ---

fn deadline(after: Duration) -> u64 {
    timer::now().saturating_add(timer::ticks(after))
}

/// Spins while `still()` holds, for TIMEOUT at most (what comes after
/// tells whether it stopped holding).
fn wait_while(mut still: impl FnMut() -> bool) {
    let timeout = deadline(TIMEOUT);
    while still() && timer::now() < timeout {
        spin_loop();
    }
}

/// Spins until `value` reaches `at_least`; exits with 1 on a timeout.
fn wait_for(value: &AtomicU32, at_least: u32) {
    let timeout = deadline(TIMEOUT);
    while value.load(Ordering::Acquire) < at_least {
        if timer::now() > timeout {
            println!("mask: vcpu {} timed out waiting", smp::cpu_index());
            guest_lib::exit(1);
        }
        spin_loop();
    }
}
