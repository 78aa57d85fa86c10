//! The calls' fast path (`calls.S`): the hypercalls a guest makes most and
//! whose answer is in this CPU's block, answered at the exit vector without
//! the rest of the trap frame or Rust; its per-CPU block, what fills it, and
//! the values the assembly takes from Rust definitions.
//!
//! Answered there, over HVC, exactly as `hyp::exits`' `call` answers them
//! (the reference: with the `fast-paths` feature off every call goes
//! there, and `tests/qemu.rs` runs again that way):
//! - Bulkhead's VERSION, VCPU_INFO and EXIT_COUNT;
//! - PSCI_VERSION, PSCI_FEATURES and MIGRATE_INFO_TYPE, SMCCC_VERSION and
//!   SMCCC_ARCH_FEATURES.
//!
//! Each counts the HVC (`Counter::Hvc`) before it answers, as the Rust path
//! does, writes only the registers the call returns and leaves every other
//! one as the guest had it. Every other call, and an SMC, goes to Rust.
//! These calls touch no list register, so on a GICv2 the path leaves them
//! open to other CPUs (`vgic::remote`) as while the guest runs.

use core::sync::atomic::{AtomicU64, Ordering};

use bulkhead_abi::{Counter, Status, call, psci};

use super::percpu::counter_offset;
use crate::mm::Ipa;

/// One CPU's block (the counters it counts in are the per-CPU block's own,
/// `PerCpu::counters`). Field offsets are passed to the assembly as
/// constants. A guest runs only once its vCPU's block is filled
/// (`percpu::set_vcpu`).
#[repr(C)]
#[derive(Debug)]
pub struct CallBlock {
    /// VERSION's x3: the partition's control page, its guest address.
    pub(in crate::arch) control: AtomicU64,
    /// VCPU_INFO's x1..x3: the partition's index, the vCPU's, and the
    /// partition's vCPU count.
    pub(in crate::arch) info: [AtomicU64; 3],
}

impl CallBlock {
    /// An empty block (no vCPU on the CPU yet).
    pub const fn new() -> Self {
        CallBlock {
            control: AtomicU64::new(0),
            info: [const { AtomicU64::new(0) }; 3],
        }
    }

    /// Fills the block for vCPU `vcpu` of partition `partition` (on that
    /// vCPU's CPU, before the vCPU first runs).
    pub(in crate::arch) fn fill(&self, control: Ipa, [partition, vcpu, vcpus]: [usize; 3]) {
        self.control.store(control.0, Ordering::Relaxed);
        for (field, value) in self.info.iter().zip([partition, vcpu, vcpus]) {
            field.store(value as u64, Ordering::Relaxed);
        }
    }
}

impl Default for CallBlock {
    fn default() -> Self {
        Self::new()
    }
}

/// The HVC counter's offset from the per-CPU block.
pub(in crate::arch) const COUNTER_HVC: usize = counter_offset(Counter::Hvc);
/// The counters' offset from the per-CPU block (`Irq` is the first).
pub(in crate::arch) const PER_CPU_COUNTERS: usize = counter_offset(Counter::Irq);
const _: () = assert!(Counter::Irq as usize == 0);
/// EXIT_COUNT's counters: those below it are valid.
pub(in crate::arch) const COUNTERS: usize = Counter::ALL.len();

/// The function ids, as the assembly compares them: W0 (the upper half of
/// x0 is not part of the id) as an owner's base (bits 31:16, one `movz`)
/// and a number under it.
pub(in crate::arch) const BULKHEAD_BASE_HI: u64 = call::VERSION >> 16;
pub(in crate::arch) const VCPU_INFO_N: u64 = call::VCPU_INFO - call::VERSION;
pub(in crate::arch) const EXIT_COUNT_N: u64 = call::EXIT_COUNT - call::VERSION;
/// Bulkhead's other numbers up to this one go to Rust at once (its calls
/// are far below it; one above goes there too, after the other owners'
/// comparisons).
pub(in crate::arch) const BULKHEAD_N_MAX: u64 = 0xfff;
pub(in crate::arch) const PSCI_BASE_HI: u64 = psci::PSCI_VERSION >> 16;
pub(in crate::arch) const PSCI_FEATURES_N: u64 = psci::PSCI_FEATURES - psci::PSCI_VERSION;
pub(in crate::arch) const MIGRATE_INFO_TYPE_N: u64 = psci::MIGRATE_INFO_TYPE - psci::PSCI_VERSION;
pub(in crate::arch) const SMCCC_BASE_HI: u64 = psci::SMCCC_VERSION >> 16;
pub(in crate::arch) const ARCH_FEATURES_N: u64 = psci::SMCCC_ARCH_FEATURES - psci::SMCCC_VERSION;
const _: () = {
    assert!(call::VERSION & 0xffff == 0 && EXIT_COUNT_N < BULKHEAD_N_MAX);
    assert!(call::DEFER_STATS - call::VERSION < BULKHEAD_N_MAX);
    assert!(psci::PSCI_VERSION & 0xffff == 0 && PSCI_FEATURES_N < 4096);
    assert!(MIGRATE_INFO_TYPE_N < 4096 && psci::SMCCC_VERSION & 0xffff == 0);
    assert!(ARCH_FEATURES_N < 4096);
};

/// PSCI_FEATURES' answers for the PSCI ids 0x8400_0000 + n (SMC32) and
/// 0xC400_0000 + n (SMC64), bit n each; SMCCC_VERSION is the one other id
/// answered 0 (`psci::supported_mask`).
pub(in crate::arch) const FEATURES_SMC32: u32 = crate::psci::supported_mask(psci::PSCI_VERSION);
pub(in crate::arch) const FEATURES_SMC64: u32 =
    crate::psci::supported_mask(psci::PSCI_VERSION | 1 << 30);
const _: () = assert!(crate::psci::supported(psci::SMCCC_VERSION));

/// SMCCC_ARCH_FEATURES answers 0 for SMCCC_VERSION and itself, the range
/// of two ids the assembly tests for (and for no other: `psci`'s tests).
const _: () = assert!(
    crate::psci::arch_supported(psci::SMCCC_VERSION)
        && crate::psci::arch_supported(psci::SMCCC_ARCH_FEATURES)
        && ARCH_FEATURES_N == 1
);

/// The answers, as `hyp::exits`' `call` gives them (the versions and
/// MIGRATE_INFO_TYPE's written as W0: they fit).
const _: () = assert!(
    psci::VERSION_1_1 >> 32 == 0 && psci::SMCCC_1_1 >> 32 == 0 && psci::TOS_NOT_PRESENT >> 32 == 0
);
pub(in crate::arch) const NOT_SUPPORTED: i64 = Status::NotSupported as i64;
pub(in crate::arch) const INVALID_PARAMETERS: i64 = Status::InvalidParameters as i64;
