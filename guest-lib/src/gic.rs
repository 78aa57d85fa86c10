//! The interrupt controller: a GICv3 or a GICv2, whichever the CPU has,
//! natively and under Bulkhead, with the same API.
//!
//! [`init_distributor`] (the primary CPU, once, before any other CPU runs)
//! decides which: ID_AA64PFR0_EL1.GIC (bits 27:24) is 0 when the CPU has no
//! GICv3 system register interface (QEMU virt with `gic-version=2` reads 0,
//! with `gic-version=3` 1), and then the GIC is taken for a GICv2 (the
//! GIC-400 of the Raspberry Pi 4; under Bulkhead, the partition's virtual
//! GICv2). [`version`] says what was found.
//!
//! The decision costs the GICv3 paths nothing where they are hot: the IRQ
//! entry reaches the GICv2 acknowledge through a second vector table
//! (`vectors.S`), which `init_cpu` installs on each CPU of a GICv2 system
//! only, so the GICv3 entry is the same instructions as before. The rest
//! (enable, priorities, [`send_sgi`]) tests a flag set at init, the GICv2
//! branch marked cold. See `v3` and `v2` for each GIC's registers, and for
//! the accesses a hypervisor has to emulate.
//!
//! SGIs are sent with [`send_sgi`]: one write of ICC_SGI1R_EL1 (GICv3) or of
//! GICD_SGIR (GICv2), which under Bulkhead traps once to the hypervisor,
//! which delivers it.

use core::sync::atomic::{AtomicBool, Ordering};

mod v2;
mod v3;

/// INTIDs 0..1020 are interrupts; 1020..1024 are special (1023: spurious).
pub const INTID_LIMIT: u32 = 1020;
/// The first shared peripheral interrupt; below are SGIs (0..16) and PPIs.
const FIRST_SPI: u32 = 32;

/// Per-interrupt registers at the same offsets in a GICv3's distributor and
/// SGI frame and in a GICv2's distributor.
const ISENABLER: usize = 0x0100;
const ICENABLER: usize = 0x0180;
const IPRIORITYR: usize = 0x0400;

/// The priority [`enable`] gives an interrupt: the middle of the range, so
/// that others can be set above and below it. A GIC's reset priorities are
/// IMPLEMENTATION DEFINED (0 on QEMU and in a Bulkhead partition, 0xff
/// elsewhere, which a priority mask of 0xff never lets through): guest-lib
/// does not depend on them.
pub const DEFAULT_PRIORITY: u8 = 0x80;

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

/// The architecture version of the GIC guest-lib drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// GICv2: memory-mapped distributor and CPU interface, SGIs by
    /// GICD_SGIR.
    V2,
    /// GICv3: ICC_* system registers, redistributors, SGIs by
    /// ICC_SGI1R_EL1.
    V3,
}

/// Set by [`init_distributor`] on a CPU without the GICv3 system register
/// interface; read only after.
static GICV2: AtomicBool = AtomicBool::new(false);

#[inline(always)]
fn is_v2() -> bool {
    GICV2.load(Ordering::Relaxed)
}

/// The GIC found at boot.
pub fn version() -> Version {
    if is_v2() { Version::V2 } else { Version::V3 }
}

/// In an SGI's handler on a GICv2: the CPU interface that sent it
/// (GICC_IAR's CPUID, which is the sending vCPU's index under Bulkhead).
/// `None` on a GICv3, whose SGIs do not say.
pub fn sgi_source() -> Option<usize> {
    is_v2().then(v2::acknowledged_source)
}

/// What [`send_sgi_raw`] (a GICv3 register) refuses on a GICv2, and
/// [`send_sgir_raw`] on a GICv3: the register does not exist there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOnThisGic(pub Version);

/// Detects the GIC and prepares its distributor. Called once by the
/// primary CPU at boot, before any other CPU starts.
pub(crate) fn init_distributor() {
    // ID_AA64PFR0_EL1.GIC, bits 27:24: 0 = no GICv3/v4 system registers.
    let v2 = (crate::arch::id_aa64pfr0() >> 24) & 0xf == 0;
    GICV2.store(v2, Ordering::Relaxed);
    if v2 {
        v2::init_distributor();
    } else {
        v3::init_distributor();
    }
}

