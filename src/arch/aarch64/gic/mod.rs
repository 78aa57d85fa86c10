//! The GIC backend seam: what the hypervisor needs of an interrupt
//! controller, as one trait, and the backend this image is built for.
//!
//! The generic virtual GIC (`crate::vgic`: the distributor model, SGI
//! routing, the list-register policy, the mask-flag gate) and `hyp` reach the
//! hardware only through [`GicBackend`], so a second backend slots in here
//! without touching them:
//! - the physical distributor and CPU interface (boot programming,
//!   acknowledge / priority drop / deactivate, the kick SGI, single-bit
//!   run-time writes of a partition's own interrupts);
//! - the list registers (system registers on GICv3, the memory-mapped GICH
//!   on GICv2), as the model's [`ListRegisters`] in the backend's format
//!   (`crate::vgic::lr::format`);
//! - the virtual CPU interface (ICH_* on GICv3; on GICv2 the guest's GICC
//!   window mapped by stage 2 onto GICV, plus GICH);
//! - the SGI trap decode (a trapped ICC_SGI1R_EL1 write on GICv3; on GICv2 a
//!   GICD_SGIR data abort, which the distributor model decodes);
//! - the exit fast paths (`gicv3/fast.S`), which fill from [`FastFill`].
//!
//! The board's `gic.version` chooses the backend when the image is built
//! (build.rs sets `cfg(gic = "v2")` for a GICv2 board): `gicv3`, or
//! `gicv2` (work in progress, issue 12: see its module doc).

mod banks;
#[cfg(gic = "v2")]
pub mod gicv2;
#[cfg(not(gic = "v2"))]
pub mod gicv3;

use core::sync::atomic::AtomicU64;

use bulkhead_abi::control::ControlPage;

use crate::config::GicConfig;
use crate::mm::{Ipa, PhysAddr};
use crate::trap::SysRegAccess;
use crate::vgic::lr::{Irq, ListRegisters};
use crate::vgic::sgi::SgiRequest;
use crate::vgic::state::{PrivateIrqs, Spi};

/// The backend this image drives.
#[cfg(not(gic = "v2"))]
pub type Gic = gicv3::GicV3;
#[cfg(gic = "v2")]
pub type Gic = gicv2::GicV2;

#[cfg(gic = "v2")]
pub use gicv2::FastBlock;
/// The per-CPU block of this backend's fast paths (inside
/// `arch::percpu::PerCpu`).
#[cfg(not(gic = "v2"))]
pub use gicv3::fast::FastBlock;

/// Whether this CPU can list interrupts in other CPUs' list registers
/// ([`GicBackend::list_remote`]), for the boot report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteListing {
    /// The GIC has no way to (GICv3; a GICv2 board without
    /// `gic.hyp_interface_aliases`): IPIs to other CPUs kick them.
    Unsupported,
    /// Through GICH's per-CPU aliases at this base.
    Aliases(PhysAddr),
    /// The board names aliases, but this CPU's alias does not read as its
    /// GICH (GICH_VTR): not used. QEMU 10's raspi4b maps each CPU's GICC
    /// there instead.
    Unusable {
        aliases: PhysAddr,
        vtr: u32,
        through_alias: u32,
    },
}

/// A guest's SGI-generating write, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgiWrite {
    pub request: SgiRequest,
    /// Group 1, the only group a partition's SGIs have: delivered to the
    /// routed vCPUs. Otherwise (GICv3's ICC_ASGI1R_EL1 and ICC_SGI0R_EL1,
    /// which with GICD_CTLR.DS = 1 raise group-0 SGIs) it reaches nobody,
    /// and its targets are counted as refused.
    pub group1: bool,
}

