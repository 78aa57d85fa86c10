//! The GICv3 backend's exit fast paths (`fast.S`): their per-CPU block,
//! what fills it, and the values the assembly takes from Rust definitions.
//!
//! Five exits are handled in `fast.S` without entering Rust when the
//! common case holds, and fall back to the Rust handlers otherwise:
//! - the virtual timer's physical interrupt: vCPU not masked, nothing
//!   queued, every list register free, and the model lets the vCPU take
//!   it (enabled, group 1 on): one LR written with the HW bit;
//! - a physical SPI the partition owns (a passthrough device's): the same
//!   conditions and the SPI enabled: one LR written with the HW bit (and,
//!   for a level one while the guest masks IRQs, ICH_HCR_EL2.TALL1, as
//!   the Rust path's `after` sets it);
//! - the kick SGI: the same conditions and exactly one interrupt pending
//!   in the model, an SGI the model lets the vCPU take: taken and written
//!   to a list register;
//! - a guest's ICC_SGI1R_EL1 write with plain affinity-0 targets, all
//!   vCPUs of its partition, or to all but itself (IRM = 1): pending bits
//!   set, target CPUs kicked (and a self-IPI delivered at once);
//! - the IRQ_UNMASK hypercall (`hvc #0`) of a vCPU that has cleared its
//!   mask byte, with exactly one interrupt deferred (not a forwarded SPI,
//!   whose line Rust looks at), every list register free, the underflow
//!   interrupt off and a masked window open: the interrupt written to a
//!   list register, the pending byte's deferral bit cleared, the window
//!   ended in the statistics and published, as `interrupts::flush` would.
//!
//! Each does exactly what the Rust path would do in that case, and counts
//! the exit the same way. What the timer and the kick ask of the model
//! (enables, group 1, the timer's priority) they read from a copy in the
//! block ([`follow_model`], kept by whichever CPU changes the model, under
//! its lock, before the change's physical side and kicks): a copy that
//! does not allow what arrived sends it to Rust, which reads the model
//! itself. So a copy a moment behind the model either costs a trip to
//! Rust or allows what the model allowed a moment before, as a read of
//! the model racing the same write would. The `fast-paths` cargo feature (on by default)
//! switches them off: every exit then goes to Rust, the reference.

use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use bulkhead_abi::Counter;
use bulkhead_abi::limits::MAX_VCPUS;

use super::super::FastFill;
use super::{KICK_SGI, list_register_count, sgi1r_value};
use crate::arch::percpu::counter_offset;
use crate::trap::sysreg;
use crate::vgic::lr::{Entry, Irq, format};
use crate::vgic::sgi;
use crate::vgic::state::{self, PrivateIrqs, VTIMER_INTID};

/// What `FastBlock::mask` points at while no vCPU is bound to the CPU: a
/// mask byte that is always set, so that the fast paths' one test of the
/// vCPU's mask byte also sends everything to Rust then.
static NO_VCPU: u8 = 1;