/// Prepares this CPU's interface to the GIC (each CPU, at its start). On a
/// GICv2 it also installs the vector table whose IRQ entries acknowledge
/// through GICC (see the module documentation).
pub(crate) fn init_cpu() {
    if is_v2() {
        v2::init_cpu();
        crate::arch::use_gicv2_vectors();
    } else {
        v3::init_cpu();
    }
}

/// Enables `intid` at [`DEFAULT_PRIORITY`]: see [`enable_with_priority`].
pub fn enable(intid: u32) -> Result<(), InvalidIntid> {
    enable_with_priority(intid, DEFAULT_PRIORITY)
}

/// Sets the priority of `intid` (as [`set_priority`]) and enables it. An
/// SGI or PPI (below 32) is enabled for the calling CPU only (GICv3: in its
/// redistributor, as group 1; GICv2: in the distributor's banked
/// registers); an SPI is routed to the calling CPU only and enabled in the
/// distributor. Under Bulkhead an SPI that is not the partition's is
/// ignored by the virtual distributor.
pub fn enable_with_priority(intid: u32, priority: u8) -> Result<(), InvalidIntid> {
    set_priority(intid, priority)?;
    if is_v2() {
        v2::enable(intid);
    } else {
        v3::enable(intid);
    }
    Ok(())
}

/// Disables `intid`: an SGI or PPI for the calling CPU only, an SPI in the
/// distributor. A pending interrupt stays pending and is taken once
/// enabled again.
pub fn disable(intid: u32) -> Result<(), InvalidIntid> {
    check(intid)?;
    if is_v2() {
        v2::disable(intid);
    } else {
        v3::disable(intid);
    }
    Ok(())
}

/// Sets the priority of `intid` (0 highest, 0xff lowest; the CPU interface
/// masks only 0xff). SGIs and PPIs: the calling CPU's; SPIs: in the
/// distributor. QEMU's CPU interfaces and Bulkhead's virtual ones implement
/// 5 priority bits: for a defined order, use priorities that differ in bits
/// 7:3.
pub fn set_priority(intid: u32, priority: u8) -> Result<(), InvalidIntid> {
    check(intid)?;
    if is_v2() {
        v2::set_priority(intid, priority);
    } else {
        v3::set_priority(intid, priority);
    }
    Ok(())
}

/// The CPU interface's priority mask (ICC_PMR_EL1, GICC_PMR): only
/// interrupts with a priority value below `mask` are signalled to this CPU
/// (0xff, the boot value, lets all through).
pub fn set_priority_mask(mask: u8) {
    if is_v2() {
        v2::set_priority_mask(mask);
    } else {
        v3::set_priority_mask(mask);
    }
}

/// A GIC's CPU interface as the IRQ dispatcher uses it: acknowledge, the
/// INTID in what was acknowledged, end of interrupt with it.
pub(crate) trait CpuInterface {
    /// Acknowledges the highest-priority pending interrupt; returns the
    /// value to end it with (its INTID 1023 if none).
    fn acknowledge() -> u32;
    /// The INTID in an acknowledged value.
    fn intid(acknowledged: u32) -> u32;
    /// Priority drop and deactivation (EOImode 0) of what was acknowledged,
    /// `intid` being its INTID: a GICv3 ends by INTID, a GICv2 by the whole
    /// acknowledged value.
    fn end_of_interrupt(acknowledged: u32, intid: u32);
}

/// The GICv3's: ICC_IAR1_EL1 and ICC_EOIR1_EL1.
pub(crate) struct Gicv3;

impl CpuInterface for Gicv3 {
    #[inline(always)]
    fn acknowledge() -> u32 {
        v3::acknowledge()
    }

    #[inline(always)]
    fn intid(acknowledged: u32) -> u32 {
        acknowledged
    }

    #[inline(always)]
    fn end_of_interrupt(_acknowledged: u32, intid: u32) {
        v3::end_of_interrupt(intid);
    }
}

/// The GICv2's: GICC_IAR and GICC_EOIR, the SGI sender's CPUID kept.
pub(crate) struct Gicv2;

impl CpuInterface for Gicv2 {
    #[inline(always)]
    fn acknowledge() -> u32 {
        v2::acknowledge()
    }

