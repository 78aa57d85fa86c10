//! Inter-vCPU interrupts (SGIs) on four vCPUs; vCPU 0 drives four phases:
//!
//! - A, ping-pong: 10,000 rounds of SGI 1 to vCPU 1, whose handler answers
//!   SGI 2; every receipt is checked against a shared sequence number, and
//!   vCPUs 0 and 1 compare their sends with their SGI-trap exit counters;
//!   vCPU 1 counts its IRQ exits while pinged (the kicks that brought the
//!   pings, 0 where the sender's CPU lists them itself); on a GICv2 each
//!   handler checks the SGI's source CPU interface in GICC_IAR.
//! - B, broadcast: SGI 3 to all but self, once.
//! - C, multicast: SGI 4 to vCPUs 1 and 3, once.
//! - E, burst: SGIs 5..=12 to vCPU 2 back to back (on a GICv3 written
//!   from x20..x27),
//!   each once: its CPU finds several pending at one kick (under `-icount` always: vCPU 0
//!   sends all eight before vCPU 2 runs again).
//! - D, priorities: vCPU 0 gives SGIs 0..16 distinct priorities, sends all
//!   sixteen to itself with IRQs masked, unmasks and records the order.
//!
//! Then exits with code 0 (1 if a vCPU could not be started or stopped
//! answering). Runs the same natively (`-smp 4`), where there are no exit
//! counters ("unsupported").
#![no_std]
#![no_main]

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use guest_lib::abi::Counter;
use guest_lib::gic::{self, SGI_COUNT, SgiTargets};
use guest_lib::{hvc, irq, println, smp, timer};

guest_lib::entry!(main);

const CPUS: usize = 4;
const ROUNDS: u64 = 10_000;

const PING: u32 = 1;
const PONG: u32 = 2;
const BROADCAST: u32 = 3;
const MULTICAST: u32 = 4;
/// Phase C's targets: vCPUs 1 and 3.
const MULTICAST_TARGETS: u16 = 0b1010;
/// Phase E: these SGIs, to this vCPU.
const BURST: core::ops::RangeInclusive<u32> = 5..=12; // eight
const BURST_TARGET: usize = 2;

/// A ping-pong round with no reply by then ends phase A. Without -icount
/// the guest's counter is the host's clock, and a loaded host can leave a
/// vCPU's thread unscheduled for over 100 ms (seen with three of these runs
/// at once on two host cores): a lost reply never comes, so the bound only
/// sets how long a failing run takes to say so.
const ROUND_TIMEOUT: Duration = Duration::from_secs(1);
/// Wakes vCPU 0's WFI during phase A so that a lost reply times out.
const WATCHDOG: Duration = Duration::from_millis(10);
/// Longest wait for the SGIs a phase expects, and for a step's answers.
const PHASE_TIMEOUT: Duration = Duration::from_secs(1);
/// Extra wait once a phase's SGIs are in, so that duplicates show.
const SETTLE: Duration = Duration::from_millis(20);

// --- Phase A ---

/// The ping in flight, numbered from 1; written by vCPU 0 before it sends.
static PING_SEQ: AtomicU64 = AtomicU64::new(0);
/// vCPU 1: pings received, the number of the latest, replies sent.
static PINGS: AtomicU64 = AtomicU64::new(0);
static LAST_PING: AtomicU64 = AtomicU64::new(0);
static PONGS_SENT: AtomicU64 = AtomicU64::new(0);
/// The ping a reply answers; written by vCPU 1 before it replies.
static PONG_SEQ: AtomicU64 = AtomicU64::new(0);
/// vCPU 0: replies received, the number of the latest.
static REPLIES: AtomicU64 = AtomicU64::new(0);
static LAST_PONG: AtomicU64 = AtomicU64::new(0);
/// Receipts out of order, duplicated, on the wrong vCPU, or after a gap.
static SEQUENCE_ERRORS: AtomicU64 = AtomicU64::new(0);

// --- Phases B and C: receipts per vCPU ---

static BROADCASTS: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
static MULTICASTS: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];

// --- Phase E: receipts per SGI, and on the wrong vCPU ---

static BURSTS: [AtomicU64; SGI_COUNT as usize] = [const { AtomicU64::new(0) }; SGI_COUNT as usize];
static BURST_STRAYS: AtomicU64 = AtomicU64::new(0);

// --- Phase D ---

/// Delivery order of the sixteen self-SGIs (room for duplicates).
static ORDER: [AtomicU32; 2 * SGI_COUNT as usize] =
    [const { AtomicU32::new(0) }; 2 * SGI_COUNT as usize];
