//! The distributor of a partition's virtual GICv2 (Arm IHI 0048B, 4.3,
//! "Distributor register descriptions"): one 4 KiB frame, for the GICv2
//! backend of the GIC-400 boards (the Raspberry Pi 4).
//!
//! It is a view of the same [`VgicState`] the GICv3 registers show, and
//! mostly of the same registers:
//! - for INTIDs 0..32 a GICv2 distributor banks its registers per CPU
//!   interface: the accessing vCPU's, which are word for word what its
//!   GICv3 redistributor's SGI_base frame holds at the same offsets
//!   (ISENABLER0 ... ICACTIVER0, IPRIORITYR0..7, ICFGR0..1), so those go to
//!   `redist`;
//! - for SPIs the words are the GICv3 distributor's at the same offsets
//!   (`dist`);
//! - GICv2's own: CTLR, TYPER (CPUNumber), ITARGETSR (byte-accessible: a
//!   CPU interface per vCPU, bit n = vCPU n), SGIR (the SGI a write sends,
//!   [`Effects::sgi`], decoded by `crate::vgic::sgi` and routed by the same
//!   policy as ICC_SGI1R_EL1), and PIDR2 (ArchRev 2).
//!
//! The partition's GIC has no Security Extensions and its interrupts are
//! in group 0, the group Linux's GICv2 driver enables (GICD_CTLR and
//! GICC_CTLR bit 0): IGROUPR reads as zero and ignores writes, CTLR's
//! EnableGrp0 is the model's one enable.
//!
//! A GICv2 keeps an SGI's pending state per source CPU interface:
//! SPENDSGIR/CPENDSGIR set and clear it (`PrivateIrqs::sgi_sources`), and
//! the SGI is pending while any source is. The drain lists one interrupt
//! per source, the source in the list register's CPUID, and takes the
//! sources it lists: these registers show what waits to be listed, not
//! what a list register holds already.

use super::{
    BitReg, Effects, IIDR_VALUE, Live, ORDER, Sizes, Write, dist, owned_private, redist, vcpu_bit,
};
use crate::vgic::sgi::SgiRequest;
use crate::vgic::state::{CTLR_ENABLE_GRP1, NO_TARGET, VgicState};

/// The frame: 4 KiB.
pub(super) const FRAME_SIZE: u64 = 0x1000;

// Offsets (Arm IHI 0048B, Table 4-1).
const GICD_CTLR: u64 = 0x000;
const GICD_TYPER: u64 = 0x004;
const GICD_IIDR: u64 = 0x008;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xc00;
const GICD_SGIR: u64 = 0xf00;
const GICD_CPENDSGIR: u64 = 0xf10;
const GICD_SPENDSGIR: u64 = 0xf20;
const GICD_SPENDSGIR_END: u64 = 0xf30;
const GICD_PIDR2: u64 = 0xfe8;
/// Where a GICv3 redistributor's SGI_base frame starts in its pair: the
/// offset `redist` decodes GICv2's private words at.
const SGI_BASE: u64 = 0x1_0000;

/// GICD_CTLR.EnableGrp0 (without Security Extensions).
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_TYPER.CPUNumber [7:5]: CPU interfaces - 1.
const TYPER_CPU_NUMBER_SHIFT: u32 = 5;
/// GICD_PIDR2: ArchRev [7:4] = 2, with the JEDEC bit as the GICv3 frames.
const PIDR2_V2_VALUE: u32 = 0x2b;

/// One register of the frame, as [`decode`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reg {
    Ctlr,
    Typer,
    Iidr,
    Pidr2,
    /// A word for INTIDs 0..32: the accessing vCPU's, as its GICv3
    /// redistributor holds it.
    Private(redist::Reg),
    /// A word for SPIs, as the GICv3 distributor holds it.
    Shared(dist::Reg),
    /// ITARGETSR: INTIDs `first..first + 4`, one byte each.
    Targets {
        first: u32,
    },
    Sgir,
    /// CPENDSGIR (`set` false) or SPENDSGIR: SGIs `first..first + 4`, a
    /// byte of sources each.
    SgiSources {
        first: u32,
        set: bool,
    },
    /// IGROUPR (every interrupt in group 0), reserved offsets: reads as
    /// zero, writes ignored.
    Razwi,
}

