//! Interrupt path lengths and exit counts, for `-icount
//! shift=0,align=off,sleep=off` with `-cpu cortex-a53,cntfrq=1000000000`,
//! where one CNTVCT tick is one instruction (see the design notes,
//! measuring.md; `scripts/bench.sh` runs it natively and under Bulkhead).
//! Four vCPUs; each timing is taken [`SAMPLES`] times and printed as
//! `bench: <name>=<min>/<median>/<max>` (the median the upper one of the
//! even count), a count as `bench: <name>=<value>`, and `-` for a figure
//! that does not exist here (such as a hypercall natively), in a fixed
//! order, then `bench: done`, and the guest exits with code 0. Without -icount the figures are host time, noise only (and a
//! cross-vCPU one can be negative: the vCPUs run in parallel).
//!
//! # Framing
//!
//! Every timing is the difference of two counter reads; where the sequence
//! between them matters it is one asm block, spelled out below. A read is
//! a bare `mrs` (no ISB: QEMU executes in order), and `counter_read`, two
//! reads back to back, is the framing every "around" figure contains (1:
//! the second read itself). Figures "to the vector" use the IRQ vector's
//! own timestamp, read by its third instruction (vectors.S): they include
//! the vector's two instructions before it; figures "to the handler" use
//! the handler's first read. Compare a Bulkhead figure with its native
//! twin: the framing is the same binary's on both sides.
//!
//! # Figures, in the order printed
//!
//! - `boot_to_first_guest_instruction`: CNTPCT_EL0 as read by the first
//!   instruction of the guest (`_start`, guest-lib's boot.S): everything
//!   that ran on any CPU since power-on (QEMU's boot stub; under Bulkhead
//!   the hypervisor's whole boot, zeroing partition memory included).
//! - `counter_read`: `mrs t0; mrs t1`.
//! - `timer_cval_to_vector`: vCPU 0 sets CNTV_CVAL = now + 20000 and waits
//!   with `irq::wait_until` (IRQs masked, `wfi`, `msr daifclr`); the IRQ
//!   vector's timestamp minus CVAL. Includes the unmask after the wake-up
//!   and the vector's two instructions before its read.
//! - `timer_cval_to_handler`: the timer callback's first read minus CVAL
//!   (guest-lib's dispatch and timer handler included).
//! - `sgi_self_to_vector`, `sgi_self_to_handler`: `dsb ishst; mrs t0; msr
//!   icc_sgi1r_el1, x2 (self); isb` (on a GICv2 `str` to GICD_SGIR instead,
//!   here and below; the register is pinned: the GICv3 fast path reads x0-x7
//!   from the trap frame and the others through a jump, 5 instructions
//!   more) with IRQs unmasked; the vector's timestamp,
//!   and the handler's first read, minus t0.
//! - `sgi_send`: `dsb ishst; mrs t0; msr icc_sgi1r_el1 (vCPU 1); mrs t1;
//!   wfi` with IRQs masked: t1 - t0 (under Bulkhead: the trap).
//! - `sgi_target_wfi_to_vector`: the same sequence; vCPU 1 idles in WFI and
//!   its vector's timestamp minus t1 is the figure (in icount mode vCPUs run
//!   one at a time, so this is the target's side: vCPU 0's `wfi` hands over).
//!   vCPU 1's handler answers with an SGI that wakes vCPU 0.
//! - `sgi_send_targets_1`, `_2`, `_3`, `sgi_send_broadcast`: the send cost
//!   (as `sgi_send`) of one write naming vCPU 1; vCPUs 1 and 2; vCPUs 1, 2
//!   and 3; and all but self (IRM = 1, or TargetListFilter 0b01: the three
//!   others). vCPU 0 then waits for every target's answer.
//! - `exits_per_ipi`, `exits_per_ipi_sender`: 100 more such rounds, after
//!   one that sets the baseline; vCPU 0 reads its `SgiTrap` exit counter
//!   and vCPU 1 (in its handler) its `Irq` counter, each before and after.
//!   Per SGI: (sender's traps + target's interrupt exits), and the sender's
//!   traps alone. The counter reads are hypercalls, counted elsewhere
//!   (`Hvc`). `-` natively.
//! - `passthrough_irq_to_vector`, `passthrough_irq_to_handler`: QEMU
//!   virt's PL031 (SPI 2, INTID 34; under Bulkhead passed through with
//!   `devices = ["rtc"]`). With IRQs masked: `mrs cntvct; str RTCMR` with
//!   RTCMR = RTCDR + 1, which QEMU turns into an interrupt exactly one
//!   second (`cntfrq` ticks) after the store, on its virtual clock
//!   (`-rtc clock=vm`); then `irq::wait_until` as for the timer. The
//!   vector's timestamp, and the handler's first read, minus that instant.
//!   If RTCDR ticked between its read and the store the alarm fires at once
//!   and the round is repeated (the CNTPCT reads around them tell). Without
//!   an interrupt within 3 s (the virtual timer) the figures are `-`.
//! - `hvc_null`: `mrs t0; hvc #0 (VERSION); mrs t1` under Bulkhead; `-`
//!   natively (no hypervisor).
//! - `gicd_typer_read`: `mrs t0; ldr w (GICD_TYPER); mrs t1`.
//! - `mask_unmask_daif`: `mrs t0; msr daifset, #2; msr daifclr, #2; mrs t1`.
//! - `mask_unmask_flag`: `mrs t0; irq::mask(); irq::unmask(); mrs t1`, with
//!   nothing pending: under Bulkhead the control page's flag word (no trap),
//!   natively guest-lib's own mask byte, with the same instructions.
//! - `mask_unmask_flag_pending`: `irq::mask()`, a self-SGI (deferred under
//!   Bulkhead: the hypervisor sees the mask byte), then `mrs t0;
//!   irq::unmask(); mrs t1`: the pending byte read, the `IRQ_UNMASK`
//!   hypercall and the interrupt taken (vector, handler, return), which
//!   happens inside `unmask` as soon as it is injected.
//! - `mask_unmask_hvc`: `mrs t0; hvc #0; hvc #0; mrs t1` (two null calls,
//!   VERSION): what a mask API of one hypercall each way would pay. `-`
//!   natively.
//! - `traps_per_1000_mask_unmask`: every exit counter of vCPU 0, summed,
//!   before and after 1000 `irq::mask()`/`irq::unmask()` pairs with nothing
//!   pending, minus what the summing itself costs (two sums back to back).
//!   `-` natively.
#![no_std]
#![no_main]

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guest_lib::abi::{Counter, call};
use guest_lib::gic::{self, SgiTargets, Version};
use guest_lib::{hvc, irq, println, smp, timer};

