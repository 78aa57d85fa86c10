//! The distributor (GICD) frame.
//!
//! With affinity routing on, the distributor only handles SPIs: its
//! registers for INTIDs 0..32 (IGROUPR0, ISENABLER0, ..., IPRIORITYR0..7,
//! ICFGR0..1) are RAZ/WI, which falls out of looking the INTID up among the
//! owned SPIs. ITARGETSR and the SGI registers are RAZ/WI for the same
//! reason.

use super::{
    BitReg, Effects, IIDR_VALUE, Live, ORDER, PIDR2, PIDR2_VALUE, Sizes, Write, all_vcpus, vcpu_bit,
};
use crate::vgic::state::{
    CTLR_ENABLE_GRP0, CTLR_ENABLE_GRP1, NO_TARGET, PRIORITY_MASK, Spi, VgicState,
};

// Offsets in the GICD frame (Arm IHI 0069, "The GIC Distributor register map").
const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_TYPER2: u64 = 0x000c;
const GICD_STATUSR: u64 = 0x0010;
/// IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER:
/// seven banks of 32 words, in that order, from here.
const GICD_IGROUPR: u64 = 0x0080;
const BIT_BANK_SIZE: u64 = 0x80;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ITARGETSR: u64 = 0x0800;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IGRPMODR: u64 = 0x0d00;
const GICD_SGIR: u64 = 0x0f00;
const GICD_CPENDSGIR: u64 = 0x0f10;
const GICD_SPENDSGIR: u64 = 0x0f20;
const GICD_SPENDSGIR_END: u64 = GICD_SPENDSGIR + 0x10;
/// IROUTER<n> at 0x6000 + 8n; n < 32 is reserved, n = 1020..1023 too.
const GICD_IROUTER: u64 = 0x6000;
const GICD_IROUTER_END: u64 = 0x8000;

// GICD_CTLR with DS = 1 (Arm IHI 0069, GICD_CTLR "When access is in a
// system with a single Security state"); the enables are the state's.
const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;

// GICD_TYPER fields.
/// IDbits [23:19]: INTID bits - 1; 10 bits, INTIDs up to 1023 (no LPIs).
const TYPER_IDBITS: u32 = 9 << 19;
/// A3V [24]: affinity level 3 is supported, so IROUTER keeps Aff3 (the
/// vMPIDRs may use it).
const TYPER_A3V: u32 = 1 << 24;
/// ITLinesNumber [4:0]: SPIs go up to INTID 32 * (N + 1) - 1.
const TYPER_ITLINES_MAX: u32 = 31;

/// IROUTER bits kept: Aff3 [39:32], IRM [31], Aff2..Aff0 [23:0].
const IROUTER_MASK: u64 = 0xff_80ff_ffff;
const IROUTER_IRM: u64 = 1 << 31;

/// One distributor register, as [`decode`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reg {
    Ctlr,
    Typer,
    Iidr,
    Pidr2,
    /// A bit-per-interrupt register covering INTIDs `first..first + 32`.
    Bits {
        reg: BitReg,
        first: u32,
    },
    /// IPRIORITYR: INTIDs `first..first + 4`, one byte each.
    Priority {
        first: u32,
    },
    /// ICFGR: INTIDs `first..first + 16`, two bits each.
    Config {
        first: u32,
    },
    /// IROUTER<intid> (64-bit).
    Router {
        intid: u32,
    },
    /// Reserved or without effect here (TYPER2, STATUSR, ITARGETSR,
    /// IGRPMODR, NSACR, SGIR, CPENDSGIR, SPENDSGIR, the other ID registers,
    /// the extended SPI ranges): reads as zero, writes ignored.
    Razwi,
}

