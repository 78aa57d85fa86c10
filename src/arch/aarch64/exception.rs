//! The exception being handled at EL2, and exceptions made for the guest:
//! what the exit handlers need of the CPU, as named operations, so that
//! `hyp` touches no system register itself.
//!
//! Every trapped instruction Bulkhead handles is an A64 instruction of 4
//! bytes (AArch32 at EL1 is refused), so skipping one adds 4 to ELR_EL2.

use aarch64_cpu::registers::{
    CNTP_CTL_EL0, CNTV_CTL_EL0, ELR_EL1, ELR_EL2, ESR_EL1, ESR_EL2, FAR_EL1, FAR_EL2, SPSR_EL1,
    SPSR_EL2, TPIDR_EL2, VBAR_EL1,
};
use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{Readable, Writeable};

use super::sysreg::{ISS_DATA_ABORT, ISS_INSTRUCTION_ABORT, fields};

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
/// that use it (FAR and HPFAR: aborts only). Not `aarch64-cpu`'s ESR_EL2,
/// FAR_EL2 and HPFAR_EL2 here: their reads are volatile `asm!`, which the
/// compiler must keep on every path, the exits' hot ones included.
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
    ESR_EL2.get()
}

/// The guest's PC at the exit (ELR_EL2): the instruction that trapped or
/// the one to resume.
#[inline(always)]
pub fn guest_pc() -> u64 {
    ELR_EL2.get()
}

/// Resumes the guest after the trapped instruction.
#[inline(always)]
pub fn skip_instruction() {
    ELR_EL2.set(ELR_EL2.get() + 4);
}

/// Whether the exit came from the guest's EL0 (SPSR_EL2.M is EL0t).
#[inline(always)]
pub fn from_el0() -> bool {
    SPSR_EL2.matches_all(SPSR_EL2::M::EL0t)
}

/// Whether the guest had IRQs masked (PSTATE.I, as SPSR_EL2 holds it) at
/// the exit: an interrupt listed now is not taken until it unmasks.
#[inline(always)]
pub fn guest_irqs_masked() -> bool {
    SPSR_EL2.is_set(SPSR_EL2::I)
}

/// SPSR after taking an exception to EL1: EL1h with D, A, I and F masked.
/// Also the state a vCPU starts in.
pub(super) const SPSR_EL1H_MASKED: FieldValue<u64, SPSR_EL2::Register> = fields(&[
    SPSR_EL2::M::EL1h,
    SPSR_EL2::D::Masked,
    SPSR_EL2::A::Masked,
    SPSR_EL2::I::Masked,
    SPSR_EL2::F::Masked,
]);

/// Makes the guest take an Undefined Instruction exception at EL1, as the
/// architecture would for an instruction it does not implement: ESR_EL1
/// EC 0 (unknown reason), IL.
pub fn inject_undefined() {
    inject_sync((ESR_EL1::EC::Unknown + ESR_EL1::IL::SET).value, false);
}

/// Makes the guest take a synchronous external abort for its data access
/// (`write`): ESR_EL1 a data abort of its own exception level (EC 0x25 from
/// EL1, 0x24 from EL0), DFSC 0b010000, WnR; FAR_EL1 the faulting address.
pub fn inject_external_abort(write: bool) {
    let ec = if from_el0() {
        ESR_EL1::EC::DataAbortLowerEL
    } else {
        ESR_EL1::EC::DataAbortCurrentEL
    };
    let iss =
        ISS_DATA_ABORT::WnR.val(u64::from(write)) + ISS_DATA_ABORT::DFSC::SynchronousExternalAbort;
    inject_sync(
        (ec + ESR_EL1::IL::SET + ESR_EL1::ISS.val(iss.value)).value,
        true,
    );
}

/// Makes the guest take a synchronous external abort on instruction fetch,
/// as the architecture would for a fetch from an address with nothing
/// behind it: ESR_EL1 an instruction abort of its own exception level (EC
/// 0x21 from EL1, 0x20 from EL0), IFSC 0b010000; FAR_EL1 the address, and
/// ELR_EL1 the instruction that could not be fetched.
pub fn inject_instruction_abort() {
    let ec = if from_el0() {
        ESR_EL1::EC::InstrAbortLowerEL
    } else {
        ESR_EL1::EC::InstrAbortCurrentEL
    };
    let iss = ISS_INSTRUCTION_ABORT::IFSC::SynchronousExternalAbort;
    inject_sync(
        (ec + ESR_EL1::IL::SET + ESR_EL1::ISS.val(iss.value)).value,
        true,
    );
}

/// Makes the guest take a synchronous exception at the instruction that
/// exited, as the architecture would: ESR_EL1 = `esr`, FAR_EL1 = FAR_EL2
/// when `with_far` (an abort), ELR_EL1 and SPSR_EL1 the interrupted state,
/// and the guest resumes at its vector table's synchronous entry for where
/// it was (current EL with SP_EL0 +0x0, with SP_EL1 +0x200, lower EL +0x400).
fn inject_sync(esr: u64, with_far: bool) {
    if with_far {
        FAR_EL1.set(FAR_EL2.get());
    }
    let spsr = SPSR_EL2.extract();
    let offset = match spsr.read_as_enum(SPSR_EL2::M) {
        Some(SPSR_EL2::M::Value::EL1t) => 0x000,
        Some(SPSR_EL2::M::Value::EL1h) => 0x200,
        _ => 0x400,
    };
    ESR_EL1.set(esr);
    ELR_EL1.set(ELR_EL2.get());
    SPSR_EL1.set(spsr.get());
    ELR_EL2.set(VBAR_EL1.get() + offset);
    SPSR_EL2.write(SPSR_EL1H_MASKED);
}

/// Stops the guest's EL1 timers, virtual and physical (CNTV_CTL_EL0 =
/// CNTP_CTL_EL0 = 0: disabled, so their interrupts deassert), as a vCPU
/// that powers off, parks or starts finds them.
#[inline(always)]
pub fn stop_guest_timer() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR + CNTV_CTL_EL0::IMASK::CLEAR);
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::CLEAR + CNTP_CTL_EL0::IMASK::CLEAR);
}

/// Points TPIDR_EL2 at this CPU's per-CPU block (`arch::percpu`).
#[inline(always)]
pub fn set_per_cpu(block: u64) {
    TPIDR_EL2.set(block);
}

/// This CPU's per-CPU block, as [`set_per_cpu`] left it.
#[inline(always)]
pub fn per_cpu() -> u64 {
    TPIDR_EL2.get()
}