guest_lib::entry!(main);

/// vCPUs: 0 measures, the others answer its SGIs.
const CPUS: usize = 4;
/// Samples of each timing (min, median and max are printed).
const SAMPLES: usize = 200;
/// How far ahead of now the timer is set, in ticks: far beyond the few
/// hundred instructions between setting it and the WFI.
const TIMER_AHEAD: u64 = 20_000;
/// The SGI measured: to vCPU 0 itself, and to the others.
const SGI_BENCH: u32 = 1;
/// The others to vCPU 0: "ready", then "handled", after each SGI_BENCH.
const SGI_ACK: u32 = 2;
/// GICD_TYPER, in the distributor (QEMU's, or the partition's virtual one).
const GICD_TYPER: usize = 0x0800_0004;
/// GICD_SGIR, a GICv2's SGI register (QEMU virt's distributor, natively and
/// in a partition on any GICv2 board).
const GICD_SGIR: usize = 0x0800_0F00;

/// SGIs to vCPU 1 whose exits are counted (after one for the baseline).
const IPI_ROUNDS: u64 = 100;
/// Mask/unmask pairs whose exits are counted.
const MASK_PAIRS: u64 = 1000;

/// QEMU virt's PL031 real-time clock (under Bulkhead: passed through).
const RTC_BASE: usize = 0x0901_0000;
/// RTCDR: the current time in seconds (read only).
const RTCDR: usize = RTC_BASE;
/// RTCMR: the match register; QEMU raises the interrupt `RTCMR - RTCDR`
/// seconds after it is written.
const RTCMR: usize = RTC_BASE + 0x004;
/// RTCIMSC: bit 0 lets the interrupt out.
const RTCIMSC: usize = RTC_BASE + 0x010;
/// RTCICR: writing bit 0 clears (deasserts) the interrupt.
const RTCICR: usize = RTC_BASE + 0x01C;
/// SPI 2 on QEMU virt.
const RTC_INTID: u32 = 34;
/// Seconds (of the virtual timer) to wait for the RTC before giving up.
const RTC_TIMEOUT_SECONDS: u64 = 3;

