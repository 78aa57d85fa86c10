//! The GICv3 backend: the physical GICv3 at EL2 and its virtual CPU
//! interface (ICH_*), behind [`GicBackend`].
//!
//! Distributor and redistributor programming goes through the `arm-gic`
//! crate. The CPU interface on the hot paths (acknowledge, priority drop,
//! deactivate, SGIs) and the virtualization interface (ICH_* list
//! registers), which `arm-gic` does not cover, are the small typed
//! functions below.
//!
//! EOImode = 1: at EL2 a write to ICC_EOIR1_EL1 only drops the running
//! priority. An interrupt forwarded to a guest with the list register's HW
//! bit is deactivated by the guest's own EOI, with no exit; anything the
//! hypervisor consumes itself it deactivates with ICC_DIR_EL1.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{
    ICC_SRE_EL2, ICH_AP0R0_EL2, ICH_AP0R1_EL2, ICH_AP0R2_EL2, ICH_AP0R3_EL2, ICH_AP1R0_EL2,
    ICH_AP1R1_EL2, ICH_AP1R2_EL2, ICH_AP1R3_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2,
    ICH_LR2_EL2, ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2,
    ICH_LR9_EL2, ICH_LR10_EL2, ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2,
    ICH_LR15_EL2, ICH_VMCR_EL2, ICH_VTR_EL2, MPIDR_EL1,
};
use arm_gic::gicv3::GicV3 as Driver;
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::{IntId, Trigger};
use safe_mmio::UniqueMmioPointer;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::WriteOnly;

pub mod fast;

use super::banks::{Bank, Banks};
use super::{FastBlock, FastFill, GicBackend, SgiWrite};
use crate::arch::sysreg::{
    ICC_BPR1_EL1, ICC_CTLR_EL1, ICC_DIR_EL1, ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_IGRPEN1_EL1,
    ICC_INTID, ICC_PMR_EL1, ICC_SGI1R_EL1, ICH_ELRSR_EL2, ICH_HCR_EL2_TALL1,
};
use crate::config::GicConfig;
use crate::mm::{Ipa, PhysAddr};
use crate::trap::{SysRegAccess, sysreg};
use crate::vgic::lr::{Entry, ListRegisters, format};
use crate::vgic::sgi::SgiRequest;
use crate::vgic::state::PrivateIrqs;

/// The physical SGI the hypervisor uses to kick another CPU into EL2.
/// Guests never see physical SGIs, so any number is free; 0 it is.
pub const KICK_SGI: u32 = 0;
/// What ICC_IAR1_EL1 returns when nothing is pending.
pub const SPURIOUS: u32 = 1023;
/// ICC_SGI1R_EL1 as a trapped access names it (`trap::sysreg`): a group-1
/// SGI, the one a guest sends.
const SGI1R_ENCODING: u32 = sysreg(3, 0, 12, 11, 5);
/// ICC_ASGI1R_EL1 and ICC_SGI0R_EL1: with GICD_CTLR.DS = 1 (one security
/// state, as a partition's GIC has) both generate group 0 SGIs, and every
/// SGI of a partition is group 1: they reach no vCPU, as on such a GIC.
const ASGI1R_ENCODING: u32 = sysreg(3, 0, 12, 11, 6);
const SGI0R_ENCODING: u32 = sysreg(3, 0, 12, 11, 7);
/// The guest's CPU interface registers that [`GicBackend::ack_trap_access`]
/// knows, as a trapped access names them (Arm IHI 0069, 12.2): what
/// ICH_HCR_EL2.TALL1 traps, ICC_IAR1_EL1, EOIR1, HPPIR1, BPR1, IGRPEN1 and
/// AP1R0..3, and the common ones TC would trap (never set: handled the same
/// way all the same), CTLR, DIR, RPR and PMR.
const ACK_TRAPPED: [u32; 13] = [
    sysreg(3, 0, 12, 12, 0), // IAR1
    sysreg(3, 0, 12, 12, 1), // EOIR1
    sysreg(3, 0, 12, 12, 2), // HPPIR1
    sysreg(3, 0, 12, 12, 3), // BPR1
    sysreg(3, 0, 12, 12, 7), // IGRPEN1
    sysreg(3, 0, 12, 9, 0),  // AP1R0
    sysreg(3, 0, 12, 9, 1),  // AP1R1
    sysreg(3, 0, 12, 9, 2),  // AP1R2
    sysreg(3, 0, 12, 9, 3),  // AP1R3
    sysreg(3, 0, 12, 12, 4), // CTLR
    sysreg(3, 0, 12, 11, 1), // DIR
    sysreg(3, 0, 12, 11, 3), // RPR
    sysreg(3, 0, 4, 6, 0),   // PMR
];
/// Priority of every interrupt the hypervisor enables (the GIC's highest
/// non-secure level; all are equal, none preempts another at EL2).
const PRIORITY: u8 = 0x80;

