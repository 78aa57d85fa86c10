//! The state of one partition's virtual GIC that its guest can see through
//! the distributor and redistributor registers.
//!
//! Everything is atomic: the register model (`regs`) updates it under the
//! partition's vGIC lock, while the hot paths (injection on a vCPU's own
//! CPU, SGI sends from its siblings) read enable bits and priorities and
//! set pending bits without any lock.
//!
//! Where pending interrupts live, in delivery order:
//! 1. `pending` here: raised (by a sibling's SGI, an ISPENDR write, or while
//!    the interrupt is disabled) but not yet taken by the target's CPU;
//! 2. the target vCPU's software queue (`queue`), on its own CPU;
//! 3. its list registers, where the guest sees them.
//!
//! An interrupt moves from 1 to 2 or 3 only on the target's CPU, and only
//! while enabled: a disabled interrupt stays in 1 until it is enabled.
//!
//! A forwarded interrupt (the EL1 timers, a passthrough device's SPI:
//! `forwarded`) never waits in 1: its pending and active states are the
//! physical GIC's, which the hypervisor sets and clears for the guest's
//! ISPENDR/ICPENDR/ISACTIVER/ICACTIVER writes, so the one physical
//! interrupt and the guest's view of it never disagree.
//!
//! A purely virtual SPI (the emulated PL011's: not `forwarded`, level)
//! has no physical interrupt behind it: its device model drives its line
//! (`regs::set_line`): pending in 1 while the line is high, withdrawn from
//! wherever it waits when the line drops.
//!
//! Withdrawal: a write that clears an interrupt's pending or active state,
//! or disables it, records which interrupts each vCPU's CPU must take back
//! out of its list registers and queue (`withdraw_*`); that CPU does it
//! when it is kicked, as only it may touch them.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::partition::MAX_VCPUS;

/// SGIs and PPIs: INTIDs 0..32, one set per vCPU.
pub const PRIVATE_IRQS: usize = 32;
/// The EL1 virtual timer's PPI.
pub const VTIMER_INTID: u32 = 27;
/// The EL1 (non-secure) physical timer's PPI.
pub const PTIMER_INTID: u32 = 30;
/// The PPIs a partition has, each vCPU its own: its EL1 timers, forwarded
/// from the vCPU's physical CPU (their pending and active states are that
/// CPU's redistributor's).
pub const FORWARDED_PPIS: u32 = (1 << VTIMER_INTID) | (1 << PTIMER_INTID);
/// Private interrupts a partition has: its 16 SGIs and its timers' PPIs.
pub const PRIVATE_OWNED: u32 = 0xffff | FORWARDED_PPIS;

/// The forwarded PPIs ([`FORWARDED_PPIS`]), one INTID at a time.
pub fn forwarded_ppis() -> impl Iterator<Item = u32> {
    (16..32).filter(|&intid| is_forwarded_ppi(intid))
}

/// Whether `intid` is one of the forwarded PPIs ([`FORWARDED_PPIS`]).
#[inline(always)]
pub const fn is_forwarded_ppi(intid: u32) -> bool {
    intid < 32 && FORWARDED_PPIS & (1 << intid) != 0
}
/// A bit of `PrivateIrqs::pending` that is no interrupt of the partition
/// (INTID 31, a PPI it never owns): set by a CPU that kicks vCPU n for any
/// reason other than an SGI, so vCPU n's CPU takes the full drain (SPIs
/// included) rather than the assembly fast path.
pub const DRAIN_ALL: u32 = 1 << 31;
/// `Spi::target` when its IROUTER names no vCPU of the partition: as on a
/// GIC whose IROUTER names no PE, the interrupt is delivered to nobody (it
/// stays pending) until it is routed to one.
pub const NO_TARGET: u8 = u8::MAX;
/// GICD_CTLR.EnableGrp0 and EnableGrp1 (with DS = 1, Arm IHI 0069), as
/// `VgicState::ctlr` holds them.
pub const CTLR_ENABLE_GRP0: u32 = 1 << 0;
pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// Most SPIs one partition may own (the configuration check enforces it).
pub use bulkhead_abi::limits::MAX_PARTITION_SPIS as MAX_SPIS;
/// Priority bits the virtual CPU interface implements (ICH_VTR_EL2.PRIbits
/// + 1 = 5 on QEMU's GICv3 and the GIC-400): writes keep the top 5 bits.
pub const PRIORITY_MASK: u8 = 0xf8;
/// Reset priority of every interrupt (the highest non-zero value, as on
/// hardware that resets priorities to 0 it would preempt everything).
pub const DEFAULT_PRIORITY: u8 = 0xa0;