/// Written by the handlers, read by vCPU 0 after each sample.
static TIMER_VECTOR: AtomicU64 = AtomicU64::new(0);
static TIMER_HANDLER: AtomicU64 = AtomicU64::new(0);
static TIMER_FIRED: AtomicBool = AtomicBool::new(false);
static SELF_VECTOR: AtomicU64 = AtomicU64::new(0);
static SELF_HANDLER: AtomicU64 = AtomicU64::new(0);
static SELF_RECEIVED: AtomicU64 = AtomicU64::new(0);
static TARGET_VECTOR: AtomicU64 = AtomicU64::new(0);
/// Answers of vCPUs 1 to 3, counted by each before its SGI_ACK.
static ACKS: AtomicU64 = AtomicU64::new(0);
/// Set: vCPU 1's SGI_BENCH handler keeps its `Irq` exit count in TARGET_IRQS.
static COUNT_TARGET_IRQS: AtomicBool = AtomicBool::new(false);
/// `u64::MAX`: no count (natively).
static TARGET_IRQS: AtomicU64 = AtomicU64::new(u64::MAX);
static RTC_VECTOR: AtomicU64 = AtomicU64::new(0);
static RTC_HANDLER: AtomicU64 = AtomicU64::new(0);
static RTC_FIRED: AtomicBool = AtomicBool::new(false);
static RTC_TIMED_OUT: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    // Power-on to the guest's first instruction (read by boot.S).
    report(
        "boot_to_first_guest_instruction",
        Some(timer::entry_timestamp()),
    );

    // These only fail for INTIDs of 1020 or more.
    let _ = irq::register(SGI_BENCH, on_bench_sgi);
    // The answers are counted in ACKS by the targets themselves: SGI_ACKs
    // from several at once may merge into one interrupt. It only wakes.
    let _ = irq::register(SGI_ACK, |_| {});
    let _ = irq::register(RTC_INTID, on_rtc);
    let _ = gic::enable(SGI_BENCH);
    let _ = gic::enable(SGI_ACK);
    for cpu in 1..CPUS {
        if let Err(error) = smp::start_cpu(cpu, target) {
            println!("bench: could not start vcpu {}: {:?}", cpu, error);
            guest_lib::exit(1);
        }
    }
    // Each target's first ACK says it is ready.
    irq::wait_until(|| ACKS.load(Ordering::Acquire) >= CPUS as u64 - 1);

    report("counter_read", Some(sampled(counter_read)));
    let (to_vector, to_handler) = sampled_pairs(timer_figures);
    report("timer_cval_to_vector", Some(to_vector));
    report("timer_cval_to_handler", Some(to_handler));
    let (to_vector, to_handler) = sampled_pairs(sgi_self_figures);
    report("sgi_self_to_vector", Some(to_vector));
    report("sgi_self_to_handler", Some(to_handler));
    let (send, target) = sampled_pairs(|| sgi_remote_figures(SgiTargets::List(1 << 1), 1));
    report("sgi_send", Some(send));
    report("sgi_target_wfi_to_vector", Some(target));
    let (per_ipi, per_ipi_sender) = exits_per_ipi();
    report("exits_per_ipi", per_ipi);
    report("exits_per_ipi_sender", per_ipi_sender);
    for (name, targets, count) in [
        ("sgi_send_targets_1", SgiTargets::List(0b0010), 1),
        ("sgi_send_targets_2", SgiTargets::List(0b0110), 2),
        ("sgi_send_targets_3", SgiTargets::List(0b1110), 3),
        ("sgi_send_broadcast", SgiTargets::AllButSelf, 3),
    ] {
        report(name, Some(sampled(|| sgi_remote_figures(targets, count).0)));
    }
    let device = passthrough_figures();
    report("passthrough_irq_to_vector", device.as_ref().map(|t| &t.0));
    report("passthrough_irq_to_handler", device.as_ref().map(|t| &t.1));
    report("hvc_null", sampled_some(hvc_null));
    report("gicd_typer_read", Some(sampled(gicd_typer_read)));
    report("mask_unmask_daif", Some(sampled(mask_unmask_daif)));
    report("mask_unmask_flag", Some(sampled(mask_unmask_flag)));
    report(
        "mask_unmask_flag_pending",
        Some(sampled(mask_unmask_flag_pending)),
    );
    report("mask_unmask_hvc", sampled_some(mask_unmask_hvc));
    report("traps_per_1000_mask_unmask", traps_per_mask_unmask());
    println!("bench: done");
    guest_lib::exit(0)
}