/// The register at `offset` (< 4 KiB) and the access sizes it takes.
#[inline(always)]
pub(super) fn decode(offset: u64) -> (Reg, Sizes) {
    match offset {
        GICD_CTLR => (Reg::Ctlr, Sizes::WORD),
        GICD_TYPER => (Reg::Typer, Sizes::WORD),
        GICD_IIDR => (Reg::Iidr, Sizes::WORD),
        GICD_PIDR2 => (Reg::Pidr2, Sizes::WORD),
        GICD_SGIR => (Reg::Sgir, Sizes::WORD),
        GICD_IGROUPR..GICD_ISENABLER => (Reg::Razwi, Sizes::WORD),
        GICD_ITARGETSR..GICD_ICFGR => (
            Reg::Targets {
                first: (offset - GICD_ITARGETSR) as u32 & !3,
            },
            Sizes::BYTE_OR_WORD,
        ),
        GICD_CPENDSGIR..GICD_SPENDSGIR_END => (
            Reg::SgiSources {
                first: (offset & 0xf) as u32 & !3,
                set: offset >= GICD_SPENDSGIR,
            },
            Sizes::BYTE_OR_WORD,
        ),
        _ if is_private(offset) => {
            let (reg, sizes) = redist::decode(SGI_BASE + offset);
            (Reg::Private(reg), sizes)
        }
        _ => {
            let (reg, sizes) = dist::decode(offset);
            (Reg::Shared(reg), sizes)
        }
    }
}

/// Whether `offset` is a word of INTIDs 0..32: the first word of each bit
/// bank, IPRIORITYR0..7, ICFGR0..1.
fn is_private(offset: u64) -> bool {
    let word = offset & !3;
    (GICD_ISENABLER..GICD_IPRIORITYR).contains(&word) && word.is_multiple_of(0x80)
        || (GICD_IPRIORITYR..GICD_IPRIORITYR + 32).contains(&word)
        || word == GICD_ICFGR
        || word == GICD_ICFGR + 4
}

/// The value of the whole register at `offset` (< 4 KiB), as vCPU `vcpu`
/// reads it, and the access sizes it takes: [`decode`]'s map (which a test
/// holds this one to), with each value computed where its register is
/// found, as `dist::read` does, and its half as there (the pending and
/// active registers at GICv3's distributor offsets).
#[inline(always)]
pub(super) fn read(
    state: &VgicState,
    vcpu: usize,
    offset: u64,
    live: Option<&dyn Live>,
) -> Option<(u64, Sizes)> {
    // The live half: nothing else (the other half, without `live`, finds
    // its pending and active registers below).
    if live.is_some() && !dist::is_live(offset) {
        return None;
    }
    let (value, sizes) = match offset {
        GICD_CTLR => {
            let on = state.ctlr.load(ORDER) & CTLR_ENABLE_GRP1 != 0;
            (u32::from(on) * CTLR_ENABLE_GRP0, Sizes::WORD)
        }
        GICD_TYPER => {
            let interfaces = state.vcpus().clamp(1, 8) as u32;
            let typer = dist::it_lines_number(state) | (interfaces - 1) << TYPER_CPU_NUMBER_SHIFT;
            (typer, Sizes::WORD)
        }
        GICD_IIDR => (IIDR_VALUE, Sizes::WORD),
        GICD_PIDR2 => (PIDR2_V2_VALUE, Sizes::WORD),
        // SGIR is write-only; IGROUPR: every interrupt in group 0.
        GICD_SGIR | GICD_IGROUPR..GICD_ISENABLER => (0, Sizes::WORD),
        GICD_ITARGETSR..GICD_ICFGR => {
            let first = (offset - GICD_ITARGETSR) as u32 & !3;
            (targets(state, vcpu, first), Sizes::BYTE_OR_WORD)
        }
        GICD_CPENDSGIR..GICD_SPENDSGIR_END => {
            let first = (offset & 0xf) as u32 & !3;
            // Never `None`: the caller checked `vcpu` (see `redist::read`).
            let sources = &state.private.get(vcpu)?.sgi_sources;
            // A plain loop, as in `targets`.
            let mut bytes = 0;
            for i in 0..4 {
                // Never `None`: `first` + 3 < 16.
                let source = sources
                    .get((first + i) as usize)
                    .map_or(0, |s| s.load(ORDER));
                bytes |= u32::from(source) << (i * 8);
            }
            (bytes, Sizes::BYTE_OR_WORD)
        }
        _ if is_private(offset) => return redist::read(state, vcpu, SGI_BASE + offset, live),
        _ => return dist::read(state, offset, live),
    };
    Some((u64::from(value), sizes))
}

