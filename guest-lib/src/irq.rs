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
//!
//! # Masking
//!
//! Two ways to keep this CPU's handlers out of a critical section:
//!
//! - [`mask`] / [`unmask`] (and [`masked`], [`MaskGuard`]): the cheap one,
//!   nesting-safe. Under Bulkhead, with a control page (see
//!   [`crate::mode::control_page`]), they set and clear this vCPU's bit in
//!   the page's mask word with one exclusive load/store loop each: no trap.
//!   The hypervisor reads the bit before it injects anything into this vCPU
//!   and, while it is set, defers the interrupt and sets this vCPU's bit in
//!   the pending word; [`unmask`] reads that word after clearing its bit and
//!   only if its bit is set makes one `IRQ_UNMASK` hypercall, which injects
//!   what was deferred. Natively, or without a control page, they save
//!   DAIF, `msr daifset, #2`, and clear PSTATE.I again if it was clear.
//! - [`disable`] / [`enable`] / [`without_interrupts`]: PSTATE.I (DAIF),
//!   always. Use them around WFI and for guest-lib's own short sections.
//!
//! One race is inherent to the flag: the hypervisor may have put an
//! interrupt into a list register just before the guest set its bit, and
//! the CPU can still signal it after. The IRQ vector handles it (see
//! `vectors.S`): if this vCPU's bit is set it acknowledges nothing, sets
//! PSTATE.I in the interrupted context and notes that it did ("lazily
//! masked", per CPU); [`unmask`] then clears PSTATE.I, after its hypercall
//! if it makes one, so the interrupt is taken then, in priority order with
//! the deferred ones. So no handler ever runs while the bit is set, and
//! nothing is lost. One consequence: code that sets PSTATE.I itself inside
//! a flag-masked section ([`disable`]) may find it cleared again by the
//! outermost [`unmask`] if the vector masked lazily meanwhile; do not rely
//! on PSTATE.I surviving a flag-masked section.
//!
//! The fast path reaches the mask word and this vCPU's bit through the
//! per-CPU block whose address is in TPIDR_EL1 (set by boot.S on every CPU,
//! see `percpu.rs`): `mrs` + `ldp`. Without LSE atomics (Cortex-A53) the
//! bit is set and cleared with an LDXR/STXR loop. Inlined, with nothing
//! pending, a pair is 20 instructions: [`mask`] 8 (`mrs`, `ldp`, `cbz` for
//! the mode, `ldxr`/`orr`/`stxr`/`cbnz`, `ands` for the state), the nesting
//! test 1 (`b.ne`), [`unmask`] 11 (`mrs`, `ldp`, `ldxr`/`and`/`stlxr`/
//! `cbnz`, `ldr`/`bics`/`b.ne` on the pending word, `ldr`/`cbnz` on the
//! lazy flag); `msr daifset`/`daifclr` is 2, a hypercall each way two
//! traps. bench-irq measures all three.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, compiler_fence};

use crate::arch::{self, MAX_CPUS};
use crate::gic::{self, CpuInterface, INTID_LIMIT, InvalidIntid};
use crate::percpu::{self, PerCpu};

/// An interrupt handler; it gets the INTID it was registered for.
pub type Handler = fn(u32);

/// `Handler` addresses by INTID; 0 = none.
static HANDLERS: [AtomicUsize; INTID_LIMIT as usize] =
    [const { AtomicUsize::new(0) }; INTID_LIMIT as usize];

/// Set by [`end_now`] on this CPU: the handler running has ended its
/// interrupt itself, [`dispatch`] does not end it again.
static ENDED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

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

/// What [`mask`] found, for [`unmask`]: whether that call masked this
/// CPU (with the flag or with DAIF) or it was masked already. Tied to the
/// CPU that made it (not `Send`): unmask on the same CPU, innermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "pass it to irq::unmask"]
pub struct MaskState {
    raw: u32,
    _not_send: PhantomData<*const ()>,
}

/// `MaskState::raw`: this call set the vCPU's bit in the mask word.
const STATE_FLAG_MASKED: u32 = 0;
/// `MaskState::raw`: this call set PSTATE.I (no control page). Any other
/// value (the bit, or PSTATE.I, found set) means "already masked".
const STATE_DAIF_MASKED: u32 = 1 << 31;