/// Min, median (the upper one of an even count) and max of some samples,
/// printed `min/median/max`.
struct Spread {
    min: i64,
    median: i64,
    max: i64,
}

impl Spread {
    fn of(samples: &mut [i64]) -> Spread {
        samples.sort_unstable();
        Spread {
            min: samples[0],
            median: samples[samples.len() / 2],
            max: samples[samples.len() - 1],
        }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.min, self.median, self.max)
    }
}

/// [`SAMPLES`] samples of `figure`.
fn sampled(mut figure: impl FnMut() -> i64) -> Spread {
    let mut samples = [0; SAMPLES];
    for sample in &mut samples {
        *sample = figure();
    }
    Spread::of(&mut samples)
}

/// For figures that do not exist natively: `None` if the first sample has
/// none (then none has).
fn sampled_some(figure: fn() -> Option<i64>) -> Option<Spread> {
    figure()?;
    Some(sampled(|| figure().unwrap_or(i64::MAX)))
}

/// [`SAMPLES`] samples of two figures taken together.
fn sampled_pairs(mut figures: impl FnMut() -> (i64, i64)) -> (Spread, Spread) {
    let mut first = [0; SAMPLES];
    let mut second = [0; SAMPLES];
    for (a, b) in first.iter_mut().zip(&mut second) {
        (*a, *b) = figures();
    }
    (Spread::of(&mut first), Spread::of(&mut second))
}

/// `bench: <name>=<value>`, `-` for no value.
fn report(name: &str, value: Option<impl fmt::Display>) {
    match value {
        Some(value) => println!("bench: {}={}", name, value),
        None => println!("bench: {}=-", name),
    }
}

/// `total / count`, printed exactly: an integer, or with two decimals.
struct PerEach {
    total: u64,
    count: u64,
}

impl fmt::Display for PerEach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.total / self.count;
        let rest = self.total % self.count;
        if rest == 0 {
            write!(f, "{whole}")
        } else {
            write!(f, "{}.{:02}", whole, rest * 100 / self.count)
        }
    }
}

/// `later - earlier` in ticks, signed: without -icount vCPUs run in
/// parallel and a cross-vCPU difference can come out negative.
fn ticks(earlier: u64, later: u64) -> i64 {
    later.wrapping_sub(earlier) as i64
}