static DELIVERED: AtomicUsize = AtomicUsize::new(0);
/// Bit n: SGI n arrived.
static SEEN: AtomicU32 = AtomicU32::new(0);
static DUPLICATES: AtomicU32 = AtomicU32::new(0);

// --- Steps: vCPU 0 announces one, the others do their part and answer ---

/// Every vCPU is up, with its SGIs enabled and IRQs unmasked.
const STEP_READY: u32 = 1;
/// vCPU 1 reads its SGI-trap counter before phase A.
const STEP_BEFORE_A: u32 = 2;
/// vCPU 1 reads it again and prints its line.
const STEP_AFTER_A: u32 = 3;

static STEP: AtomicU32 = AtomicU32::new(0);
static ANSWERED: [AtomicU32; CPUS] = [const { AtomicU32::new(0) }; CPUS];

fn main() -> ! {
    enable_sgis();
    for cpu in 1..CPUS {
        if let Err(error) = smp::start_cpu(cpu, secondary) {
            println!("ipi: could not start vcpu {}: {:?}", cpu, error);
            guest_lib::exit(1);
        }
    }
    irq::enable();
    step(STEP_READY);

    ping_pong();
    counted_phase(
        "broadcast sgi3",
        &BROADCASTS,
        SgiTargets::AllButSelf,
        BROADCAST,
        3,
    );
    counted_phase(
        "multicast sgi4",
        &MULTICASTS,
        SgiTargets::List(MULTICAST_TARGETS),
        MULTICAST,
        2,
    );
    burst();
    priorities();
    guest_lib::exit(0)
}

/// Registers this test's handlers and enables all sixteen SGIs on the
/// calling vCPU (SGIs are enabled per CPU, in its redistributor).
fn enable_sgis() {
    for intid in 0..SGI_COUNT {
        let handler: irq::Handler = match intid {
            PING => on_ping,
            PONG => on_pong,
            BROADCAST => on_broadcast,
            MULTICAST => on_multicast,
            i if BURST.contains(&i) => on_burst,
            _ => on_priority,
        };
        // Both only fail for INTIDs of 1020 or more.
        let _ = irq::register(intid, handler);
        let _ = gic::enable(intid);
    }
}

/// vCPUs 1..4: serve steps; everything else happens in handlers.
fn secondary(cpu: usize) -> ! {
    enable_sgis();
    irq::enable();
    let mut traps_before = None;
    let mut irqs_before = None;
    let mut answered = 0;
    loop {
        let step = STEP.load(Ordering::Acquire);
        if step == answered {
            spin_loop();
            continue;
        }
        match (cpu, step) {
            (1, STEP_BEFORE_A) => {
                traps_before = hvc::exit_count(Counter::SgiTrap);
                irqs_before = hvc::exit_count(Counter::Irq);
            }
            (1, STEP_AFTER_A) => {
                println!(
                    "ipi: vcpu 1 sent={} sgi_traps={}",
                    PONGS_SENT.load(Ordering::Relaxed),
                    Delta(traps_before, hvc::exit_count(Counter::SgiTrap))
                );
                // vCPU 1 has no timer in phase A: its IRQ exits are the
                // pings' kicks (none where they are listed from vCPU 0's CPU).
                println!(
                    "ipi: vcpu 1 pinged={} irq_exits={}",
                    PINGS.load(Ordering::Relaxed),
                    Delta(irqs_before, hvc::exit_count(Counter::Irq))
                );
            }
            _ => {}
        }
        answered = step;
        ANSWERED[cpu].store(step, Ordering::Release);
    }
}

/// Announces `step` and waits for every other vCPU to have done its part.
fn step(step: u32) {
    STEP.store(step, Ordering::Release);
    let deadline = deadline(PHASE_TIMEOUT);
    for (cpu, answered) in ANSWERED.iter().enumerate().skip(1) {
        while answered.load(Ordering::Acquire) != step {
            if timer::now() > deadline {
                println!("ipi: vcpu {} does not answer step {}", cpu, step);
                guest_lib::exit(1);
            }
            spin_loop();
        }
    }
}

fn deadline(after: Duration) -> u64 {
    timer::now().saturating_add(timer::ticks(after))
}

// --- Phase A ---

