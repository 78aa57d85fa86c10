//! Interrupt handlers, dispatched by INTID, and this CPU's IRQ mask.
//!
//! A handler runs in the exception context of the CPU that took the
//! interrupt, with IRQs masked, after the acknowledge and before the end of
//! interrupt; it may print. Handlers are shared by all CPUs (a PPI such as
//! the virtual timer fires per CPU: use [`crate::cpu_index`] to tell which).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch;
use crate::gic::{self, INTID_LIMIT, InvalidIntid};

/// An interrupt handler; it gets the INTID it was registered for.
pub type Handler = fn(u32);

/// `Handler` addresses by INTID; 0 = none.
static HANDLERS: [AtomicUsize; INTID_LIMIT as usize] =
    [const { AtomicUsize::new(0) }; INTID_LIMIT as usize];

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

/// Handles one IRQ: acknowledge, run the handler, end of interrupt.
pub(crate) fn dispatch() {
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
