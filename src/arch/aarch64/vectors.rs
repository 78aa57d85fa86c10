//! The EL2 exception vectors and the guest exits, in one `global_asm!`:
//! `vectors.S` (the table, the trap-frame macros, the SError and AArch32
//! exits) followed by the GIC backend's IRQ and synchronous exits with
//! their fast paths (`gic/gicv3/fast.S`). The assembly's constants are the
//! Rust definitions they stand for, passed as operands.
//!
//! The handlers it calls are `hyp`'s `handle_lower_*`, `handle_local_drain`
//! and `handle_hyp_exception`.

use core::arch::global_asm;
#[cfg(not(gic = "v2"))]
use core::mem::offset_of;

#[cfg(not(gic = "v2"))]
use aarch64_cpu::registers::{ICH_HCR_EL2, SPSR_EL2};
#[cfg(not(gic = "v2"))]
use bulkhead_abi::{call, control};

use super::TrapFrame;
#[cfg(not(gic = "v2"))]
use super::gic::gicv3::fast::{
    COUNTER_HVC, COUNTER_IRQ, COUNTER_SGI_TRAP, FastBlock, HVC0_ESR, ICH_HCR_EN_TALL1, IRQ_HW,
    IRQ_PRIORITY, KICK_DRAINED, LR_HW_BIT, LR_PENDING, LR_PENDING_HW, PUBLISHED_MAX_WAIT,
    SGI1R_ESR, SGI1R_NOT_FAST, SPI_EDGE_BIT,
};
#[cfg(not(gic = "v2"))]
use super::percpu::PerCpu;
#[cfg(not(gic = "v2"))]
use crate::vgic::{gate, lr, sgi, state};

/// The offset of a `FastBlock` field from the per-CPU block TPIDR_EL2
/// points at.
#[cfg(not(gic = "v2"))]
macro_rules! fc {
    ($field:ident) => {
        offset_of!(PerCpu, fast) + offset_of!(FastBlock, $field)
    };
}

#[cfg(not(gic = "v2"))]
global_asm!(
    include_str!("vectors.S"),
    include_str!("gic/gicv3/fast.S"),
    FRAME = const core::mem::size_of::<TrapFrame>(),
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
    CNT_HVC = const COUNTER_HVC,
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
    FAST_PATHS = const cfg!(feature = "fast-paths") as u32,
    LR_PENDING_HI = const LR_PENDING >> 48,
    LR_PENDING_HW_HI = const LR_PENDING_HW >> 48,
    SGI1R_NOT_FAST = const SGI1R_NOT_FAST,
    SGI1R_INTID_SHIFT = const sgi::field::INTID_SHIFT,
    SGI1R_TARGET_LIST = const sgi::field::TARGET_LIST,
    SGI1R_IRM_BIT = const sgi::field::IRM.trailing_zeros(),
);

// The GICv2 backend's exits: no fast paths yet, every exit in Rust.
#[cfg(gic = "v2")]
global_asm!(
    include_str!("vectors.S"),
    include_str!("gic/gicv2/exits.S"),
    FRAME = const core::mem::size_of::<TrapFrame>(),
);