/// ITARGETSR's word for INTIDs `first..first + 4` (`first` a multiple of
/// 4) as vCPU `vcpu` reads it, a byte each: for an owned private
/// interrupt its own CPU interface, for an owned SPI the vCPU it is routed
/// to, otherwise nothing. Plain loops (one pass over the SPIs), without
/// calls: inlined into the register reads.
#[inline(always)]
fn targets(state: &VgicState, vcpu: usize, first: u32) -> u32 {
    let mut bytes = 0;
    if first < 32 {
        let me = u32::from(vcpu_bit(vcpu) as u8);
        for i in 0..4 {
            if owned_private(first + i).is_some() {
                bytes |= me << (i * 8);
            }
        }
        return bytes;
    }
    // SPIs are owned once each.
    for spi in state.spis() {
        if spi.intid < first || spi.intid - first >= 4 {
            continue;
        }
        let target = spi.target.load(ORDER);
        if target != NO_TARGET {
            let byte = u32::from(vcpu_bit(usize::from(target)) as u8);
            bytes |= byte << ((spi.intid - first) * 8);
        }
    }
    bytes
}

/// Performs vCPU `vcpu`'s write to `reg`.
pub(super) fn write(state: &VgicState, vcpu: usize, reg: Reg, write: Write) -> Effects {
    match reg {
        Reg::Ctlr => {
            let enable = write.word() & CTLR_ENABLE_GRP0 != 0;
            let enables = Write {
                value: if enable {
                    u64::from(CTLR_ENABLE_GRP1)
                } else {
                    0
                },
                mask: u64::from(u32::MAX),
            };
            dist::write(state, dist::Reg::Ctlr, enables)
        }
        // A GICv2 sets and clears an SGI's pending state per source, through
        // SPENDSGIR/CPENDSGIR only: the SGI bits of ISPENDR0/ICPENDR0
        // ignore writes (Arm IHI 0048B, 4.3.7 and 4.3.8).
        Reg::Private(reg @ redist::Reg::Bits(BitReg::SetPending | BitReg::ClearPending)) => {
            let ppis_only = Write {
                value: write.value & !0xffff,
                mask: write.mask,
            };
            redist::write(state, vcpu, reg, ppis_only)
        }
        Reg::Private(reg) => redist::write(state, vcpu, reg, write),
        Reg::Shared(reg) => dist::write(state, reg, write),
        Reg::Targets { first } => {
            let mut effects = Effects::default();
            for i in 0..4 {
                if let Some(byte) = write.byte(i) {
                    write_targets(state, first + i, byte, &mut effects);
                }
            }
            effects
        }
        Reg::Sgir => Effects {
            sgi: Some(SgiRequest::decode_sgir(write.word())),
            ..Effects::default()
        },
        Reg::SgiSources { first, set } => {
            let mut effects = Effects::default();
            for i in 0..4 {
                if let Some(byte) = write.byte(i) {
                    write_sources(state, vcpu, first + i, byte, set, &mut effects);
                }
            }
            effects
        }
        Reg::Typer | Reg::Iidr | Reg::Pidr2 | Reg::Razwi => Effects::default(),
    }
}

