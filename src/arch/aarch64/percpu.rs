//! The per-CPU block: TPIDR_EL2 points at this CPU's [`PerCpu`] from the
//! first instruction of Rust on it, and the exit vectors' fast paths read
//! their part of it ([`FastBlock`], the GIC backend's) through it.
//!
//! Each CPU writes only its own block (and reads it only on itself), except
//! that boot writes each CPU's index before that CPU starts.

use core::sync::atomic::{AtomicU64, Ordering};

use super::gic::{FastBlock, FastFill, Gic, GicBackend};
use super::{MAX_CPUS, exception};

/// One CPU's block.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpu {
    /// This CPU's index.
    cpu: AtomicU64,
    /// The top of its EL2 stack (every guest entry resets SP_EL2 to it).
    stack_top: AtomicU64,
    /// The vCPU it runs: partition index << 8 | vCPU index.
    vcpu: AtomicU64,
    /// What `hyp` keeps for the exits of that vCPU (the address of its
    /// partition), so an exit finds it in one load; opaque to `arch`.
    context: AtomicU64,
    /// What the GIC backend's fast paths read.
    pub(in crate::arch) fast: FastBlock,
}

static PER_CPU: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        cpu: AtomicU64::new(0),
        stack_top: AtomicU64::new(0),
        vcpu: AtomicU64::new(0),
        context: AtomicU64::new(0),
        fast: FastBlock::new(),
    }
}; MAX_CPUS];

/// Points TPIDR_EL2 at CPU `cpu`'s block (before anything reads it).
pub fn install(cpu: usize) {
    PER_CPU[cpu].cpu.store(cpu as u64, Ordering::Relaxed);
    exception::set_per_cpu(&PER_CPU[cpu] as *const PerCpu as u64);
}

/// This CPU's block.
#[inline(always)]
fn this() -> &'static PerCpu {
    let block = exception::per_cpu() as *const PerCpu;
    // SAFETY: `install` pointed TPIDR_EL2 at this CPU's entry of the static
    // PER_CPU before any code that calls this runs.
    unsafe { &*block }
}

/// This CPU's index.
#[inline(always)]
pub fn this_cpu() -> usize {
    this().cpu.load(Ordering::Relaxed) as usize
}

/// The (partition, vCPU) this CPU runs; only meaningful once
/// [`set_vcpu`] ran.
#[inline(always)]
pub fn this_vcpu() -> (usize, usize) {
    let packed = this().vcpu.load(Ordering::Relaxed) as usize;
    (packed >> 8, packed & 0xff)
}

/// What [`set_vcpu`] recorded: the (partition, vCPU) this CPU runs and its
/// context (0 before), from one read of the per-CPU pointer.
#[inline(always)]
pub fn this_vcpu_and_context() -> ((usize, usize), u64) {
    let block = this();
    let packed = block.vcpu.load(Ordering::Relaxed) as usize;
    (
        (packed >> 8, packed & 0xff),
        block.context.load(Ordering::Relaxed),
    )
}

/// The top of this CPU's EL2 stack.
pub fn this_stack_top() -> u64 {
    this().stack_top.load(Ordering::Relaxed)
}

/// Records the top of this CPU's EL2 stack.
pub fn set_stack_top(top: u64) {
    this().stack_top.store(top, Ordering::Relaxed);
}

/// Records that this CPU runs vCPU `fill.vcpu` of partition `partition`,
/// with `context` for [`this_vcpu_and_context`], and fills the backend's fast-path
/// block for it (before it first runs).
pub fn set_vcpu(partition: usize, context: u64, fill: &FastFill<'_>) {
    let block = this();
    block
        .vcpu
        .store((partition << 8 | fill.vcpu) as u64, Ordering::Relaxed);
    block.context.store(context, Ordering::Relaxed);
    Gic::fill_fast(&block.fast, fill);
}