/// CNTVCT_EL0, one `mrs`: no ISB, which would count as an instruction.
#[inline(always)]
fn counter() -> u64 {
    let value: u64;
    // SAFETY: reading the counter has no side effects; not `nomem`, so that
    // the read stays where it is written relative to the code it measures.
    unsafe { asm!("mrs {}, cntvct_el0", out(reg) value, options(nostack, preserves_flags)) };
    value
}

/// CNTPCT_EL0, one `mrs` (EL1 may read it, natively and under Bulkhead).
#[inline(always)]
fn physical_counter() -> u64 {
    let value: u64;
    // SAFETY: as for `counter`.
    unsafe { asm!("mrs {}, cntpct_el0", out(reg) value, options(nostack, preserves_flags)) };
    value
}

/// vCPUs 1 to 3: answer every SGI_BENCH with an SGI_ACK, otherwise idle in
/// WFI.
fn target(_cpu: usize) -> ! {
    let _ = gic::enable(SGI_BENCH);
    answer();
    guest_lib::idle()
}

/// Counts an answer in ACKS, then wakes vCPU 0 with an SGI_ACK.
fn answer() {
    ACKS.fetch_add(1, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_ACK);
}

/// SGI_BENCH on either vCPU: keep the handler's and the vector's timestamps.
/// (vCPU 0's self-SGIs count in SELF_RECEIVED.)
fn on_bench_sgi(_intid: u32) {
    let now = counter();
    let stamp = irq::last_vector_timestamp();
    if smp::cpu_index() == 0 {
        SELF_HANDLER.store(now, Ordering::Relaxed);
        SELF_VECTOR.store(stamp, Ordering::Relaxed);
        SELF_RECEIVED.fetch_add(1, Ordering::Release);
    } else {
        TARGET_VECTOR.store(stamp, Ordering::Relaxed);
        if COUNT_TARGET_IRQS.load(Ordering::Relaxed) {
            let irqs = hvc::exit_count(Counter::Irq).unwrap_or(u64::MAX);
            TARGET_IRQS.store(irqs, Ordering::Relaxed);
        }
        answer();
    }
}

fn counter_read() -> i64 {
    let (t0, t1): (u64, u64);
    // SAFETY: two counter reads.
    unsafe {
        asm!(
            "mrs {t0}, cntvct_el0",
            "mrs {t1}, cntvct_el0",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            options(nostack, preserves_flags)
        )
    };
    ticks(t0, t1)
}

/// (CVAL -> vector, CVAL -> callback) for one timer expiry.
fn timer_figures() -> (i64, i64) {
    TIMER_FIRED.store(false, Ordering::Relaxed);
    let cval = counter() + TIMER_AHEAD;
    timer::start_one_shot_at(cval, on_timer);
    irq::wait_until(|| TIMER_FIRED.load(Ordering::Acquire));
    (
        ticks(cval, TIMER_VECTOR.load(Ordering::Relaxed)),
        ticks(cval, TIMER_HANDLER.load(Ordering::Relaxed)),
    )
}

fn on_timer(_expiries: u64) {
    let now = counter();
    TIMER_HANDLER.store(now, Ordering::Relaxed);
    TIMER_VECTOR.store(irq::last_vector_timestamp(), Ordering::Relaxed);
    TIMER_FIRED.store(true, Ordering::Release);
}