/// SPENDSGIR (`set`) or CPENDSGIR's byte for SGI `sgi` of vCPU `vcpu`:
/// the sources it names (vCPUs of the partition; other bits are no CPU
/// interface of it) are added or taken away; the SGI is pending while any
/// source is, and a cleared one is withdrawn from wherever it waits. That
/// includes one pending from no recorded source: delivered while a
/// CPENDSGIR write cleared its sender's bit (a GICD_SGIR delivery records
/// its source, then sets the pending bit), which no write could clear.
fn write_sources(
    state: &VgicState,
    vcpu: usize,
    sgi: u32,
    byte: u8,
    set: bool,
    effects: &mut Effects,
) {
    let private = &state.private[vcpu];
    let named = byte & ((1u32 << state.vcpus().min(8)) - 1) as u8;
    let sources = &private.sgi_sources[sgi as usize];
    let me = vcpu_bit(vcpu);
    if set {
        if named & !sources.fetch_or(named, ORDER) != 0 {
            private.pending.fetch_or(1 << sgi, ORDER);
            effects.drain |= me;
        }
    } else if named != 0 {
        let had = sources.fetch_and(!named, ORDER);
        let unsourced = had == 0 && private.pending.load(ORDER) & 1 << sgi != 0;
        if had & !named == 0 && (had & named != 0 || unsourced) {
            private.pending.fetch_and(!(1 << sgi), ORDER);
            private.withdraw_pending.fetch_or(1 << sgi, ORDER);
            effects.withdraw |= me;
        }
    }
}

