//! The GICv2 backend (the GIC-400 of the Raspberry Pi 4; QEMU virt with
//! gic-version=2): the physical GICv2 at EL2 and its memory-mapped virtual
//! interface, behind [`GicBackend`]. Built when the board's `gic.version`
//! is 2 (build.rs sets `cfg(gic = "v2")`).
//!
//! Boot-time distributor programming goes through the `arm-gic` crate's
//! GICv2 driver. The run-time single-register writes, the CPU interface
//! (acknowledge, priority drop, deactivate) and the virtual interface
//! control (GICH, which `arm-gic` does not cover) are the small typed
//! register blocks below.
//!
//! EOImode = 1, as on GICv3: a write of GICC_EOIR only drops the running
//! priority; an interrupt forwarded with a list register's HW bit is
//! deactivated by the guest's own EOI, and anything the hypervisor consumes
//! itself it deactivates with GICC_DIR. The guest's CPU interface is the
//! GICV frame, mapped by stage 2 at the guest's GICC address: its
//! acknowledge and EOI cost no exit.
//!
//! A GICv2 banks the SGI and PPI registers per CPU interface: a CPU reaches
//! only its own. The private-interrupt functions of [`GicBackend`] act when
//! `cpu` is the calling CPU and do nothing for another (reads give
//! nothing); the hypervisor's own private interrupts are set up by each CPU
//! for itself at boot.
//!
//! One exit per IPI where the GIC has GICH's per-CPU aliases (the
//! GIC-400): the sender's CPU lists the SGI in the target's list registers
//! through the target's alias while the target's guest runs, so the target
//! takes no exit ([`GicBackend::list_remote`]; who may touch a CPU's list
//! registers when is `LR_OWNER`'s protocol). The kick remains the way when
//! the target is in EL2, masked, has something queued, or has no free list
//! register.
//!
//! An SGI is listed with its source CPU interface as the list register's
//! CPUID (`vgic::lr::Irq::source`); one list register per SGI number (a
//! second source merges: see `Irq::same`).
//!
//! Not yet here (issue 12): the acknowledge trap of a level interrupt
//! listed while the guest has IRQs masked (`set_ack_trap` does nothing).

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use arm_gic::IntId;
use arm_gic::gicv2::GicV2 as Driver;
use arm_gic::gicv2::registers::{Gicc, Gicd};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::banks::{Bank, Banks};
use super::{FastFill, GicBackend, RemoteListing, SgiWrite};
use crate::config::GicConfig;
use crate::mm::{Ipa, PhysAddr};
use crate::trap::SysRegAccess;
use crate::vgic::lr::{Entry, Irq, ListRegisters, format};
use crate::vgic::remote::LrOwner;
use bulkhead_abi::board::GUEST_GICV2_CPU_INTERFACE;

/// The physical SGI that kicks another CPU into EL2 (guests never see
/// physical SGIs).
pub const KICK_SGI: u32 = 0;
/// What GICC_IAR's INTID field holds when nothing is pending.
pub const SPURIOUS: u32 = 1023;
/// Priority of every interrupt the hypervisor enables.
const PRIORITY: u8 = 0x80;
/// GICC_IAR / EOIR / DIR: the INTID [9:0] and, for an SGI, the source CPU
/// [12:10].
const IAR_INTID: u32 = 0x3ff;
const IAR_SOURCE_AND_INTID: u32 = 0x1fff;

register_structs! {
    /// The distributor's ITARGETSR bytes and SGIR, which the hypervisor
    /// writes at run time one interrupt's at a time (its set/clear banks
    /// are [`Banks`]).
    GicdTargets {
        (0x000 => _reserved0),
        (0x800 => itargetsr: [ReadWrite<u8>; 1024]),
        (0xc00 => _reserved1),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => _reserved2),
        (0x1000 => @END),
    }
}