impl MaskState {
    const fn new(raw: u32) -> MaskState {
        MaskState {
            raw,
            _not_send: PhantomData,
        }
    }

    /// Whether the [`mask`] that returned this found the CPU masked
    /// already (then the matching [`unmask`] does nothing).
    pub const fn was_masked(self) -> bool {
        self.raw != STATE_FLAG_MASKED && self.raw != STATE_DAIF_MASKED
    }

    /// The state as a number; bit 30 is never set (the `critical-section`
    /// implementation keeps its own flag there).
    #[cfg_attr(not(feature = "critical-section-impl"), allow(dead_code))]
    pub(crate) const fn into_raw(self) -> u32 {
        self.raw
    }

    /// The inverse of [`MaskState::into_raw`].
    #[cfg_attr(not(feature = "critical-section-impl"), allow(dead_code))]
    pub(crate) const fn from_raw(raw: u32) -> MaskState {
        MaskState::new(raw)
    }
}

/// Masks this CPU's interrupts: no handler runs on it until the matching
/// [`unmask`]. Nests: only the outermost pair masks and unmasks. Under
/// Bulkhead with a control page this sets the vCPU's bit in the mask word
/// (no trap); otherwise PSTATE.I. See the module documentation.
#[inline(always)]
pub fn mask() -> MaskState {
    let (word, bit) = percpu::mask_word_and_bit();
    if word == 0 {
        return mask_daif();
    }
    // SAFETY: a non-zero `word` is the control page's mask word (percpu.rs),
    // mapped Normal memory for the guest's whole life, 4-byte aligned.
    let word = unsafe { &*(word as *const AtomicU32) };
    // Relaxed: the hypervisor reads the bit on this same CPU, after an
    // exception, so program order is all it needs. The compiler fence keeps
    // the critical section's accesses after the store.
    let old = word.fetch_or(bit, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    MaskState::new(old & bit)
}

/// Ends the critical section [`mask`] began. If that call masked: under
/// Bulkhead it clears the vCPU's bit, then asks the hypervisor for deferred
/// interrupts if the pending word says there are some (one hypercall), and
/// unmasks PSTATE.I if the IRQ vector masked lazily; natively it clears
/// PSTATE.I. If the CPU was masked already, nothing.
#[inline(always)]
pub fn unmask(state: MaskState) {
    if state.raw != STATE_FLAG_MASKED {
        // Masked already, or no control page: off the flag's fast path.
        core::hint::cold_path();
        if state.raw == STATE_DAIF_MASKED {
            arch::irq_enable();
        }
        return;
    }
    let (block, word, not_bit) = percpu::block_word_and_not_bit();
    // SAFETY: a `STATE_FLAG_MASKED` state comes from `mask` on this CPU with
    // a non-zero `word`: the control page's mask word; the pending word is
    // the next one (ABI layout, bulkhead_abi::control).
    let (mask, pending) = unsafe {
        (
            &*(word as *const AtomicU32),
            &*((word + 4) as *const AtomicU32),
        )
    };
    // Release: what the critical section wrote is visible before the bit
    // clears. The fence keeps the loads below after the clear: the pending
    // bit must be read after it (a deferral until then is seen), and so
    // must the lazy flag (a lazy masking until then is seen).
    mask.fetch_and(not_bit, Ordering::Release);
    compiler_fence(Ordering::SeqCst);
    if pending.load(Ordering::Relaxed) & !not_bit != 0 || block.lazy.load(Ordering::Relaxed) != 0 {
        unmask_slow(block, pending, !not_bit);
    }
}

/// The rare part of [`unmask`]: deferred interrupts, or a lazy masking.
#[cold]
#[inline(never)]
fn unmask_slow(block: &PerCpu, pending: &AtomicU32, bit: u32) {
    if pending.load(Ordering::Relaxed) & bit != 0 {
        // Nothing to do about a failure: the hypervisor also injects them
        // at its next decision for this vCPU, now that the bit is clear.
        let _ = crate::hvc::irq_unmask();
    }
    // Only the vector sets `lazy`, and only with PSTATE.I clear in the
    // context it masked: this one, since then with PSTATE.I set.
    if block.lazy.load(Ordering::Relaxed) != 0 {
        block.lazy.store(0, Ordering::Relaxed);
        arch::irq_enable();
    }
}

/// `mask` without a control page: PSTATE.I.
#[inline(always)]
fn mask_daif() -> MaskState {
    let daif = arch::irq_save_and_disable().bits();
    MaskState::new(if daif & arch::SPSR_I != 0 {
        arch::SPSR_I as u32
    } else {
        STATE_DAIF_MASKED
    })
}

/// Runs `f` between [`mask`] and [`unmask`]: no handler runs on this CPU
/// meanwhile. Nests.
#[inline(always)]
pub fn masked<R>(f: impl FnOnce() -> R) -> R {
    let state = mask();
    let result = f();
    unmask(state);
    result
}

/// [`mask`] on creation, [`unmask`] on drop.
#[derive(Debug)]
#[must_use = "interrupts are unmasked again when the guard is dropped"]
pub struct MaskGuard(MaskState);

impl MaskGuard {
    /// Masks this CPU's interrupts until the guard is dropped.
    #[inline(always)]
    pub fn new() -> MaskGuard {
        MaskGuard(mask())
    }
}

impl Default for MaskGuard {
    fn default() -> Self {
        MaskGuard::new()
    }
}

impl Drop for MaskGuard {
    #[inline(always)]
    fn drop(&mut self) {
        unmask(self.0);
    }
}

/// Whether this vCPU's bit is set in the control page's mask word (false
/// without a control page). A handler that finds it set would be running
/// inside a masked section: guest-lib's vector prevents that.
pub fn mask_bit_set() -> bool {
    let (word, bit) = percpu::mask_word_and_bit();
    if word == 0 {
        return false;
    }
    // SAFETY: as in `mask`.
    let word = unsafe { &*(word as *const AtomicU32) };
    word.load(Ordering::Relaxed) & bit != 0
}

/// Whether the hypervisor holds interrupts deferred for this vCPU (its bit
/// in the control page's pending word; false without a control page). It
/// is set at the first deferral behind the mask and cleared when the
/// unmask's hypercall injects them: a masked guest can watch it to see
/// when it started delaying something.
pub fn deferred_pending() -> bool {
    let (word, bit) = percpu::mask_word_and_bit();
    if word == 0 {
        return false;
    }
    // SAFETY: as in `mask`; the pending word follows the mask word.
    let pending = unsafe { &*((word + 4) as *const AtomicU32) };
    pending.load(Ordering::Relaxed) & bit != 0
}

/// Whether [`mask`] uses the control page's flag word on this CPU (under
/// Bulkhead with a usable control page) rather than DAIF.
pub fn uses_mask_flag() -> bool {
    percpu::mask_word_and_bit().0 != 0
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

/// Ends the interrupt `intid` whose handler is running now (its end of
/// interrupt: priority drop and deactivation), before the handler returns,
/// as a driver does that ends its interrupt first and clears its device
/// after; the dispatcher then does not end it again. Only from that
/// handler, on its CPU.
pub fn end_now(intid: u32) {
    gic::end_now(intid);
    ENDED[arch::cpu_index()].store(true, Ordering::Relaxed);
}

/// Handles one IRQ on a GICv3 (the IRQ entries of the default vector
/// table): see [`dispatch_on`].
#[inline(always)]
pub(crate) fn dispatch(vector_timestamp: u64) {
    dispatch_on::<gic::Gicv3>(vector_timestamp);
}

/// Handles one IRQ on a GICv2 (the IRQ entries of the GICv2 vector table).
#[inline(never)]
pub(crate) fn dispatch_gicv2(vector_timestamp: u64) {
    dispatch_on::<gic::Gicv2>(vector_timestamp);
}

/// Handles one IRQ: publish the entry's timestamp, acknowledge, run the
/// handler, end of interrupt.
#[inline(always)]
fn dispatch_on<C: CpuInterface>(vector_timestamp: u64) {
    LAST_VECTOR[arch::cpu_index()].store(vector_timestamp, Ordering::Relaxed);
    let acknowledged = C::acknowledge();
    let intid = C::intid(acknowledged);
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
    if !ENDED[arch::cpu_index()].swap(false, Ordering::Relaxed) {
        C::end_of_interrupt(acknowledged, intid);
    }
}