/// The driver, behind a lock; `arm-gic`'s pointers are not `Send`. Used at
/// boot only: at run time the hypervisor changes the physical GIC through
/// the single-register writes of [`GicBackend`], which need no lock.
struct Gic(Driver<'static>);

// SAFETY: the GIC registers are device memory reachable from every CPU;
// the lock around `Gic` serialises all use of the driver.
unsafe impl Send for Gic {}

static GIC: spin::Mutex<Option<Gic>> = spin::Mutex::new(None);

register_structs! {
    /// The distributor's IROUTER<n> registers, which the hypervisor writes
    /// at run time one interrupt's at a time (its set/clear banks are
    /// [`Banks`]).
    GicdRouters {
        (0x0000 => _reserved0),
        /// IROUTER<n> for INTID 32 + n.
        (0x6100 => irouter: [WriteOnly<u64>; 988]),
        (0x7fe0 => _reserved1),
        (0x10000 => @END),
    }
}

/// GICD's and CPU 0's GICR's addresses, set once at boot.
static GICD_BASE: AtomicU64 = AtomicU64::new(0);
static GICR_BASE: AtomicU64 = AtomicU64::new(0);
/// One redistributor: RD_base and SGI_base, 64 KiB each.
const GICR_STRIDE: u64 = 0x2_0000;
const GICR_SGI_BASE: u64 = 0x1_0000;

/// The distributor's set/clear banks, for SPIs.
fn gicd_banks() -> &'static Banks {
    // SAFETY: the board's GICD (checked against the boot device tree),
    // mapped as device memory for the hypervisor's lifetime; each write
    // affects only the interrupts it names.
    unsafe { &*(GICD_BASE.load(Ordering::Relaxed) as *const Banks) }
}

fn gicd_routers() -> &'static GicdRouters {
    // SAFETY: as for `gicd_banks`: one IROUTER, one interrupt, a write.
    unsafe { &*(GICD_BASE.load(Ordering::Relaxed) as *const GicdRouters) }
}

/// CPU `cpu`'s redistributor SGI_base banks, for INTIDs 0..32.
fn gicr_banks(cpu: usize) -> &'static Banks {
    let base = GICR_BASE.load(Ordering::Relaxed) + cpu as u64 * GICR_STRIDE + GICR_SGI_BASE;
    // SAFETY: CPU `cpu`'s redistributor SGI frame (a board CPU index: the
    // frames are contiguous, as `init_distributor` found them), mapped as
    // device memory; each write affects only the interrupts it names.
    unsafe { &*(base as *const Banks) }
}

/// Sets (`on`) or clears SPI `intid`'s bit in `bank` at the distributor:
/// one write of one bit, no lock, so no partition can make another wait
/// here.
fn spi_bank(bank: Bank, intid: u32, on: bool) {
    if (32..1020).contains(&intid) {
        gicd_banks().write(bank, intid, on);
    }
}

/// The same for private interrupt `intid` (below 32) in CPU `cpu`'s
/// redistributor.
fn private_bank(bank: Bank, cpu: usize, intid: u32, on: bool) {
    if intid < 32 {
        gicr_banks(cpu).write(bank, intid, on);
    }
}

/// The ICC_SGI1R_EL1 value that sends SGI `intid` to the CPU with
/// affinity `mpidr` (Aff0 below 16, as on every board we describe).
pub fn sgi1r_value(intid: u32, mpidr: u64) -> u64 {
    let aff0 = MPIDR_EL1::Aff0.read(mpidr) & 0xf;
    (ICC_SGI1R_EL1::Aff3.val(MPIDR_EL1::Aff3.read(mpidr))
        + ICC_SGI1R_EL1::Aff2.val(MPIDR_EL1::Aff2.read(mpidr))
        + ICC_SGI1R_EL1::INTID.val(u64::from(intid))
        + ICC_SGI1R_EL1::Aff1.val(MPIDR_EL1::Aff1.read(mpidr))
        + ICC_SGI1R_EL1::TargetList.val(1 << aff0))
    .value
}