/// (the write -> vector, the write -> handler) for one SGI to this vCPU.
fn sgi_self_figures() -> (i64, i64) {
    let received = SELF_RECEIVED.load(Ordering::Acquire);
    let t0: u64;
    // SAFETY: sends SGI_BENCH to this vCPU, whose handler is registered;
    // the IRQ is taken within or right after the block (IRQs unmasked),
    // which preserves every register.
    unsafe {
        match gic::version() {
            Version::V3 => asm!(
                "dsb ishst",
                "mrs {t0}, cntvct_el0",
                "msr icc_sgi1r_el1, x2",
                "isb",
                t0 = out(reg) t0,
                in("x2") SgiTargets::List(1 << 0).sgi1r(SGI_BENCH),
                options(nostack, preserves_flags)
            ),
            Version::V2 => asm!(
                "dsb ishst",
                "mrs {t0}, cntvct_el0",
                "str {sgi:w}, [{sgir}]",
                "isb",
                t0 = out(reg) t0,
                sgi = in(reg) SgiTargets::List(1 << 0).sgir(SGI_BENCH),
                sgir = in(reg) GICD_SGIR,
                options(nostack, preserves_flags)
            ),
        }
    };
    irq::wait_until(|| SELF_RECEIVED.load(Ordering::Acquire) > received);
    (
        ticks(t0, SELF_VECTOR.load(Ordering::Relaxed)),
        ticks(t0, SELF_HANDLER.load(Ordering::Relaxed)),
    )
}

/// (send cost, vCPU 0's pre-WFI read -> a target's vector) for one SGI to
/// `targets`, `count` vCPUs, each of which answers.
fn sgi_remote_figures(targets: SgiTargets, count: u64) -> (i64, i64) {
    let acks = ACKS.load(Ordering::Acquire);
    irq::disable();
    let (t0, t1): (u64, u64);
    // SAFETY: sends SGI_BENCH to the targets and waits for an interrupt
    // with IRQs masked: an answer wakes the WFI, and they are taken once
    // `wait_until` unmasks.
    unsafe {
        match gic::version() {
            Version::V3 => asm!(
                "dsb ishst",
                "mrs {t0}, cntvct_el0",
                "msr icc_sgi1r_el1, x2",
                "mrs {t1}, cntvct_el0",
                "wfi",
                t0 = out(reg) t0,
                t1 = out(reg) t1,
                in("x2") targets.sgi1r(SGI_BENCH),
                options(nostack, preserves_flags)
            ),
            Version::V2 => asm!(
                "dsb ishst",
                "mrs {t0}, cntvct_el0",
                "str {sgi:w}, [{sgir}]",
                "mrs {t1}, cntvct_el0",
                "wfi",
                t0 = out(reg) t0,
                t1 = out(reg) t1,
                sgi = in(reg) targets.sgir(SGI_BENCH),
                sgir = in(reg) GICD_SGIR,
                options(nostack, preserves_flags)
            ),
        }
    };
    irq::wait_until(|| ACKS.load(Ordering::Acquire) >= acks + count);
    (
        ticks(t0, t1),
        ticks(t1, TARGET_VECTOR.load(Ordering::Relaxed)),
    )
}

/// (exits per SGI to vCPU 1: sender's traps + target's IRQ exits, the
/// sender's traps alone); `None` natively.
fn exits_per_ipi() -> (Option<PerEach>, Option<PerEach>) {
    COUNT_TARGET_IRQS.store(true, Ordering::Relaxed);
    // The baseline round: vCPU 1 stores its count before it answers.
    sgi_remote_figures(SgiTargets::List(1 << 1), 1);
    let sender_before = hvc::exit_count(Counter::SgiTrap);
    let target_before = TARGET_IRQS.load(Ordering::Relaxed);
    for _ in 0..IPI_ROUNDS {
        sgi_remote_figures(SgiTargets::List(1 << 1), 1);
    }
    let sender_after = hvc::exit_count(Counter::SgiTrap);
    let target_after = TARGET_IRQS.load(Ordering::Relaxed);
    COUNT_TARGET_IRQS.store(false, Ordering::Relaxed);
    let (Some(before), Some(after)) = (sender_before, sender_after) else {
        return (None, None);
    };
    if target_before == u64::MAX || target_after == u64::MAX {
        return (None, None);
    }
    let sender = after.wrapping_sub(before);
    let target = target_after.wrapping_sub(target_before);
    (
        Some(PerEach {
            total: sender + target,
            count: IPI_ROUNDS,
        }),
        Some(PerEach {
            total: sender,
            count: IPI_ROUNDS,
        }),
    )
}

