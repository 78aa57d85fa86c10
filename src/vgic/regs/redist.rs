//! A vCPU's redistributor (GICR): the RD_base frame (identification,
//! TYPER, WAKER) and the SGI_base frame (its SGIs' and PPIs' enables,
//! pending and active bits, priorities and configuration).

use super::{
    BitReg, Effects, IIDR_VALUE, Live, ORDER, PIDR2, PIDR2_VALUE, Sizes, Write, owned_private,
    vcpu_bit,
};
use crate::vgic::state::{FORWARDED_PPIS, PRIORITY_MASK, PRIVATE_OWNED, PrivateIrqs, VgicState};

// Offsets in RD_base (Arm IHI 0069, "The GIC Redistributor register map").
const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_TYPER_HIGH: u64 = GICR_TYPER + 4;
const GICR_STATUSR: u64 = 0x0010;
const GICR_WAKER: u64 = 0x0014;
// The 64-bit LPI registers.
const GICR_SETLPIR: u64 = 0x0040;
const GICR_CLRLPIR: u64 = 0x0048;
const GICR_PROPBASER: u64 = 0x0070;
const GICR_PENDBASER: u64 = 0x0078;
const GICR_INVLPIR: u64 = 0x00a0;
const GICR_INVALLR: u64 = 0x00b0;

/// SGI_base: the second 64 KiB frame of the pair.
const SGI_BASE: u64 = 0x1_0000;
// Offsets in SGI_base.
/// IGROUPR0, ISENABLER0, ICENABLER0, ISPENDR0, ICPENDR0, ISACTIVER0,
/// ICACTIVER0: one word each, 0x80 apart, in that order, from here (the
/// words after each are the extended PPI range: reserved here).
const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
const BIT_BANK_SIZE: u64 = 0x80;
const GICR_IPRIORITYR: u64 = SGI_BASE + 0x0400;
const GICR_IPRIORITYR_END: u64 = GICR_IPRIORITYR + 32;
const GICR_ICFGR0: u64 = SGI_BASE + 0x0c00;
const GICR_ICFGR1: u64 = SGI_BASE + 0x0c04;

// GICR_TYPER fields.
/// Affinity_Value [63:32]: Aff3.Aff2.Aff1.Aff0 of the vCPU's vMPIDR.
const TYPER_AFFINITY_SHIFT: u32 = 32;
/// Processor_Number [23:8].
const TYPER_PROCESSOR_NUMBER_SHIFT: u32 = 8;
/// Last [4]: the last redistributor of the partition's contiguous range.
const TYPER_LAST: u64 = 1 << 4;

// GICR_WAKER fields.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// GICR_ICFGR0: every SGI is edge-triggered (Int_config[1] of each set).
const ICFGR0_SGIS_EDGE: u32 = 0xaaaa_aaaa;
/// The ICFGR1 bits the guest may write: Int_config[1] of each owned PPI
/// (Int_config[0] is RES0).
const ICFGR1_OWNED: u32 = {
    let mut mask = 0;
    let mut ppi = 16;
    while ppi < 32 {
        if PRIVATE_OWNED & (1 << ppi) != 0 {
            mask |= 2 << ((ppi - 16) * 2);
        }
        ppi += 1;
    }
    mask
};

/// One redistributor register, as [`decode`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reg {
    Iidr,
    /// GICR_TYPER (64-bit).
    Typer,
    Waker,
    Pidr2,
    /// A bit-per-interrupt register for INTIDs 0..32.
    Bits(BitReg),
    /// IPRIORITYR: INTIDs `first..first + 4`, one byte each.
    Priority {
        first: u32,
    },
    /// ICFGR0 (SGIs, fixed).
    Config0,
    /// ICFGR1 (PPIs).
    Config1,
    /// Reserved or without effect here (CTLR: no LPIs; STATUSR, the LPI
    /// registers, IGRPMODR0, NSACR, the other ID registers, the extended
    /// PPI range): reads as zero, writes ignored.
    Razwi,
}

/// The register at `offset` (< 128 KiB) and the access sizes it takes.
#[inline(always)]
pub(super) fn decode(offset: u64) -> (Reg, Sizes) {
    match offset {
        GICR_CTLR | GICR_STATUSR => (Reg::Razwi, Sizes::WORD),
        GICR_IIDR => (Reg::Iidr, Sizes::WORD),
        GICR_TYPER | GICR_TYPER_HIGH => (Reg::Typer, Sizes::DOUBLE_OR_WORD),
        GICR_WAKER => (Reg::Waker, Sizes::WORD),
        // Either half of one of the LPI registers.
        _ if is_lpi_register(offset & !7) => (Reg::Razwi, Sizes::DOUBLE_OR_WORD),
        PIDR2 => (Reg::Pidr2, Sizes::WORD),
        GICR_IGROUPR0..GICR_IPRIORITYR => {
            let from = offset - GICR_IGROUPR0;
            match BitReg::from_bank(from / BIT_BANK_SIZE) {
                Some(reg) if from.is_multiple_of(BIT_BANK_SIZE) => (Reg::Bits(reg), Sizes::WORD),
                _ => (Reg::Razwi, Sizes::WORD),
            }
        }
        GICR_IPRIORITYR..GICR_IPRIORITYR_END => (
            Reg::Priority {
                first: (offset - GICR_IPRIORITYR) as u32 & !3,
            },
            Sizes::BYTE_OR_WORD,
        ),
        GICR_ICFGR0 => (Reg::Config0, Sizes::WORD),
        GICR_ICFGR1 => (Reg::Config1, Sizes::WORD),
        _ => (Reg::Razwi, Sizes::WORD),
    }
}