/// What a vCPU's fast paths need, in the generic model's terms; the
/// backend turns it into its per-CPU block ([`GicBackend::fill_fast`]).
#[derive(Debug)]
pub struct FastFill<'a> {
    /// The vCPU's index in its partition.
    pub vcpu: usize,
    /// The partition's control page (its mask flag word), and its guest
    /// address.
    pub control: &'a ControlPage,
    pub control_ipa: Ipa,
    /// Where this CPU's pending queue is (`vgic::lr::PendingQueue`).
    pub queue: usize,
    /// Where this CPU keeps its vCPU's deferral statistics
    /// (`vgic::gate::Stats`).
    pub stats: usize,
    /// Where the vCPU's statistics are published for other CPUs
    /// (deferred, max wait, max window).
    pub defer_stats: &'a [AtomicU64; 3],
    /// Every vCPU's private interrupts (vCPU n at index n), and the MPIDR of
    /// the physical CPU each runs on.
    pub private: &'a [PrivateIrqs],
    pub cpu_mpidrs: &'a [u64],
    /// The SPIs the partition owns.
    pub spis: &'a [Spi],
}

/// An interrupt controller as the hypervisor uses it. Every function acts
/// on the calling CPU's interface, or names the interrupt it changes: no
/// run-time function takes a lock (see `hyp`'s table of shared state).
pub trait GicBackend {
    /// This CPU's list registers, in the backend's format.
    type ListRegisters: ListRegisters;

    /// What an acknowledge returns when nothing is pending (INTIDs at or
    /// above it are special).
    const SPURIOUS: u32;
    /// The physical SGI that kicks another CPU into EL2.
    const KICK_SGI: u32;
    /// What the IRQ fast path passes to the Rust handler in place of an
    /// INTID when it consumed a kick and left the draining to Rust.
    const KICK_DRAINED: u32;
    /// Whether [`GicBackend::list_remote`] can ever list (a GIC with
    /// GICH aliases): without, the SGI path has no trace of it.
    const CAN_LIST_REMOTE: bool = false;

    /// Boot CPU, once: the distributor, every SPI disabled.
    fn init_distributor(gic: &GicConfig, cpus: usize);
    /// Every CPU at boot: its private interrupts and CPU interface, and the
    /// virtual interface when it runs a vCPU.
    fn init_cpu(cpu: usize, runs_vcpu: bool, maintenance_intid: u32);

    /// Acknowledges the most urgent pending interrupt.
    fn acknowledge() -> u32;
    /// Drops the running priority (the split EOI mode: no deactivation).
    fn priority_drop(intid: u32);
    /// Deactivates an interrupt the hypervisor consumed itself.
    fn deactivate(intid: u32);
    /// Sends physical SGI `intid` to the CPU with affinity `mpidr`.
    fn send_sgi(intid: u32, mpidr: u64);

    /// Boot only: SPI `intid`'s trigger (fixed from then on), target and enable.
    fn configure_spi_at_boot(intid: u32, mpidr: u64, edge: bool, enabled: bool);
    /// Single-interrupt run-time writes of a partition's own SPIs.
    fn spi_enable(intid: u32, enabled: bool);
    fn spi_set_pending(intid: u32, pending: bool);
    fn spi_set_active(intid: u32, active: bool);
    fn spi_route(intid: u32, mpidr: u64);
    /// SPI `intid`'s (pending, active) state.
    fn spi_state(intid: u32) -> (bool, bool);
    /// The same for private interrupt `intid` of physical CPU `cpu`.
    fn private_enable(cpu: usize, intid: u32, enabled: bool);
    fn private_set_pending(cpu: usize, intid: u32, pending: bool);
    fn private_set_active(cpu: usize, intid: u32, active: bool);
    /// The (pending, active) bits of every private interrupt of physical
    /// CPU `cpu` (bit n: INTID n), one read of each register.
    fn private_state(cpu: usize) -> (u32, u32);

