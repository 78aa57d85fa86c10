//! The register model of one partition's virtual GICv3 distributor (GICD)
//! and redistributors (GICR), trap-and-emulate.
//!
//! The hypervisor decodes a guest's stage-2 data abort on the GICD page or
//! on one of the partition's GICR frames and calls [`read`] or [`write`] with
//! the offset in the frame, the access size and the value. Everything here
//! works on [`VgicState`] and nothing else: no hardware, no allocation, no
//! unsafe, and no input makes it panic.
//!
//! What the guest sees (Arm IHI 0069, GICv3):
//! - affinity routing always on and a single security state
//!   (GICD_CTLR.ARE = DS = 1), every interrupt in group 1, no LPIs, no
//!   extended SPI or PPI ranges;
//! - only the interrupts the partition owns: its 16 SGIs and the EL1
//!   timers' PPIs on each vCPU ([`PRIVATE_OWNED`]) and its SPIs
//!   ([`VgicState::spis`]). Every bit, byte or field of any other interrupt
//!   reads as zero and ignores writes (RAZ/WI), and so do reserved offsets
//!   inside a frame.
//!
//! Width and alignment are checked before anything else; a refused access
//! is a [`BadAccess`], which the caller turns into RAZ/WI (a guest's mistake
//! is never a hypervisor error).
//!
//! The caller holds the partition's vGIC lock. The hot paths do not: they
//! set pending bits and read enables concurrently, so pending and enable
//! updates are atomic read-modify-writes, and "enable, then look for
//! pending" is sequentially consistent with their "set pending, then look
//! at enable".

use core::sync::atomic::Ordering;

#[cfg(doc)]
use super::state::FORWARDED_PPIS;
use super::state::{PRIVATE_OWNED, VgicState};

mod dist;
mod dist_v2;
mod redist;
#[cfg(test)]
mod tests;

/// Which register frame an access hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The 64 KiB GICD frame.
    Distributor,
    /// The vCPU's 128 KiB GICR pair (RD_base at 0, SGI_base at 0x1_0000).
    Redistributor { vcpu: usize },
    /// A virtual GICv2's 4 KiB distributor, as vCPU `vcpu` sees it (its own
    /// registers for INTIDs 0..32): see `dist_v2`.
    DistributorV2 { vcpu: usize },
}

/// Why an access cannot be performed as asked (the caller makes it
/// read-as-zero / write-ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAccess {
    /// A size the register does not support.
    Width,
    /// Not naturally aligned to its size.
    Alignment,
    /// Beyond the end of the frame.
    Offset,
    /// A redistributor of a vCPU the partition does not have.
    NoSuchVcpu,
}

/// Live pending/active state the model cannot see: interrupts already in
/// the target's list registers or software queue.
pub trait Live {
    /// (pending bits, active bits) of INTIDs 0..32 of `vcpu`.
    fn private(&self, vcpu: usize) -> (u32, u32);
    /// (pending, active) of the SPI `intid`.
    fn spi(&self, intid: u32) -> (bool, bool);
}

/// What a write changed that the hypervisor must act on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    /// vCPUs (bit n = vCPU n) whose CPU must take newly deliverable
    /// interrupts out of `pending` (something became pending, or enabled
    /// while pending, or group 1 was enabled).
    pub drain: u32,
    /// The partition's SPIs (bit i = `VgicState::spis()[i]`) whose enable
    /// or routing changed, or all of them when group 1 was switched: the
    /// physical side of each follows. Priority and trigger never reach
    /// the physical GIC (the former matters only in list registers, the
    /// latter is the board's).
    pub spis_changed: u32,
    /// vCPUs whose forwarded PPIs' enables ([`FORWARDED_PPIS`]) changed,
    /// or all of them when group 1 was switched: the hypervisor mirrors
    /// them physically.
    pub ppis_changed: u32,
    /// Forwarded interrupts whose physical pending or active state the
    /// write sets or clears.
    pub physical: Physical,
    /// vCPUs whose CPU must take withdrawn interrupts (pending or active
    /// state cleared, disabled, group 1 off) back out of its list registers
    /// and queue: see the `withdraw_*` fields of `PrivateIrqs`.
    pub withdraw: u32,
    /// The SGI a GICv2 GICD_SGIR write sends, for the caller to route from
    /// the writing vCPU (`crate::vgic::sgi`), as a trapped ICC_SGI1R_EL1
    /// write is on GICv3.
    pub sgi: Option<crate::vgic::sgi::SgiRequest>,
}