// The typed fields are those the guest's writes are decoded with
// (`vgic::sgi`, host-tested without `aarch64-cpu`).
const _: () = {
    use crate::vgic::sgi::field;
    assert!(ICC_SGI1R_EL1::TargetList::SET.value == field::TARGET_LIST);
    assert!(ICC_SGI1R_EL1::Aff1::SET.value == field::AFF1);
    assert!(ICC_SGI1R_EL1::INTID::SET.value == field::INTID);
    assert!(ICC_SGI1R_EL1::Aff2::SET.value == field::AFF2);
    assert!(ICC_SGI1R_EL1::IRM::SET.value == field::IRM);
    assert!(ICC_SGI1R_EL1::RS::SET.value == field::RS);
    assert!(ICC_SGI1R_EL1::Aff3::SET.value == field::AFF3);
};

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1), read once at boot:
/// every CPU of a system has the same.
static LIST_REGISTERS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

#[inline(always)]
pub fn list_register_count() -> usize {
    LIST_REGISTERS.load(core::sync::atomic::Ordering::Relaxed)
}

/// ICH_ELRSR_EL2: bit n set when list register n holds nothing.
#[inline(always)]
pub fn empty_list_registers() -> u64 {
    ICH_ELRSR_EL2.get()
}

/// Writes list register `n` (ICH_LR<n>_EL2); `n` beyond 15 is ignored.
#[inline(always)]
pub fn write_lr(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        3 => ICH_LR3_EL2.set(value),
        4 => ICH_LR4_EL2.set(value),
        5 => ICH_LR5_EL2.set(value),
        6 => ICH_LR6_EL2.set(value),
        7 => ICH_LR7_EL2.set(value),
        8 => ICH_LR8_EL2.set(value),
        9 => ICH_LR9_EL2.set(value),
        10 => ICH_LR10_EL2.set(value),
        11 => ICH_LR11_EL2.set(value),
        12 => ICH_LR12_EL2.set(value),
        13 => ICH_LR13_EL2.set(value),
        14 => ICH_LR14_EL2.set(value),
        15 => ICH_LR15_EL2.set(value),
        _ => {}
    }
}

/// Reads list register `n` (ICH_LR<n>_EL2); `n` beyond 15 reads 0.
#[inline(always)]
pub fn read_lr(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        15 => ICH_LR15_EL2.get(),
        _ => 0,
    }
}

/// This CPU's list registers, for the vGIC's delivery policy.
#[derive(Debug)]
pub struct HwListRegisters;

impl ListRegisters for HwListRegisters {
    #[inline(always)]
    fn count(&self) -> usize {
        list_register_count()
    }
    #[inline(always)]
    fn empty(&self) -> u64 {
        empty_list_registers()
    }
    #[inline(always)]
    fn read(&self, n: usize) -> Entry {
        format::gicv3::decode(read_lr(n))
    }
    #[inline(always)]
    fn write(&mut self, n: usize, entry: Entry) {
        write_lr(n, format::gicv3::encode(entry))
    }
}

/// The GICv3 backend.
#[derive(Debug)]
pub struct GicV3;

impl GicBackend for GicV3 {
    type ListRegisters = HwListRegisters;

    const SPURIOUS: u32 = SPURIOUS;
    const KICK_SGI: u32 = KICK_SGI;
    const KICK_DRAINED: u32 = fast::KICK_DRAINED;

