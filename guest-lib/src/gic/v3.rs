//! GICv3: the CPU interface through the ICC_* system registers, the
//! distributor with affinity routing (ARE), one redistributor per CPU.
//!
//! The CPU interface is reached through the ICC_* system registers in both
//! modes: under Bulkhead they are the virtual CPU interface (no trap), so
//! acknowledge and end-of-interrupt cost nothing extra. EOImode is 0: one
//! write of ICC_EOIR1_EL1 both drops the priority and deactivates.
//!
//! The distributor (0x0800_0000) and the redistributors (from 0x080A_0000,
//! one RD_base + SGI_base frame pair per CPU, GICR_TYPER.Last on the last)
//! are memory-mapped at QEMU virt's addresses in both modes: natively they
//! are QEMU's, under Bulkhead the partition's emulated ones (one
//! redistributor per vCPU). guest-lib programs them the same way either
//! way, for the architecture: no mode checks here. QEMU virt without EL3
//! has a single security state, and so does a partition, so GICD_CTLR is
//! that view. Interrupts are group 1.
//!
//! Accesses, for whoever emulates them: 32-bit reads and writes of GICD_CTLR,
//! IGROUPR, ISENABLER and GICR_WAKER; 64-bit reads of GICR_TYPER and 64-bit
//! writes of GICD_IROUTER; byte writes of IPRIORITYR.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{FIRST_SPI, ICENABLER, IPRIORITYR, ISENABLER};
use crate::arch::{self, MAX_CPUS, Mmio};

// --- Memory map of QEMU virt's GICv3 (and of a partition's virtual one) ---

const GICD_BASE: usize = 0x0800_0000;
const GICR_BASE: usize = 0x080A_0000;
/// Each redistributor is two 64 KiB frames: RD_base, then SGI_base.
const GICR_STRIDE: usize = 0x2_0000;
const GICR_SGI_FRAME: usize = 0x1_0000;
/// Most redistributor frames searched for ours (QEMU's region holds 123).
const GICR_MAX_FRAMES: usize = 128;

const GICD_CTLR: usize = 0x0000;
/// GICD_CTLR (single security state): EnableGrp1, ARE, and RWP (a write is
/// still taking effect).
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICD_CTLR_ARE: u32 = 1 << 4;
const GICD_CTLR_RWP: u32 = 1 << 31;
/// IGROUPR: the same offset in GICD and in the SGI frame.
const IGROUPR: usize = 0x0080;
/// GICD_IROUTER<n>: 64-bit affinity routing of SPI n.
const GICD_IROUTER: usize = 0x6000;

const GICR_TYPER: usize = 0x0008;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_WAKER: usize = 0x0014;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// Each CPU's redistributor (RD_base), found by `init_cpu`; 0 = unknown.
static REDISTRIBUTORS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

fn gicd() -> Mmio {
    // SAFETY: QEMU virt's distributor (natively) or the partition's emulated
    // one (under Bulkhead), in the identity map's Device range.
    unsafe { Mmio::new(GICD_BASE) }
}

fn gicd_reg(offset: usize) -> Mmio {
    // SAFETY: the offsets used are GICD registers within its 64 KiB frame.
    unsafe { gicd().offset(offset) }
}

/// This CPU's SGI_base frame.
fn sgi_frame() -> Mmio {
    let rd = REDISTRIBUTORS[arch::cpu_index()].load(Ordering::Relaxed);
    // SAFETY: `init_cpu` found `rd` among the redistributors (or it is the
    // conventional one for this CPU index); the SGI frame follows RD_base.
    unsafe { Mmio::new(rd + GICR_SGI_FRAME) }
}

/// The frame with `intid`'s per-interrupt registers: this CPU's SGI frame
/// (SGIs and PPIs), or the distributor (SPIs).
fn frame_of(intid: u32) -> Mmio {
    if intid < FIRST_SPI {
        sgi_frame()
    } else {
        gicd()
    }
}

fn wait_distributor() {
    while gicd_reg(GICD_CTLR).read32() & GICD_CTLR_RWP != 0 {
        core::hint::spin_loop();
    }
}

