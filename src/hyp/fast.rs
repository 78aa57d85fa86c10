//! The per-CPU block the assembly fast paths read (TPIDR_EL2 points at this
//! CPU's), and what fills it.
//!
//! Four exits are handled in `fast.S` without entering Rust when the
//! common case holds, and fall back to the Rust handlers otherwise:
//! - the virtual timer's physical interrupt: vCPU not masked, nothing
//!   queued, every list register free: one LR written with the HW bit;
//! - a physical SPI the partition owns (a passthrough device's): the same
//!   conditions and the SPI enabled: one LR written with the HW bit;
//! - the kick SGI: the same conditions and exactly one deliverable SGI
//!   pending in the model: taken and written to a list register;
//! - a guest's ICC_SGI1R_EL1 write with plain affinity-0 targets, all other
//!   vCPUs of its partition: pending bits set, target CPUs kicked.
//!
//! Each does exactly what the Rust path would do in that case, and counts
//! the exit the same way.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use bulkhead_abi::{Counter, control};

use crate::vgic::lr::{Entry, Irq, format};
use crate::vgic::{sgi, state};

use crate::arch::{self, gicv3};
use crate::partition::MAX_VCPUS;

use super::partitions::{Partition, Runtime};

/// One CPU's block. Field offsets are passed to the assembly as constants.
#[repr(C)]
#[derive(Debug)]
pub struct FastCpu {
    /// This CPU's index.
    pub cpu: AtomicU64,
    /// The top of its EL2 stack (every guest entry resets SP_EL2 to it).
    pub stack_top: AtomicU64,
    /// The vCPU it runs: partition index << 8 | vCPU index.
    pub vcpu: AtomicU64,
    /// The vCPU's control page (0: no vCPU here; the fast paths are off).
    pub page: AtomicU64,
    /// 1 << vCPU index: its bit in the flag word, and in target masks.
    pub bit: AtomicU64,
    /// &PrivateIrqs of the vCPU.
    pub private: AtomicU64,
    /// Address of this CPU's queue length.
    pub queue_len: AtomicU64,
    /// ICH_ELRSR_EL2 when every list register is free.
    pub lr_all: AtomicU64,
    /// Address of the partition's GICD_CTLR state.
    pub vgic_ctlr: AtomicU64,
    /// Address of the vCPU's exit counters (an array indexed by `Counter`).
    pub counters: AtomicU64,
    /// Bit n: vCPU n is in the partition.
    pub vcpus: AtomicU64,
    /// &PrivateIrqs.pending of each vCPU of the partition.
    pub sibling_pending: [AtomicU64; MAX_VCPUS],
    /// The ICC_SGI1R_EL1 value that kicks each vCPU's CPU.
    pub kick: [AtomicU64; MAX_VCPUS],
    /// How many of `spis` are the partition's SPIs.
    pub spi_count: AtomicU64,
    /// &Spi of each SPI the partition owns.
    pub spis: [AtomicU64; state::MAX_SPIS],
}

pub const PAGE: usize = core::mem::offset_of!(FastCpu, page);
pub const BIT: usize = core::mem::offset_of!(FastCpu, bit);
pub const PRIVATE: usize = core::mem::offset_of!(FastCpu, private);
pub const QUEUE_LEN: usize = core::mem::offset_of!(FastCpu, queue_len);
pub const LR_ALL: usize = core::mem::offset_of!(FastCpu, lr_all);
pub const VGIC_CTLR: usize = core::mem::offset_of!(FastCpu, vgic_ctlr);
pub const COUNTERS: usize = core::mem::offset_of!(FastCpu, counters);
pub const VCPUS: usize = core::mem::offset_of!(FastCpu, vcpus);
pub const SIBLING_PENDING: usize = core::mem::offset_of!(FastCpu, sibling_pending);
pub const KICK: usize = core::mem::offset_of!(FastCpu, kick);
pub const SPI_COUNT: usize = core::mem::offset_of!(FastCpu, spi_count);
pub const SPIS: usize = core::mem::offset_of!(FastCpu, spis);