/// Set and clear requests for the physical state of forwarded interrupts:
/// SPIs by their index in `VgicState::spis()`, forwarded PPIs by INTID, of
/// vCPU `ppi_vcpu` (a redistributor write names one vCPU's).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Physical {
    pub spi_set_pending: u32,
    pub spi_clear_pending: u32,
    pub spi_set_active: u32,
    pub spi_clear_active: u32,
    pub ppi_vcpu: usize,
    pub ppi_set_pending: u32,
    pub ppi_clear_pending: u32,
    pub ppi_set_active: u32,
    pub ppi_clear_active: u32,
}

/// Reads `size` bytes at `offset` of `frame`: [`read_plain`]'s value, or
/// [`read_live`]'s (the two halves of the map, one of which answers every
/// access).
pub fn read(
    state: &VgicState,
    frame: Frame,
    offset: u64,
    size: u8,
    live: &dyn Live,
) -> Result<u64, BadAccess> {
    read_half(state, frame, offset, size, None)
        .or_else(|| read_live(state, frame, offset, size, live))
        .unwrap_or(Ok(0))
}

/// [`read`] of a register that the model's own state gives (all but the
/// pending and active registers), `None` for the others and for an access
/// [`read`] refuses. Inlined and without calls, so that the trapped read
/// of such a register (what guests trap for most) costs its caller no
/// saved registers; the rest are [`read_live`]'s.
#[inline(always)]
pub fn read_plain(state: &VgicState, frame: Frame, offset: u64, size: u8) -> Option<u64> {
    read_half(state, frame, offset, size, None)?.ok()
}

/// [`read`] of an access [`read_plain`] does not answer: a pending or
/// active register's, with the live view, or a refused access (`None`
/// for a size that a register of [`read_plain`]'s refuses). `None` for
/// the others, the registers [`read_plain`] gives. Which of the two
/// answers depends on the frame, the offset and the size only, never on
/// the state.
#[inline(always)]
pub fn read_live(
    state: &VgicState,
    frame: Frame,
    offset: u64,
    size: u8,
    live: &dyn Live,
) -> Option<Result<u64, BadAccess>> {
    read_half(state, frame, offset, size, Some(live))
}

/// The checks every read goes through, then the register's half of the
/// map: the pending and active registers with `live`, the others without
/// (`None` for a register of the other half).
#[inline(always)]
fn read_half(
    state: &VgicState,
    frame: Frame,
    offset: u64,
    size: u8,
    live: Option<&dyn Live>,
) -> Option<Result<u64, BadAccess>> {
    // The checks `decode` makes, in the same order, then the register's
    // value and the sizes it accepts, found in one pass.
    let (value, sizes) = match frame {
        Frame::Distributor => {
            if let Err(e) = check_access(offset, size, DIST_FRAME_SIZE) {
                return Some(Err(e));
            }
            dist::read(state, offset, live)?
        }
        Frame::Redistributor { vcpu } => {
            if let Err(e) =
                check_vcpu(state, vcpu).and_then(|()| check_access(offset, size, REDIST_FRAME_SIZE))
            {
                return Some(Err(e));
            }
            redist::read(state, vcpu, offset, live)?
        }
        Frame::DistributorV2 { vcpu } => {
            if let Err(e) = check_vcpu(state, vcpu)
                .and_then(|()| check_access(offset, size, dist_v2::FRAME_SIZE))
            {
                return Some(Err(e));
            }
            dist_v2::read(state, vcpu, offset, live)?
        }
    };
    Some(Window::of(offset, size, sizes).map(|window| window.extract(value)))
}

/// Writes the low `size` bytes of `value` at `offset` of `frame`.
pub fn write(
    state: &VgicState,
    frame: Frame,
    offset: u64,
    size: u8,
    value: u64,
) -> Result<Effects, BadAccess> {
    let effects = match frame {
        Frame::Distributor => {
            let (reg, window) = decode(offset, size, DIST_FRAME_SIZE, dist::decode)?;
            dist::write(state, reg, window.insert(value))
        }
        Frame::Redistributor { vcpu } => {
            check_vcpu(state, vcpu)?;
            let (reg, window) = decode(offset, size, REDIST_FRAME_SIZE, redist::decode)?;
            redist::write(state, vcpu, reg, window.insert(value))
        }
        Frame::DistributorV2 { vcpu } => {
            check_vcpu(state, vcpu)?;
            let (reg, window) = decode(offset, size, dist_v2::FRAME_SIZE, dist_v2::decode)?;
            dist_v2::write(state, vcpu, reg, window.insert(value))
        }
    };
    request_withdrawals(state, effects.withdraw);
    Ok(effects)
}

/// Raises the withdrawal request of the vCPUs in `withdraw` (after the
/// `withdraw_*` bits that say what).
fn request_withdrawals(state: &VgicState, mut withdraw: u32) {
    while withdraw != 0 {
        let t = withdraw.trailing_zeros() as usize;
        withdraw &= withdraw - 1;
        if let Some(private) = state.private.get(t) {
            private.withdraw_requested.store(true, Ordering::Release);
        }
    }
}