/// One vCPU's SGIs and PPIs: what its redistributor's SGI frame shows.
/// The hypervisor's assembly fast paths take `pending` bits and read
/// `priority` bytes at their addresses.
#[derive(Debug)]
pub struct PrivateIrqs {
    /// Bit n: INTID n enabled (GICR_ISENABLER0).
    pub enabled: AtomicU32,
    /// Bit n: INTID n pending and not yet taken by this vCPU's CPU.
    pub pending: AtomicU32,
    /// Bit n: INTID n active as far as the model knows (ISACTIVER0 writes).
    pub active: AtomicU32,
    /// GICR_ICFGR1 (PPI trigger configuration); SGIs are always edge.
    pub icfgr1: AtomicU32,
    pub priority: [AtomicU8; PRIVATE_IRQS],
    /// GICR_WAKER.ProcessorSleep.
    pub asleep: AtomicBool,
    /// GICv2 only: for each SGI, the vCPUs (bit n = vCPU n) it is pending
    /// from (GICD_SPENDSGIR/CPENDSGIR), as a GICv2 keeps an SGI's pending
    /// state per source; its bit in `pending` is set while any is.
    pub sgi_sources: [AtomicU8; 16],
    /// Bit n: INTID n is forwarded from hardware (the EL1 timers,
    /// [`FORWARDED_PPIS`]): its pending and active states are the physical
    /// GIC's.
    pub forwarded: AtomicU32,
    /// Bit n: a write cleared INTID n's pending state (ICPENDR0); this
    /// vCPU's CPU takes it out of its list registers and queue.
    pub withdraw_pending: AtomicU32,
    /// Bit n: a write cleared INTID n's active state (ICACTIVER0).
    pub withdraw_active: AtomicU32,
    /// Bit i: the same for the partition's SPI i (`VgicState::spis()[i]`),
    /// wherever this vCPU holds it.
    pub withdraw_spi_pending: AtomicU32,
    pub withdraw_spi_active: AtomicU32,
    /// Set (after the `withdraw_*` bits, and after any disable) by every
    /// register write that may take something back from this vCPU; its
    /// CPU looks at its list registers for withdrawal only when it is set,
    /// so an ordinary drain costs one load.
    pub withdraw_requested: AtomicBool,
}

impl PrivateIrqs {
    pub const fn new() -> Self {
        Self {
            enabled: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            active: AtomicU32::new(0),
            icfgr1: AtomicU32::new(0),
            priority: [const { AtomicU8::new(DEFAULT_PRIORITY) }; PRIVATE_IRQS],
            asleep: AtomicBool::new(true),
            sgi_sources: [const { AtomicU8::new(0) }; 16],
            forwarded: AtomicU32::new(0),
            withdraw_pending: AtomicU32::new(0),
            withdraw_active: AtomicU32::new(0),
            withdraw_spi_pending: AtomicU32::new(0),
            withdraw_spi_active: AtomicU32::new(0),
            withdraw_requested: AtomicBool::new(false),
        }
    }
}

impl Default for PrivateIrqs {
    fn default() -> Self {
        Self::new()
    }
}

/// One SPI the partition owns (a passthrough device's interrupt).
/// `repr(C)`: the hypervisor's assembly fast path reads `enabled` (with
/// `edge` in the same word) and `priority` at the offsets below.
#[repr(C)]
#[derive(Debug)]
pub struct Spi {
    /// Its INTID: the same in the guest and in the machine.
    pub intid: u32,
    pub enabled: AtomicBool,
    pub pending: AtomicBool,
    pub active: AtomicBool,
    /// ICFGR: edge-triggered (else level).
    pub edge: AtomicBool,
    pub priority: AtomicU8,
    /// GICD_IROUTER as the guest wrote it (affinity fields and IRM).
    pub router: AtomicU64,
    /// The vCPU the router value resolves to: vCPU 0 for IRM = 1 (any one
    /// of them), [`NO_TARGET`] when it names none of the partition's vCPUs.
    pub target: AtomicU8,
    /// Forwarded from hardware (a passthrough device's): its pending and
    /// active states are the physical GIC's, not `pending`/`active`.
    pub forwarded: AtomicBool,
}

/// The affinity fields of an MPIDR (Aff3 in bits 39:32, Aff2..Aff0 in
/// bits 23:0), as GICD_IROUTER and ICC_SGI1R_EL1's routing compare them.
pub const AFFINITY: u64 = 0xff_00ff_ffff;

/// Byte offsets of [`Spi`] fields, for assembly.
pub const SPI_ENABLED: usize = core::mem::offset_of!(Spi, enabled);
pub const SPI_EDGE: usize = core::mem::offset_of!(Spi, edge);
pub const SPI_PRIORITY: usize = core::mem::offset_of!(Spi, priority);