/// A 32-bit PL031 register: one plain `ldr`.
fn rtc_read(register: usize) -> u32 {
    let value: u32;
    // SAFETY: a PL031 register in the identity map's Device range; natively
    // QEMU's, under Bulkhead the partition's passed-through one.
    unsafe {
        asm!("ldr {v:w}, [{a}]", v = out(reg) value, a = in(reg) register, options(nostack, preserves_flags))
    };
    value
}

/// A 32-bit PL031 register: one plain `str`.
fn rtc_write(register: usize, value: u32) {
    // SAFETY: as for `rtc_read`.
    unsafe {
        asm!("str {v:w}, [{a}]", v = in(reg) value, a = in(reg) register, options(nostack, preserves_flags))
    };
}

/// The PL031's interrupt: keep the timestamps, deassert it.
fn on_rtc(_intid: u32) {
    let now = counter();
    RTC_HANDLER.store(now, Ordering::Relaxed);
    RTC_VECTOR.store(irq::last_vector_timestamp(), Ordering::Relaxed);
    // Level-sensitive: deassert before the end of interrupt.
    rtc_write(RTCICR, 1);
    RTC_FIRED.store(true, Ordering::Release);
}

/// (assertion -> vector, assertion -> handler) of the PL031's alarm, over
/// [`SAMPLES`] alarms; `None` if one never came.
fn passthrough_figures() -> Option<(Spread, Spread)> {
    rtc_write(RTCICR, 1);
    rtc_write(RTCIMSC, 1);
    let _ = gic::enable(RTC_INTID);
    let frequency = timer::frequency();
    RTC_TIMED_OUT.store(false, Ordering::Relaxed);
    timer::start_one_shot_at(
        counter() + RTC_TIMEOUT_SECONDS * frequency * (SAMPLES as u64 + 1),
        |_| RTC_TIMED_OUT.store(true, Ordering::Release),
    );
    let mut to_vector = [0; SAMPLES];
    let mut to_handler = [0; SAMPLES];
    let mut rounds = 0;
    let mut fired = true;
    while rounds < SAMPLES {
        RTC_FIRED.store(false, Ordering::Relaxed);
        irq::disable();
        let before = physical_counter();
        let alarm = rtc_read(RTCDR).wrapping_add(1);
        let (at, stored): (u64, u64);
        // SAFETY: arms the PL031's alarm (RTCMR), a device register in the
        // identity map's Device range, with IRQs masked; the handler is
        // registered. Both counter reads are side-effect free.
        unsafe {
            asm!(
                "mrs {at}, cntpct_el0",
                "mrs {stored}, cntvct_el0",
                "str {alarm:w}, [{mr}]",
                at = out(reg) at,
                stored = out(reg) stored,
                alarm = in(reg) alarm,
                mr = in(reg) RTCMR,
                options(nostack, preserves_flags)
            )
        };
        // The store is the instruction after the CNTVCT read: one tick on.
        let asserted = stored + 1 + frequency;
        irq::wait_until(|| {
            RTC_FIRED.load(Ordering::Acquire) || RTC_TIMED_OUT.load(Ordering::Acquire)
        });
        if !RTC_FIRED.load(Ordering::Acquire) {
            fired = false;
            break;
        }
        // RTCDR counts whole seconds of the same clock as CNTPCT. If it
        // ticked between its read and the store (two ticks after `at`),
        // the alarm matched at once: not a figure, go again.
        if before / frequency != (at + 2) / frequency {
            continue;
        }
        to_vector[rounds] = ticks(asserted, RTC_VECTOR.load(Ordering::Relaxed));
        to_handler[rounds] = ticks(asserted, RTC_HANDLER.load(Ordering::Relaxed));
        rounds += 1;
    }
    timer::stop();
    rtc_write(RTCIMSC, 0);
    rtc_write(RTCICR, 1);
    let _ = gic::disable(RTC_INTID);
    fired.then(|| (Spread::of(&mut to_vector), Spread::of(&mut to_handler)))
}