fn ping_pong() {
    step(STEP_BEFORE_A);
    let traps_before = hvc::exit_count(Counter::SgiTrap);
    timer::start_periodic(WATCHDOG, |_| {});
    let mut sent = 0;
    for round in 1..=ROUNDS {
        PING_SEQ.store(round, Ordering::Release);
        // SGI 1 is below 16: cannot fail.
        let _ = gic::send_sgi(SgiTargets::List(1 << 1), PING);
        sent += 1;
        let timeout = deadline(ROUND_TIMEOUT);
        irq::wait_until(|| REPLIES.load(Ordering::Acquire) >= round || timer::now() > timeout);
        if REPLIES.load(Ordering::Acquire) < round {
            println!("ipi: no reply to ping {}", round);
            break;
        }
    }
    timer::stop();
    let traps_after = hvc::exit_count(Counter::SgiTrap);

    let received = PINGS.load(Ordering::Relaxed);
    let replies = REPLIES.load(Ordering::Relaxed);
    // A ping that was never received, or never answered, is an error too.
    let missing = (ROUNDS - received.min(ROUNDS)) + received.saturating_sub(replies);
    println!(
        "ipi: pingpong rounds={} received={} replies={} errors={}",
        sent,
        received,
        replies,
        SEQUENCE_ERRORS.load(Ordering::Relaxed) + missing
    );
    println!(
        "ipi: vcpu 0 sent={} sgi_traps={}",
        sent,
        Delta(traps_before, traps_after)
    );
    // Each ping from vCPU 0, each reply from vCPU 1, by GICC_IAR's CPUID
    // (a GICv2's: a GICv3 names no source, and nothing is checked).
    println!(
        "ipi: sgi sources checked={} wrong={}",
        SOURCES_CHECKED.load(Ordering::Relaxed),
        SOURCES_WRONG.load(Ordering::Relaxed)
    );
    step(STEP_AFTER_A);
}

/// SGIs whose source GICC_IAR named (a GICv2's), and those it named wrong.
static SOURCES_CHECKED: AtomicU64 = AtomicU64::new(0);
static SOURCES_WRONG: AtomicU64 = AtomicU64::new(0);

