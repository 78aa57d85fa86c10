//! Interrupt handlers, dispatched by INTID, and this CPU's IRQ mask.
//!
//! A handler runs in the exception context of the CPU that took the
//! interrupt, with IRQs masked, after the acknowledge and before the end of
//! interrupt; it may print. Handlers are shared by all CPUs (a PPI such as
//! the virtual timer fires per CPU: use [`crate::cpu_index`] to tell which).
//! SGIs (0..16, sent with [`gic::send_sgi`]) are handled like any other
//! INTID: register a handler, [`gic::enable`] the SGI on each receiving CPU.
//!
//! Each IRQ entry reads the virtual counter as its third instruction (see
//! `vectors.S`); [`last_vector_timestamp`] returns it, for latency figures.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::arch::{self, MAX_CPUS};
use crate::gic::{self, INTID_LIMIT, InvalidIntid};

/// An interrupt handler; it gets the INTID it was registered for.
pub type Handler = fn(u32);

/// `Handler` addresses by INTID; 0 = none.
static HANDLERS: [AtomicUsize; INTID_LIMIT as usize] =
    [const { AtomicUsize::new(0) }; INTID_LIMIT as usize];

/// CNTVCT_EL0 at each CPU's latest IRQ vector entry.
static LAST_VECTOR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// CNTVCT_EL0 as read at this CPU's most recent IRQ vector entry (0 before
/// the first). Exactly two instructions of the entry run before the read
/// (`sub sp` and `stp x0, x1`), so under `-icount` with one tick per
/// instruction it is the entry's count + 2. Valid from the start of the
/// handler of that IRQ: a handler reads its own entry's stamp.
pub fn last_vector_timestamp() -> u64 {
    LAST_VECTOR[arch::cpu_index()].load(Ordering::Relaxed)
}

/// Installs `handler` for `intid` on every CPU, replacing any previous one.
/// It does not enable the interrupt: see [`gic::enable`].
pub fn register(intid: u32, handler: Handler) -> Result<(), InvalidIntid> {
    let slot = HANDLERS.get(intid as usize).ok_or(InvalidIntid(intid))?;
    slot.store(handler as usize, Ordering::Release);
    Ok(())
}

/// Unmasks IRQs on this CPU.
pub fn enable() {
    arch::irq_enable();
}

/// Masks IRQs on this CPU.
pub fn disable() {
    arch::irq_disable();
}

/// Runs `f` with IRQs masked on this CPU, then restores the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let saved = arch::irq_save_and_disable();
    let result = f();
    arch::irq_restore(saved);
    result
}

/// Sleeps until `done()` is true, taking interrupts meanwhile; returns with
/// IRQs unmasked. Free of the lost-wakeup race: `done` is checked with IRQs
/// masked, and WFI wakes on a pending interrupt even then, which is taken
/// as soon as they are unmasked again. Something must interrupt (a handler
/// that makes `done` true, or a timer if `done` looks at the clock).
pub fn wait_until(mut done: impl FnMut() -> bool) {
    loop {
        arch::irq_disable();
        if done() {
            break;
        }
        arch::wfi();
        arch::irq_enable();
    }
    arch::irq_enable();
}

/// Handles one IRQ: publish the entry's timestamp, acknowledge, run the
/// handler, end of interrupt.
pub(crate) fn dispatch(vector_timestamp: u64) {
    LAST_VECTOR[arch::cpu_index()].store(vector_timestamp, Ordering::Relaxed);
    let intid = gic::acknowledge();
    if intid >= INTID_LIMIT {
        return; // Spurious (1023): nothing was acknowledged.
    }
    let handler = HANDLERS[intid as usize].load(Ordering::Acquire);
    if handler == 0 {
        crate::println!("irq: no handler for INTID {}", intid);
    } else {
        // SAFETY: non-zero values in HANDLERS are only ever stored by
        // `register`, from a `Handler`.
        let handler = unsafe { core::mem::transmute::<usize, Handler>(handler) };
        handler(intid);
    }
    gic::end_of_interrupt(intid);
}