register_structs! {
    /// This CPU's physical CPU interface (GICC, 8 KiB).
    GiccRuntime {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => pmr: ReadWrite<u32>),
        (0x0008 => bpr: ReadWrite<u32>),
        (0x000c => iar: ReadOnly<u32>),
        (0x0010 => eoir: WriteOnly<u32>),
        (0x0014 => _reserved0),
        (0x1000 => dir: WriteOnly<u32>),
        (0x1004 => _reserved1),
        (0x2000 => @END),
    }
}

register_structs! {
    /// The virtual interface control registers (GICH, Arm IHI 0048B,
    /// 5.3): this CPU's, at the GICH base.
    Gich {
        (0x000 => hcr: ReadWrite<u32>),
        (0x004 => vtr: ReadOnly<u32>),
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x010 => misr: ReadOnly<u32>),
        (0x014 => _reserved1),
        (0x020 => eisr: [ReadOnly<u32>; 2]),
        (0x028 => _reserved2),
        (0x030 => elrsr: [ReadOnly<u32>; 2]),
        (0x038 => _reserved3),
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved4),
        (0x100 => lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// GICC_CTLR: EnableGrp0 (or, seen from the Non-secure side of a GIC with
/// the Security Extensions, EnableGrp1: the group the hypervisor's
/// interrupts are in either way) [0], EOImode(NS) [9].
const GICC_CTLR_ENABLE: u32 = 1 << 0;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;
/// GICH_HCR: En [0], UIE [1].
const GICH_HCR_EN: u32 = 1 << 0;
const GICH_HCR_UIE: u32 = 1 << 1;
/// GICH_VTR.ListRegs [5:0]: list registers - 1.
const GICH_VTR_LIST_REGS: u32 = 0x3f;

static GICD_BASE: AtomicU64 = AtomicU64::new(0);
static GICC_BASE: AtomicU64 = AtomicU64::new(0);
static GICH_BASE: AtomicU64 = AtomicU64::new(0);
/// GICH's per-CPU aliases (0: the GIC has none, or the board does not say).
static GICH_ALIASES: AtomicU64 = AtomicU64::new(0);
/// The aliases the board names, whether used or not.
static CONFIG_ALIASES: AtomicU64 = AtomicU64::new(0);
/// What the boot CPU read at offset 4 of its alias (low half) and of GICH
/// (high half) when they differed: the aliases are not used.
static ALIAS_PROBE: AtomicU64 = AtomicU64::new(0);
/// Bytes between two CPUs' GICH aliases.
const GICH_ALIAS_STRIDE: u64 = 0x200;

/// Who may touch CPU n's list registers now (`LR_OWNER[n]`): its own EL2,
/// or, while its guest runs, one other CPU listing an SGI through the
/// aliases; the protocol, and why no partition can make another wait on
/// it, is `vgic::remote`'s. Used only when the aliases are.
static LR_OWNER: [LrOwner; crate::arch::MAX_CPUS] =
    [const { LrOwner::new() }; crate::arch::MAX_CPUS];
/// Number of list registers (GICH_VTR.ListRegs + 1), read once at boot.
static LIST_REGISTERS: AtomicUsize = AtomicUsize::new(0);

fn gicd() -> &'static GicdTargets {
    // SAFETY: the board's GICD (checked against the boot device tree),
    // mapped as device memory for the hypervisor's lifetime; each run-time
    // write names only the interrupts it changes.
    unsafe { &*(GICD_BASE.load(Ordering::Relaxed) as *const GicdTargets) }
}

/// The distributor's set/clear banks (for INTIDs 0..32 the calling CPU's).
fn banks() -> &'static Banks {
    // SAFETY: as for `gicd`.
    unsafe { &*(GICD_BASE.load(Ordering::Relaxed) as *const Banks) }
}

fn gicc() -> &'static GiccRuntime {
    // SAFETY: the board's GICC, mapped as device memory; banked per CPU:
    // each CPU reaches its own interface at the same address.
    unsafe { &*(GICC_BASE.load(Ordering::Relaxed) as *const GiccRuntime) }
}