/// One CPU's block. Field offsets are passed to the assembly as constants;
/// fields that a path loads together are neighbours, for one `ldp`: the
/// mask byte's address and the queue's, the timer's list register and
/// `lr_all` (the timer), `lr_all` and the priorities (the kick), the
/// pending bits' address and `sgis` (the kick), `vcpus` and `bit` (the
/// SGI send), each target's pending bits and kick.
#[repr(C)]
#[derive(Debug)]
pub struct FastBlock {
    /// The vCPU's mask byte in its control page's flag word (`NO_VCPU`
    /// while none is bound here: the fast paths are off). Null only until
    /// `install` runs, before the CPU's first guest exit can happen: the
    /// block starts all zero, in .bss.
    pub(in crate::arch) mask: AtomicPtr<u8>,
    /// Address of this CPU's pending queue (its length at
    /// `lr::QUEUE_LEN`, its first interrupt at `lr::QUEUE_FIRST`).
    pub(in crate::arch) queue: AtomicU64,
    /// The list register that delivers the vCPU's virtual timer (PPI 27,
    /// HW bit, its priority), or 0 while the model says it may not be
    /// delivered (disabled, or group 1 off): a copy of the model that
    /// `follow_model` keeps.
    pub(in crate::arch) timer_lr: AtomicU64,
    /// ICH_ELRSR_EL2 when every list register is free.
    pub(in crate::arch) lr_all: AtomicU64,
    /// &PrivateIrqs.priority of the vCPU.
    pub(in crate::arch) priority: AtomicU64,
    /// &PrivateIrqs.pending of the vCPU.
    pub(in crate::arch) pending: AtomicU64,
    /// The vCPU's SGIs the model lets it take (enabled, group 1 on), as
    /// bits of `pending`: a copy `follow_model` keeps.
    pub(in crate::arch) sgis: AtomicU64,
    /// Bit n: vCPU n is in the partition.
    pub(in crate::arch) vcpus: AtomicU64,
    /// 1 << vCPU index: its bit in target masks.
    pub(in crate::arch) bit: AtomicU64,
    /// Address of this CPU's deferral statistics (`vgic::gate::Stats`).
    pub(in crate::arch) stats: AtomicU64,
    /// Address of the vCPU's published statistics (deferred, max wait,
    /// max window).
    pub(in crate::arch) defer_stats: AtomicU64,
    /// For each vCPU of the partition: &PrivateIrqs.pending, and the
    /// ICC_SGI1R_EL1 value that kicks its CPU.
    pub(in crate::arch) targets: [[AtomicU64; 2]; MAX_VCPUS],
    /// (INTID, &Spi) of each SPI the partition owns that is forwarded
    /// from hardware, then INTID 0 (the end).
    pub(in crate::arch) spis: [[AtomicU64; 2]; state::MAX_SPIS + 1],
}

// The neighbours the assembly loads with one `ldp` (see `FastBlock`).
macro_rules! neighbours {
    ($a:ident, $b:ident) => {
        const _: () = assert!(
            core::mem::offset_of!(FastBlock, $b) == core::mem::offset_of!(FastBlock, $a) + 8
        );
    };
}
neighbours!(mask, queue);
neighbours!(timer_lr, lr_all);
neighbours!(lr_all, priority);
neighbours!(pending, sgis);
neighbours!(vcpus, bit);

impl FastBlock {
    /// A block with the fast paths off (no vCPU on the CPU).
    pub const fn new() -> Self {
        FastBlock {
            mask: AtomicPtr::new(core::ptr::null_mut()),
            queue: AtomicU64::new(0),
            timer_lr: AtomicU64::new(0),
            lr_all: AtomicU64::new(0),
            priority: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            sgis: AtomicU64::new(0),
            vcpus: AtomicU64::new(0),
            bit: AtomicU64::new(0),
            stats: AtomicU64::new(0),
            defer_stats: AtomicU64::new(0),
            targets: [const { [const { AtomicU64::new(0) }; 2] }; MAX_VCPUS],
            spis: [const { [const { AtomicU64::new(0) }; 2] }; state::MAX_SPIS + 1],
        }
    }
}

impl Default for FastBlock {
    fn default() -> Self {
        Self::new()
    }
}

