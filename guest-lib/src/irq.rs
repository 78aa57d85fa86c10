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
//!   nesting-safe, no trap. They set and clear this vCPU's mask byte with
//!   plain byte stores. Under Bulkhead, with a control page (see
//!   [`crate::mode::control_page`]), it is the vCPU's byte of the page's
//!   flag word: the hypervisor reads it before it injects anything into
//!   this vCPU and, while it is set, defers the interrupt and sets
//!   [`PENDING_DEFERRED`](bulkhead_abi::control::PENDING_DEFERRED) in the
//!   vCPU's pending byte; [`unmask`] reads that byte after clearing the
//!   mask byte and only if it is set makes one `IRQ_UNMASK` hypercall,
//!   which injects what was deferred. Natively, or without a control page,
//!   the mask byte is one of guest-lib's own per CPU (see `percpu.rs`),
//!   which nobody but the IRQ vector looks at: the vector then holds back
//!   every interrupt that arrives while it is set, as below.
//! - [`disable`] / [`enable`] / [`without_interrupts`]: PSTATE.I (DAIF),
//!   always. Use them around WFI and for guest-lib's own short sections.
//!
//! One race is inherent to the flag: the hypervisor may have put an
//! interrupt into a list register just before the guest set its byte, and
//! the CPU can still signal it after. The IRQ vector handles it (see
//! `vectors.S`): if this vCPU's mask byte is set it acknowledges nothing,
//! sets PSTATE.I in the interrupted context and notes that it did
//! ("lazily masked") in the vCPU's pending byte, whose bits 7:1 are the
//! guest's own ([`PENDING_LAZY`], where the one store that notes it is
//! explained); [`unmask`] then clears PSTATE.I, after
//! its hypercall if it makes one, so the interrupt is taken then, in
//! priority order with the deferred ones. So no handler ever runs while
//! the byte is set, and nothing is lost. One consequence: code that sets
//! PSTATE.I itself inside a flag-masked section ([`disable`]) may find it
//! cleared again by the outermost [`unmask`] if the vector masked lazily
//! meanwhile; do not rely on PSTATE.I surviving a flag-masked section.
//!
//! The fast path reaches the mask byte through the per-CPU block whose
//! address is in TPIDR_EL1 (set by boot.S on every CPU, see `percpu.rs`),
//! where it was chosen once at start: the same instructions natively and
//! under Bulkhead, no test of the mode. Inlined, with nothing pending, a
//! pair is 7 instructions: [`mask`] 4 (`mrs`, `ldp` of the byte's address
//! and the value that masks, `ldrb` of the old value for nesting, `strb`),
//! [`unmask`] 3 (`stlrb` of the old value back, `ldrb` of the pending
//! byte, `cbnz`): a nested unmask stores back the set byte it found, so
//! the nesting test is off the fast path too. `msr daifset`/`daifclr` is
//! 2, a hypercall each way two traps. bench-irq measures all three.

use core::arch::asm;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use bulkhead_abi::control;

use crate::arch::{self, MAX_CPUS};
use crate::gic::{self, CpuInterface, INTID_LIMIT, InvalidIntid};
use crate::percpu;

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

/// Bit 1 of the pending byte, one of the guest's own bits: guest-lib's
/// IRQ vector held an interrupt back and set PSTATE.I in the interrupted
/// context ("lazily masked"); the outermost [`unmask`] clears PSTATE.I.
///
/// The vector notes it with one store of the whole byte (its per-CPU
/// "lazy mark", see `percpu.rs`), not a load, OR and store, which could
/// lose a deferral the hypervisor noted in between (a physical interrupt
/// reaches EL2 whatever PSTATE.I). So under Bulkhead the mark includes
/// [`PENDING_DEFERRED`](control::PENDING_DEFERRED): the unmask then makes
/// one `IRQ_UNMASK`, which may find nothing. Natively the mark is
/// `PENDING_LAZY` alone, and DEFERRED is never set: the unmask never
/// needs to ask what mode it runs in.
pub const PENDING_LAZY: u8 = 1 << 1;
const _: () = assert!(PENDING_LAZY & control::PENDING_DEFERRED == 0);

/// What [`mask`] found, for [`unmask`]: this vCPU's mask byte and its
/// value before (zero: this call masked; otherwise the CPU was masked
/// already). Tied to the CPU that made it (not `Send`): unmask on the same
/// CPU, innermost first.
#[derive(Clone, Copy, Debug)]
#[must_use = "pass it to irq::unmask"]
pub struct MaskState {
    flag: &'static AtomicU8,
    old: u32,
    _not_send: PhantomData<*const ()>,
}

impl MaskState {
    /// Whether the [`mask`] that returned this found the CPU masked
    /// already (then the matching [`unmask`] leaves it masked).
    pub const fn was_masked(self) -> bool {
        self.old != 0
    }