    /// This CPU's list registers.
    fn list_registers() -> Self::ListRegisters;
    /// Requests (or stops) the underflow maintenance interrupt.
    fn set_underflow(underflow: bool);
    /// Makes the guest's next acknowledge (and any other access to its
    /// group-1 CPU interface registers) trap to EL2, or stops that; kept
    /// by [`GicBackend::set_underflow`], cleared by a reset of the virtual
    /// interface.
    fn set_ack_trap(on: bool);
    /// Whether a trapped system-register access is one that
    /// [`GicBackend::set_ack_trap`] traps: the guest re-executes it once
    /// the hypervisor has looked at its list registers.
    fn ack_trap_access(access: &SysRegAccess) -> bool;
    /// The virtual CPU interface as a powered-on PE finds it (every vCPU entry).
    fn reset_virtual_interface();
    /// The virtual CPU interface off and empty (a stopped vCPU).
    fn disable_virtual_interface();
    /// The window stage 2 maps for a guest's own CPU interface when it is
    /// memory-mapped, as (guest address, physical frame, size): on GICv2
    /// the GICV frame at the guest's GICC address. `None` where the
    /// virtual CPU interface is system registers (GICv3's ICC_* to ICH_*).
    fn guest_cpu_interface(gic: &GicConfig) -> Option<(Ipa, PhysAddr, u64)>;

    /// Decodes a trapped system-register write that generates SGIs; `None`
    /// for any other register (and always on a backend whose guests send
    /// SGIs through the distributor).
    fn sgi_write(access: &SysRegAccess, value: u64) -> Option<SgiWrite>;

    /// Sets up this CPU's fast-path block, which starts all zero, with no
    /// vCPU bound (when the CPU installs its per-CPU block, before any
    /// guest runs on it).
    fn install_fast(_block: &FastBlock) {}

    /// Fills physical CPU `cpu`'s fast-path block for the vCPU it runs (on
    /// that CPU, before the vCPU first runs).
    fn fill_fast(block: &FastBlock, fill: &FastFill<'_>);

    /// The fast paths of physical CPU `cpu` keep a copy of what the model
    /// says its vCPU may take (`private`, its SGIs' and PPIs' enables and
    /// priorities, and the partition's group 1 enable `group1`): called,
    /// from any of the partition's CPUs under its vGIC lock, after every
    /// change of the model and when the vCPU is bound. A fast path that
    /// finds its copy not allowing what waits goes to the Rust path, which
    /// reads the model: so a copy that lags the model is never worse than
    /// a read of the model a moment earlier.
    #[inline(always)]
    fn follow_model(_cpu: usize, _private: &PrivateIrqs, _group1: bool) {}

    /// Every guest exit, before anything touches this CPU's list
    /// registers: EL2 takes them back from [`GicBackend::list_remote`]
    /// (waiting, at most, for one such write of the same partition to end).
    #[inline(always)]
    fn exit_entry() {}
    /// The last thing before this CPU enters (or returns to) its guest: its
    /// list registers are open to [`GicBackend::list_remote`] until the
    /// next exit.
    #[inline(always)]
    fn guest_entry() {}
    /// From this CPU, lists the interrupt `admit` gives in the list
    /// registers of physical CPU `cpu` while its guest runs, where the GIC
    /// lets one CPU reach another's (the GIC-400's GICH aliases): the
    /// target takes no exit. `admit` runs while `cpu`'s EL2 cannot touch
    /// its list registers, and says what to list, or `None`. `false` (the
    /// caller then queues and kicks): `cpu` is in EL2 or another CPU is
    /// listing there, `admit` refused, the interrupt is listed already, or
    /// no list register is free; always on a GIC without aliases. Never
    /// waits.
    #[inline(always)]
    fn list_remote(_cpu: usize, _admit: impl FnOnce() -> Option<Irq>) -> bool {
        false
    }
    /// What [`GicBackend::list_remote`] can do on this machine (known
    /// after [`GicBackend::init_distributor`]).
    fn remote_listing() -> RemoteListing {
        RemoteListing::Unsupported
    }
}