fn gich() -> &'static Gich {
    // SAFETY: the board's GICH, mapped as device memory; banked per CPU:
    // each CPU reaches its own virtual interface control at the same address.
    unsafe { &*(GICH_BASE.load(Ordering::Relaxed) as *const Gich) }
}

/// The CPU interface number of the CPU with affinity `mpidr`: its Aff0, as
/// on every GICv2 board we describe (QEMU virt, the BCM2711).
fn interface(mpidr: u64) -> u32 {
    (mpidr & 0x7) as u32
}

/// Sets or clears `intid`'s bit in `bank`: one write of one bit. For INTIDs
/// below 32 it is the calling CPU's banked register.
fn bank(bank: Bank, intid: u32, on: bool) {
    banks().write(bank, intid, on);
}

/// Whether `cpu` is the calling CPU: only its banked registers are reachable.
fn is_this_cpu(cpu: usize) -> bool {
    crate::arch::percpu::this_cpu() == cpu
}

/// This CPU's list registers, for the vGIC's delivery policy.
#[derive(Debug)]
pub struct HwListRegisters;

impl ListRegisters for HwListRegisters {
    #[inline(always)]
    fn count(&self) -> usize {
        LIST_REGISTERS.load(Ordering::Relaxed)
    }
    #[inline(always)]
    fn empty(&self) -> u64 {
        let h = gich();
        let all = (1u64 << self.count()).wrapping_sub(1);
        (u64::from(h.elrsr[0].get()) | u64::from(h.elrsr[1].get()) << 32) & all
    }
    #[inline(always)]
    fn read(&self, n: usize) -> Entry {
        format::gicv2::decode(u64::from(gich().lr.get(n).map_or(0, |lr| lr.get())))
    }
    #[inline(always)]
    fn write(&mut self, n: usize, entry: Entry) {
        if let Some(lr) = gich().lr.get(n) {
            lr.set(format::gicv2::encode(entry) as u32);
        }
    }
}