#[unsafe(no_mangle)]
static FAST_CPUS: [FastCpu; arch::MAX_CPUS] = [const {
    FastCpu {
        cpu: AtomicU64::new(0),
        stack_top: AtomicU64::new(0),
        vcpu: AtomicU64::new(0),
        page: AtomicU64::new(0),
        bit: AtomicU64::new(0),
        private: AtomicU64::new(0),
        queue_len: AtomicU64::new(0),
        lr_all: AtomicU64::new(0),
        vgic_ctlr: AtomicU64::new(0),
        counters: AtomicU64::new(0),
        vcpus: AtomicU64::new(0),
        sibling_pending: [const { AtomicU64::new(0) }; MAX_VCPUS],
        kick: [const { AtomicU64::new(0) }; MAX_VCPUS],
        spi_count: AtomicU64::new(0),
        spis: [const { AtomicU64::new(0) }; state::MAX_SPIS],
    }
}; arch::MAX_CPUS];

/// Points TPIDR_EL2 at CPU `cpu`'s block (before anything reads it).
pub fn install(cpu: usize) {
    FAST_CPUS[cpu].cpu.store(cpu as u64, Ordering::Relaxed);
    arch::exception::set_per_cpu(&FAST_CPUS[cpu] as *const FastCpu as u64);
}

/// This CPU's block.
#[inline(always)]
fn this() -> &'static FastCpu {
    let block = arch::exception::per_cpu() as *const FastCpu;
    // SAFETY: `install` pointed TPIDR_EL2 at this CPU's entry of the static
    // FAST_CPUS before any code that calls this runs.
    unsafe { &*block }
}

/// This CPU's index.
#[inline(always)]
pub fn this_cpu() -> usize {
    this().cpu.load(Ordering::Relaxed) as usize
}

/// The (partition, vCPU) this CPU runs; only meaningful once `fill` ran.
#[inline(always)]
pub fn this_vcpu() -> (usize, usize) {
    let packed = this().vcpu.load(Ordering::Relaxed) as usize;
    (packed >> 8, packed & 0xff)
}

pub fn this_stack_top() -> u64 {
    this().stack_top.load(Ordering::Relaxed)
}

pub fn set_stack_top(top: u64) {
    this().stack_top.store(top, Ordering::Relaxed);
}

/// Fills CPU `cpu`'s block for vCPU `v` of partition `p` (on that CPU,
/// before the vCPU first runs). `queue_len` is the address of this CPU's
/// queue length.
pub fn fill(runtime: &Runtime, cpu: usize, p: usize, v: usize, queue_len: usize) {
    let part: &Partition = &runtime.partitions[p];
    let f = &FAST_CPUS[cpu];
    let set = |a: &AtomicU64, value: u64| a.store(value, Ordering::Relaxed);
    set(&f.vcpu, (p << 8 | v) as u64);
    set(&f.bit, 1 << v);
    set(&f.private, &part.vgic.private[v] as *const _ as u64);
    set(&f.queue_len, queue_len as u64);
    set(&f.lr_all, (1u64 << gicv3::list_registers()) - 1);
    set(&f.vgic_ctlr, &part.vgic.ctlr as *const _ as u64);
    set(&f.counters, part.counters[v].as_ptr() as u64);
    set(&f.vcpus, (1u64 << part.config.cpus.len()) - 1);
    for (t, &pcpu) in part.config.cpus.iter().enumerate() {
        set(
            &f.sibling_pending[t],
            &part.vgic.private[t].pending as *const _ as u64,
        );
        set(
            &f.kick[t],
            gicv3::sgi1r_value(gicv3::KICK_SGI, runtime.mpidr_of(pcpu)),
        );
    }
    for (slot, spi) in f.spis.iter().zip(part.vgic.spis()) {
        set(slot, spi as *const _ as u64);
    }
    set(&f.spi_count, part.vgic.spis().len() as u64);
    // Last: a non-zero page turns the fast paths on.
    f.page
        .store(part.control as *const _ as u64, Ordering::Release);
}

/// Offsets the assembly uses into other structures.
const COUNTER_IRQ: usize = Counter::Irq as usize * 8;
const COUNTER_SGI_TRAP: usize = Counter::SgiTrap as usize * 8;

/// What `lower_irq` passes to the Rust handler when the fast path consumed
/// (dropped and deactivated) the kick but left the draining to Rust.
pub const KICK_DRAINED: u32 = 0x1_0000;

