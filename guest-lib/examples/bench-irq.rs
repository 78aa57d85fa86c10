//! Interrupt path lengths, for `-icount shift=0,align=off,sleep=off` with
//! `-cpu cortex-a53,cntfrq=1000000000`, where one CNTVCT tick is one
//! instruction (see the design notes, measuring.md). Two vCPUs; each
//! figure is the minimum over 10 repetitions, printed as
//! `bench: <name>=<ticks>`, then the guest exits with code 0. Without
//! -icount the figures are host time, noise only (and a cross-vCPU one can
//! be negative: the vCPUs run in parallel).
//!
//! Every figure is the difference of two CNTVCT reads; where the sequence
//! between them matters it is one asm block, spelled out below. A read is
//! a bare `mrs` (no ISB: QEMU executes in order), and `counter_read`, two
//! reads back to back, is the framing to subtract from the "around" figures.
//!
//! - `counter_read`: `mrs t0; mrs t1`.
//! - `timer_cval_to_vector`: vCPU 0 sets CNTV_CVAL = now + 20000 and waits
//!   with `irq::wait_until` (IRQs masked, `wfi`, `msr daifclr`); the IRQ
//!   vector's timestamp minus CVAL. Includes the unmask after the wake-up
//!   and the vector's two instructions before its read.
//! - `timer_cval_to_handler`: the timer callback's first read minus CVAL.
//! - `sgi_self_to_vector`: `dsb ishst; mrs t0; msr icc_sgi1r_el1 (self);
//!   isb` with IRQs unmasked; the vector's timestamp minus t0.
//! - `sgi_send`: `dsb ishst; mrs t0; msr icc_sgi1r_el1 (vCPU 1); mrs t1;
//!   wfi` with IRQs masked: t1 - t0 (under Bulkhead: the trap).
//! - `sgi_target_wfi_to_vector`: the same sequence; vCPU 1 idles in WFI and
//!   its vector's timestamp minus t1 is the figure (in icount mode vCPUs run
//!   one at a time, so this is the target's side: vCPU 0's `wfi` hands over).
//!   vCPU 1's handler answers with an SGI that wakes vCPU 0.
//! - `hvc_null`: `mrs t0; hvc #0 (VERSION); mrs t1` under Bulkhead; natively
//!   there is no hypervisor and the figure is printed as 0.
//! - `gicd_typer_read`: `mrs t0; ldr w (GICD_TYPER); mrs t1`.
//! - `mask_unmask_daif`: `mrs t0; msr daifset, #2; msr daifclr, #2; mrs t1`.
//! - `mask_unmask_flag`: `mrs t0; irq::mask(); irq::unmask(); mrs t1`, with
//!   nothing pending: under Bulkhead the control page's flag word (no trap),
//!   natively the DAIF fallback behind the same API.
//! - `mask_unmask_flag_pending`: `irq::mask()`, a self-SGI (deferred under
//!   Bulkhead: the hypervisor sees the mask bit), then `mrs t0;
//!   irq::unmask(); mrs t1`: the pending word read, the `IRQ_UNMASK`
//!   hypercall and the interrupt taken (vector, handler, return), which
//!   happens inside `unmask` as soon as it is injected.
//! - `mask_unmask_hvc`: `mrs t0; hvc #0; hvc #0; mrs t1` (two null calls,
//!   VERSION): what a mask API of one hypercall each way would pay. 0
//!   natively.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guest_lib::abi::call;
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{irq, println, smp, timer};

guest_lib::entry!(main);

const REPETITIONS: usize = 10;
/// How far ahead of now the timer is set, in ticks: far beyond the few
/// hundred instructions between setting it and the WFI.
const TIMER_AHEAD: u64 = 20_000;
/// The SGI measured: to vCPU 0 itself, and to vCPU 1.
const SGI_BENCH: u32 = 1;
/// vCPU 1 to vCPU 0: "ready", then "handled", after each SGI_BENCH.
const SGI_ACK: u32 = 2;
/// GICD_TYPER, in the distributor (QEMU's, or the partition's virtual one).
const GICD_TYPER: usize = 0x0800_0004;