/// Another CPU's list registers, through its GICH alias; valid while this
/// CPU holds them (`LR_OWNER` at [`REMOTE`]).
struct AliasListRegisters(&'static Gich);

impl ListRegisters for AliasListRegisters {
    fn count(&self) -> usize {
        LIST_REGISTERS.load(Ordering::Relaxed)
    }
    fn empty(&self) -> u64 {
        let all = (1u64 << self.count()).wrapping_sub(1);
        (u64::from(self.0.elrsr[0].get()) | u64::from(self.0.elrsr[1].get()) << 32) & all
    }
    fn read(&self, n: usize) -> Entry {
        format::gicv2::decode(u64::from(self.0.lr.get(n).map_or(0, |lr| lr.get())))
    }
    fn write(&mut self, n: usize, entry: Entry) {
        if let Some(lr) = self.0.lr.get(n) {
            lr.set(format::gicv2::encode(entry) as u32);
        }
    }
}

/// A barrier that completes this CPU's accesses to the GIC (device
/// memory) before what follows: before another CPU may touch the same list
/// registers through their alias, or before this CPU reads them after one did.
fn complete_gic_accesses() {
    // SAFETY: a barrier; no memory is accessed.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// The guest's exit (`gicv2/exits.S`, and every other way into EL2 from
/// the guest): this CPU's EL2 takes its list registers back.
#[unsafe(no_mangle)]
extern "C" fn gicv2_exit_entry() {
    GicV2::exit_entry();
}

/// The guest's entry (`gicv2/exits.S` before its ERET).
#[unsafe(no_mangle)]
extern "C" fn gicv2_guest_entry() {
    GicV2::guest_entry();
}

fn clear_list_registers() {
    for lr in &gich().lr[..LIST_REGISTERS.load(Ordering::Relaxed)] {
        lr.set(0);
    }
}

/// The GICv2 backend's per-CPU block: it has no assembly fast paths yet.
#[derive(Debug, Default)]
pub struct FastBlock;

impl FastBlock {
    pub const fn new() -> Self {
        FastBlock
    }
}

/// What the IRQ exit passes in place of an INTID (unused: this backend's
/// exit acknowledges in Rust).
pub const KICK_DRAINED: u32 = 0x8000_0000;

/// The guest's IRQ exit (`gicv2/exits.S`): acknowledges, then hands over
/// to the common handler as the GICv3 exit's assembly does.
#[unsafe(no_mangle)]
extern "C" fn gicv2_lower_irq(frame: &mut super::super::TrapFrame) {
    unsafe extern "C" {
        fn handle_lower_irq(frame: &mut super::super::TrapFrame, first: u32);
    }
    let first = GicV2::acknowledge();
    // SAFETY: `hyp`'s IRQ exit handler, with the frame the exit saved and
    // an INTID this CPU acknowledged (its priority not yet dropped), as
    // the GICv3 exit's assembly calls it.
    unsafe { handle_lower_irq(frame, first) }
}

/// The GICv2 backend.
#[derive(Debug)]
pub struct GicV2;

impl GicBackend for GicV2 {
    type ListRegisters = HwListRegisters;

    const SPURIOUS: u32 = SPURIOUS;
    const KICK_SGI: u32 = KICK_SGI;
    const KICK_DRAINED: u32 = KICK_DRAINED;
    const CAN_LIST_REMOTE: bool = true;

    /// Boot CPU, once: the distributor, every SPI level-triggered, at the
    /// hypervisor's priority, disabled.
    fn init_distributor(gic: &GicConfig, _cpus: usize) {
        let GicConfig::V2 {
            distributor,
            cpu_interface,
            hyp_interface,
            ..
        } = *gic
        else {
            // The build chooses this backend for GICv2 boards only.
            panic!("a GICv2 board");
        };
        GICD_BASE.store(distributor.as_u64(), Ordering::Relaxed);
        GICC_BASE.store(cpu_interface.as_u64(), Ordering::Relaxed);
        GICH_BASE.store(hyp_interface.as_u64(), Ordering::Relaxed);
        if let GicConfig::V2 {
            hyp_interface_aliases: Some(aliases),
            ..
        } = *gic
        {
            // This CPU's alias must read as its GICH: GICH_VTR, the one
            // register whose read changes nothing whatever is there.
            CONFIG_ALIASES.store(aliases.as_u64(), Ordering::Relaxed);
            let me = u64::from(interface(crate::arch::mpidr())) * GICH_ALIAS_STRIDE;
            // SAFETY: the board's aliases window, mapped as device memory
            // by the EL2 map; one read of the word at offset 4 of this
            // CPU's 0x200 bytes, without side effects on a GICH or a GICC.
            let through = unsafe { &*((aliases.as_u64() + me) as *const Gich) }
                .vtr
                .get();
            let vtr = gich().vtr.get();
            if through == vtr {
                GICH_ALIASES.store(aliases.as_u64(), Ordering::Relaxed);
            } else {
                ALIAS_PROBE.store(u64::from(vtr) << 32 | u64::from(through), Ordering::Relaxed);
            }
        }
        // SAFETY: the addresses come from the checked board description and
        // were matched against the boot device tree; mapped as device
        // memory; the driver lives for this call only, on the boot CPU
        // before any other runs.
        let mut driver = unsafe {
            Driver::new(
                distributor.as_u64() as *mut Gicd,
                cpu_interface.as_u64() as *mut Gicc,
            )
        };
        driver.setup();
        driver.enable_all_interrupts(false);
    }

    /// On each CPU: its own SGIs and PPIs off, then the hypervisor's on (the
    /// kick SGI; the maintenance interrupt and the EL2 timer where a vCPU
    /// runs), the CPU interface (EOImode 1), the virtual interface.
    fn init_cpu(_cpu: usize, runs_vcpu: bool, maintenance_intid: u32) {
        for intid in 0..32 {
            for which in [Bank::Enable, Bank::Pending, Bank::Active] {
                bank(which, intid, false);
            }
        }
        let gicd_ptr = GICD_BASE.load(Ordering::Relaxed) as *mut Gicd;
        let gicc_ptr = GICC_BASE.load(Ordering::Relaxed) as *mut Gicc;
        // SAFETY: as in `init_distributor`; this CPU's banked registers
        // only (priorities of its own SGIs and PPIs).
        let mut driver = unsafe { Driver::new(gicd_ptr, gicc_ptr) };
        let id = |intid: u32| {
            if intid < 16 {
                IntId::sgi(intid)
            } else {
                IntId::ppi(intid - 16)
            }
        };
        for intid in [KICK_SGI, maintenance_intid, crate::arch::HYP_TIMER_INTID]
            .into_iter()
            .chain(crate::vgic::state::forwarded_ppis())
        {
            driver.set_interrupt_priority(id(intid), PRIORITY);
        }
        bank(Bank::Enable, KICK_SGI, true);
        if runs_vcpu {
            bank(Bank::Enable, maintenance_intid, true);
            bank(Bank::Enable, crate::arch::HYP_TIMER_INTID, true);
        }
        let c = gicc();
        c.pmr.set(0xff);
        c.bpr.set(0);
        c.ctlr.set(GICC_CTLR_ENABLE | GICC_CTLR_EOIMODE);
        let h = gich();
        let count = (h.vtr.get() & GICH_VTR_LIST_REGS) as usize + 1;
        LIST_REGISTERS.store(count.min(64), Ordering::Relaxed);
        h.vmcr.set(0);
        h.apr.set(0);
        clear_list_registers();
        h.hcr.set(GICH_HCR_EN);
    }

    /// Acknowledges the most urgent pending interrupt: the INTID, or
    /// [`SPURIOUS`].
    #[inline(always)]
    fn acknowledge() -> u32 {
        // The hypervisor's SGIs come from itself: the source field is
        // dropped, and its priority drop and deactivation name INTID only
        // (a GICv2 takes the source from those writes: an SGI sent by the
        // hypervisor on CPU n is ended with source n, see `priority_drop`).
        let iar = gicc().iar.get();
        LAST_IAR[crate::arch::percpu::this_cpu()].store(iar, Ordering::Relaxed);
        iar & IAR_INTID
    }

    /// Drops the running priority (EOImode 1): GICC_EOIR with the value
    /// acknowledged (an SGI's source included).
    #[inline(always)]
    fn priority_drop(intid: u32) {
        gicc().eoir.set(with_source(intid));
    }

    /// Deactivates an interrupt the hypervisor consumed itself.
    #[inline(always)]
    fn deactivate(intid: u32) {
        gicc().dir.set(with_source(intid));
    }

    /// Sends physical SGI `intid` to the CPU with affinity `mpidr`:
    /// GICD_SGIR, its CPU interface in the target list.
    fn send_sgi(intid: u32, mpidr: u64) {
        // SAFETY: a barrier orders earlier stores (the state the target
        // will read) before the SGI; no memory is accessed.
        unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
        gicd()
            .sgir
            .set((1 << interface(mpidr)) << 16 | (intid & 0xf));
    }

    /// Boot only: SPI `intid`'s trigger (fixed from then on), target and
    /// enable.
    fn configure_spi_at_boot(intid: u32, mpidr: u64, edge: bool, enabled: bool) {
        if !(32..1020).contains(&intid) {
            return;
        }
        bank(Bank::Enable, intid, false);
        let gicd_ptr = GICD_BASE.load(Ordering::Relaxed) as *mut Gicd;
        let gicc_ptr = GICC_BASE.load(Ordering::Relaxed) as *mut Gicc;
        // SAFETY: as in `init_distributor`: boot, one CPU.
        let mut driver = unsafe { Driver::new(gicd_ptr, gicc_ptr) };
        let id = IntId::spi(intid - 32);
        driver.set_interrupt_priority(id, PRIORITY);
        driver.set_trigger(
            id,
            if edge {
                arm_gic::Trigger::Edge
            } else {
                arm_gic::Trigger::Level
            },
        );
        Self::spi_route(intid, mpidr);
        bank(Bank::Enable, intid, enabled);
    }

    fn spi_enable(intid: u32, enabled: bool) {
        if intid >= 32 {
            bank(Bank::Enable, intid, enabled);
        }
    }

    fn spi_set_pending(intid: u32, pending: bool) {
        if intid >= 32 {
            bank(Bank::Pending, intid, pending);
        }
    }

    fn spi_set_active(intid: u32, active: bool) {
        if intid >= 32 {
            bank(Bank::Active, intid, active);
        }
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr`: one byte of
    /// ITARGETSR.
    fn spi_route(intid: u32, mpidr: u64) {
        if let Some(byte) = gicd()
            .itargetsr
            .get(intid as usize)
            .filter(|_| (32..1020).contains(&intid))
        {
            byte.set(1 << interface(mpidr));
        }
    }

    fn spi_state(intid: u32) -> (bool, bool) {
        if !(32..1020).contains(&intid) {
            return (false, false);
        }
        banks().state(intid)
    }

    fn private_enable(cpu: usize, intid: u32, enabled: bool) {
        if intid < 32 && is_this_cpu(cpu) {
            bank(Bank::Enable, intid, enabled);
        }
    }

    fn private_set_pending(cpu: usize, intid: u32, pending: bool) {
        if intid < 32 && is_this_cpu(cpu) {
            bank(Bank::Pending, intid, pending);
        }
    }

    fn private_set_active(cpu: usize, intid: u32, active: bool) {
        if intid < 32 && is_this_cpu(cpu) {
            bank(Bank::Active, intid, active);
        }
    }

    fn private_state(cpu: usize) -> (u32, u32) {
        if !is_this_cpu(cpu) {
            return (0, 0);
        }
        banks().private_state()
    }

    fn list_registers() -> HwListRegisters {
        HwListRegisters
    }

    /// GICH_HCR: En, and UIE when `underflow`.
    fn set_underflow(underflow: bool) {
        gich()
            .hcr
            .set(GICH_HCR_EN | if underflow { GICH_HCR_UIE } else { 0 });
    }

    /// Not yet on GICv2 (see the module's doc).
    fn set_ack_trap(_on: bool) {}

    /// A GICv2 guest's CPU interface is memory, not system registers.
    fn ack_trap_access(_access: &SysRegAccess) -> bool {
        false
    }

    /// The virtual interface as a powered-on PE finds it: no list register
    /// in use, no active priority, GICH_VMCR at reset, GICH_HCR.En on.
    fn reset_virtual_interface() {
        clear_list_registers();
        let h = gich();
        h.apr.set(0);
        h.vmcr.set(0);
        h.hcr.set(GICH_HCR_EN);
    }

    fn disable_virtual_interface() {
        gich().hcr.set(0);
        clear_list_registers();
    }

    /// The guest's GICC window: the GICV frame (8 KiB) at the address the
    /// partition's device tree gives its CPU interface, the same on every
    /// GICv2 board (`GUEST_GICV2_CPU_INTERFACE`).
    fn guest_cpu_interface(gic: &GicConfig) -> Option<(Ipa, PhysAddr, u64)> {
        match *gic {
            GicConfig::V2 {
                virtual_cpu_interface,
                ..
            } => Some((GUEST_GICV2_CPU_INTERFACE, virtual_cpu_interface, 0x2000)),
            GicConfig::V3 { .. } => None,
        }
    }

    /// GICv2 guests send SGIs through the distributor (GICD_SGIR).
    fn sgi_write(_access: &SysRegAccess, _value: u64) -> Option<SgiWrite> {
        None
    }

    fn fill_fast(_block: &FastBlock, _fill: &FastFill<'_>) {}

    /// Takes this CPU's list registers back from other CPUs: after at most
    /// one listing through the alias (see `LR_OWNER`).
    fn exit_entry() {
        if GICH_ALIASES.load(Ordering::Relaxed) == 0 {
            return;
        }
        LR_OWNER[crate::arch::percpu::this_cpu()].claim();
        // What another CPU wrote through the alias is complete (it did so
        // before it gave them back) and ordered before this CPU's reads.
        complete_gic_accesses();
    }

    /// Opens this CPU's list registers to other CPUs until its next exit.
    fn guest_entry() {
        if GICH_ALIASES.load(Ordering::Relaxed) == 0 {
            return;
        }
        // This CPU's own list-register writes are complete before another
        // CPU may read them through the alias.
        complete_gic_accesses();
        LR_OWNER[crate::arch::percpu::this_cpu()].open();
    }

    fn remote_listing() -> RemoteListing {
        let aliases = GICH_ALIASES.load(Ordering::Relaxed);
        let probe = ALIAS_PROBE.load(Ordering::Relaxed);
        if aliases != 0 {
            return RemoteListing::Aliases(PhysAddr(aliases));
        }
        match CONFIG_ALIASES.load(Ordering::Relaxed) {
            0 => RemoteListing::Unsupported,
            base => RemoteListing::Unusable {
                aliases: PhysAddr(base),
                vtr: (probe >> 32) as u32,
                through_alias: probe as u32,
            },
        }
    }

    /// Lists an SGI in CPU `cpu`'s list registers through its GICH alias
    /// (see [`GicBackend::list_remote`]): in a free list register, unless
    /// one holds the same virtual INTID already (it would merge, or need
    /// its pending-and-active state: the target's own EL2 decides that).
    fn list_remote(cpu: usize, admit: impl FnOnce() -> Option<Irq>) -> bool {
        let aliases = GICH_ALIASES.load(Ordering::Relaxed);
        let Some(owner) = LR_OWNER.get(cpu).filter(|_| aliases != 0 && cpu < 8) else {
            return false;
        };
        owner
            .try_remote(|| {
                // SAFETY: CPU `cpu`'s GICH alias (a GICv2 has eight CPU
                // interfaces at most), inside the aliases window the board
                // gives, which the EL2 map maps as device memory and the boot
                // CPU found to read as GICH; this CPU holds that CPU's list
                // registers for this closure.
                let alias =
                    unsafe { &*((aliases + cpu as u64 * GICH_ALIAS_STRIDE) as *const Gich) };
                let irq = admit()?;
                let mut lrs = AliasListRegisters(alias);
                let empty = lrs.empty();
                if empty == 0 {
                    return None;
                }
                let held = (0..lrs.count())
                    .any(|n| empty & (1 << n) == 0 && lrs.read(n).irq.intid == irq.intid);
                if held {
                    return None;
                }
                lrs.write(empty.trailing_zeros() as usize, Entry::pending(irq));
                // Complete before the registers are given back.
                complete_gic_accesses();
                Some(())
            })
            .flatten()
            .is_some()
    }
}

/// The whole value of each CPU's last acknowledge (an SGI's source in
/// bits 12:10), for its priority drop and deactivation; slot n is CPU n's
/// only.
static LAST_IAR: [AtomicU32; crate::arch::MAX_CPUS] =
    [const { AtomicU32::new(0) }; crate::arch::MAX_CPUS];

/// `intid` with the source CPU its acknowledge gave, for GICC_EOIR/DIR.
fn with_source(intid: u32) -> u32 {
    let last = LAST_IAR[crate::arch::percpu::this_cpu()].load(Ordering::Relaxed);
    if intid < 16 && last & IAR_INTID == intid {
        last & IAR_SOURCE_AND_INTID
    } else {
        intid
    }
}