/// The line of `intid`, a level-sensitive SPI the partition owns with no
/// physical counterpart (the emulated PL011's), is now `high`.
///
/// Raised, the interrupt is pending until the guest takes it: its target
/// drains it (into a list register it becomes pending, or active and
/// pending while the guest handles an earlier instance, as a GIC keeps a
/// level interrupt whose line is still high). Lowered, its pending state
/// is withdrawn wherever a vCPU holds it (an active instance stays
/// active), so a guest never takes an interrupt whose line is low. The
/// caller holds the vGIC lock, as for a register write; an INTID that is
/// not such an SPI of the partition changes nothing.
pub fn set_line(state: &VgicState, intid: u32, high: bool) -> Effects {
    let mut effects = Effects::default();
    let Some((i, spi)) = state
        .spis()
        .iter()
        .enumerate()
        .find(|(_, s)| s.intid == intid && !s.forwarded.load(Ordering::Relaxed))
    else {
        return effects;
    };
    if high {
        spi.pending.store(true, Ordering::Release);
        let target = usize::from(spi.target.load(Ordering::Relaxed));
        if target < state.vcpus() {
            effects.drain = 1 << target;
        }
    } else {
        spi.pending.store(false, Ordering::Release);
        for v in 0..state.vcpus() {
            state.private[v]
                .withdraw_spi_pending
                .fetch_or(1 << i, Ordering::AcqRel);
        }
        effects.withdraw = (1u64 << state.vcpus()).wrapping_sub(1) as u32;
        request_withdrawals(state, effects.withdraw);
    }
    effects
}

/// The GICD frame: 64 KiB.
const DIST_FRAME_SIZE: u64 = 0x1_0000;
/// A GICR pair: RD_base and SGI_base, 64 KiB each (no VLPI frames).
const REDIST_FRAME_SIZE: u64 = 0x2_0000;

/// Peripheral ID2 (GICD_PIDR2 and GICR_PIDR2), at the same offset in GICD
/// and RD_base: ArchRev [7:4] = 3 (GICv3), JEDEC bits as Arm's parts have
/// them. Linux checks ArchRev before it trusts a frame.
const PIDR2: u64 = 0xffe8;
const PIDR2_VALUE: u32 = 0x3b;
/// GICD_IIDR and GICR_IIDR: Implementer [11:0] = 0x43b (Arm's JEP106
/// code), ProductID, Variant and Revision 0.
const IIDR_VALUE: u32 = 0x0000_043b;

/// Access sizes a register accepts, as a mask of the sizes in bytes (each a
/// power of two, so `size & mask != 0` tests one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes(u8);

impl Sizes {
    /// A 32-bit register: word accesses only.
    const WORD: Self = Self(4);
    /// A byte-accessible 32-bit register (IPRIORITYR, ITARGETSR, ...).
    const BYTE_OR_WORD: Self = Self(1 | 4);
    /// A 64-bit register: doubleword, or a word to either half.
    const DOUBLE_OR_WORD: Self = Self(4 | 8);

    /// The aligned base of the register at `offset`.
    #[cfg(test)]
    fn base(self, offset: u64) -> u64 {
        offset & !self.offset_mask()
    }

    /// The bits of an offset inside its register: 7 for a 64-bit register
    /// (one that takes doublewords), 3 for a 32-bit one. Without a branch
    /// or a select: the sizes' bit 3 (8 bytes) moved to bit 2.
    #[inline(always)]
    fn offset_mask(self) -> u64 {
        u64::from((self.0 & 8) >> 1 | 3)
    }
}

/// Where an access falls inside its register: the bits it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Bit position of the access's lowest byte in the register.
    shift: u32,
    /// The access's bits, at the access's position (not shifted).
    mask: u64,
}

impl Window {
    /// The window of an access the register accepts (a `size` of
    /// `sizes`, the last check).
    #[inline(always)]
    fn of(offset: u64, size: u8, sizes: Sizes) -> Result<Self, BadAccess> {
        if size & sizes.0 == 0 {
            return Err(BadAccess::Width);
        }
        Ok(Self::new(offset, size, sizes))
    }

    fn new(offset: u64, size: u8, sizes: Sizes) -> Self {
        // `offset - base` < 8 and size <= 8: neither shift can overflow.
        let shift = ((offset & sizes.offset_mask()) * 8) as u32;
        // The low `size` bytes: all but the top 64 - 8 * size bits (none
        // for 8 bytes; `size` is 1, 2, 4 or 8, checked before).
        let mask = u64::MAX >> ((u32::from(size) * 8).wrapping_neg() & 63);
        Self { shift, mask }
    }