/// Turns on affinity routing and group 1 in the distributor.
pub(super) fn init_distributor() {
    let ctlr = gicd_reg(GICD_CTLR);
    // ARE may only change while the groups are disabled.
    ctlr.write32(0);
    wait_distributor();
    ctlr.write32(GICD_CTLR_ARE);
    wait_distributor();
    ctlr.write32(GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
    wait_distributor();
}

/// MPIDR affinity in GICR_TYPER's layout: Aff3.Aff2.Aff1.Aff0.
fn affinity32(mpidr: u64) -> u64 {
    (mpidr & 0xff_ffff) | (((mpidr >> 32) & 0xff) << 24)
}

fn find_redistributor() -> usize {
    let me = affinity32(arch::mpidr());
    for i in 0..GICR_MAX_FRAMES {
        let base = GICR_BASE + i * GICR_STRIDE;
        // SAFETY: frames up to the one marked Last are redistributors.
        let typer = unsafe { Mmio::new(base).offset(GICR_TYPER) }.read64();
        if typer >> 32 == me {
            return base;
        }
        if typer & GICR_TYPER_LAST != 0 {
            break;
        }
    }
    // Not found: QEMU virt orders them by CPU index.
    GICR_BASE + arch::cpu_index() * GICR_STRIDE
}

/// Finds and wakes this CPU's redistributor, then enables the system
/// register CPU interface and group 1 interrupts.
pub(super) fn init_cpu() {
    let rd = find_redistributor();
    REDISTRIBUTORS[arch::cpu_index()].store(rd, Ordering::Relaxed);
    // SAFETY: GICR_WAKER is a register of the redistributor just found.
    let waker = unsafe { Mmio::new(rd).offset(GICR_WAKER) };
    waker.write32(waker.read32() & !GICR_WAKER_PROCESSOR_SLEEP);
    while waker.read32() & GICR_WAKER_CHILDREN_ASLEEP != 0 {
        core::hint::spin_loop();
    }
    // SAFETY: programs this CPU's GIC CPU interface only: system register
    // access on (SRE), every priority unmasked (PMR 0xff), no subpriority
    // split (BPR1 0), EOImode 0, group 1 on. Under Bulkhead these reach the
    // virtual interface; natively boot.S let EL1 use them (ICC_SRE_EL2).
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "msr icc_bpr1_el1, xzr",
            "mrs {t}, icc_ctlr_el1",
            "bic {t}, {t}, #2",
            "msr icc_ctlr_el1, {t}",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        )
    };
}

/// Makes `intid` (checked) a group 1 interrupt and enables it: an SGI or
/// PPI for the calling CPU (its redistributor), an SPI routed to the
/// calling CPU (the distributor).
pub(super) fn enable(intid: u32) {
    let (index, bit) = ((intid / 32) as usize * 4, 1u32 << (intid % 32));
    if intid < FIRST_SPI {
        let sgi = sgi_frame();
        // SAFETY: IGROUPR0/ISENABLER0 of this CPU's SGI frame.
        let (group, enable) = unsafe { (sgi.offset(IGROUPR), sgi.offset(ISENABLER)) };
        group.write32(group.read32() | bit);
        enable.write32(bit);
    } else {
        // SAFETY: IGROUPR<n>, IROUTER<intid>, ISENABLER<n> are in the GICD
        // frame for every intid below 1020.
        let (group, router, enable) = unsafe {
            (
                gicd().offset(IGROUPR + index),
                gicd().offset(GICD_IROUTER + 8 * intid as usize),
                gicd().offset(ISENABLER + index),
            )
        };
        group.write32(group.read32() | bit);
        // IROUTER has MPIDR's layout (Aff3 in 39:32, Aff2..Aff0 in 23:0);
        // Interrupt_Routing_Mode 0: this CPU only.
        router.write64(arch::mpidr() & 0xff_00ff_ffff);
        enable.write32(bit);
    }
}

/// Disables `intid` (checked): ICENABLER0 of this CPU's SGI frame, or
/// ICENABLER<n> of the distributor.
pub(super) fn disable(intid: u32) {
    let offset = if intid < FIRST_SPI {
        ICENABLER
    } else {
        ICENABLER + (intid / 32) as usize * 4
    };
    // SAFETY: ICENABLER0 of this CPU's SGI frame, or ICENABLER<n> of the
    // distributor, for every intid below 1020.
    unsafe { frame_of(intid).offset(offset) }.write32(1 << (intid % 32));
}

/// IPRIORITYR byte of `intid` (checked), in its frame.
pub(super) fn set_priority(intid: u32, priority: u8) {
    // SAFETY: IPRIORITYR is byte-accessible, one byte per INTID below 1020.
    unsafe { frame_of(intid).offset(IPRIORITYR + intid as usize) }.write8(priority);
}

/// ICC_PMR_EL1.
pub(super) fn set_priority_mask(mask: u8) {
    // SAFETY: writes this CPU's priority mask; a compiler barrier.
    unsafe { asm!("msr icc_pmr_el1, {}", in(reg) u64::from(mask), options(nostack)) };
}

/// ICC_IAR1_EL1: acknowledges the highest-priority pending group 1
/// interrupt and returns its INTID (1023 if none).
#[inline(always)]
pub(super) fn acknowledge() -> u32 {
    let intid: u64;
    // SAFETY: acknowledging changes the interrupt's state to active; the
    // caller (irq::dispatch) always ends it with `end_of_interrupt`.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nostack)) };
    (intid & 0xff_ffff) as u32
}

/// ICC_EOIR1_EL1 (EOImode 0): priority drop and deactivation of `intid`.
#[inline(always)]
pub(super) fn end_of_interrupt(intid: u32) {
    // SAFETY: ends an interrupt this CPU acknowledged; a compiler barrier so
    // the handler's stores come first.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nostack)) };
}

/// Writes `value` to ICC_SGI1R_EL1, `dsb ishst` before, `isb` after.
#[inline(always)]
pub(super) fn write_sgi1r(value: u64) {
    // SAFETY: generates SGIs and nothing else; whatever the value, the GIC
    // (or the hypervisor) interrupts only CPUs that exist and are allowed.
    // A compiler barrier (no `nomem`) so that earlier stores, which the
    // handlers may read, are emitted before it.
    unsafe {
        asm!(
            "dsb ishst",
            "msr icc_sgi1r_el1, {}",
            "isb",
            in(reg) value,
            options(nostack, preserves_flags)
        )
    };
}