/// ITARGETSR's byte for SPI `intid` (private ones are read-only): the
/// interrupt goes to the lowest-numbered vCPU the byte names (GICv2's 1-N
/// model lets one of the named CPU interfaces take it), or to none,
/// pending until it is routed, when it names none of the partition's.
fn write_targets(state: &VgicState, intid: u32, byte: u8, effects: &mut Effects) {
    let Some((i, spi)) = state
        .spis()
        .iter()
        .enumerate()
        .find(|(_, s)| s.intid == intid && intid >= 32)
    else {
        return;
    };
    let named = u32::from(byte) & ((1u32 << state.vcpus().min(8)) - 1);
    let target = if named == 0 {
        NO_TARGET
    } else {
        named.trailing_zeros() as u8
    };
    let old = spi.target.swap(target, ORDER);
    if old != target {
        effects.spis_changed |= 1 << i;
        if spi.pending.load(ORDER) && target != NO_TARGET {
            // It waits in `pending` for its target's CPU: now another one.
            effects.drain |= vcpu_bit(usize::from(target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vgic::sgi::SgiTarget;
    use crate::vgic::state::{PRIVATE_OWNED, VTIMER_INTID};

    /// Nothing in any list register.
    struct NoLive;

    impl Live for NoLive {
        fn private(&self, _: usize) -> (u32, u32) {
            (0, 0)
        }
        fn spi(&self, _: u32) -> (bool, bool) {
            (false, false)
        }
    }

    fn read32(s: &VgicState, vcpu: usize, offset: u64) -> u32 {
        // Whichever half of the map has the register.
        let (value, sizes) = read(s, vcpu, offset, None)
            .or_else(|| read(s, vcpu, offset, Some(&NoLive)))
            .unwrap();
        assert_eq!(sizes.base(offset), offset);
        value as u32
    }

    fn write32(s: &VgicState, vcpu: usize, offset: u64, value: u32) -> Effects {
        let (reg, _) = decode(offset);
        write(
            s,
            vcpu,
            reg,
            Write {
                value: u64::from(value),
                mask: u64::from(u32::MAX),
            },
        )
    }

    fn write8(s: &VgicState, vcpu: usize, offset: u64, value: u8) -> Effects {
        let (reg, sizes) = decode(offset);
        let shift = (offset - sizes.base(offset)) * 8;
        write(
            s,
            vcpu,
            reg,
            Write {
                value: u64::from(value) << shift,
                mask: 0xff << shift,
            },
        )
    }

    /// Two vCPUs owning SPIs 33 and 40.
    fn state() -> VgicState {
        VgicState::new(&[0, 1], &[33, 40])
    }

    #[test]
    fn ctlr_typer_and_ids_are_gicv2s() {
        let s = state();
        assert_eq!(read32(&s, 0, GICD_CTLR), 0);
        let fx = write32(&s, 0, GICD_CTLR, 0xffff_ffff);
        assert_eq!(read32(&s, 0, GICD_CTLR), 1, "EnableGrp0 only");
        assert_eq!(fx.drain, 0b11, "enabling lets everything waiting out");
        assert!(s.group1_enabled(), "the model's one enable");
        // ITLinesNumber 1 (SPIs up to 63), CPUNumber 1 (two interfaces),
        // no Security Extensions.
        assert_eq!(read32(&s, 1, GICD_TYPER), 1 | 1 << 5);
        assert_eq!(read32(&s, 0, GICD_PIDR2) >> 4 & 0xf, 2, "ArchRev 2");
        // Group 0 for everything.
        write32(&s, 0, GICD_IGROUPR + 4, !0);
        assert_eq!(read32(&s, 0, GICD_IGROUPR), 0);
        assert_eq!(read32(&s, 0, GICD_IGROUPR + 4), 0);
        write32(&s, 0, GICD_CTLR, 0);
        assert!(!s.group1_enabled());
    }

    /// INTIDs 0..32 are the accessing vCPU's own; SPIs are shared.
    #[test]
    fn private_words_are_banked_per_vcpu_and_spis_are_not() {
        let s = state();
        write32(&s, 1, GICD_ISENABLER, !0);
        assert_eq!(read32(&s, 1, GICD_ISENABLER), PRIVATE_OWNED);
        assert_eq!(read32(&s, 0, GICD_ISENABLER), 0);
        write32(&s, 0, GICD_IPRIORITYR + 4, 0x4000_0000);
        assert_eq!(read32(&s, 0, GICD_IPRIORITYR + 4) >> 24, 0x40, "SGI 7");
        assert_ne!(read32(&s, 1, GICD_IPRIORITYR + 4) >> 24, 0x40);
        write32(&s, 1, GICD_ISENABLER + 4, !0);
        assert_eq!(read32(&s, 0, GICD_ISENABLER + 4), 1 << 1 | 1 << 8);
        write32(&s, 0, GICD_IPRIORITYR + 40, 0x50);
        assert_eq!(read32(&s, 1, GICD_IPRIORITYR + 40) & 0xff, 0x50, "SPI 40");
        // The timer's trigger is a PPI's (ICFGR1), SGIs are edge (ICFGR0).
        assert_eq!(read32(&s, 0, GICD_ICFGR), 0xaaaa_aaaa);
        let timer = 2 << ((VTIMER_INTID - 16) * 2);
        write32(&s, 0, GICD_ICFGR + 4, timer);
        assert_eq!(read32(&s, 0, GICD_ICFGR + 4) & timer, timer);
    }

    #[test]
    fn itargetsr_is_a_cpu_interface_per_vcpu_and_byte_accessible() {
        let s = state();
        // Private: the reader's own interface, for owned interrupts only.
        assert_eq!(read32(&s, 1, GICD_ITARGETSR), 0x0202_0202, "SGIs 0..3");
        assert_eq!(
            read32(&s, 0, GICD_ITARGETSR + 24) >> 24,
            1,
            "the virtual timer"
        );
        assert_eq!(read32(&s, 0, GICD_ITARGETSR + 24) & 0xff, 0, "PPI 24");
        write8(&s, 0, GICD_ITARGETSR + 1, 0xff);
        assert_eq!(read32(&s, 0, GICD_ITARGETSR), 0x0101_0101, "read-only");
        // SPI 33: at reset to vCPU 0; a byte write moves it to vCPU 1.
        assert_eq!(read32(&s, 0, GICD_ITARGETSR + 32) >> 8 & 0xff, 1);
        let fx = write8(&s, 0, GICD_ITARGETSR + 33, 0b10);
        assert_eq!(fx.spis_changed, 0b01);
        assert_eq!(read32(&s, 1, GICD_ITARGETSR + 32) >> 8 & 0xff, 0b10);
        // Several named: the lowest takes it; none of ours: nobody.
        write8(&s, 0, GICD_ITARGETSR + 40, 0b11);
        assert_eq!(read32(&s, 0, GICD_ITARGETSR + 40) & 0xff, 0b01);
        let fx = write8(&s, 0, GICD_ITARGETSR + 40, 0b1100);
        assert_eq!((fx.spis_changed, fx.drain), (0b10, 0));
        assert_eq!(read32(&s, 0, GICD_ITARGETSR + 40) & 0xff, 0);
        assert_eq!(s.spi(40).map(|spi| spi.target.load(ORDER)), Some(NO_TARGET));
        // An SPI the partition does not own: nothing.
        assert_eq!(write8(&s, 0, GICD_ITARGETSR + 34, 1), Effects::default());
        assert_eq!(read32(&s, 0, GICD_ITARGETSR + 32) >> 16 & 0xff, 0);
    }

    /// The checks every access goes through, through the public entry.
    #[test]
    fn accesses_are_checked_as_on_every_frame() {
        use super::super::{BadAccess, Frame};
        let read_gicv2_distributor = |s: &VgicState, vcpu, offset, size, live: &dyn Live| {
            super::super::read(s, Frame::DistributorV2 { vcpu }, offset, size, live)
        };
        let write_gicv2_distributor = |s: &VgicState, vcpu, offset, size, value| {
            super::super::write(s, Frame::DistributorV2 { vcpu }, offset, size, value)
        };
        let s = state();
        let r = |vcpu, offset, size| read_gicv2_distributor(&s, vcpu, offset, size, &NoLive);
        assert_eq!(r(0, GICD_CTLR, 1), Err(BadAccess::Width), "word only");
        assert_eq!(r(0, GICD_ITARGETSR + 33, 1), Ok(1), "byte-accessible");
        assert_eq!(r(0, GICD_IPRIORITYR + 2, 2), Err(BadAccess::Width));
        assert_eq!(r(0, FRAME_SIZE, 4), Err(BadAccess::Offset));
        assert_eq!(r(0, GICD_TYPER + 1, 4), Err(BadAccess::Alignment));
        assert_eq!(r(2, GICD_CTLR, 4), Err(BadAccess::NoSuchVcpu));
        assert_eq!(
            write_gicv2_distributor(&s, 0, GICD_SGIR, 2, 0),
            Err(BadAccess::Width)
        );
        let fx = write_gicv2_distributor(&s, 0, GICD_ITARGETSR + 40, 1, 0x102);
        assert_eq!(fx.map(|fx| fx.spis_changed), Ok(0b10), "the byte only");
        assert_eq!(r(1, GICD_ITARGETSR + 40, 4), Ok(0b10));
    }

    #[test]
    fn a_sgir_write_asks_for_the_sgi_it_decodes() {
        let s = state();
        let fx = write32(&s, 1, GICD_SGIR, 0x0001_0005);
        assert_eq!(
            fx.sgi,
            Some(SgiRequest {
                intid: 5,
                target: SgiTarget::Interfaces(1)
            })
        );
        assert_eq!(read32(&s, 0, GICD_SGIR), 0, "write-only");
    }

    /// An SGI is pending per source: set and cleared by source, pending
    /// while any is, withdrawn when none is left; banked per vCPU.
    #[test]
    fn an_sgi_is_pending_per_source() {
        let s = state();
        // SGI 5 of vCPU 1 from vCPUs 0 and 1 (bits past the partition's
        // two interfaces name nobody).
        let fx = write8(&s, 1, GICD_SPENDSGIR + 5, 0b1111_0011);
        assert_eq!((fx.drain, fx.withdraw), (0b10, 0));
        assert_eq!(read32(&s, 1, GICD_SPENDSGIR + 4) >> 8 & 0xff, 0b11);
        assert_eq!(
            read32(&s, 1, GICD_CPENDSGIR + 4) >> 8 & 0xff,
            0b11,
            "either reads"
        );
        assert_eq!(read32(&s, 0, GICD_SPENDSGIR + 4), 0, "banked");
        assert_eq!(s.private[1].pending.load(ORDER), 1 << 5);
        // Again from a source it is pending from: nothing new.
        assert_eq!(write8(&s, 1, GICD_SPENDSGIR + 5, 0b01), Effects::default());
        // One source cleared: still pending from the other.
        assert_eq!(write8(&s, 1, GICD_CPENDSGIR + 5, 0b01), Effects::default());
        assert_eq!(s.private[1].pending.load(ORDER), 1 << 5);
        // The last one: no longer pending, and withdrawn.
        let fx = write8(&s, 1, GICD_CPENDSGIR + 5, 0b10);
        assert_eq!((fx.drain, fx.withdraw), (0, 0b10));
        assert_eq!(s.private[1].pending.load(ORDER), 0);
        assert_eq!(s.private[1].withdraw_pending.load(ORDER), 1 << 5);
        assert_eq!(read32(&s, 1, GICD_SPENDSGIR + 4), 0);
        // ISPENDR0/ICPENDR0 show an SGI pending but do not set or clear it.
        write8(&s, 1, GICD_SPENDSGIR + 2, 0b01);
        assert_eq!(read32(&s, 1, GICD_ISENABLER + 0x100) & 0xffff, 1 << 2);
        assert_eq!(write32(&s, 1, GICD_ISENABLER + 0x180, 1 << 2).withdraw, 0);
        assert_eq!(write32(&s, 1, GICD_ISENABLER + 0x100, 1 << 3).drain, 0);
        assert_eq!(s.private[1].pending.load(ORDER), 1 << 2);
        // A word covers SGIs 12..16.
        write32(&s, 0, GICD_SPENDSGIR + 12, 0x0100_0002);
        assert_eq!(read32(&s, 0, GICD_SPENDSGIR + 12), 0x0100_0002);
        assert_eq!(s.private[0].pending.load(ORDER), 1 << 12 | 1 << 15);
    }

    /// A GICD_SGIR delivery records its source, then sets the SGI pending:
    /// a CPENDSGIR write between the two clears the sender's bit before the
    /// SGI is pending. It is then pending from no recorded source, and the
    /// next CPENDSGIR write naming a source clears it, as one after the
    /// delivery would have.
    #[test]
    fn a_pending_sgi_without_a_recorded_source_can_be_cleared() {
        let s = state();
        s.private[0].pending.fetch_or(1 << 9, ORDER);
        assert_eq!(
            write8(&s, 0, GICD_CPENDSGIR + 9, 0),
            Effects::default(),
            "naming nobody changes nothing"
        );
        let fx = write8(&s, 0, GICD_CPENDSGIR + 9, 0b10);
        assert_eq!(fx.withdraw, 0b01);
        assert_eq!(s.private[0].pending.load(ORDER), 0);
        assert_eq!(s.private[0].withdraw_pending.load(ORDER), 1 << 9);
        // Pending from a source still recorded: cleared only with it.
        s.private[0].pending.fetch_or(1 << 9, ORDER);
        s.private[0].sgi_sources[9].store(0b10, ORDER);
        s.private[0].withdraw_pending.store(0, ORDER);
        assert_eq!(write8(&s, 0, GICD_CPENDSGIR + 9, 0b01).withdraw, 0);
        assert_eq!(s.private[0].sgi_sources[9].load(ORDER), 0b10);
        assert_eq!(write8(&s, 0, GICD_CPENDSGIR + 9, 0b10).withdraw, 0b01);
    }
}
