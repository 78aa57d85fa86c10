//! The GICv3 interrupt controller.
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
//! that view.
//!
//! Accesses, for whoever emulates them: 32-bit reads and writes of GICD_CTLR,
//! IGROUPR, ISENABLER and GICR_WAKER; 64-bit reads of GICR_TYPER and 64-bit
//! writes of GICD_IROUTER; byte writes of IPRIORITYR.
//!
//! SGIs are sent with [`send_sgi`]: one write of ICC_SGI1R_EL1, which under
//! Bulkhead traps once to the hypervisor, which delivers it.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::{self, MAX_CPUS, Mmio};

/// INTIDs 0..1020 are interrupts; 1020..1024 are special (1023: spurious).
pub const INTID_LIMIT: u32 = 1020;
/// The first shared peripheral interrupt; below are SGIs (0..16) and PPIs.
const FIRST_SPI: u32 = 32;

/// An INTID outside 0..[`INTID_LIMIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidIntid(pub u32);

fn check(intid: u32) -> Result<(), InvalidIntid> {
    if intid < INTID_LIMIT {
        Ok(())
    } else {
        Err(InvalidIntid(intid))
    }
}

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
/// Per-interrupt registers, the same offsets in GICD and in the SGI frame.
const IGROUPR: usize = 0x0080;
const ICENABLER: usize = 0x0180;
const ISENABLER: usize = 0x0100;
const IPRIORITYR: usize = 0x0400;
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

fn wait_distributor() {
    while gicd_reg(GICD_CTLR).read32() & GICD_CTLR_RWP != 0 {
        core::hint::spin_loop();
    }
}

/// Turns on affinity routing and group 1 in the distributor. Called once
/// by the primary CPU at boot.
pub(crate) fn init_distributor() {
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

/// Prepares this CPU: finds and wakes its redistributor, then enables the
/// system register CPU interface and group 1 interrupts.
pub(crate) fn init_cpu() {
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

/// Enables `intid` as a group 1 interrupt. An SGI or PPI (below 32) is
/// enabled for the calling CPU only, in its redistributor; an SPI is routed
/// to the calling CPU and enabled in the distributor. Under Bulkhead an SPI
/// that is not the partition's is ignored by the virtual distributor.
pub fn enable(intid: u32) -> Result<(), InvalidIntid> {
    check(intid)?;
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
    Ok(())
}

/// Disables `intid`: an SGI or PPI for the calling CPU only (its
/// redistributor), an SPI in the distributor. A pending interrupt stays
/// pending and is taken once enabled again.
pub fn disable(intid: u32) -> Result<(), InvalidIntid> {
    check(intid)?;
    let (index, bit) = ((intid / 32) as usize * 4, 1u32 << (intid % 32));
    let frame = if intid < FIRST_SPI {
        sgi_frame()
    } else {
        gicd()
    };
    let offset = if intid < FIRST_SPI {
        ICENABLER
    } else {
        ICENABLER + index
    };
    // SAFETY: ICENABLER0 of this CPU's SGI frame, or ICENABLER<n> of the
    // distributor, for every intid below 1020.
    unsafe { frame.offset(offset) }.write32(bit);
    Ok(())
}

/// Sets the priority of `intid` (0 highest, 0xff lowest; the CPU interface
/// masks only 0xff). SGIs and PPIs: the calling CPU's, in its
/// redistributor; SPIs: in the distributor. QEMU's CPU interface and its
/// virtual one (ICH_VTR_EL2.PRIbits) implement 5 priority bits: for a
/// defined order, use priorities that differ in bits 7:3.
pub fn set_priority(intid: u32, priority: u8) -> Result<(), InvalidIntid> {
    check(intid)?;
    let frame = if intid < FIRST_SPI {
        sgi_frame()
    } else {
        gicd()
    };
    // SAFETY: IPRIORITYR is byte-accessible, one byte per INTID below 1020.
    unsafe { frame.offset(IPRIORITYR + intid as usize) }.write8(priority);
    Ok(())
}

/// ICC_PMR_EL1: only interrupts with a priority value below `mask` are
/// signalled to this CPU (0xff, the boot value, lets all through).
pub fn set_priority_mask(mask: u8) {
    // SAFETY: writes this CPU's priority mask; a compiler barrier.
    unsafe { asm!("msr icc_pmr_el1, {}", in(reg) u64::from(mask), options(nostack)) };
}

/// ICC_IAR1_EL1: acknowledges the highest-priority pending group 1
/// interrupt and returns its INTID (1023 if none).
pub(crate) fn acknowledge() -> u32 {
    let intid: u64;
    // SAFETY: acknowledging changes the interrupt's state to active; the
    // caller (irq::dispatch) always ends it with `end_of_interrupt`.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nostack)) };
    (intid & 0xff_ffff) as u32
}

/// ICC_EOIR1_EL1 (EOImode 0): priority drop and deactivation of `intid`.
pub(crate) fn end_of_interrupt(intid: u32) {
    // SAFETY: ends an interrupt this CPU acknowledged; a compiler barrier so
    // the handler's stores come first.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nostack)) };
}

// --- Software generated interrupts ---

/// SGIs are INTIDs 0..16.
pub const SGI_COUNT: u32 = 16;

/// ICC_SGI1R_EL1 fields (Arm IHI 0069, 12.11.x): TargetList 15:0, Aff1
/// 23:16, INTID 27:24, Aff2 39:32, IRM 40, RS 47:44, Aff3 55:48.
const SGI1R_INTID_SHIFT: u32 = 24;
/// Interrupt Routing Mode 1: every PE but the sender (targets ignored).
const SGI1R_IRM: u64 = 1 << 40;

/// Whom [`send_sgi`] interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTargets {
    /// Bit n set: the CPU (vCPU) whose MPIDR has Aff0 = n and Aff1..3 = 0,
    /// n < 16. The sender may be among them. Under Bulkhead, vCPU n's
    /// MPIDR is Aff0 = n; natively, on QEMU virt, CPU n's is too.
    List(u16),
    /// Every CPU (vCPU of the partition) except the sender: IRM = 1.
    AllButSelf,
}

impl SgiTargets {
    /// The ICC_SGI1R_EL1 value that sends SGI `intid` (bits 3:0 of it) to
    /// these targets; RS = 0 and Aff1..3 = 0 for a list.
    pub const fn sgi1r(self, intid: u32) -> u64 {
        let intid = ((intid & 0xf) as u64) << SGI1R_INTID_SHIFT;
        match self {
            SgiTargets::List(mask) => intid | mask as u64,
            SgiTargets::AllButSelf => intid | SGI1R_IRM,
        }
    }
}

/// Sends SGI `intid` (below [`SGI_COUNT`]) to `targets` as group 1: one
/// write of ICC_SGI1R_EL1 (under Bulkhead, one trap, whatever the number of
/// targets). A `dsb ishst` before it makes this CPU's earlier stores
/// visible to the handlers it interrupts. Targets that do not exist (or,
/// under Bulkhead, are outside the partition) get nothing.
pub fn send_sgi(targets: SgiTargets, intid: u32) -> Result<(), InvalidIntid> {
    if intid >= SGI_COUNT {
        return Err(InvalidIntid(intid));
    }
    send_sgi_raw(targets.sgi1r(intid));
    Ok(())
}

/// Writes `value` to ICC_SGI1R_EL1 as it is (any affinity, RS, IRM: tests
/// use it to aim at CPUs that do not exist), between the same barriers as
/// [`send_sgi`]: `dsb ishst` before, `isb` after.
#[inline(always)]
pub fn send_sgi_raw(value: u64) {
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