impl Spi {
    pub const fn new(intid: u32) -> Self {
        Self {
            intid,
            enabled: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            active: AtomicBool::new(false),
            edge: AtomicBool::new(false),
            priority: AtomicU8::new(DEFAULT_PRIORITY),
            router: AtomicU64::new(0),
            target: AtomicU8::new(0),
            forwarded: AtomicBool::new(false),
        }
    }
}

/// A partition's virtual GIC.
#[derive(Debug)]
pub struct VgicState {
    /// GICD_CTLR.EnableGrp1 (bit 1) and EnableGrp0 (bit 0), as written.
    pub ctlr: AtomicU32,
    /// One entry per vCPU (only the first `vcpus` are used).
    pub private: [PrivateIrqs; MAX_VCPUS],
    /// The SPIs the partition owns, ascending by INTID.
    spis: [Spi; MAX_SPIS],
    spi_count: usize,
    /// INTID / 32 of the highest owned SPI (0 if none): fixed with the
    /// SPIs, so a read of GICD_TYPER need not look for it.
    highest_spi_block: u32,
    vcpus: usize,
    /// Each vCPU's virtual MPIDR affinity (Aff3 in bits 39:32, Aff2..Aff0 in 23:0).
    vmpidrs: [u64; MAX_VCPUS],
}

impl VgicState {
    /// A reset vGIC for `vmpidrs.len()` vCPUs owning the SPIs `spis`
    /// (in any order, each 32..1020, at most [`MAX_SPIS`]; the
    /// configuration check guarantees it, extra ones are ignored).
    pub fn new(vmpidrs: &[u64], spis: &[u32]) -> Self {
        let mut state = Self {
            ctlr: AtomicU32::new(0),
            private: [const { PrivateIrqs::new() }; MAX_VCPUS],
            spis: [const { Spi::new(0) }; MAX_SPIS],
            spi_count: spis.len().min(MAX_SPIS),
            highest_spi_block: 0,
            vcpus: vmpidrs.len().min(MAX_VCPUS),
            vmpidrs: [0; MAX_VCPUS],
        };
        // Kept ascending: insertion, for at most MAX_SPIS entries.
        for (n, &intid) in spis.iter().take(state.spi_count).enumerate() {
            let at = state.spis[..n]
                .iter()
                .position(|s| s.intid > intid)
                .unwrap_or(n);
            for i in (at..n).rev() {
                state.spis[i + 1] = Spi::new(state.spis[i].intid);
            }
            state.spis[at] = Spi::new(intid);
        }
        state.vmpidrs[..state.vcpus].copy_from_slice(&vmpidrs[..state.vcpus]);
        // Ascending: the highest is the last one in range (the
        // configuration check admits no other).
        state.highest_spi_block = state
            .spis()
            .iter()
            .rev()
            .find(|spi| (32..1020).contains(&spi.intid))
            .map_or(0, |spi| spi.intid / 32);
        state
    }

    /// INTID / 32 of the highest owned SPI, 0 if none.
    pub fn highest_spi_block(&self) -> u32 {
        self.highest_spi_block
    }

    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    pub fn vmpidr(&self, vcpu: usize) -> u64 {
        self.vmpidrs[vcpu]
    }

    /// The owned SPIs, ascending by INTID.
    pub fn spis(&self) -> &[Spi] {
        // `new` keeps `spi_count` <= MAX_SPIS: never the empty default (a
        // panic's call would cost the register reads their saved registers).
        self.spis.get(..self.spi_count).unwrap_or_default()
    }

    /// The owned SPIs forwarded from hardware (passthrough devices').
    pub fn forwarded_spis(&self) -> impl Iterator<Item = &Spi> {
        self.spis()
            .iter()
            .filter(|s| s.forwarded.load(Ordering::Relaxed))
    }

    /// The owned SPI with this INTID.
    pub fn spi(&self, intid: u32) -> Option<&Spi> {
        self.spis().iter().find(|s| s.intid == intid)
    }

    /// The vCPU whose virtual affinity is `affinity` (MPIDR layout).
    pub fn vcpu_by_affinity(&self, affinity: u64) -> Option<usize> {
        self.vmpidrs[..self.vcpus]
            .iter()
            .position(|&m| m & AFFINITY == affinity & AFFINITY)
    }

    /// Whether distribution of group-1 interrupts is on (GICD_CTLR).
    pub fn group1_enabled(&self) -> bool {
        self.ctlr.load(Ordering::Relaxed) & CTLR_ENABLE_GRP1 != 0
    }

