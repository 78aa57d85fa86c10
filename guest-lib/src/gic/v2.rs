//! GICv2 (Arm IHI 0048B; the GIC-400): a memory-mapped distributor (GICD,
//! 4 KiB) and a memory-mapped CPU interface (GICC, 8 KiB). Under Bulkhead
//! the GICC frame is the virtual CPU interface (the GICV frame, mapped by
//! stage 2 at the GICC address: no trap), the GICD the partition's emulated
//! one.
//!
//! No security extensions are seen (QEMU virt without EL3, or a partition):
//! every interrupt stays in group 0 (IGROUPR's reset value), and GICC_CTLR
//! with FIQEn clear signals group 0 as IRQ. EOImode is 0: one write of
//! GICC_EOIR drops the priority and deactivates. For an SGI, GICC_IAR's
//! CPUID field (bits 12:10, the sender's CPU interface) must go back into
//! GICC_EOIR unchanged: the value acknowledged is the value ended.
//!
//! The frames' addresses are QEMU virt's ([`QEMU_VIRT`]), which a partition
//! under Bulkhead on that board sees too; they are kept in [`FRAMES`], set
//! once by [`init_distributor`], so that a later change can take them from
//! the device tree (the Raspberry Pi 4's GIC-400 has GICD at 0xFF84_1000
//! and GICC at 0xFF84_2000, outside guest-lib's identity map today).
//!
//! Accesses, for whoever emulates them: 32-bit reads and writes of
//! GICD_CTLR, ISENABLER, ICENABLER, GICD_SGIR and of the GICC registers; a
//! 32-bit read of ITARGETSR0; byte writes of IPRIORITYR and ITARGETSR.

use core::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

use super::{FIRST_SPI, ICENABLER, IPRIORITYR, ISENABLER, SgiTargets};
use crate::arch::{self, MAX_CPUS, Mmio};

/// Where a GICv2's two frames are.
#[derive(Clone, Copy, Debug)]
struct Frames {
    distributor: usize,
    cpu_interface: usize,
}

/// QEMU virt with `gic-version=2` (hw/arm/virt.c), and a partition's
/// virtual GICv2 under Bulkhead on that board.
const QEMU_VIRT: Frames = Frames {
    distributor: 0x0800_0000,
    cpu_interface: 0x0801_0000,
};

/// The frames in use: [`Frames::distributor`], [`Frames::cpu_interface`].
/// Written once by the primary CPU in `init_distributor`, before any other
/// CPU starts; read only after.
static FRAMES: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

// GICD registers (and the per-interrupt ones shared with GICv3, in super).
const GICD_CTLR: usize = 0x000;
/// GICD_CTLR.Enable (EnableGrp0 when the GIC implements grouping).
const GICD_CTLR_ENABLE: u32 = 1;
/// GICD_ITARGETSR<n>: one byte per INTID, the CPU interfaces an SPI goes
/// to; read-only for INTIDs 0..32, where each byte reads the reader's own
/// interface bit.
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xF00;

// GICC registers.
const GICC_CTLR: usize = 0x00;
/// GICC_CTLR.EnableGrp0 (Enable); FIQEn, EOImode and the rest 0.
const GICC_CTLR_ENABLE: u32 = 1;
const GICC_PMR: usize = 0x04;
const GICC_BPR: usize = 0x08;
const GICC_IAR: usize = 0x0C;
const GICC_EOIR: usize = 0x10;
/// GICC_IAR / GICC_EOIR: the INTID field (bits 9:0); bits 12:10 are the
/// CPUID of an SGI's sender.
pub(super) const IAR_INTID: u32 = 0x3ff;

/// GICD_SGIR fields: TargetListFilter 25:24, CPUTargetList 23:16, SGIINTID
/// 3:0 (NSATT 15 is 0).
const SGIR_FILTER_SHIFT: u32 = 24;
const SGIR_TARGETS_SHIFT: u32 = 16;
/// TargetListFilter 0b01: every CPU interface but the sender's.
const SGIR_FILTER_ALL_BUT_SELF: u32 = 0b01;

/// Each CPU's interface bit as its ITARGETSR0 reads (by CPU index); 0 until
/// that CPU's `init_cpu`.
static INTERFACES: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

/// The GICC_IAR value each CPU acknowledged last, for `irq::end_now`.
static ACKNOWLEDGED: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// GICC_IAR's CPUID (bits 12:10) of this CPU's last acknowledge.
pub(super) fn acknowledged_source() -> usize {
    (ACKNOWLEDGED[arch::cpu_index()].load(Ordering::Relaxed) >> 10 & 0x7) as usize
}

fn gicd(offset: usize) -> Mmio {
    // SAFETY: FRAMES[0] is a GICv2 distributor (4 KiB) in the identity
    // map's Device range, set before any use; the offsets used are its
    // registers.
    unsafe { Mmio::new(FRAMES[0].load(Ordering::Relaxed) + offset) }
}