/// On a GICv2: checks that the SGI being handled came from vCPU `from`.
fn check_source(from: usize) {
    if let Some(source) = gic::sgi_source() {
        SOURCES_CHECKED.fetch_add(1, Ordering::Relaxed);
        if source != from {
            SOURCES_WRONG.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Checks that `seq` follows `last` (the previous receipt's number) and
/// records it.
fn check_sequence(last: &AtomicU64, seq: u64) {
    let previous = last.swap(seq, Ordering::Relaxed);
    if seq != previous + 1 {
        SEQUENCE_ERRORS.fetch_add(1, Ordering::Relaxed);
    }
}

/// SGI 1, on vCPU 1: check the ping's number, answer with SGI 2.
fn on_ping(_intid: u32) {
    if smp::cpu_index() != 1 {
        SEQUENCE_ERRORS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let seq = PING_SEQ.load(Ordering::Acquire);
    check_sequence(&LAST_PING, seq);
    check_source(0);
    PINGS.fetch_add(1, Ordering::Relaxed);
    PONG_SEQ.store(seq, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), PONG);
    PONGS_SENT.fetch_add(1, Ordering::Relaxed);
}

/// SGI 2, on vCPU 0: check the reply's number.
fn on_pong(_intid: u32) {
    if smp::cpu_index() != 0 {
        SEQUENCE_ERRORS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    check_sequence(&LAST_PONG, PONG_SEQ.load(Ordering::Acquire));
    check_source(1);
    REPLIES.fetch_add(1, Ordering::Release);
}

// --- Phases B and C ---

/// Sends SGI `intid` to `targets` once, waits until `expected` receipts
/// (or the timeout) and a little more, and prints the count per vCPU.
fn counted_phase(
    name: &str,
    counts: &[AtomicU64; CPUS],
    targets: SgiTargets,
    intid: u32,
    expected: u64,
) {
    let traps_before = hvc::exit_count(Counter::SgiTrap);
    let _ = gic::send_sgi(targets, intid);
    let traps = Delta(traps_before, hvc::exit_count(Counter::SgiTrap));
    let total = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let timeout = deadline(PHASE_TIMEOUT);
    while total() < expected && timer::now() < timeout {
        spin_loop();
    }
    timer::delay(SETTLE);
    let counts = counts.each_ref().map(|c| c.load(Ordering::Relaxed));
    // The broadcast takes the hypervisor's Rust path, the multicast its
    // assembly fast path: each counts its one trap once.
    println!(
        "ipi: {} counts={} sgi_traps={}",
        name,
        Commas(&counts),
        traps
    );
}

fn on_broadcast(_intid: u32) {
    BROADCASTS[smp::cpu_index()].fetch_add(1, Ordering::Relaxed);
}

fn on_multicast(_intid: u32) {
    MULTICASTS[smp::cpu_index()].fetch_add(1, Ordering::Relaxed);
}

// --- Phase E ---

/// Writes ICC_SGI1R_EL1 from general-purpose register `$reg` (x20..x27:
/// the trap's Rt has five bits; a decoder that kept four would read the
/// register 16 below, which is zeroed first, and send nothing).
macro_rules! sgi_from {
    ($reg:tt, $low:tt, $value:expr) => {
        // SAFETY: generates one SGI; the low register is a declared
        // clobber. No `nomem`: earlier stores come before the SGI.
        unsafe {
            core::arch::asm!(
                concat!("mov ", $low, ", xzr"),
                "dsb ishst",
                concat!("msr icc_sgi1r_el1, ", $reg),
                "isb",
                in($reg) $value,
                out($low) _,
                options(nostack, preserves_flags)
            )
        }
    };
}

fn burst() {
    if gic::version() == gic::Version::V3 {
        // SGIs 5..=12, one from each of x20..x27.
        let value = |intid: u32| SgiTargets::List(1 << BURST_TARGET).sgi1r(intid);
        sgi_from!("x20", "x4", value(5));
        sgi_from!("x21", "x5", value(6));
        sgi_from!("x22", "x6", value(7));
        sgi_from!("x23", "x7", value(8));
        sgi_from!("x24", "x8", value(9));
        sgi_from!("x25", "x9", value(10));
        sgi_from!("x26", "x10", value(11));
        sgi_from!("x27", "x11", value(12));
    } else {
        // GICv2: GICD_SGIR writes, back to back as well.
        for intid in BURST {
            let _ = gic::send_sgi(SgiTargets::List(1 << BURST_TARGET), intid);
        }
    }
    let received = || {
        BURSTS
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let expected = BURST.count() as u64;
    let timeout = deadline(PHASE_TIMEOUT);
    while received() < expected && timer::now() < timeout {
        spin_loop();
    }
    timer::delay(SETTLE);
    let counts: [u64; 8] =
        core::array::from_fn(|k| BURSTS[*BURST.start() as usize + k].load(Ordering::Relaxed));
    println!(
        "ipi: burst sgi5-12 counts={} strays={}",
        Commas(&counts),
        BURST_STRAYS.load(Ordering::Relaxed)
    );
}

fn on_burst(intid: u32) {
    if smp::cpu_index() != BURST_TARGET {
        BURST_STRAYS.fetch_add(1, Ordering::Relaxed);
    }
    BURSTS[intid as usize].fetch_add(1, Ordering::Relaxed);
}

// --- Phase D ---

/// SGI n's priority: ((n * 7) % 16) * 8, distinct multiples of 8 (QEMU's
/// GIC implements 5 priority bits), so the delivery order by priority,
/// 0, 7, 14, 5, ..., is a shuffle of the INTIDs.
fn priority(intid: u32) -> u8 {
    ((intid * 7 % SGI_COUNT) * 8) as u8
}

fn priorities() {
    for intid in 0..SGI_COUNT {
        let _ = irq::register(intid, on_priority);
        let _ = gic::set_priority(intid, priority(intid));
    }
    irq::without_interrupts(|| {
        for intid in 0..SGI_COUNT {
            let _ = gic::send_sgi(SgiTargets::List(1 << 0), intid);
        }
    });
    let timeout = deadline(PHASE_TIMEOUT);
    while DELIVERED.load(Ordering::Relaxed) < SGI_COUNT as usize && timer::now() < timeout {
        spin_loop();
    }
    timer::delay(SETTLE);

    let delivered = DELIVERED.load(Ordering::Relaxed);
    let order = ORDER.each_ref().map(|i| i.load(Ordering::Relaxed));
    let order = &order[..delivered.min(ORDER.len())];
    println!(
        "ipi: priority delivered={} duplicates={} order={}",
        delivered,
        DUPLICATES.load(Ordering::Relaxed),
        Commas(order)
    );
    let in_order = delivered == SGI_COUNT as usize
        && order.windows(2).all(|w| priority(w[0]) < priority(w[1]));
    println!(
        "ipi: priority in_order={}",
        if in_order { "yes" } else { "no" }
    );
}

/// Every SGI in phase D, on vCPU 0: record the order of arrival.
fn on_priority(intid: u32) {
    let at = DELIVERED.fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = ORDER.get(at) {
        slot.store(intid, Ordering::Relaxed);
    }
    if SEEN.fetch_or(1 << intid, Ordering::Relaxed) & (1 << intid) != 0 {
        DUPLICATES.fetch_add(1, Ordering::Relaxed);
    }
}

// --- Output ---

/// The difference of two counter readings, or "unsupported" natively.
struct Delta(Option<u64>, Option<u64>);

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(before), Some(after)) => write!(f, "{}", after.wrapping_sub(before)),
            _ => f.write_str("unsupported"),
        }
    }
}

/// Numbers separated by commas.
struct Commas<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Commas<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", value)?;
        }
        Ok(())
    }
}