/// The register at `offset` (< 64 KiB) and the access sizes it takes.
#[inline(always)]
pub(super) fn decode(offset: u64) -> (Reg, Sizes) {
    // Which 32-bit word of a bank, from its start.
    let word = |start: u64| ((offset - start) / 4) as u32;
    match offset {
        GICD_CTLR => (Reg::Ctlr, Sizes::WORD),
        GICD_TYPER => (Reg::Typer, Sizes::WORD),
        GICD_IIDR => (Reg::Iidr, Sizes::WORD),
        GICD_TYPER2 | GICD_STATUSR | GICD_SGIR => (Reg::Razwi, Sizes::WORD),
        GICD_IGROUPR..GICD_IPRIORITYR => {
            let from = offset - GICD_IGROUPR;
            match BitReg::from_bank(from / BIT_BANK_SIZE) {
                Some(reg) => {
                    let first = ((from % BIT_BANK_SIZE) / 4 * 32) as u32;
                    (Reg::Bits { reg, first }, Sizes::WORD)
                }
                None => (Reg::Razwi, Sizes::WORD),
            }
        }
        GICD_IPRIORITYR..GICD_ITARGETSR => (
            Reg::Priority {
                first: word(GICD_IPRIORITYR) * 4,
            },
            Sizes::BYTE_OR_WORD,
        ),
        // ITARGETSR, CPENDSGIR and SPENDSGIR are byte-accessible too.
        GICD_ITARGETSR..GICD_ICFGR => (Reg::Razwi, Sizes::BYTE_OR_WORD),
        GICD_CPENDSGIR..GICD_SPENDSGIR_END => (Reg::Razwi, Sizes::BYTE_OR_WORD),
        GICD_ICFGR..GICD_IGRPMODR => (
            Reg::Config {
                first: word(GICD_ICFGR) * 16,
            },
            Sizes::WORD,
        ),
        GICD_IROUTER..GICD_IROUTER_END => (
            Reg::Router {
                intid: ((offset - GICD_IROUTER) / 8) as u32,
            },
            Sizes::DOUBLE_OR_WORD,
        ),
        PIDR2 => (Reg::Pidr2, Sizes::WORD),
        _ => (Reg::Razwi, Sizes::WORD),
    }
}

/// The value of the whole register at `offset` (< 64 KiB) and the access
/// sizes it takes: [`decode`]'s map (which a test holds this one to), with
/// each value computed where its register is found, so that a read, the
/// access guests trap for most, decides its register once. Half of it:
/// the pending and active registers with `live`, the live view, the others
/// without (`None` for a register of the other half).
#[inline(always)]
pub(super) fn read(
    state: &VgicState,
    offset: u64,
    live: Option<&dyn Live>,
) -> Option<(u64, Sizes)> {
    // The live half: nothing else (the other half, without `live`, finds
    // its pending and active registers below).
    if live.is_some() && !is_live(offset) {
        return None;
    }
    // Which 32-bit word of a bank, from its start.
    let word = |start: u64| ((offset - start) / 4) as u32;
    let (value, sizes) = match offset {
        GICD_CTLR => {
            let enables = state.ctlr.load(ORDER) & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
            // RWP [31] reads 0: writes take effect at once.
            (enables | CTLR_ARE | CTLR_DS, Sizes::WORD)
        }
        GICD_TYPER => (
            TYPER_IDBITS | TYPER_A3V | it_lines_number(state),
            Sizes::WORD,
        ),
        GICD_IIDR => (IIDR_VALUE, Sizes::WORD),
        GICD_IGROUPR..GICD_IPRIORITYR => {
            let from = offset - GICD_IGROUPR;
            let first = ((from % BIT_BANK_SIZE) / 4 * 32) as u32;
            let bits = match BitReg::from_bank(from / BIT_BANK_SIZE) {
                Some(reg) if reg.is_live() && live.is_none() => return None,
                Some(reg) => fold_owned(state, first, 32, Field::Bit(reg), live),
                None => 0,
            };
            (bits, Sizes::WORD)
        }
        GICD_IPRIORITYR..GICD_ITARGETSR => {
            let first = word(GICD_IPRIORITYR) * 4;
            let bytes = fold_owned(state, first, 4, Field::Priority, live);
            (bytes, Sizes::BYTE_OR_WORD)
        }
        // ITARGETSR, CPENDSGIR and SPENDSGIR are byte-accessible too.
        GICD_ITARGETSR..GICD_ICFGR | GICD_CPENDSGIR..GICD_SPENDSGIR_END => (0, Sizes::BYTE_OR_WORD),
        GICD_ICFGR..GICD_IGRPMODR => {
            let first = word(GICD_ICFGR) * 16;
            let bits = fold_owned(state, first, 16, Field::Edge, live);
            (bits, Sizes::WORD)
        }
        GICD_IROUTER..GICD_IROUTER_END => {
            let intid = ((offset - GICD_IROUTER) / 8) as u32;
            // `state.spi(intid)`'s, as a plain loop (no call on a read).
            let mut router = 0;
            for spi in state.spis() {
                if spi.intid == intid {
                    router = spi.router.load(ORDER);
                    break;
                }
            }
            return Some((router, Sizes::DOUBLE_OR_WORD));
        }
        PIDR2 => (PIDR2_VALUE, Sizes::WORD),
        // Reserved or without effect here (see `Reg::Razwi`).
        _ => (0, Sizes::WORD),
    };
    Some((u64::from(value), sizes))
}