/// One of the 64-bit LPI registers (no LPIs: RAZ/WI, but at their width).
fn is_lpi_register(base: u64) -> bool {
    matches!(
        base,
        GICR_SETLPIR | GICR_CLRLPIR | GICR_PROPBASER | GICR_PENDBASER | GICR_INVLPIR | GICR_INVALLR
    )
}

/// The value of the whole register at `offset` (< 128 KiB) of `vcpu`'s
/// redistributor and the access sizes it takes: [`decode`]'s map (which a
/// test holds this one to), with each value computed where its register
/// is found, as `dist::read` does, and its half as there.
#[inline(always)]
pub(super) fn read(
    state: &VgicState,
    vcpu: usize,
    offset: u64,
    live: Option<&dyn Live>,
) -> Option<(u64, Sizes)> {
    // The live half: nothing else (the other half, without `live`, finds
    // its pending and active registers below).
    if live.is_some() && !is_live(offset) {
        return None;
    }
    // Never `None`: the caller checked `vcpu` (a panic's call would cost
    // every read its saved registers).
    let private = state.private.get(vcpu)?;
    let (value, sizes) = match offset {
        GICR_IIDR => (IIDR_VALUE, Sizes::WORD),
        GICR_TYPER | GICR_TYPER_HIGH => {
            return Some((typer(state, vcpu), Sizes::DOUBLE_OR_WORD));
        }
        GICR_WAKER => {
            // Sleep and wake take effect at once: ChildrenAsleep follows.
            let asleep = private.asleep.load(ORDER);
            let waker = if asleep {
                WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
            } else {
                0
            };
            (waker, Sizes::WORD)
        }
        // Either half of one of the LPI registers.
        _ if is_lpi_register(offset & !7) => (0, Sizes::DOUBLE_OR_WORD),
        PIDR2 => (PIDR2_VALUE, Sizes::WORD),
        GICR_IGROUPR0..GICR_IPRIORITYR => {
            let from = offset - GICR_IGROUPR0;
            let bits = match BitReg::from_bank(from / BIT_BANK_SIZE) {
                Some(reg) if from.is_multiple_of(BIT_BANK_SIZE) => {
                    if reg.is_live() && live.is_none() {
                        return None;
                    }
                    // Asked for only where there is a live view.
                    let live = || live.map_or((0, 0), |live| live.private(vcpu));
                    PRIVATE_OWNED & bits(private, reg, live)
                }
                _ => 0,
            };
            (bits, Sizes::WORD)
        }
        GICR_IPRIORITYR..GICR_IPRIORITYR_END => {
            let first = (offset - GICR_IPRIORITYR) as u32 & !3;
            let bytes = (first..first + 4)
                .filter_map(owned_private)
                .fold(0, |bytes, intid| {
                    let priority = u32::from(private.priority[intid].load(ORDER));
                    bytes | priority << ((intid as u32 - first) * 8)
                });
            (bytes, Sizes::BYTE_OR_WORD)
        }
        GICR_ICFGR0 => (ICFGR0_SGIS_EDGE, Sizes::WORD),
        GICR_ICFGR1 => (private.icfgr1.load(ORDER) & ICFGR1_OWNED, Sizes::WORD),
        // CTLR (no LPIs), STATUSR and the rest (see `Reg::Razwi`).
        _ => (0, Sizes::WORD),
    };
    Some((u64::from(value), sizes))
}

/// Whether `offset` is one of SGI_base's pending and active registers
/// (ISPENDR0, ICPENDR0, ISACTIVER0, ICACTIVER0), which show the live
/// state.
#[inline(always)]
pub(super) fn is_live(offset: u64) -> bool {
    (GICR_IGROUPR0 + 3 * BIT_BANK_SIZE..GICR_IPRIORITYR).contains(&offset)
        && (offset - GICR_IGROUPR0).is_multiple_of(BIT_BANK_SIZE)
}