    /// Boot CPU, once: the distributor. Affinity routing on, every SPI group 1,
    /// level-triggered, disabled; enabling comes from ownership later.
    fn init_distributor(gic: &GicConfig, cpus: usize) {
        let GicConfig::V3 {
            distributor: gicd,
            redistributor: gicr,
            ..
        } = *gic
        else {
            // The build refuses any other GIC for this backend.
            panic!("a GICv3 board");
        };
        let (gicd, gicr) = (gicd.as_u64(), gicr.as_u64());
        GICD_BASE.store(gicd, Ordering::Relaxed);
        GICR_BASE.store(gicr, Ordering::Relaxed);
        let gicd = NonNull::new(gicd as *mut Gicd).expect("board GICD address is not null");
        let gicr = NonNull::new(gicr as *mut GicrSgi).expect("board GICR address is not null");
        // SAFETY: the addresses come from the checked board description and were
        // matched against the boot device tree; they are mapped as device memory
        // and only this driver (behind GIC's lock) touches them.
        let gic = unsafe { Driver::new(UniqueMmioPointer::new(gicd), gicr, cpus) }
            // Not `expect`: `GicError`'s Debug text costs more image than it tells.
            .unwrap_or_else(|_| panic!("the GICR frames the board describes are present"));
        let mut gic = Gic(gic);
        gic.0.distributor().configure_default_settings();
        gic.0.distributor().enable_all_interrupts(false);
        *GIC.lock() = Some(gic);
    }

    /// On each CPU: wake its redistributor, set its SGIs and PPIs to group 1 and
    /// disabled, then enable the hypervisor's own: the kick SGI and, when the
    /// CPU runs a vCPU, the maintenance interrupt and the EL2 timer. (The
    /// EL1 timers' PPIs follow the guest's virtual enables: see
    /// `private_enable`.) Then the EL2 CPU interface.
    fn init_cpu(cpu: usize, runs_vcpu: bool, maintenance_intid: u32) {
        {
            let mut guard = GIC.lock();
            let gic = &mut guard.as_mut().expect("distributor initialised first").0;
            let mut redist = gic
                .redistributor(cpu)
                .unwrap_or_else(|_| panic!("CPU index within the board"));
            // An already-awake redistributor is fine.
            let _ = redist.mark_core_awake();
            redist.configure_default_settings();
            let id = |intid: u32| {
                if intid < 16 {
                    IntId::sgi(intid)
                } else {
                    IntId::ppi(intid - 16)
                }
            };
            // A CPU that runs a vCPU also takes its EL2 timer (the console's
            // retry for the partition's output).
            let enabled = [KICK_SGI]
                .into_iter()
                .chain(runs_vcpu.then_some(maintenance_intid))
                .chain(runs_vcpu.then_some(crate::arch::HYP_TIMER_INTID));
            [KICK_SGI, maintenance_intid, crate::arch::HYP_TIMER_INTID]
                .into_iter()
                .chain(crate::vgic::state::forwarded_ppis())
                .try_for_each(|intid| redist.set_interrupt_priority(id(intid), PRIORITY))
                .and_then(|()| {
                    enabled
                        .into_iter()
                        .try_for_each(|intid| redist.enable_interrupt(id(intid), true))
                })
                .unwrap_or_else(|_| panic!("SGI and PPI numbers are valid"));
        }
        // The system register interface (SRE), IRQ and FIQ bypass off (DIB,
        // DFB), and EL1 may use its system registers (ENABLE).
        ICC_SRE_EL2.write(
            ICC_SRE_EL2::SRE::SET
                + ICC_SRE_EL2::DFB::SET
                + ICC_SRE_EL2::DIB::SET
                + ICC_SRE_EL2::ENABLE::SET,
        );
        // SAFETY: a context synchronisation barrier.
        unsafe { core::arch::asm!("isb", options(nomem, nostack, preserves_flags)) };
        // Every priority passes.
        ICC_PMR_EL1.write(ICC_PMR_EL1::Priority.val(0xff));
        ICC_BPR1_EL1.write(ICC_BPR1_EL1::BinaryPoint.val(0));
        // Priority drop and deactivation split (see the module's doc).
        ICC_CTLR_EL1.write(ICC_CTLR_EL1::EOImode::DropOnly);
        ICC_IGRPEN1_EL1.write(ICC_IGRPEN1_EL1::Enable::SET);
        // The virtual CPU interface is on.
        ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
        ICH_VMCR_EL2.set(0); // the guest programs its own
        let count = ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1;
        LIST_REGISTERS.store(count, core::sync::atomic::Ordering::Relaxed);
        for n in 0..list_register_count() {
            write_lr(n, 0);
        }
    }