/// Written by the handlers, read by vCPU 0 after each repetition.
static TIMER_VECTOR: AtomicU64 = AtomicU64::new(0);
static TIMER_HANDLER: AtomicU64 = AtomicU64::new(0);
static TIMER_FIRED: AtomicBool = AtomicBool::new(false);
static SELF_VECTOR: AtomicU64 = AtomicU64::new(0);
static SELF_RECEIVED: AtomicU64 = AtomicU64::new(0);
static TARGET_VECTOR: AtomicU64 = AtomicU64::new(0);
static ACKS: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    // Both only fail for INTIDs of 1020 or more.
    let _ = irq::register(SGI_BENCH, on_bench_sgi);
    let _ = irq::register(SGI_ACK, |_| {
        ACKS.fetch_add(1, Ordering::Release);
    });
    let _ = gic::enable(SGI_BENCH);
    let _ = gic::enable(SGI_ACK);
    if let Err(error) = smp::start_cpu(1, target) {
        println!("bench: could not start vcpu 1: {:?}", error);
        guest_lib::exit(1);
    }
    // vCPU 1's first ACK says it is ready.
    irq::wait_until(|| ACKS.load(Ordering::Acquire) >= 1);

    report("counter_read", min_of(counter_read));
    let timer: [(i64, i64); REPETITIONS] = core::array::from_fn(|_| timer_figures());
    report("timer_cval_to_vector", timer.iter().map(|t| t.0).min());
    report("timer_cval_to_handler", timer.iter().map(|t| t.1).min());
    report("sgi_self_to_vector", min_of(sgi_self_to_vector));
    let remote: [(i64, i64); REPETITIONS] = core::array::from_fn(|_| sgi_remote_figures());
    report("sgi_send", remote.iter().map(|t| t.0).min());
    report("sgi_target_wfi_to_vector", remote.iter().map(|t| t.1).min());
    report("hvc_null", min_of(hvc_null));
    report("gicd_typer_read", min_of(gicd_typer_read));
    report("mask_unmask_daif", min_of(mask_unmask_daif));
    report("mask_unmask_flag", min_of(mask_unmask_flag));
    report("mask_unmask_flag_pending", min_of(mask_unmask_flag_pending));
    report("mask_unmask_hvc", min_of(mask_unmask_hvc));
    guest_lib::exit(0)
}

fn min_of(figure: fn() -> i64) -> Option<i64> {
    (0..REPETITIONS).map(|_| figure()).min()
}

fn report(name: &str, ticks: Option<i64>) {
    println!("bench: {}={}", name, ticks.unwrap_or(0));
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

/// vCPU 1: answers every SGI_BENCH with an SGI_ACK, otherwise idle in WFI.
fn target(_cpu: usize) -> ! {
    let _ = gic::enable(SGI_BENCH);
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_ACK);
    guest_lib::idle()
}

/// SGI_BENCH on either vCPU: keep the vector's timestamp.
/// (vCPU 0's self-SGIs count in SELF_RECEIVED.)
fn on_bench_sgi(_intid: u32) {
    let stamp = irq::last_vector_timestamp();
    if smp::cpu_index() == 0 {
        SELF_VECTOR.store(stamp, Ordering::Relaxed);
        SELF_RECEIVED.fetch_add(1, Ordering::Release);
    } else {
        TARGET_VECTOR.store(stamp, Ordering::Relaxed);
        let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_ACK);
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

fn sgi_self_to_vector() -> i64 {
    let received = SELF_RECEIVED.load(Ordering::Acquire);
    let t0: u64;
    // SAFETY: sends SGI_BENCH to this vCPU, whose handler is registered;
    // the IRQ is taken within or right after the block (IRQs unmasked),
    // which preserves every register.
    unsafe {
        asm!(
            "dsb ishst",
            "mrs {t0}, cntvct_el0",
            "msr icc_sgi1r_el1, {sgi}",
            "isb",
            t0 = out(reg) t0,
            sgi = in(reg) SgiTargets::List(1 << 0).sgi1r(SGI_BENCH),
            options(nostack, preserves_flags)
        )
    };
    irq::wait_until(|| SELF_RECEIVED.load(Ordering::Acquire) > received);
    ticks(t0, SELF_VECTOR.load(Ordering::Relaxed))
}

/// (send cost, vCPU 0's pre-WFI read -> vCPU 1's vector) for one SGI.
fn sgi_remote_figures() -> (i64, i64) {
    let acks = ACKS.load(Ordering::Acquire);
    irq::disable();
    let (t0, t1): (u64, u64);
    // SAFETY: sends SGI_BENCH to vCPU 1 and waits for an interrupt with
    // IRQs masked: vCPU 1's answer wakes the WFI, and is taken once
    // `wait_until` unmasks.
    unsafe {
        asm!(
            "dsb ishst",
            "mrs {t0}, cntvct_el0",
            "msr icc_sgi1r_el1, {sgi}",
            "mrs {t1}, cntvct_el0",
            "wfi",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            sgi = in(reg) SgiTargets::List(1 << 1).sgi1r(SGI_BENCH),
            options(nostack, preserves_flags)
        )
    };
    irq::wait_until(|| ACKS.load(Ordering::Acquire) > acks);
    (
        ticks(t0, t1),
        ticks(t1, TARGET_VECTOR.load(Ordering::Relaxed)),
    )
}

fn hvc_null() -> i64 {
    if !guest_lib::under_bulkhead() {
        return 0;
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
    ticks(t0, t1)
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

fn mask_unmask_hvc() -> i64 {
    if !guest_lib::under_bulkhead() {
        return 0;
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
    ticks(t0, t1)
}