fn hvc_null() -> Option<i64> {
    if !guest_lib::under_bulkhead() {
        return None;
    }
    let (t0, t1): (u64, u64);
    // SAFETY: Bulkhead's VERSION call, which only writes x0..x3 (SMCCC lets
    // it write x4..x17 too: all declared clobbered).
    unsafe {
        asm!(
            "mrs {t0}, cntvct_el0",
            "hvc #0",
            "mrs {t1}, cntvct_el0",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            inout("x0") call::VERSION => _,
            out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
            out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
            out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    Some(ticks(t0, t1))
}

fn gicd_typer_read() -> i64 {
    let (t0, t1): (u64, u64);
    // SAFETY: a 32-bit read of GICD_TYPER, a read-only register without
    // side effects, in the identity map's Device range.
    unsafe {
        asm!(
            "mrs {t0}, cntvct_el0",
            "ldr {typer:w}, [{addr}]",
            "mrs {t1}, cntvct_el0",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            typer = out(reg) _,
            addr = in(reg) GICD_TYPER,
            options(nostack, preserves_flags)
        )
    };
    ticks(t0, t1)
}

fn mask_unmask_daif() -> i64 {
    let (t0, t1): (u64, u64);
    // SAFETY: masks and unmasks IRQs on this CPU, leaving them as they were
    // (unmasked: `main` runs after `wait_until`).
    unsafe {
        asm!(
            "mrs {t0}, cntvct_el0",
            "msr daifset, #2",
            "msr daifclr, #2",
            "mrs {t1}, cntvct_el0",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            options(nostack, preserves_flags)
        )
    };
    ticks(t0, t1)
}

fn mask_unmask_flag() -> i64 {
    let t0 = counter();
    let state = irq::mask();
    irq::unmask(state);
    let t1 = counter();
    ticks(t0, t1)
}

fn mask_unmask_flag_pending() -> i64 {
    let received = SELF_RECEIVED.load(Ordering::Acquire);
    let state = irq::mask();
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_BENCH);
    let t0 = counter();
    irq::unmask(state);
    let t1 = counter();
    // Natively the SGI may reach the CPU interface a little after the
    // unmask; wait for it either way, so repetitions do not overlap.
    irq::wait_until(|| SELF_RECEIVED.load(Ordering::Acquire) > received);
    ticks(t0, t1)
}

fn mask_unmask_hvc() -> Option<i64> {
    if !guest_lib::under_bulkhead() {
        return None;
    }
    let (t0, t1): (u64, u64);
    // SAFETY: two of Bulkhead's VERSION calls, which only write x0..x3
    // (SMCCC lets them write x4..x17 too: all declared clobbered).
    unsafe {
        asm!(
            "mrs {t0}, cntvct_el0",
            "mov x0, {id}",
            "hvc #0",
            "mov x0, {id}",
            "hvc #0",
            "mrs {t1}, cntvct_el0",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            id = in(reg) call::VERSION,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
            out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
            out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    Some(ticks(t0, t1))
}

/// Every exit of this vCPU so far (`SgiRefused` is not an exit); `None`
/// natively.
fn all_exits() -> Option<u64> {
    Counter::ALL
        .iter()
        .filter(|&&c| c != Counter::SgiRefused)
        .map(|&c| hvc::exit_count(c))
        .sum()
}

/// Exits during MASK_PAIRS flag mask/unmask pairs, nothing pending, minus
/// what `all_exits` itself costs; `None` natively.
fn traps_per_mask_unmask() -> Option<i64> {
    let first = all_exits()?;
    let own = all_exits()?.wrapping_sub(first);
    let before = all_exits()?;
    for _ in 0..MASK_PAIRS {
        let state = irq::mask();
        irq::unmask(state);
    }
    let after = all_exits()?;
    Some(after.wrapping_sub(before).wrapping_sub(own) as i64)
}