fn gicc(offset: usize) -> Mmio {
    // SAFETY: FRAMES[1] is a GICv2 CPU interface (8 KiB; under Bulkhead the
    // GICV frame) in the identity map's Device range, set before any use;
    // the offsets used are its registers.
    unsafe { Mmio::new(FRAMES[1].load(Ordering::Relaxed) + offset) }
}

/// Records the frames (QEMU virt's) and enables the distributor.
pub(super) fn init_distributor() {
    FRAMES[0].store(QEMU_VIRT.distributor, Ordering::Relaxed);
    FRAMES[1].store(QEMU_VIRT.cpu_interface, Ordering::Relaxed);
    gicd(GICD_CTLR).write32(GICD_CTLR_ENABLE);
}

/// Learns this CPU's interface bit and enables its CPU interface: every
/// priority unmasked (PMR 0xff), no subpriority split (BPR 0, raised to the
/// implementation's minimum), EOImode 0, group 0 as IRQ.
pub(super) fn init_cpu() {
    // Byte 0 of ITARGETSR0 (SGI 0) reads this CPU's interface bit. A
    // uniprocessor GIC reads 0 there: then CPU index n is interface n.
    let mine = gicd(GICD_ITARGETSR).read32() as u8;
    let mine = if mine == 0 {
        1 << (arch::cpu_index() % 8)
    } else {
        mine
    };
    INTERFACES[arch::cpu_index()].store(mine, Ordering::Relaxed);
    gicc(GICC_PMR).write32(0xff);
    gicc(GICC_BPR).write32(0);
    gicc(GICC_CTLR).write32(GICC_CTLR_ENABLE);
}

/// Enables `intid` (checked): an SGI or PPI for the calling CPU
/// (ISENABLER0 is banked per CPU), an SPI routed to the calling CPU's
/// interface only (its ITARGETSR byte).
pub(super) fn enable(intid: u32) {
    if intid >= FIRST_SPI {
        let mine = INTERFACES[arch::cpu_index()].load(Ordering::Relaxed);
        gicd(GICD_ITARGETSR + intid as usize).write8(mine);
    }
    gicd(ISENABLER + (intid / 32) as usize * 4).write32(1 << (intid % 32));
}

/// Disables `intid` (checked) with ICENABLER<n> (banked for n = 0).
pub(super) fn disable(intid: u32) {
    gicd(ICENABLER + (intid / 32) as usize * 4).write32(1 << (intid % 32));
}

/// IPRIORITYR byte of `intid` (checked; banked per CPU below 32).
pub(super) fn set_priority(intid: u32, priority: u8) {
    gicd(IPRIORITYR + intid as usize).write8(priority);
}

/// GICC_PMR.
pub(super) fn set_priority_mask(mask: u8) {
    gicc(GICC_PMR).write32(u32::from(mask));
}

/// GICC_IAR: acknowledges the highest-priority pending interrupt and
/// returns the whole value (INTID in bits 9:0, 1023 if none), which is
/// also kept for `end_now`.
#[inline(always)]
pub(super) fn acknowledge() -> u32 {
    let iar = gicc(GICC_IAR).read32();
    ACKNOWLEDGED[arch::cpu_index()].store(iar, Ordering::Relaxed);
    iar
}

/// GICC_EOIR (EOImode 0): priority drop and deactivation of the interrupt
/// `iar` acknowledged (GICC_IAR's value, CPUID included).
#[inline(always)]
pub(super) fn end_of_interrupt(iar: u32) {
    gicc(GICC_EOIR).write32(iar);
}

/// Ends `intid`, whose handler is running: with the value this CPU
/// acknowledged last if that was `intid` (an SGI's CPUID with it).
pub(super) fn end_now(intid: u32) {
    let iar = ACKNOWLEDGED[arch::cpu_index()].load(Ordering::Relaxed);
    end_of_interrupt(if iar & IAR_INTID == intid { iar } else { intid });
}

/// The GICD_SGIR value that sends SGI `intid` (bits 3:0) to `targets`:
/// CPU index n is CPU interface n (QEMU virt, and vCPUs under Bulkhead);
/// list bits 8 and up name no interface and are dropped.
pub(super) const fn sgir(targets: SgiTargets, intid: u32) -> u32 {
    let intid = intid & 0xf;
    match targets {
        SgiTargets::List(mask) => ((mask & 0xff) as u32) << SGIR_TARGETS_SHIFT | intid,
        SgiTargets::AllButSelf => SGIR_FILTER_ALL_BUT_SELF << SGIR_FILTER_SHIFT | intid,
    }
}

/// Writes `value` to GICD_SGIR, after a `dsb ishst` that makes this CPU's
/// earlier stores visible to the handlers it interrupts.
pub(super) fn write_sgir(value: u32) {
    // SAFETY: a barrier only; a compiler barrier too (no `nomem`), so the
    // earlier stores are emitted before it.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
    gicd(GICD_SGIR).write32(value);
}