/// Fills `f` for the vCPU `fill` describes (on that vCPU's CPU, before the
/// vCPU first runs). What it copies of the model, `timer_lr` and `sgis`,
/// `follow_model` fills.
pub(super) fn fill(f: &FastBlock, fill: &FastFill<'_>) {
    let set = |a: &AtomicU64, value: u64| a.store(value, Ordering::Relaxed);
    let v = fill.vcpu;
    set(&f.bit, 1 << v);
    set(&f.pending, &fill.private[v].pending as *const _ as u64);
    set(&f.priority, fill.private[v].priority.as_ptr() as u64);
    set(&f.queue, fill.queue as u64);
    set(&f.stats, fill.stats as u64);
    set(&f.defer_stats, fill.defer_stats.as_ptr() as u64);
    set(&f.lr_all, (1u64 << list_register_count()) - 1);
    set(&f.vcpus, (1u64 << fill.cpu_mpidrs.len()) - 1);
    for (t, &mpidr) in fill.cpu_mpidrs.iter().enumerate() {
        let [pending, kick] = &f.targets[t];
        set(pending, &fill.private[t].pending as *const _ as u64);
        set(kick, sgi1r_value(KICK_SGI, mpidr));
    }
    // Only SPIs with a physical counterpart: a purely virtual one (the
    // emulated PL011's) shares its INTID with a physical interrupt that is
    // not the partition's, which must never be forwarded.
    let mut forwarded = fill
        .spis
        .iter()
        .filter(|s| s.forwarded.load(Ordering::Relaxed));
    // At most MAX_SPIS of them: the last slot stays the end.
    for [intid, spi] in &f.spis {
        let (i, s) = forwarded
            .next()
            .map_or((0, 0), |s| (u64::from(s.intid), s as *const _ as u64));
        set(intid, i);
        set(spi, s);
    }
    // Last: the vCPU's mask byte in place of `NO_VCPU` turns the fast
    // paths on.
    let mask = &fill.control.mask[v] as *const _ as *mut u8;
    f.mask.store(mask, Ordering::Release);
}

/// `GicBackend::install_fast`: no vCPU bound yet, the fast paths off.
pub(super) fn install(f: &FastBlock) {
    f.mask
        .store((&raw const NO_VCPU).cast_mut(), Ordering::Relaxed);
}

/// `GicBackend::follow_model`: the copy in `f` of what the model lets the
/// vCPU take, from `private` and the partition's group 1 enable. Each
/// value is one store, which the fast paths read with one load: either
/// this one or the one before. A timer or SGI that the copy does not
/// allow goes to Rust, which reads the model.
pub(super) fn follow_model(f: &FastBlock, private: &PrivateIrqs, group1: bool) {
    let enabled = if group1 {
        private.enabled.load(Ordering::Acquire)
    } else {
        0
    };
    let timer_lr = if enabled & (1 << VTIMER_INTID) != 0 {
        format::gicv3::encode(Entry::pending(Irq {
            intid: VTIMER_INTID,
            priority: private.priority[VTIMER_INTID as usize].load(Ordering::Relaxed),
            hw: true,
            source: 0,
        }))
    } else {
        0
    };
    f.timer_lr.store(timer_lr, Ordering::Release);
    f.sgis.store(u64::from(enabled & 0xffff), Ordering::Release);
}

/// `Spi::edge` as a bit of the word the SPI fast path loads at
/// `SPI_ENABLED` (`enabled` its byte 0, little-endian).
pub(in crate::arch) const SPI_EDGE_BIT: usize = (state::SPI_EDGE - state::SPI_ENABLED) * 8;
const _: () = assert!(state::SPI_ENABLED.is_multiple_of(4) && SPI_EDGE_BIT < 32);

/// ICH_HCR_EL2 with En and TALL1: what the SPI fast path writes (it runs
/// only with an empty queue, so without the underflow interrupt).
pub(in crate::arch) const ICH_HCR_EN_TALL1: u64 = 1 | crate::arch::sysreg::ICH_HCR_EL2_TALL1;

/// The exit counters' offsets from the per-CPU block (`COUNT` in fast.S).
pub(in crate::arch) const COUNTER_IRQ: usize = counter_offset(Counter::Irq);
pub(in crate::arch) const COUNTER_SGI_TRAP: usize = counter_offset(Counter::SgiTrap);

