//! Hypercalls: `hvc #0` under the SMC Calling Convention, and Bulkhead's
//! calls from [`bulkhead_abi::call`] wrapped in safe functions.

use core::arch::asm;

use bulkhead_abi::{Counter, Status, call as id};

/// Issues `hvc #0` with `x0 = id` and `x1.. = args` and returns `x0..x3`.
///
/// Under Bulkhead this reaches the hypervisor (an unknown id gets
/// [`Status::NotSupported`]). Natively on QEMU virt without EL2 it reaches
/// QEMU's PSCI emulation. If the guest itself entered at EL2 (bare metal,
/// nothing runs there) the call is not issued and `x0` is `NOT_SUPPORTED`.
pub fn call<const N: usize>(id: u64, args: [u64; N]) -> [u64; 4] {
    const { assert!(N <= 7, "SMCCC passes at most seven arguments, x1..x7") };
    if crate::mode::started_at_el2() {
        return [Status::NotSupported.as_reg(), 0, 0, 0];
    }
    let mut regs = [0u64; 7];
    regs[..N].copy_from_slice(&args);
    hvc(id, regs)
}

/// The instruction itself.
pub(crate) fn hvc(id: u64, a: [u64; 7]) -> [u64; 4] {
    let r: [u64; 4];
    // SAFETY: an HVC is answered by the hypervisor (or QEMU's PSCI), which
    // only writes x0..x17 (SMCCC 1.0 lets it corrupt x4..x17, all declared
    // clobbered). No Rust memory is passed; the asm is a memory barrier so
    // that calls like CPU_ON see earlier stores.
    unsafe {
        let (r0, r1, r2, r3);
        asm!(
            "hvc #0",
            inlateout("x0") id => r0,
            inlateout("x1") a[0] => r1,
            inlateout("x2") a[1] => r2,
            inlateout("x3") a[2] => r3,
            inlateout("x4") a[3] => _,
            inlateout("x5") a[4] => _,
            inlateout("x6") a[5] => _,
            inlateout("x7") a[6] => _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack)
        );
        r = [r0, r1, r2, r3];
    }
    r
}

/// `smc #0`, the PSCI conduit when the guest entered at EL2 (QEMU virt with
/// virtualization=on answers PSCI on SMC).
pub(crate) fn smc(id: u64, a: [u64; 7]) -> [u64; 4] {
    let r: [u64; 4];
    // SAFETY: as for `hvc`: the firmware (QEMU) writes only x0..x17.
    unsafe {
        let (r0, r1, r2, r3);
        asm!(
            "smc #0",
            inlateout("x0") id => r0,
            inlateout("x1") a[0] => r1,
            inlateout("x2") a[1] => r2,
            inlateout("x3") a[2] => r3,
            inlateout("x4") a[3] => _,
            inlateout("x5") a[4] => _,
            inlateout("x6") a[5] => _,
            inlateout("x7") a[6] => _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack)
        );
        r = [r0, r1, r2, r3];
    }
    r
}

/// Turns `x0` into a result.
pub(crate) fn status(x0: u64) -> Result<(), Status> {
    match Status::from_reg(x0) {
        Some(Status::Success) => Ok(()),
        Some(error) => Err(error),
        // A value no call returns: treat it as the call being unknown.
        None => Err(Status::NotSupported),
    }
}

/// What [`vcpu_info`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    /// The partition's index in the hypervisor's configuration.
    pub partition: u64,
    /// This vCPU's index within the partition.
    pub vcpu: u64,
    /// How many vCPUs the partition has.
    pub vcpu_count: u64,
}

/// Describes the calling vCPU (`VCPU_INFO`). Natively there is no
/// partition: `Err(Status::NotSupported)`.
pub fn vcpu_info() -> Result<VcpuInfo, Status> {
    if !crate::mode::under_bulkhead() {
        return Err(Status::NotSupported);
    }
    let [x0, x1, x2, x3] = call(id::VCPU_INFO, []);
    status(x0)?;
    Ok(VcpuInfo {
        partition: x1,
        vcpu: x2,
        vcpu_count: x3,
    })
}

