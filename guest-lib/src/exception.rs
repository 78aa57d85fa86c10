//! Exception handling: what `vectors.S` calls with the saved state.
//!
//! IRQs go to [`crate::irq`]'s dispatcher and the interrupted code resumes.
//! Anything else (a synchronous exception such as a data abort, an FIQ, an
//! SError) is a guest bug here: it is reported with ESR, FAR and ELR and the
//! guest exits with [`crate::EXIT_EXCEPTION`] — unless the code runs under
//! [`probe`], which records a synchronous exception and carries on after
//! the instruction that took it (for code that asks whether an instruction
//! or register exists).

use core::arch::asm;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::MAX_CPUS;

/// The state saved on exception entry, on the interrupted stack.
#[repr(C)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// ELR_EL1: where the exception was taken.
    pub elr: u64,
    /// SPSR_EL1: the interrupted PSTATE.
    pub spsr: u64,
    /// IRQ entries only: CNTVCT_EL0 read by the entry's third instruction
    /// (see vectors.S). Undefined for other exceptions.
    pub vector_timestamp: u64,
    /// q0..q31.
    pub q: [u128; 32],
    /// FPSR: the interrupted code's floating-point status (cumulative
    /// exception flags, saturation), restored on return.
    pub fpsr: u64,
    /// FPCR: the interrupted code's floating-point control (rounding mode,
    /// trap enables), restored on return.
    pub fpcr: u64,
}

pub(crate) const FRAME_SIZE: usize = size_of::<TrapFrame>();
pub(crate) const FRAME_SPSR: usize = offset_of!(TrapFrame, spsr);
pub(crate) const FRAME_Q: usize = offset_of!(TrapFrame, q);
pub(crate) const FRAME_STAMP: usize = offset_of!(TrapFrame, vector_timestamp);
// vectors.S hard-codes x0..x30 at 0..248 and ELR at 248, and stores the
// FP state from FRAME_Q on with `stp q` (16-byte aligned offsets).
const _: () = assert!(offset_of!(TrapFrame, elr) == 248);
const _: () = assert!(FRAME_Q.is_multiple_of(16) && FRAME_SIZE.is_multiple_of(16));
const _: () = assert!(offset_of!(TrapFrame, fpsr) == FRAME_Q + 512);
const _: () = assert!(offset_of!(TrapFrame, fpcr) == FRAME_Q + 520);

/// Vector slot / 4: where the exception came from.
const SOURCES: [&str; 4] = [
    "current EL, SP_EL0",
    "current EL",
    "lower EL (AArch64)",
    "lower EL (AArch32)",
];
/// Vector slot % 4: what kind of exception.
const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
/// The IRQ slot for the current EL on SP_EL1, where guest-lib always runs.
const SLOT_IRQ_CURRENT_SPX: u64 = 5;
/// The GICv2 vector table's IRQ entries pass their slot plus this (a
/// multiple of 16, so slot % 16 still names the entry).
pub(crate) const SLOT_GICV2: u64 = 16;

/// The synchronous slot for the current EL on SP_EL1.
const SLOT_SYNC_CURRENT_SPX: u64 = 4;
/// ESR_EL1.EC of an instruction abort taken at EL1.
const EC_INSTRUCTION_ABORT_CURRENT_EL: u64 = 0x21;

/// Per CPU: inside [`probe`], and the ESR of the last exception it took.
static PROBING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static PROBED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Runs `f` on this CPU; a synchronous exception `f` takes (an undefined
/// instruction, a system register the CPU or hypervisor does not have, an
/// external abort on an access to an address with nothing behind it) is
/// recorded and execution resumes after the instruction. Returns what `f`
/// returned and the ESR_EL1 of the last such exception, if any. `f` must
/// expect that instruction to have done nothing. An instruction abort (a
/// branch with link to an address that cannot be fetched from) resumes
/// at the link register, as if the call had returned.
pub fn probe<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    let cpu = crate::cpu_index() % MAX_CPUS;
    PROBED[cpu].store(0, Ordering::Relaxed);
    PROBING[cpu].store(true, Ordering::SeqCst);
    let r = f();
    PROBING[cpu].store(false, Ordering::SeqCst);
    let esr = PROBED[cpu].load(Ordering::Relaxed);
    (r, (esr != 0).then_some(esr))
}

/// Called by vectors.S; `slot` is the vector table entry (0..16), plus
/// [`SLOT_GICV2`] for the IRQ entries of the GICv2 table.
#[unsafe(no_mangle)]
extern "C" fn guest_lib_exception(frame: &mut TrapFrame, slot: u64) {
    if slot == SLOT_IRQ_CURRENT_SPX {
        crate::irq::dispatch(frame.vector_timestamp);
        return;
    }
    if slot == SLOT_GICV2 + SLOT_IRQ_CURRENT_SPX {
        // Cold for the compiler only: tested after the GICv3 IRQ, so that
        // path keeps its instructions.
        core::hint::cold_path();
        crate::irq::dispatch_gicv2(frame.vector_timestamp);
        return;
    }
    let (esr, far) = syndrome();
    let cpu = crate::cpu_index() % MAX_CPUS;
    if slot == SLOT_SYNC_CURRENT_SPX && PROBING[cpu].load(Ordering::SeqCst) {
        // ESR is never 0 for a taken exception (IL is set for A64).
        PROBED[cpu].store(esr | 1 << 25, Ordering::Relaxed);
        frame.elr = if esr >> 26 == EC_INSTRUCTION_ABORT_CURRENT_EL {
            // A call to an address that could not be fetched from: return
            // to the caller (the probed code branched there with a link).
            frame.x[30]
        } else {
            frame.elr + 4
        };
        return;
    }
    crate::println!(
        "exception: {} from {} on cpu {}: ESR=0x{:x} (EC=0x{:x}) FAR=0x{:x} ELR=0x{:x}",
        KINDS[(slot % 4) as usize],
        SOURCES[((slot / 4) % 4) as usize],
        crate::cpu_index(),
        esr,
        esr >> 26,
        far,
        frame.elr
    );
    crate::exit(crate::EXIT_EXCEPTION);
}

/// ESR_EL1 and FAR_EL1 of the exception being handled.
fn syndrome() -> (u64, u64) {
    let (esr, far): (u64, u64);
    // SAFETY: reading the syndrome registers has no side effects.
    unsafe {
        asm!(
            "mrs {}, esr_el1",
            "mrs {}, far_el1",
            out(reg) esr,
            out(reg) far,
            options(nomem, nostack, preserves_flags)
        )
    };
    (esr, far)
}