    /// The accessed part of a register's value.
    fn extract(self, register: u64) -> u64 {
        (register >> self.shift) & self.mask
    }

    /// A written value, placed at its position in the register.
    fn insert(self, value: u64) -> Write {
        Write {
            value: (value & self.mask) << self.shift,
            mask: self.mask << self.shift,
        }
    }
}

/// A write as the register sees it: only the bits in `mask` were written
/// (a byte of IPRIORITYR, a half of IROUTER); `value` is zero outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Write {
    value: u64,
    mask: u64,
}

impl Write {
    /// The low 32 bits, for the 32-bit registers (word accesses only: the
    /// mask covers all of them).
    fn word(self) -> u32 {
        self.value as u32
    }

    /// Byte `n` of the register, if this write covers it.
    fn byte(self, n: u32) -> Option<u8> {
        let shift = n * 8;
        ((self.mask >> shift) & 0xff != 0).then_some((self.value >> shift) as u8)
    }

    /// The register's new value: the written bits of this write over `old`.
    fn merge(self, old: u64) -> u64 {
        (old & !self.mask) | self.value
    }
}

/// The checks every access goes through, in order: within the frame, a
/// size of 1, 2, 4 or 8 bytes, naturally aligned, and one the register
/// accepts. Gives the register and where in it the access falls. Inlined
/// with the frame's own decoder: both are on every trapped access.
#[inline(always)]
fn decode<R>(
    offset: u64,
    size: u8,
    frame_size: u64,
    decode_register: fn(u64) -> (R, Sizes),
) -> Result<(R, Window), BadAccess> {
    check_access(offset, size, frame_size)?;
    let (reg, sizes) = decode_register(offset);
    Ok((reg, Window::of(offset, size, sizes)?))
}

/// The checks of an access before its register: within the frame, a size
/// of 1, 2, 4 or 8 bytes, naturally aligned.
#[inline(always)]
fn check_access(offset: u64, size: u8, frame_size: u64) -> Result<(), BadAccess> {
    if offset >= frame_size {
        return Err(BadAccess::Offset);
    }
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(BadAccess::Width);
    }
    // Frame sizes are multiples of 8, so an aligned access ends in the frame.
    // (`size` is a power of two: the low bits below it must be clear.)
    if offset & (u64::from(size) - 1) != 0 {
        return Err(BadAccess::Alignment);
    }
    Ok(())
}

#[inline(always)]
fn check_vcpu(state: &VgicState, vcpu: usize) -> Result<(), BadAccess> {
    if vcpu < state.vcpus() {
        Ok(())
    } else {
        Err(BadAccess::NoSuchVcpu)
    }
}

/// The registers with one bit per interrupt; the set and clear forms of a
/// pair read the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitReg {
    /// IGROUPR: every owned interrupt is group 1; writes ignored.
    Group,
    /// ISENABLER / ICENABLER.
    SetEnable,
    ClearEnable,
    /// ISPENDR / ICPENDR.
    SetPending,
    ClearPending,
    /// ISACTIVER / ICACTIVER.
    SetActive,
    ClearActive,
}

impl BitReg {
    /// Whether the register's bits include the live state (pending,
    /// active): [`read_live`]'s half of the map.
    #[inline(always)]
    fn is_live(self) -> bool {
        !matches!(self, Self::Group | Self::SetEnable | Self::ClearEnable)
    }

    /// The `index`th bank of bit registers, in their architectural order
    /// (IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER,
    /// ICACTIVER), in both the GICD and the SGI_base frames.
    fn from_bank(index: u64) -> Option<Self> {
        Some(match index {
            0 => Self::Group,
            1 => Self::SetEnable,
            2 => Self::ClearEnable,
            3 => Self::SetPending,
            4 => Self::ClearPending,
            5 => Self::SetActive,
            6 => Self::ClearActive,
            _ => return None,
        })
    }
}

/// Bit `n` of a vCPU mask (no bit for a vCPU past the mask).
#[inline(always)]
fn vcpu_bit(vcpu: usize) -> u32 {
    1u32.checked_shl(vcpu as u32).unwrap_or(0)
}

/// Every vCPU of the partition, as a mask.
fn all_vcpus(state: &VgicState) -> u32 {
    (0..state.vcpus()).fold(0, |mask, v| mask | vcpu_bit(v))
}

/// A private interrupt's priority byte index, if the partition owns it.
#[inline(always)]
fn owned_private(intid: u32) -> Option<usize> {
    (intid < 32 && PRIVATE_OWNED & (1 << intid) != 0).then_some(intid as usize)
}

/// Sequentially consistent everywhere: register accesses trap and are rare,
/// and the enable/pending handshake with the lock-free paths needs it.
const ORDER: Ordering = Ordering::SeqCst;