/// One of this vCPU's exit counters (`EXIT_COUNT`): its count since the
/// vCPU started. `None` natively, where there is no hypervisor to count,
/// or if the hypervisor does not know the counter.
pub fn exit_count(counter: Counter) -> Option<u64> {
    if !crate::mode::under_bulkhead() {
        return None;
    }
    let [x0, x1, ..] = call(id::EXIT_COUNT, [counter as u64]);
    status(x0).ok().map(|()| x1)
}

/// Writes up to [`bulkhead_abi::CONSOLE_WRITE_MAX`] bytes with
/// `CONSOLE_WRITE`; returns how many it took. Use [`crate::print!`] instead:
/// this is its backend under Bulkhead.
pub fn console_write(bytes: &[u8]) -> Result<usize, Status> {
    let (regs, n) = bulkhead_abi::pack_console(bytes);
    let [x0, ..] = call(
        id::CONSOLE_WRITE,
        [
            n as u64, regs[0], regs[1], regs[2], regs[3], regs[4], regs[5],
        ],
    );
    status(x0).map(|()| n)
}

/// `PARTITION_EXIT` with `code`: stops every vCPU of this partition. Returns
/// only if the hypervisor refused.
pub(crate) fn partition_exit(code: u64) -> Status {
    let [x0, ..] = call(id::PARTITION_EXIT, [code]);
    Status::from_reg(x0).unwrap_or(Status::NotSupported)
}

/// `IRQ_UNMASK`: this vCPU has cleared its mask byte and found the deferral
/// bit set in its pending byte; the hypervisor injects what it deferred. [`crate::irq::unmask`]
/// calls it when needed: a guest has no other reason to.
pub fn irq_unmask() -> Result<(), Status> {
    let [x0, ..] = call(id::IRQ_UNMASK, []);
    status(x0)
}

/// `IRQ_UNMASK` for [`crate::irq::unmask`]'s slow path: the call and
/// nothing else (no status: a failure leaves nothing to do). Under
/// Bulkhead only (its caller knows), which follows SMCCC 1.1 and keeps
/// x4..x17: only x0..x3 are declared clobbered, so the caller keeps its
/// values in registers across the call.
#[inline(always)]
pub(crate) fn irq_unmask_now() {
    // SAFETY: an HVC that Bulkhead answers by moving this vCPU's deferred
    // interrupts into its list registers and writing x0..x3; no Rust
    // memory is passed. Not `nomem`: a compiler barrier, like the unmask's
    // store before it.
    unsafe {
        asm!(
            "hvc #0",
            inlateout("x0") id::IRQ_UNMASK => _,
            lateout("x1") _,
            lateout("x2") _,
            lateout("x3") _,
            options(nostack)
        )
    };
}

/// What [`defer_stats`] returns: this vCPU's interrupt deferral figures,
/// in generic counter ticks, since it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferStats {
    /// Interrupts the hypervisor deferred because this vCPU's mask byte was set.
    pub deferred: u64,
    /// The longest an interrupt waited behind the mask (arrival to injection).
    pub max_wait: u64,
    /// The longest masked window that delayed an interrupt (first deferral
    /// in the window to the unmask that ended it).
    pub max_window: u64,
}

/// This vCPU's deferral statistics (`DEFER_STATS`); `None` natively or if
/// the hypervisor does not keep them.
pub fn defer_stats() -> Option<DeferStats> {
    if !crate::mode::under_bulkhead() {
        return None;
    }
    let [x0, x1, x2, x3] = call(id::DEFER_STATS, []);
    status(x0).ok().map(|()| DeferStats {
        deferred: x1,
        max_wait: x2,
        max_window: x3,
    })
}