    /// Acknowledges the highest-priority pending group-1 interrupt.
    #[inline(always)]
    fn acknowledge() -> u32 {
        ICC_IAR1_EL1.read(ICC_INTID::INTID) as u32
    }

    /// Drops the running priority (EOImode 1: does not deactivate).
    #[inline(always)]
    fn priority_drop(intid: u32) {
        // A plain `set`: `intid` is an acknowledged INTID, within the field.
        ICC_EOIR1_EL1.set(u64::from(intid));
    }

    /// Deactivates an interrupt the hypervisor consumed itself.
    #[inline(always)]
    fn deactivate(intid: u32) {
        ICC_DIR_EL1.set(u64::from(intid));
    }

    /// Sends physical SGI `intid` to the CPU with affinity `mpidr`.
    fn send_sgi(intid: u32, mpidr: u64) {
        let value = sgi1r_value(intid, mpidr);
        // SAFETY: barriers order earlier stores (the state the target will read)
        // before the SGI; no memory is accessed.
        unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
        ICC_SGI1R_EL1.set(value);
        // SAFETY: a context synchronisation barrier.
        unsafe { core::arch::asm!("isb", options(nomem, nostack, preserves_flags)) };
    }

    /// Boot only (under the driver's lock): programs SPI `intid` once, its
    /// trigger the board's (never changed after), routed to the CPU with
    /// affinity `mpidr`, enabled or not.
    fn configure_spi_at_boot(intid: u32, mpidr: u64, edge: bool, enabled: bool) {
        let mut guard = GIC.lock();
        let gic = &mut guard.as_mut().expect("GIC initialised at boot").0;
        let Some(spi) = intid.checked_sub(32) else {
            return;
        };
        let id = IntId::spi(spi);
        let dist = gic.distributor();
        let trigger = if edge { Trigger::Edge } else { Trigger::Level };
        // Errors mean an INTID beyond the GIC, which the configuration check rules out.
        let _ = dist.enable_interrupt(id, false);
        let _ = dist.set_routing(id, Some(mpidr));
        let _ = dist.set_trigger(id, trigger);
        let _ = dist.enable_interrupt(id, enabled);
    }

    /// Enables or disables SPI `intid` in the distributor. (Not waiting for
    /// GICD_CTLR.RWP is deliberate: an interrupt that still arrives after a
    /// disable is handled as one that raced it, see `hyp::interrupts::forward`.)
    fn spi_enable(intid: u32, enabled: bool) {
        spi_bank(Bank::Enable, intid, enabled);
    }

    /// Sets or clears SPI `intid`'s pending state at the distributor (a
    /// forwarded interrupt's pending state is the physical one).
    fn spi_set_pending(intid: u32, pending: bool) {
        spi_bank(Bank::Pending, intid, pending);
    }