    /// Back to the state [`VgicState::new`] made, for a partition restart:
    /// every register the guest can write at its reset value, nothing
    /// pending or active. What the board fixes stays: which interrupts are
    /// owned and forwarded, and the SPIs' triggers. Only while none of the
    /// partition's vCPUs runs (each has put back what its list registers
    /// held).
    pub fn reset(&self) {
        use Ordering::Relaxed;
        self.ctlr.store(0, Relaxed);
        for private in &self.private {
            for field in [
                &private.enabled,
                &private.pending,
                &private.active,
                &private.icfgr1,
                &private.withdraw_pending,
                &private.withdraw_active,
                &private.withdraw_spi_pending,
                &private.withdraw_spi_active,
            ] {
                field.store(0, Relaxed);
            }
            for priority in &private.priority {
                priority.store(DEFAULT_PRIORITY, Relaxed);
            }
            for sources in &private.sgi_sources {
                sources.store(0, Relaxed);
            }
            private.asleep.store(true, Relaxed);
            private.withdraw_requested.store(false, Relaxed);
        }
        for spi in self.spis() {
            for flag in [&spi.enabled, &spi.pending, &spi.active] {
                flag.store(false, Relaxed);
            }
            spi.priority.store(DEFAULT_PRIORITY, Relaxed);
            spi.router.store(0, Relaxed);
            spi.target.store(0, Relaxed);
        }
        core::sync::atomic::fence(Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DRAIN_ALL must be bit 31 and no interrupt of a partition: the
    /// assembly fast path (fast.S's DELIVER_ONE) takes a kick only when
    /// the pending bits are one SGI, so a DRAIN_ALL sends it to Rust.
    #[test]
    fn drain_all_is_bit_31_and_no_owned_interrupt() {
        assert_eq!(DRAIN_ALL.trailing_zeros(), 31);
        assert_eq!(DRAIN_ALL.count_ones(), 1);
        assert_eq!(DRAIN_ALL & PRIVATE_OWNED, 0);
        assert_eq!(PRIVATE_OWNED.count_ones(), 18, "16 SGIs and the two timers");
        assert!(is_forwarded_ppi(VTIMER_INTID) && is_forwarded_ppi(PTIMER_INTID));
        assert!(!is_forwarded_ppi(26) && !is_forwarded_ppi(34) && !is_forwarded_ppi(u32::MAX));
    }

    /// A restart leaves no trace of what the guest wrote, and keeps what
    /// the board fixed.
    #[test]
    fn reset_is_new_but_for_what_the_board_fixed() {
        let state = VgicState::new(&[0, 1], &[40, 33]);
        let fresh = format!("{state:?}");
        state.private[1]
            .forwarded
            .store(1 << VTIMER_INTID, Ordering::Relaxed);
        state.spis()[1].forwarded.store(true, Ordering::Relaxed);
        state.spis()[1].edge.store(true, Ordering::Relaxed);
        let fixed = format!("{state:?}");
        state.ctlr.store(CTLR_ENABLE_GRP1, Ordering::Relaxed);
        for p in &state.private {
            p.enabled.store(!0, Ordering::Relaxed);
            p.pending.store(3, Ordering::Relaxed);
            p.active.store(4, Ordering::Relaxed);
            p.icfgr1.store(0x8000, Ordering::Relaxed);
            p.priority[5].store(0x10, Ordering::Relaxed);
            p.sgi_sources[3].store(0b101, Ordering::Relaxed);
            p.asleep.store(false, Ordering::Relaxed);
            p.withdraw_pending.store(1, Ordering::Relaxed);
            p.withdraw_spi_active.store(1, Ordering::Relaxed);
            p.withdraw_requested.store(true, Ordering::Relaxed);
        }
        for s in state.spis() {
            s.enabled.store(true, Ordering::Relaxed);
            s.pending.store(true, Ordering::Relaxed);
            s.active.store(true, Ordering::Relaxed);
            s.priority.store(0x20, Ordering::Relaxed);
            s.router.store(1, Ordering::Relaxed);
            s.target.store(1, Ordering::Relaxed);
        }
        assert_ne!(format!("{state:?}"), fixed);
        state.reset();
        assert_eq!(format!("{state:?}"), fixed);
        assert_ne!(fixed, fresh, "the board's settings are kept");
    }

    #[test]
    fn owned_spis_are_kept_ascending_whatever_the_order_given() {
        let state = VgicState::new(&[0, 1], &[40, 34, 99, 33]);
        let intids: Vec<u32> = state.spis().iter().map(|s| s.intid).collect();
        assert_eq!(intids, [33, 34, 40, 99]);
        assert!(state.spi(99).is_some() && state.spi(35).is_none());
        assert_eq!(state.vcpu_by_affinity(1), Some(1));
    }
}
