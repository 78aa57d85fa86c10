//! The generic timer: counters, and a periodic or one-shot EL1 virtual
//! timer (CNTV_*, PPI 27) per CPU with a callback.
//!
//! Under Bulkhead the virtual counter may be offset from the physical one;
//! [`physical_now`] reads CNTPCT_EL0, which the hypervisor lets EL1 read.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use crate::arch::{self, MAX_CPUS};
use crate::{gic, irq};

/// The EL1 virtual timer's PPI.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// Called from the timer interrupt with the number of expiries of this
/// CPU's timer so far, counting from 1 since it was last started.
pub type Callback = fn(u64);

/// CNTV_CTL_EL0.ENABLE (IMASK clear: the interrupt is signalled).
const CTL_ENABLE: u64 = 1;

struct CpuTimer {
    /// Ticks between expiries; 0 for a one-shot timer.
    period: AtomicU64,
    /// The `Callback` address.
    callback: AtomicUsize,
    expiries: AtomicU64,
}

static TIMERS: [CpuTimer; MAX_CPUS] = [const {
    CpuTimer {
        period: AtomicU64::new(0),
        callback: AtomicUsize::new(0),
        expiries: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// CNTVCT_EL0: the virtual count.
pub fn now() -> u64 {
    let value: u64;
    // SAFETY: reading the counter has no side effects; the ISB keeps the read
    // from being taken early, before preceding instructions.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// CNTPCT_EL0: the physical count (EL1 access is granted by the hypervisor,
/// or natively by boot.S when entered at EL2).
pub fn physical_now() -> u64 {
    let value: u64;
    // SAFETY: as for `now`; EL1 access is enabled (CNTHCTL_EL2.EL1PCTEN).
    unsafe {
        asm!("isb", "mrs {}, cntpct_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// CNTPCT_EL0 as read by the very first instruction of the guest (the
/// primary CPU's `_start`, boot.S), before its own set-up.
static ENTRY_TIMESTAMP: AtomicU64 = AtomicU64::new(0);

/// Records [`entry_timestamp`]; called once, by the primary CPU's Rust entry.
pub(crate) fn set_entry_timestamp(value: u64) {
    ENTRY_TIMESTAMP.store(value, Ordering::Relaxed);
}

/// The physical count (CNTPCT_EL0) read by the guest's first instruction:
/// how long after the machine's power-on the guest started, counting
/// everything that ran before it (firmware, a hypervisor's boot). Under
/// `-icount shift=0` with a 1 GHz counter, one tick per instruction.
pub fn entry_timestamp() -> u64 {
    ENTRY_TIMESTAMP.load(Ordering::Relaxed)
}

/// CNTFRQ_EL0: counter ticks per second.
pub fn frequency() -> u64 {
    let value: u64;
    // SAFETY: reading the frequency register has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// `duration` in counter ticks (rounded down, at least 1).
pub fn ticks(duration: Duration) -> u64 {
    let ticks = duration.as_nanos() * u128::from(frequency()) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Busy-waits for `duration`.
pub fn delay(duration: Duration) {
    let end = now().saturating_add(ticks(duration));
    while now() < end {
        core::hint::spin_loop();
    }
}

fn set_compare(cval: u64) {
    // SAFETY: programs this CPU's own virtual timer deadline.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "isb", in(reg) cval, options(nomem, nostack, preserves_flags))
    };
}

fn compare() -> u64 {
    let value: u64;
    // SAFETY: reading the deadline has no side effects.
    unsafe {
        asm!("mrs {}, cntv_cval_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

fn set_control(ctl: u64) {
    // SAFETY: enables or disables this CPU's own virtual timer.
    unsafe {
        asm!("msr cntv_ctl_el0, {}", "isb", in(reg) ctl, options(nomem, nostack, preserves_flags))
    };
}

/// Calls `callback` every `period` on this CPU, from the timer interrupt,
/// until [`stop`]. Deadlines advance by exactly `period` (no drift); if
/// some were missed they are skipped. IRQs must be unmasked on this CPU
/// ([`crate::irq::enable`], or [`crate::idle`]) for the callback to run.
pub fn start_periodic(period: Duration, callback: Callback) {
    start(ticks(period), ticks(period), callback);
}

/// Calls `callback` once, `delay` from now, on this CPU.
pub fn start_one_shot(delay: Duration, callback: Callback) {
    start(ticks(delay), 0, callback);
}

/// Calls `callback` once, when the virtual count reaches `deadline`
/// (CNTV_CVAL_EL0 = `deadline`; at once if it has passed), on this CPU.
pub fn start_one_shot_at(deadline: u64, callback: Callback) {
    irq::without_interrupts(|| {
        prepare(0, callback);
        set_compare(deadline);
        set_control(CTL_ENABLE);
    });
}

/// Stops this CPU's timer.
pub fn stop() {
    set_control(0);
}

fn start(first: u64, period: u64, callback: Callback) {
    irq::without_interrupts(|| {
        prepare(period, callback);
        set_compare(now().saturating_add(first));
        set_control(CTL_ENABLE);
    });
}

/// Records this CPU's timer settings and enables the timer PPI; the
/// caller masks IRQs and then sets the deadline and enables the timer.
fn prepare(period: u64, callback: Callback) {
    let timer = &TIMERS[arch::cpu_index()];
    timer.period.store(period, Ordering::Relaxed);
    timer.callback.store(callback as usize, Ordering::Relaxed);
    timer.expiries.store(0, Ordering::Relaxed);
    // Both only fail for an INTID of 1020 or more; 27 is valid.
    let _ = irq::register(VIRTUAL_TIMER_INTID, on_interrupt);
    let _ = gic::enable(VIRTUAL_TIMER_INTID);
}

/// The PPI 27 handler, on the CPU whose timer fired.
fn on_interrupt(_intid: u32) {
    let timer = &TIMERS[arch::cpu_index()];
    let period = timer.period.load(Ordering::Relaxed);
    // Move the deadline (or stop) first: the timer interrupt is level
    // triggered and must be deasserted before the end of interrupt.
    if period == 0 {
        set_control(0);
    } else {
        let current = now();
        let mut next = compare().saturating_add(period);
        if next <= current {
            next = next.saturating_add((current - next) / period * period + period);
        }
        set_compare(next);
    }
    let count = timer.expiries.fetch_add(1, Ordering::Relaxed) + 1;
    let callback = timer.callback.load(Ordering::Relaxed);
    if callback != 0 {
        // SAFETY: `start` only stores `Callback` addresses here.
        let callback = unsafe { core::mem::transmute::<usize, Callback>(callback) };
        callback(count);
    }
}
