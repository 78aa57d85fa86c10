//! The EL2 exception vectors and the guest exits, in one `global_asm!`:
//! `vectors.S` (the table, the trap-frame macros, the SError and AArch32
//! exits), `calls.S` (the calls' fast path) and the GIC backend's IRQ and
//! synchronous exits with their fast paths (`gic/gicv3/fast.S`, or
//! `gic/gicv2/exits.S`). The assembly's constants are the Rust definitions
//! they stand for, passed as operands.
//!
//! The handlers it calls are `hyp`'s `handle_lower_*`, `handle_local_drain`
//! and `handle_hyp_exception`.

use core::arch::global_asm;
use core::mem::offset_of;

#[cfg(not(gic = "v2"))]
use aarch64_cpu::registers::{ICH_HCR_EL2, SPSR_EL2};
#[cfg(not(gic = "v2"))]
use bulkhead_abi::{call, control};

use super::TrapFrame;
use super::calls::{self, CallBlock};
#[cfg(not(gic = "v2"))]
use super::gic::gicv3::fast::{
    COUNTER_IRQ, COUNTER_SGI_TRAP, FastBlock, HVC0_ESR, ICH_HCR_EN_TALL1, IRQ_HW, IRQ_PRIORITY,
    KICK_DRAINED, LR_HW_BIT, LR_PENDING, LR_PENDING_HW, PUBLISHED_MAX_WAIT, SGI1R_ESR,
    SGI1R_NOT_FAST, SPI_EDGE_BIT,
};
use super::percpu::PerCpu;
use crate::trap::ec;
#[cfg(not(gic = "v2"))]
use crate::vgic::{gate, lr, sgi, state};

/// The offset of a `CallBlock` field from the per-CPU block TPIDR_EL2
/// points at.
macro_rules! cb {
    ($field:ident) => {
        offset_of!(PerCpu, calls) + offset_of!(CallBlock, $field)
    };
}

/// The `global_asm!` of the vectors, the calls' fast path and the backend's
/// exits (`$backend`, with its own operands): the operands they share are
/// written once, here.
macro_rules! exits_asm {
    ($backend:literal, $($operands:tt)*) => {
        global_asm!(
            include_str!("vectors.S"),
            include_str!("calls.S"),
            include_str!($backend),
            FRAME = const core::mem::size_of::<TrapFrame>(),
            FAST_PATHS = const cfg!(feature = "fast-paths") as u32,
            EC_DABT_LOWER = const ec::DABT_LOWER,
            CB_CONTROL = const cb!(control),
            CB_INFO = const cb!(info),
            PC_COUNTERS = const calls::PER_CPU_COUNTERS,
            CNT_HVC = const calls::COUNTER_HVC,
            COUNTERS = const calls::COUNTERS,
            BULKHEAD_BASE_HI = const calls::BULKHEAD_BASE_HI,
            VCPU_INFO_N = const calls::VCPU_INFO_N,
            EXIT_COUNT_N = const calls::EXIT_COUNT_N,
            BULKHEAD_N_MAX = const calls::BULKHEAD_N_MAX,
            PSCI_BASE_HI = const calls::PSCI_BASE_HI,
            PSCI_FEATURES_N = const calls::PSCI_FEATURES_N,
            MIGRATE_INFO_TYPE_N = const calls::MIGRATE_INFO_TYPE_N,
            SMCCC_BASE_HI = const calls::SMCCC_BASE_HI,
            ARCH_FEATURES_N = const calls::ARCH_FEATURES_N,
            MAGIC = const bulkhead_abi::MAGIC,
            ABI_VERSION = const bulkhead_abi::ABI_VERSION,
            PSCI_VERSION_VALUE = const bulkhead_abi::psci::VERSION_1_1,
            SMCCC_VERSION_VALUE = const bulkhead_abi::psci::SMCCC_1_1,
            TOS_NOT_PRESENT = const bulkhead_abi::psci::TOS_NOT_PRESENT,
            NOT_SUPPORTED = const calls::NOT_SUPPORTED,
            INVALID_PARAMETERS = const calls::INVALID_PARAMETERS,
            FEATURES_SMC32 = const calls::FEATURES_SMC32,
            FEATURES_SMC64 = const calls::FEATURES_SMC64,
            $($operands)*
        );
    };
}

/// The offset of a `FastBlock` field from the per-CPU block TPIDR_EL2
/// points at.
#[cfg(not(gic = "v2"))]
macro_rules! fc {
    ($field:ident) => {
        offset_of!(PerCpu, fast) + offset_of!(FastBlock, $field)
    };
}

#[cfg(not(gic = "v2"))]
exits_asm!(
    "gic/gicv3/fast.S",
    FC_MASK = const fc!(mask),
    FC_QUEUE = const fc!(queue),
    FC_TIMER_LR = const fc!(timer_lr),
    FC_LR_ALL = const fc!(lr_all),
    FC_PENDING = const fc!(pending),
    FC_VCPUS = const fc!(vcpus),
    FC_STATS = const fc!(stats),
    FC_DEFER_STATS = const fc!(defer_stats),
    FC_TARGETS = const fc!(targets),
    FC_SPIS = const fc!(spis),
    SPI_ENABLED = const state::SPI_ENABLED,
    SPI_EDGE_BIT = const SPI_EDGE_BIT,
    SPSR_I_BIT = const SPSR_EL2::I.shift,
    ICH_HCR_EN_TALL1 = const ICH_HCR_EN_TALL1,
    SPI_PRIORITY = const state::SPI_PRIORITY,
    CNT_IRQ = const COUNTER_IRQ,
    CNT_SGI_TRAP = const COUNTER_SGI_TRAP,
    HVC0_ESR_HI = const HVC0_ESR >> 16,
    IRQ_UNMASK_LO = const call::IRQ_UNMASK & 0xffff,
    IRQ_UNMASK_HI = const call::IRQ_UNMASK >> 16,
    ICH_HCR_UIE_BIT = const ICH_HCR_EL2::UIE.shift,
    PENDING_FROM_MASK = const control::PENDING_FROM_MASK,
    NOT_DEFERRED = const !control::PENDING_DEFERRED,
    QUEUE_LEN = const lr::QUEUE_LEN,
    QUEUE_FIRST = const lr::QUEUE_FIRST,
    IRQ_PRIORITY = const IRQ_PRIORITY,
    IRQ_HW = const IRQ_HW,
    LR_HW_BIT = const LR_HW_BIT,
    STATS_MAX_WAIT = const gate::STATS_MAX_WAIT,
    STATS_WINDOW_START = const gate::STATS_WINDOW_START,
    PUBLISHED_MAX_WAIT = const PUBLISHED_MAX_WAIT,
    VTIMER = const state::VTIMER_INTID,
    KICK_DRAINED = const KICK_DRAINED,
    SGI1R_ESR = const SGI1R_ESR,
    LR_PENDING_HI = const LR_PENDING >> 48,
    LR_PENDING_HW_HI = const LR_PENDING_HW >> 48,
    SGI1R_NOT_FAST = const SGI1R_NOT_FAST,
    SGI1R_INTID_SHIFT = const sgi::field::INTID_SHIFT,
    SGI1R_TARGET_LIST = const sgi::field::TARGET_LIST,
    SGI1R_IRM_BIT = const sgi::field::IRM.trailing_zeros(),
);

// The GICv2 backend's exits: no fast paths of their own yet.
#[cfg(gic = "v2")]
exits_asm!("gic/gicv2/exits.S", EC_HVC64 = const ec::HVC64);