/// Whether `offset` is in the pending and active registers (ISPENDR,
/// ICPENDR, ISACTIVER, ICACTIVER), which show the live state.
#[inline(always)]
pub(super) fn is_live(offset: u64) -> bool {
    (GICD_IGROUPR + 3 * BIT_BANK_SIZE..GICD_IPRIORITYR).contains(&offset)
}

/// Performs a write to `reg`.
pub(super) fn write(state: &VgicState, reg: Reg, write: Write) -> Effects {
    let mut effects = Effects::default();
    match reg {
        Reg::Ctlr => {
            let enables = write.word() & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
            let old = state.ctlr.swap(enables, ORDER);
            if enables & !old & CTLR_ENABLE_GRP1 != 0 {
                // Whatever waited for group 1 may now be delivered anywhere.
                effects.drain = all_vcpus(state);
            }
            if (enables ^ old) & CTLR_ENABLE_GRP1 != 0 {
                // Every physical enable follows group 1.
                effects.spis_changed = all_spis(state);
                effects.ppis_changed = all_vcpus(state);
            }
            if old & !enables & CTLR_ENABLE_GRP1 != 0 {
                // Nothing of group 1 may stay where a guest could take it.
                effects.withdraw = all_vcpus(state);
            }
        }
        Reg::Bits { reg, first } => {
            let bits = write.word();
            for (i, spi) in owned(state, first, 32) {
                if bits & 1 << (spi.intid - first) != 0
                    && write_bit(state, i, spi, reg, &mut effects)
                {
                    effects.spis_changed |= 1 << i;
                }
            }
        }
        Reg::Priority { first } => {
            for (_, spi) in owned(state, first, 4) {
                if let Some(byte) = write.byte(spi.intid - first) {
                    spi.priority.store(byte & PRIORITY_MASK, ORDER);
                }
            }
        }
        // Read-only: an SPI's trigger is the board's (the GIC architecture
        // lets an implementation fix Int_config of an SPI).
        Reg::Config { .. } => {}
        Reg::Router { intid } => {
            if let Some((i, spi)) = owned(state, intid, 1).next()
                && write_router(state, spi, write, &mut effects)
            {
                effects.spis_changed |= 1 << i;
            }
        }
        Reg::Typer | Reg::Iidr | Reg::Pidr2 | Reg::Razwi => {}
    }
    effects
}

/// The owned SPIs among INTIDs `first..first + count`, with their index
/// in `state.spis()`.
fn owned(state: &VgicState, first: u32, count: u32) -> impl Iterator<Item = (usize, &Spi)> {
    state
        .spis()
        .iter()
        .enumerate()
        // SPIs are 32..1020; anything else in the list is not one (the
        // configuration check keeps it out; this keeps it out of the
        // distributor's INTID 0..32 registers regardless).
        .filter(move |(_, spi)| (32..1020).contains(&spi.intid))
        .filter(move |(_, spi)| spi.intid >= first && spi.intid - first < count)
}

/// What a register holds of each SPI, for [`fold_owned`].
#[derive(Clone, Copy)]
enum Field {
    /// A bit, of a bit-per-interrupt register of this kind.
    Bit(BitReg),
    /// The priority byte.
    Priority,
    /// Int_config, two bits: Int_config[1] (bit 2n + 1) is edge;
    /// Int_config[0] is RES0.
    Edge,
}

/// The bits of a register holding `field` of INTIDs `first..first +
/// count`, from [`owned`]'s SPIs among them (`live` as for
/// [`bit_is_set`]): a plain loop, without calls, inlined into the reads.
#[inline(always)]
fn fold_owned(
    state: &VgicState,
    first: u32,
    count: u32,
    field: Field,
    live: Option<&dyn Live>,
) -> u32 {
    let mut bits = 0;
    for spi in state.spis() {
        // `owned`'s test.
        if !(32..1020).contains(&spi.intid) || spi.intid < first || spi.intid - first >= count {
            continue;
        }
        let n = spi.intid - first;
        bits |= match field {
            Field::Bit(reg) => u32::from(bit_is_set(spi, reg, live)) << n,
            Field::Priority => u32::from(spi.priority.load(ORDER)) << (n * 8),
            Field::Edge => u32::from(spi.edge.load(ORDER)) << (n * 2 + 1),
        };
    }
    bits
}

