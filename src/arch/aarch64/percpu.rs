//! The per-CPU block: TPIDR_EL2 points at this CPU's [`PerCpu`] from the
//! first instruction of Rust on it, and the exit vectors' fast paths read
//! their parts of it through it ([`CallBlock`], the calls', and
//! [`FastBlock`], the GIC backend's).
//!
//! Each CPU writes only its own block (and reads it only on itself), except
//! that boot writes each CPU's index before that CPU starts, anyone may
//! read its vCPU's exit counters ([`counters_of`]), and the GIC backend
//! keeps a copy of parts of the vCPU's virtual GIC model in its fast-path
//! block, which whichever CPU changes the model writes (under the
//! partition's vGIC lock: `GicBackend::follow_model`).

use core::sync::atomic::{AtomicU64, Ordering};

use bulkhead_abi::Counter;

use super::calls::CallBlock;
use super::gic::{FastBlock, FastFill, Gic, GicBackend};
use super::{MAX_CPUS, exception};

/// Exit counters of the vCPU a CPU runs, indexed by `Counter`. Only that
/// CPU writes them (a plain load and store, no read-modify-write atomics);
/// anyone may read them. They are the CPU's, not the partition's: a vCPU
/// runs on one CPU only, and here the exit fast paths reach them with one
/// load from TPIDR_EL2.
pub type Counters = [AtomicU64; COUNTER_SLOTS];
/// Slots per vCPU: the counters, rounded up to a power of two.
const COUNTER_SLOTS: usize = Counter::ALL.len().next_power_of_two();

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
    /// What the calls' fast path reads.
    pub(in crate::arch) calls: CallBlock,
    /// What the GIC backend's fast paths read.
    pub(in crate::arch) fast: FastBlock,
    /// The exit counters of the vCPU this CPU runs.
    pub(in crate::arch) counters: Counters,
}

static PER_CPU: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        cpu: AtomicU64::new(0),
        stack_top: AtomicU64::new(0),
        vcpu: AtomicU64::new(0),
        context: AtomicU64::new(0),
        calls: CallBlock::new(),
        fast: FastBlock::new(),
        counters: [const { AtomicU64::new(0) }; COUNTER_SLOTS],
    }
}; MAX_CPUS];

/// Points TPIDR_EL2 at CPU `cpu`'s block (before anything reads it).
pub fn install(cpu: usize) {
    PER_CPU[cpu].cpu.store(cpu as u64, Ordering::Relaxed);
    Gic::install_fast(&PER_CPU[cpu].fast);
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

/// [`this_vcpu_and_context`], with one more event of `counter` counted
/// for that vCPU, from the same read of the per-CPU pointer: what an exit
/// does first.
#[inline(always)]
pub fn this_vcpu_and_context_counting(counter: Counter) -> ((usize, usize), u64) {
    let block = this();
    let c = &block.counters[counter as usize];
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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
/// with `context` for [`this_vcpu_and_context`], and fills the fast paths'
/// blocks for it (before it first runs).
pub fn set_vcpu(partition: usize, context: u64, fill: &FastFill<'_>) {
    let block = this();
    block
        .vcpu
        .store((partition << 8 | fill.vcpu) as u64, Ordering::Relaxed);
    block.context.store(context, Ordering::Relaxed);
    block.calls.fill(
        fill.control_ipa,
        [partition, fill.vcpu, fill.cpu_mpidrs.len()],
    );
    Gic::fill_fast(&block.fast, fill);
}

/// The offset of `counter`'s slot from the per-CPU block (the exit
/// vectors' fast paths count there).
pub(in crate::arch) const fn counter_offset(counter: Counter) -> usize {
    core::mem::offset_of!(PerCpu, counters) + counter as usize * 8
}

/// Counts `n` events of `counter` for the vCPU this CPU runs.
#[inline(always)]
pub fn count(counter: Counter, n: u64) {
    let c = &this().counters[counter as usize];
    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// The exit counters of the vCPU CPU `cpu` runs (below `MAX_CPUS`: a
/// board's CPU index).
pub fn counters_of(cpu: usize) -> &'static Counters {
    &PER_CPU[cpu].counters
}

/// CPU `cpu`'s fast-path block, for the GIC backend's copy of the model
/// there (`GicBackend::follow_model`), written from any CPU.
#[cfg(not(gic = "v2"))]
pub(in crate::arch) fn fast_of(cpu: usize) -> &'static FastBlock {
    &PER_CPU[cpu].fast
}