    #[inline(always)]
    fn intid(acknowledged: u32) -> u32 {
        acknowledged & v2::IAR_INTID
    }

    #[inline(always)]
    fn end_of_interrupt(acknowledged: u32, _intid: u32) {
        v2::end_of_interrupt(acknowledged);
    }
}

/// Ends `intid`, acknowledged by this CPU and whose handler is running
/// (for `irq::end_now`).
pub(crate) fn end_now(intid: u32) {
    if is_v2() {
        v2::end_now(intid);
    } else {
        v3::end_of_interrupt(intid);
    }
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
    /// Bit n set: CPU (vCPU) n, the one whose MPIDR has Aff0 = n and
    /// Aff1..3 = 0, n < 16. The sender may be among them. Under Bulkhead,
    /// vCPU n's MPIDR is Aff0 = n; natively, on QEMU virt, CPU n's is too.
    /// On a GICv2, CPU n is CPU interface n (QEMU virt, and vCPUs under
    /// Bulkhead), and there are 8 at most: bits 8 and up reach nobody.
    List(u16),
    /// Every CPU (vCPU of the partition) except the sender (GICv3: IRM = 1;
    /// GICv2: TargetListFilter 0b01).
    AllButSelf,
}

impl SgiTargets {
    /// The ICC_SGI1R_EL1 value (GICv3) that sends SGI `intid` (bits 3:0 of
    /// it) to these targets; RS = 0 and Aff1..3 = 0 for a list.
    pub const fn sgi1r(self, intid: u32) -> u64 {
        let intid = ((intid & 0xf) as u64) << SGI1R_INTID_SHIFT;
        match self {
            SgiTargets::List(mask) => intid | mask as u64,
            SgiTargets::AllButSelf => intid | SGI1R_IRM,
        }
    }

    /// The GICD_SGIR value (GICv2) that sends SGI `intid` (bits 3:0 of it)
    /// to these targets: CPUTargetList = list bits 7:0 (TargetListFilter
    /// 0b00), or TargetListFilter 0b01 for all but self; NSATT 0.
    pub const fn sgir(self, intid: u32) -> u32 {
        v2::sgir(self, intid)
    }
}

/// Sends SGI `intid` (below [`SGI_COUNT`]) to `targets`: one write of
/// ICC_SGI1R_EL1 (GICv3, group 1) or GICD_SGIR (GICv2, group 0); under
/// Bulkhead, one trap, whatever the number of targets. A `dsb ishst` before
/// it makes this CPU's earlier stores visible to the handlers it
/// interrupts. Targets that do not exist (or, under Bulkhead, are outside
/// the partition) get nothing.
pub fn send_sgi(targets: SgiTargets, intid: u32) -> Result<(), InvalidIntid> {
    if intid >= SGI_COUNT {
        return Err(InvalidIntid(intid));
    }
    if is_v2() {
        core::hint::cold_path();
        v2::write_sgir(targets.sgir(intid));
    } else {
        v3::write_sgi1r(targets.sgi1r(intid));
    }
    Ok(())
}

/// GICv3 only: writes `value` to ICC_SGI1R_EL1 as it is (any affinity, RS,
/// IRM: tests use it to aim at CPUs that do not exist), between the same
/// barriers as [`send_sgi`]: `dsb ishst` before, `isb` after. On a GICv2,
/// which has no such register (the instruction is UNDEFINED there), it
/// writes nothing and returns `NotOnThisGic(Version::V2)`.
#[inline(always)]
pub fn send_sgi_raw(value: u64) -> Result<(), NotOnThisGic> {
    if is_v2() {
        return Err(NotOnThisGic(Version::V2));
    }
    v3::write_sgi1r(value);
    Ok(())
}

/// GICv2 only: writes `value` to GICD_SGIR as it is (any target list or
/// filter, the reserved filter 0b11 included), after a `dsb ishst`. On a
/// GICv3 (whose GICD_SGIR is not used with affinity routing on) it writes
/// nothing and returns `NotOnThisGic(Version::V3)`.
pub fn send_sgir_raw(value: u32) -> Result<(), NotOnThisGic> {
    if !is_v2() {
        return Err(NotOnThisGic(Version::V3));
    }
    v2::write_sgir(value);
    Ok(())
}
