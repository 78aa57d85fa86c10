//! The exception being handled at EL2, and exceptions made for the guest:
//! what the exit handlers need of the CPU, as named operations, so that
//! `hyp` touches no system register itself.
//!
//! Every trapped instruction Bulkhead handles is an A64 instruction of 4
//! bytes (AArch32 at EL1 is refused), so skipping one adds 4 to ELR_EL2.

use super::{mrs, msr};

/// The syndrome registers of the exit being handled.
#[derive(Clone, Copy, Debug)]
pub struct Syndrome {
    /// ESR_EL2: the exception class and its ISS.
    pub esr: u64,
    /// FAR_EL2: the faulting virtual address (data and instruction aborts).
    pub far: u64,
    /// HPFAR_EL2: the faulting IPA's page (stage-2 aborts).
    pub hpfar: u64,
}

/// Reads a syndrome register of the exit being handled as a pure value:
/// none changes while the exit is handled (EL2 takes no exception that
/// returns into a handler), so the compiler may read it only on the paths
/// that use it (FAR and HPFAR: aborts only).
macro_rules! mrs_syndrome {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: reading a syndrome register has no effect on memory or
        // on the CPU; its value is fixed for the exit (see the macro's doc).
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) value,
                options(pure, nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// The syndrome of the exit being handled.
#[inline(always)]
pub fn syndrome() -> Syndrome {
    Syndrome {
        esr: mrs_syndrome!("esr_el2"),
        far: mrs_syndrome!("far_el2"),
        hpfar: mrs_syndrome!("hpfar_el2"),
    }
}

/// ESR_EL2 alone, where the other syndrome registers are not needed.
#[inline(always)]
pub fn esr() -> u64 {
    mrs!("esr_el2")
}

/// The guest's PC at the exit (ELR_EL2): the instruction that trapped or
/// the one to resume.
#[inline(always)]
pub fn guest_pc() -> u64 {
    mrs!("elr_el2")
}

/// Resumes the guest after the trapped instruction.
#[inline(always)]
pub fn skip_instruction() {
    msr!("elr_el2", mrs!("elr_el2") + 4);
}

/// Whether the exit came from the guest's EL0 (SPSR_EL2.M is EL0t).
#[inline(always)]
pub fn from_el0() -> bool {
    mrs!("spsr_el2") & 0xf == 0
}

/// SPSR_EL2.M of an exception taken from EL1t and EL1h.
const M_EL1T: u64 = 0b0100;
const M_EL1H: u64 = 0b0101;
/// SPSR after taking an exception to EL1: EL1h with D, A, I and F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// Makes the guest take a synchronous exception at the instruction that
/// exited, as the architecture would: ESR_EL1 = `esr`, FAR_EL1 = FAR_EL2
/// when `with_far` (an abort), ELR_EL1 and SPSR_EL1 the interrupted state,
/// and the guest resumes at its vector table's synchronous entry for where
/// it was (current EL with SP_EL0 +0x0, with SP_EL1 +0x200, lower EL +0x400).
pub fn inject_sync(esr: u64, with_far: bool) {
    if with_far {
        msr!("far_el1", mrs!("far_el2"));
    }
    let spsr = mrs!("spsr_el2");
    let offset = match spsr & 0xf {
        M_EL1T => 0x000,
        M_EL1H => 0x200,
        _ => 0x400,
    };
    msr!("esr_el1", esr);
    msr!("elr_el1", mrs!("elr_el2"));
    msr!("spsr_el1", spsr);
    msr!("elr_el2", mrs!("vbar_el1") + offset);
    msr!("spsr_el2", SPSR_EL1H_MASKED);
}

/// Stops the guest's virtual timer (CNTV_CTL_EL0 = 0: disabled, so its
/// interrupt deasserts).
#[inline(always)]
pub fn stop_guest_timer() {
    msr!("cntv_ctl_el0", 0);
}

/// Points TPIDR_EL2 at this CPU's per-CPU block (`arch::percpu`).
#[inline(always)]
pub fn set_per_cpu(block: u64) {
    msr!("tpidr_el2", block);
}

/// This CPU's per-CPU block, as [`set_per_cpu`] left it.
#[inline(always)]
pub fn per_cpu() -> u64 {
    mrs!("tpidr_el2")
}