    /// Sets or clears SPI `intid`'s active state at the distributor.
    fn spi_set_active(intid: u32, active: bool) {
        spi_bank(Bank::Active, intid, active);
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` (IRM = 0): one
    /// 64-bit write of its own IROUTER.
    fn spi_route(intid: u32, mpidr: u64) {
        if let Some(reg) = intid
            .checked_sub(32)
            .and_then(|n| gicd_routers().irouter.get(n as usize))
        {
            reg.set(mpidr & 0xff_00ff_ffff);
        }
    }

    /// SPI `intid`'s (pending, active) state at the distributor.
    fn spi_state(intid: u32) -> (bool, bool) {
        if !(32..1020).contains(&intid) {
            return (false, false);
        }
        gicd_banks().state(intid)
    }

    /// Enables or disables private interrupt `intid` of CPU `cpu`.
    fn private_enable(cpu: usize, intid: u32, enabled: bool) {
        private_bank(Bank::Enable, cpu, intid, enabled);
    }

    /// Sets or clears private interrupt `intid`'s pending state in CPU `cpu`'s
    /// redistributor.
    fn private_set_pending(cpu: usize, intid: u32, pending: bool) {
        private_bank(Bank::Pending, cpu, intid, pending);
    }

    /// Sets or clears private interrupt `intid`'s active state in CPU `cpu`'s
    /// redistributor.
    fn private_set_active(cpu: usize, intid: u32, active: bool) {
        private_bank(Bank::Active, cpu, intid, active);
    }

    /// The private interrupts' pending and active bits in CPU `cpu`'s
    /// redistributor (GICR_ISPENDR0: a level interrupt's reads as its line
    /// while it is active).
    fn private_state(cpu: usize) -> (u32, u32) {
        gicr_banks(cpu).private_state()
    }

    /// ICH_HCR_EL2: En, and UIE (the underflow maintenance interrupt: raised
    /// while at most one list register holds an interrupt) when `underflow`;
    /// TALL1 as it was.
    #[inline(always)]
    fn set_underflow(underflow: bool) {
        let tall1 = ICH_HCR_EL2.get() & ICH_HCR_EL2_TALL1;
        let hcr = ICH_HCR_EL2::En::SET + ICH_HCR_EL2::UIE.val(u64::from(underflow));
        ICH_HCR_EL2.set(hcr.value | tall1);
    }

    /// ICH_HCR_EL2.TALL1: the guest's group-1 CPU interface accesses trap.
    fn set_ack_trap(on: bool) {
        let hcr = ICH_HCR_EL2.get() & !ICH_HCR_EL2_TALL1;
        ICH_HCR_EL2.set(hcr | if on { ICH_HCR_EL2_TALL1 } else { 0 });
    }

    /// What TALL1 traps, and the other registers of the guest's CPU
    /// interface ([`ACK_TRAPPED`]).
    fn ack_trap_access(access: &SysRegAccess) -> bool {
        ACK_TRAPPED.contains(&access.reg)
    }

    /// The virtual CPU interface as a powered-on PE finds it: no list register
    /// in use, no active priority (ICH_AP0R<n>/AP1R<n>), and ICH_VMCR_EL2 at
    /// reset (priority mask 0, groups off, the guest programs its own), with
    /// ICH_HCR_EL2.En on. For every vCPU entry: a vCPU that powered off inside
    /// a handler must not come back with that handler's priority active.
    fn reset_virtual_interface() {
        for n in 0..list_register_count() {
            write_lr(n, 0);
        }
        ICH_AP0R0_EL2.set(0);
        ICH_AP1R0_EL2.set(0);
        // More active-priority registers exist only with more priority bits
        // (ICH_VTR_EL2.PREbits > 5: 6 bits use AP<n>R1, 7 bits AP<n>R1..3).
        let pre_bits = ICH_VTR_EL2.read(ICH_VTR_EL2::PREbits) + 1;
        if pre_bits >= 6 {
            ICH_AP0R1_EL2.set(0);
            ICH_AP1R1_EL2.set(0);
        }
        if pre_bits >= 7 {
            ICH_AP0R2_EL2.set(0);
            ICH_AP0R3_EL2.set(0);
            ICH_AP1R2_EL2.set(0);
            ICH_AP1R3_EL2.set(0);
        }
        ICH_VMCR_EL2.set(0);
        ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
    }

    /// Turns the virtual CPU interface off and empties the list registers (a
    /// stopped vCPU).
    fn disable_virtual_interface() {
        ICH_HCR_EL2.write(ICH_HCR_EL2::En::CLEAR);
        for n in 0..list_register_count() {
            write_lr(n, 0);
        }
    }

    /// The guest's CPU interface is its ICC_* system registers, which the
    /// hardware redirects to ICH_*: nothing to map.
    fn guest_cpu_interface(_gic: &GicConfig) -> Option<(Ipa, PhysAddr, u64)> {
        None
    }

    #[inline(always)]
    fn list_registers() -> HwListRegisters {
        HwListRegisters
    }

    #[inline(always)]
    fn sgi_write(access: &SysRegAccess, value: u64) -> Option<SgiWrite> {
        if access.read {
            return None;
        }
        let group1 = match access.reg {
            SGI1R_ENCODING => true,
            ASGI1R_ENCODING | SGI0R_ENCODING => false,
            _ => return None,
        };
        Some(SgiWrite {
            request: SgiRequest::decode(value),
            group1,
        })
    }

    fn install_fast(block: &FastBlock) {
        fast::install(block)
    }

    fn fill_fast(block: &FastBlock, fill: &FastFill<'_>) {
        fast::fill(block, fill)
    }

    fn follow_model(cpu: usize, private: &PrivateIrqs, group1: bool) {
        fast::follow_model(crate::arch::percpu::fast_of(cpu), private, group1)
    }
}