/// ESR_EL2 of a trapped `msr icc_sgi1r_el1, x<Rt>` with Rt = 0: EC 0x18,
/// IL, op0 3, op2 5, op1 0, CRn 12, CRm 11, a write.
const SGI1R_ESR: u32 = (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 17) | (12 << 10) | (11 << 1);

/// ICH_LR<n>_EL2 of a pending group-1 interrupt with priority 0 and INTID
/// 0, without and with the HW bit, as the Rust path encodes them: only bits
/// 63:48 are set, which the fast paths write with one `movz`/`movk` and OR
/// the priority and INTIDs into.
const LR_PENDING: u64 = format::gicv3::encode(Entry::pending(Irq {
    intid: 0,
    priority: 0,
    hw: false,
}));
const LR_PENDING_HW: u64 = format::gicv3::encode(Entry::pending(Irq {
    intid: 0,
    priority: 0,
    hw: true,
}));
const _: () = assert!(LR_PENDING & 0xffff_ffff_ffff == 0 && LR_PENDING_HW & 0xffff_ffff_ffff == 0);

/// The ICC_SGI1R_EL1 fields that send an SGI off the fast path when not
/// zero: Aff1, Aff2, IRM, RS and Aff3 (only plain affinity-0 targets are
/// fast). Written as three 16-bit chunks (bits 31:16, 47:32, 63:48).
const SGI1R_NOT_FAST: u64 =
    sgi::field::AFF1 | sgi::field::AFF2 | sgi::field::IRM | sgi::field::RS | sgi::field::AFF3;
const _: () = assert!(SGI1R_NOT_FAST & 0xffff == 0);

global_asm!(
    include_str!("fast.S"),
    FRAME = const core::mem::size_of::<arch::TrapFrame>(),
    FC_PAGE = const PAGE,
    FC_BIT = const BIT,
    FC_PRIVATE = const PRIVATE,
    FC_QUEUE_LEN = const QUEUE_LEN,
    FC_LR_ALL = const LR_ALL,
    FC_VGIC_CTLR = const VGIC_CTLR,
    FC_COUNTERS = const COUNTERS,
    FC_VCPUS = const VCPUS,
    FC_SIBLING_PENDING = const SIBLING_PENDING,
    FC_KICK = const KICK,
    FC_SPI_COUNT = const SPI_COUNT,
    FC_SPIS = const SPIS,
    SPI_INTID = const state::SPI_INTID,
    SPI_ENABLED = const state::SPI_ENABLED,
    SPI_PRIORITY = const state::SPI_PRIORITY,
    PI_ENABLED = const state::PRIVATE_ENABLED,
    PI_PENDING = const state::PRIVATE_PENDING,
    PI_PRIORITY = const state::PRIVATE_PRIORITY,
    CP_MASK = const control::OFFSET_MASK,
    CNT_IRQ = const COUNTER_IRQ,
    CNT_SGI_TRAP = const COUNTER_SGI_TRAP,
    VTIMER = const state::VTIMER_INTID,
    KICK_DRAINED = const KICK_DRAINED,
    SGI1R_ESR_LO = const SGI1R_ESR & 0xffff,
    SGI1R_ESR_HI = const SGI1R_ESR >> 16,
    FAST_PATHS = const cfg!(feature = "fast-paths") as u32,
    LR_PENDING_HI = const LR_PENDING >> 48,
    LR_PENDING_HW_HI = const LR_PENDING_HW >> 48,
    DRAIN_ALL_BIT = const state::DRAIN_ALL.trailing_zeros(),
    CTLR_GRP1_BIT = const state::CTLR_ENABLE_GRP1.trailing_zeros(),
    SGI1R_NOT_FAST_16 = const (SGI1R_NOT_FAST >> 16) & 0xffff,
    SGI1R_NOT_FAST_32 = const (SGI1R_NOT_FAST >> 32) & 0xffff,
    SGI1R_NOT_FAST_48 = const SGI1R_NOT_FAST >> 48,
    SGI1R_INTID_SHIFT = const sgi::field::INTID_SHIFT,
    SGI1R_TARGET_LIST = const sgi::field::TARGET_LIST,
);
