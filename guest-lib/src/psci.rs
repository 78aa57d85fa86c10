//! PSCI (Arm DEN 0022) calls, on the conduit the platform answers: `hvc`
//! under Bulkhead and on QEMU virt without EL2, `smc` when the guest itself
//! entered at EL2 (QEMU virt with virtualization=on).

use bulkhead_abi::{Status, psci as id};

use crate::hvc;

/// One PSCI call on the right conduit.
fn call(function: u64, args: [u64; 3]) -> u64 {
    let regs = [args[0], args[1], args[2], 0, 0, 0, 0];
    let [x0, ..] = if crate::mode::started_at_el2() {
        hvc::smc(function, regs)
    } else {
        hvc::hvc(function, regs)
    };
    x0
}

/// `PSCI_VERSION`: major in bits 31:16, minor in 15:0.
pub fn version() -> u64 {
    call(id::PSCI_VERSION, [0; 3])
}

/// `CPU_ON` (64-bit): starts the CPU whose MPIDR affinity is `target_mpidr`
/// at physical (intermediate physical) address `entry`, with `x0 = context`,
/// at EL1 (or EL2 natively) with the MMU off.
///
/// # Safety
/// `entry` must be code that can run in that state and that treats
/// `context` as it expects (guest-lib's own secondary entry expects what
/// [`crate::smp::start_cpu`] passes: use that instead).
pub unsafe fn cpu_on(target_mpidr: u64, entry: usize, context: u64) -> Result<(), Status> {
    hvc::status(call(id::CPU_ON_64, [target_mpidr, entry as u64, context]))
}

/// `SYSTEM_OFF`: natively, QEMU exits. Does not return if it worked.
pub fn system_off() {
    call(id::SYSTEM_OFF, [0; 3]);
}