/// Every owned SPI's bit in [`Effects::spis_changed`].
fn all_spis(state: &VgicState) -> u32 {
    (1u64 << state.spis().len()).wrapping_sub(1) as u32
}

/// GICD_TYPER.ITLinesNumber: enough 32-INTID blocks for the highest owned
/// SPI, so Linux looks at no register beyond the partition's SPIs.
#[inline(always)]
pub(super) fn it_lines_number(state: &VgicState) -> u32 {
    state.highest_spi_block().min(TYPER_ITLINES_MAX)
}

/// Whether `spi`'s bit in a register of kind `reg` reads as one (`live`
/// is there for the pending and active registers).
#[inline(always)]
fn bit_is_set(spi: &Spi, reg: BitReg, live: Option<&dyn Live>) -> bool {
    let (pending, active) = match reg {
        BitReg::Group => return true,
        BitReg::SetEnable | BitReg::ClearEnable => return spi.enabled.load(ORDER),
        BitReg::SetPending | BitReg::ClearPending => (true, false),
        BitReg::SetActive | BitReg::ClearActive => (false, true),
    };
    if pending && spi.pending.load(ORDER) || active && spi.active.load(ORDER) {
        return true;
    }
    match live {
        Some(live) => {
            let (live_pending, live_active) = live.spi(spi.intid);
            pending && live_pending || active && live_active
        }
        None => false,
    }
}

/// A one written to the bit of `spi` (index `i`) in a register of kind
/// `reg`; whether its enable changed.
fn write_bit(state: &VgicState, i: usize, spi: &Spi, reg: BitReg, effects: &mut Effects) -> bool {
    let target = vcpu_bit(usize::from(spi.target.load(ORDER)));
    let forwarded = spi.forwarded.load(ORDER);
    let bit = 1u32 << i;
    // Whichever vCPU holds it (a reroute may have moved it) gives it back.
    let withdraw =
        |field: fn(&crate::vgic::state::PrivateIrqs) -> &core::sync::atomic::AtomicU32,
         effects: &mut Effects| {
            for v in 0..state.vcpus() {
                field(&state.private[v]).fetch_or(bit, ORDER);
            }
            effects.withdraw |= all_vcpus(state);
        };
    match reg {
        BitReg::Group => {}
        BitReg::SetEnable => {
            if !spi.enabled.swap(true, ORDER) {
                // Enable before looking at pending: an injection that set
                // pending without seeing the enable is taken out here.
                if spi.pending.load(ORDER) {
                    effects.drain |= target;
                }
                return true;
            }
        }
        BitReg::ClearEnable => {
            if spi.enabled.swap(false, ORDER) {
                effects.withdraw |= all_vcpus(state);
                return true;
            }
        }
        BitReg::SetPending if forwarded => effects.physical.spi_set_pending |= bit,
        BitReg::SetPending => {
            spi.pending.store(true, ORDER);
            effects.drain |= target;
        }
        BitReg::ClearPending => {
            if forwarded {
                effects.physical.spi_clear_pending |= bit;
            } else {
                spi.pending.store(false, ORDER);
            }
            withdraw(|p| &p.withdraw_spi_pending, effects);
        }
        BitReg::SetActive if forwarded => effects.physical.spi_set_active |= bit,
        BitReg::SetActive => spi.active.store(true, ORDER),
        BitReg::ClearActive => {
            if forwarded {
                effects.physical.spi_clear_active |= bit;
            } else {
                spi.active.store(false, ORDER);
            }
            withdraw(|p| &p.withdraw_spi_active, effects);
        }
    }
    false
}

/// A write to (a half of) `spi`'s IROUTER: keep the affinity and IRM bits,
/// resolve the vCPU it names (vCPU 0 for 1-of-N, [`NO_TARGET`] if none);
/// whether the vCPU it resolves to changed.
fn write_router(state: &VgicState, spi: &Spi, write: Write, effects: &mut Effects) -> bool {
    let router = write.merge(spi.router.load(ORDER)) & IROUTER_MASK;
    let target = if router & IROUTER_IRM != 0 {
        0
    } else {
        // vCPU indices are below MAX_VCPUS, far below NO_TARGET.
        state
            .vcpu_by_affinity(router)
            .map_or(NO_TARGET, |v| v as u8)
    };
    spi.router.store(router, ORDER);
    let old_target = spi.target.swap(target, ORDER);
    if old_target != target && spi.pending.load(ORDER) {
        // It waits in `pending` for its target's CPU: now another one.
        effects.drain |= vcpu_bit(usize::from(target));
    }
    old_target != target
}