/// ESR_EL2 of `hvc #0` from AArch64: EC 0x16, IL, ISS = the immediate, 0.
/// Only this one takes the IRQ_UNMASK fast path (guest-lib and bulkhead.h
/// use `hvc #0`); any other immediate goes to Rust, which answers it the
/// same.
pub(in crate::arch) const HVC0_ESR: u32 = (0x16 << 26) | (1 << 25);
// The path tests it with one `movz` (bits 31:16), after a `tbnz` on bit 31
// (EC bit 5) that sends the aborts (EC 0x20, 0x24) to Rust at once.
const _: () = assert!(HVC0_ESR & 0xffff == 0 && HVC0_ESR & (1 << 31) == 0);

/// Where the published statistics keep max wait and max window (a pair,
/// after `deferred`: `Partition::publish_stats`), and the fast path's view
/// of `Irq`.
pub(in crate::arch) const PUBLISHED_MAX_WAIT: usize = 8;
pub(in crate::arch) const IRQ_INTID: usize = core::mem::offset_of!(Irq, intid);
pub(in crate::arch) const IRQ_PRIORITY: usize = core::mem::offset_of!(Irq, priority);
pub(in crate::arch) const IRQ_HW: usize = core::mem::offset_of!(Irq, hw);
const _: () = assert!(IRQ_INTID == 0);

/// ICH_LR<n>_EL2's HW bit, as a bit number (what the IRQ_UNMASK fast
/// path sets for a forwarded PPI, with the pINTID).
pub(in crate::arch) const LR_HW_BIT: u32 = (LR_PENDING_HW ^ LR_PENDING).trailing_zeros();
const _: () = assert!((LR_PENDING_HW ^ LR_PENDING).count_ones() == 1);

/// What `lower_irq` passes to the Rust handler when the fast path consumed
/// (dropped and deactivated) the kick but left the draining to Rust.
pub const KICK_DRAINED: u32 = 0x1_0000;

/// ESR_EL2 of a trapped `msr icc_sgi1r_el1, x<Rt>` with Rt = 0: EC 0x18
/// (MSR/MRS), IL, the register's encoding in ISS bits 21:1 (op0 21:20,
/// op2 19:17, op1 16:14, CRn 13:10, CRm 4:1), a write (bit 0 clear).
pub(in crate::arch) const SGI1R_ESR: u32 = (0x18 << 26) | (1 << 25) | sgi1r_iss();

const fn sgi1r_iss() -> u32 {
    let reg = super::SGI1R_ENCODING;
    let (op0, op1, crn, crm, op2) = (
        reg >> 14,
        (reg >> 11) & 7,
        (reg >> 7) & 0xf,
        (reg >> 3) & 0xf,
        reg & 7,
    );
    (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (crm << 1)
}
const _: () = assert!(super::SGI1R_ENCODING == sysreg(3, 0, 12, 11, 5));

/// ICH_LR<n>_EL2 of a pending group-1 interrupt with priority 0 and INTID
/// 0, without and with the HW bit, as the Rust path encodes them: only bits
/// 63:48 are set, which the fast paths write with one `movz`/`movk` and OR
/// the priority and INTIDs into.
pub(in crate::arch) const LR_PENDING: u64 = format::gicv3::encode(Entry::pending(Irq {
    intid: 0,
    priority: 0,
    hw: false,
    source: 0,
}));
pub(in crate::arch) const LR_PENDING_HW: u64 = format::gicv3::encode(Entry::pending(Irq {
    intid: 0,
    priority: 0,
    hw: true,
    source: 0,
}));
const _: () = assert!(LR_PENDING & 0xffff_ffff_ffff == 0 && LR_PENDING_HW & 0xffff_ffff_ffff == 0);

/// The ICC_SGI1R_EL1 fields that send an SGI with IRM = 0 off the fast
/// path when not zero: Aff1, Aff2, IRM, RS and Aff3 (only plain
/// affinity-0 targets are fast; IRM = 1 is tested after). The path loads
/// it from a literal.
pub(in crate::arch) const SGI1R_NOT_FAST: u64 =
    sgi::field::AFF1 | sgi::field::AFF2 | sgi::field::IRM | sgi::field::RS | sgi::field::AFF3;
const _: () = assert!(SGI1R_NOT_FAST & 0xffff == 0);