    /// The state as a number: the mask byte's old value (the mask byte
    /// itself is this CPU's, found again by [`MaskState::from_raw`]). Bit
    /// 30 is never set (the `critical-section` implementation keeps its
    /// own flag there).
    #[cfg_attr(not(feature = "critical-section-impl"), allow(dead_code))]
    pub(crate) const fn into_raw(self) -> u32 {
        self.old
    }

    /// The inverse of [`MaskState::into_raw`], on the CPU that masked.
    #[cfg_attr(not(feature = "critical-section-impl"), allow(dead_code))]
    pub(crate) fn from_raw(raw: u32) -> MaskState {
        MaskState {
            flag: percpu::this_cpu().flag(),
            old: raw,
            _not_send: PhantomData,
        }
    }
}

/// Masks this CPU's interrupts: no handler runs on it until the matching
/// [`unmask`]. Nests: only the outermost pair masks and unmasks. Sets the
/// vCPU's mask byte, the control page's under Bulkhead (no trap). See the
/// module documentation.
#[inline(always)]
pub fn mask() -> MaskState {
    let (flag, old) = percpu::set_flag();
    MaskState {
        flag,
        old,
        _not_send: PhantomData,
    }
}

/// Ends the critical section [`mask`] began: stores the mask byte's old
/// value back (zero if that call masked), then reads the pending byte. If
/// anything is noted there and the CPU is now unmasked, it asks the
/// hypervisor for deferred interrupts (one hypercall) and unmasks PSTATE.I
/// if the IRQ vector masked lazily.
#[inline(always)]
pub fn unmask(state: MaskState) {
    let pending: u32;
    // SAFETY: `state.flag` is this CPU's mask byte (from `mask` or
    // `from_raw` on this CPU), mapped Normal memory for the guest's whole
    // life, with its pending byte PENDING_FROM_MASK bytes on (percpu.rs).
    // Store-release: the critical section's accesses stay before it (and
    // the asm, without `nomem`, is a compiler barrier). The load needs no
    // acquire: the only writers of the bits that matter are this CPU's own
    // EL2 and IRQ vector, both behind an exception, which the load follows
    // in program order as the store precedes it.
    unsafe {
        asm!(
            "stlrb {old:w}, [{flag}]",
            "ldrb {pending:w}, [{flag}, #{to_pending}]",
            flag = in(reg) state.flag,
            old = in(reg) state.old,
            pending = lateout(reg) pending,
            to_pending = const control::PENDING_FROM_MASK,
            options(nostack, preserves_flags)
        )
    };
    if pending != 0 {
        unmask_slow(state);
    }
}

/// The rare part of [`unmask`]: deferred interrupts, or a lazy masking.
#[cold]
#[inline(never)]
fn unmask_slow(state: MaskState) {
    if state.was_masked() {
        // Still masked (a nested unmask): the outermost one sees it all.
        return;
    }
    let pending = percpu::pending_of(state.flag);
    let seen = pending.load(Ordering::Relaxed);
    if seen & control::PENDING_DEFERRED != 0 {
        // Only under Bulkhead with a control page (see PENDING_LAZY).
        // Nothing to do about a failure: the hypervisor also injects them
        // at its next decision for this vCPU, now that the byte is clear.
        crate::hvc::irq_unmask_now();
    }
    // Only the vector notes a lazy masking, and only with PSTATE.I clear
    // in the context it masked: this one, since then with PSTATE.I set.
    if seen & PENDING_LAZY != 0 {
        // Unmasked, the hypervisor may clear DEFERRED but never sets it,
        // and the call above has cleared it if it was set: zero is exact.
        pending.store(0, Ordering::Relaxed);
        arch::irq_enable();
    }
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

/// Whether this vCPU's mask byte is set (the control page's under
/// Bulkhead, else guest-lib's own). A handler that finds it set would be
/// running inside a masked section: guest-lib's vector prevents that.
pub fn mask_bit_set() -> bool {
    percpu::this_cpu().flag().load(Ordering::Relaxed) != 0
}

/// Whether the hypervisor holds interrupts deferred for this vCPU (the
/// deferral bit of its pending byte in the control page; false without a
/// control page). It is set at the first deferral behind the mask and
/// cleared when the unmask's hypercall injects them: a masked guest can
/// watch it to see when it started delaying something. (The IRQ vector's
/// lazy mark sets it too, until the unmask.)
pub fn deferred_pending() -> bool {
    crate::mode::control_page().is_some()
        && percpu::pending_of(percpu::this_cpu().flag()).load(Ordering::Relaxed)
            & control::PENDING_DEFERRED
            != 0
}

/// Whether [`mask`] uses the control page's flag word on this CPU (under
/// Bulkhead with a usable control page), which the hypervisor sees, rather
/// than guest-lib's own mask byte, which only the IRQ vector sees.
pub fn uses_mask_flag() -> bool {
    crate::mode::control_page().is_some()
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
