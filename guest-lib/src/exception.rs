//! Exception handling: what `vectors.S` calls with the saved state.
//!
//! IRQs go to [`crate::irq`]'s dispatcher and the interrupted code resumes.
//! Anything else (a synchronous exception such as a data abort, an FIQ, an
//! SError) is a guest bug here: it is reported with ESR, FAR and ELR and the
//! guest exits with [`crate::EXIT_EXCEPTION`].

use core::arch::asm;
use core::mem::{offset_of, size_of};

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
    pub fpsr: u64,
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

/// Called by vectors.S; `slot` is the vector table entry (0..16).
#[unsafe(no_mangle)]
extern "C" fn guest_lib_exception(frame: &mut TrapFrame, slot: u64) {
    if slot == SLOT_IRQ_CURRENT_SPX {
        crate::irq::dispatch(frame.vector_timestamp);
        return;
    }
    let (esr, far) = syndrome();
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