/// Performs a write to `reg` of `vcpu`'s redistributor.
pub(super) fn write(state: &VgicState, vcpu: usize, reg: Reg, write: Write) -> Effects {
    let private = &state.private[vcpu];
    let me = vcpu_bit(vcpu);
    let mut effects = Effects::default();
    match reg {
        Reg::Waker => {
            let sleep = write.word() & WAKER_PROCESSOR_SLEEP != 0;
            if private.asleep.swap(sleep, ORDER) && !sleep {
                // Awake: what became pending meanwhile can be taken.
                effects.drain = me;
            }
        }
        Reg::Bits(reg) => {
            let bits = write.word() & PRIVATE_OWNED;
            if bits != 0 {
                write_bits(private, reg, bits, vcpu, &mut effects);
            }
        }
        Reg::Priority { first } => {
            for intid in (first..first + 4).filter_map(owned_private) {
                if let Some(byte) = write.byte(intid as u32 - first) {
                    private.priority[intid].store(byte & PRIORITY_MASK, ORDER);
                }
            }
        }
        Reg::Config1 => {
            private.icfgr1.store(write.word() & ICFGR1_OWNED, ORDER);
        }
        Reg::Typer | Reg::Iidr | Reg::Pidr2 | Reg::Config0 | Reg::Razwi => {}
    }
    effects
}

/// GICR_TYPER of `vcpu`: its affinity, its number, and Last on the last
/// one (Linux walks the frames until Last and matches the affinity against
/// each CPU's MPIDR). No LPIs, no VLPIs, PPInum 0 (PPIs 16..32 only).
#[inline(always)]
fn typer(state: &VgicState, vcpu: usize) -> u64 {
    let vmpidr = state.vmpidr(vcpu);
    // vMPIDR: Aff3 [39:32], Aff2..Aff0 [23:0]; TYPER wants them packed.
    let affinity = (vmpidr >> 32 & 0xff) << 24 | (vmpidr & 0xff_ffff);
    let last = if vcpu + 1 == state.vcpus() {
        TYPER_LAST
    } else {
        0
    };
    affinity << TYPER_AFFINITY_SHIFT | (vcpu as u64 & 0xffff) << TYPER_PROCESSOR_NUMBER_SHIFT | last
}

/// The bits of a bit-per-interrupt register of kind `reg`, before masking
/// to the owned interrupts; `live` is asked only when needed.
#[inline(always)]
fn bits(private: &PrivateIrqs, reg: BitReg, live: impl FnOnce() -> (u32, u32)) -> u32 {
    match reg {
        BitReg::Group => u32::MAX,
        BitReg::SetEnable | BitReg::ClearEnable => private.enabled.load(ORDER),
        BitReg::SetPending | BitReg::ClearPending => private.pending.load(ORDER) | live().0,
        BitReg::SetActive | BitReg::ClearActive => private.active.load(ORDER) | live().1,
    }
}

/// Ones written to the owned `bits` of a register of kind `reg` of vCPU
/// `vcpu`'s redistributor.
fn write_bits(private: &PrivateIrqs, reg: BitReg, bits: u32, vcpu: usize, effects: &mut Effects) {
    let me = vcpu_bit(vcpu);
    // The forwarded ones' pending and active states are the physical GIC's:
    // a write to them is a request for it, of this vCPU's CPU.
    let forwarded = bits & private.forwarded.load(ORDER);
    let model = bits & !forwarded;
    if forwarded != 0
        && matches!(
            reg,
            BitReg::SetPending | BitReg::ClearPending | BitReg::SetActive | BitReg::ClearActive
        )
    {
        effects.physical.ppi_vcpu = vcpu;
    }
    match reg {
        BitReg::Group => {}
        BitReg::SetEnable => {
            let newly = bits & !private.enabled.fetch_or(bits, ORDER);
            if newly & FORWARDED_PPIS != 0 {
                effects.ppis_changed |= me;
            }
            if newly != 0 {
                // Enable before looking at pending (see the module doc).
                if private.pending.load(ORDER) & newly != 0 {
                    effects.drain |= me;
                }
            }
        }
        BitReg::ClearEnable => {
            let was = private.enabled.fetch_and(!bits, ORDER) & bits;
            if was & FORWARDED_PPIS != 0 {
                effects.ppis_changed |= me;
            }
            if was != 0 {
                // A disabled interrupt may not stay where the guest takes it.
                effects.withdraw |= me;
            }
        }
        BitReg::SetPending => {
            effects.physical.ppi_set_pending |= forwarded;
            if model != 0 {
                private.pending.fetch_or(model, ORDER);
                effects.drain |= me;
            }
        }
        BitReg::ClearPending => {
            effects.physical.ppi_clear_pending |= forwarded;
            private.pending.fetch_and(!model, ORDER);
            private.withdraw_pending.fetch_or(bits, ORDER);
            effects.withdraw |= me;
        }
        BitReg::SetActive => {
            effects.physical.ppi_set_active |= forwarded;
            private.active.fetch_or(model, ORDER);
        }
        BitReg::ClearActive => {
            effects.physical.ppi_clear_active |= forwarded;
            private.active.fetch_and(!model, ORDER);
            private.withdraw_active.fetch_or(bits, ORDER);
            effects.withdraw |= me;
        }
    }
}
