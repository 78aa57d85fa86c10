//! Translation tables: one builder for the hypervisor's own EL2 stage-1 map
//! and for each partition's stage-2 map (4 KiB granule, 39-bit input range,
//! walks starting at level 1, 1 GiB / 2 MiB blocks and 4 KiB pages).
//!
//! The builder never touches hardware: tables live wherever a
//! [`TableAlloc`] puts them, and the descriptor bits come from a [`Format`].
//! The hypervisor's allocator hands out identity-mapped heap pages; the host
//! tests use a vector and a deliberately different fake format, so the
//! builder cannot quietly depend on one encoding.
//!
//! Addresses are typed: tables and outputs are [`PhysAddr`]s; the input is
//! whatever the regime translates ([`Format::Input`]): an [`Ipa`] for stage
//! 2, and for the EL2 map, which is the identity, a [`PhysAddr`].

use core::marker::PhantomData;

use super::{Ipa, PhysAddr};

/// Entries per table (4 KiB granule, 8-byte descriptors).
pub const ENTRIES: usize = 512;
/// Input addresses are below 2^39 (T0SZ = 25); the walk starts at level 1.
pub const INPUT_BITS: u32 = 39;
pub const START_LEVEL: usize = 1;

/// A translation table, aligned as the architecture requires.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct Table(pub [u64; ENTRIES]);

/// How a mapping is cached, and whether it may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// RAM: write-back cacheable, inner shareable, executable.
    Normal,
    /// RAM as [`MemKind::Normal`] that may be read and not written (a
    /// shared region a partition maps read-only): a write is a permission
    /// fault.
    ReadOnly,
    /// MMIO: Device-nGnRE (stage 2) / nGnRnE (stage 1), never executable.
    Device,
}

/// A decoded descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Invalid,
    Table(PhysAddr),
    Leaf(PhysAddr, MemKind),
}

/// The descriptor encoding of one translation regime.
pub trait Format {
    /// The addresses the regime translates.
    type Input: Copy + Into<u64>;
    /// A block (levels 1, 2) or page (level 3) descriptor for `pa`.
    fn leaf(pa: PhysAddr, level: usize, kind: MemKind) -> u64;
    /// A table descriptor pointing at the next level's table at `pa`.
    fn table(pa: PhysAddr) -> u64;
    fn decode(desc: u64, level: usize) -> Entry;
}

/// Where tables come from.
pub trait TableAlloc {
    /// A new, zeroed table; its physical address.
    fn alloc(&mut self) -> Option<PhysAddr>;
    /// The table at `pa`, which `alloc` returned.
    fn table(&mut self, pa: PhysAddr) -> &mut Table;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not a multiple of 4 KiB, or size zero.
    Misaligned,
    /// Beyond the 39-bit input range.
    OutOfRange,
    /// Part of the range is already mapped.
    AlreadyMapped { va: u64 },
    /// The allocator ran out of tables.
    NoMemory,
}

const fn entry_size(level: usize) -> u64 {
    1 << (12 + 9 * (3 - level))
}

/// A table tree rooted at level 1.
#[derive(Debug)]
pub struct PageTable<F> {
    root: PhysAddr,
    _format: PhantomData<F>,
}

impl<F: Format> PageTable<F> {
    pub fn new(alloc: &mut impl TableAlloc) -> Result<Self, MapError> {
        Ok(Self {
            root: alloc.alloc().ok_or(MapError::NoMemory)?,
            _format: PhantomData,
        })
    }

    /// Physical address of the level-1 table (for TTBR0_EL2 / VTTBR_EL2).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with the largest blocks
    /// that alignment allows. Nothing in the range may be mapped already.
    pub fn map(
        &mut self,
        alloc: &mut impl TableAlloc,
        va: F::Input,
        pa: PhysAddr,
        size: u64,
        kind: MemKind,
    ) -> Result<(), MapError> {
        let (va, pa) = (va.into(), pa.0);
        let page = entry_size(3);
        if size == 0 || !(va | pa | size).is_multiple_of(page) {
            return Err(MapError::Misaligned);
        }
        if va.checked_add(size).is_none_or(|end| end > 1 << INPUT_BITS) {
            return Err(MapError::OutOfRange);
        }
        self.map_at(alloc, self.root, START_LEVEL, va, pa, size, kind)
    }

    #[allow(clippy::too_many_arguments)] // one recursive step of `map`
    fn map_at(
        &mut self,
        alloc: &mut impl TableAlloc,
        table: PhysAddr,
        level: usize,
        mut va: u64,
        mut pa: u64,
        mut size: u64,
        kind: MemKind,
    ) -> Result<(), MapError> {
        let step = entry_size(level);
        while size > 0 {
            let index = ((va / step) % ENTRIES as u64) as usize;
            // How much of the range falls in this entry.
            let chunk = (step - va % step).min(size);
            let existing = F::decode(alloc.table(table).0[index], level);
            let whole = chunk == step && pa.is_multiple_of(step);
            if whole && existing == Entry::Invalid {
                alloc.table(table).0[index] = F::leaf(PhysAddr(pa), level, kind);
            } else {
                if level == 3 {
                    return Err(MapError::AlreadyMapped { va });
                }
                let next = match existing {
                    Entry::Table(next) => next,
                    Entry::Invalid => {
                        let next = alloc.alloc().ok_or(MapError::NoMemory)?;
                        alloc.table(table).0[index] = F::table(next);
                        next
                    }
                    Entry::Leaf(..) => return Err(MapError::AlreadyMapped { va }),
                };
                self.map_at(alloc, next, level + 1, va, pa, chunk, kind)?;
            }
            va += chunk;
            pa += chunk;
            size -= chunk;
        }
        Ok(())
    }

    /// Walks the tables: the output address, kind and level of the leaf
    /// that maps `va`, if any.
    pub fn translate(
        &self,
        alloc: &mut impl TableAlloc,
        va: F::Input,
    ) -> Option<(PhysAddr, MemKind, usize)> {
        let va = va.into();
        if va >= 1 << INPUT_BITS {
            return None;
        }
        let mut table = self.root;
        for level in START_LEVEL..=3 {
            let step = entry_size(level);
            let index = ((va / step) % ENTRIES as u64) as usize;
            match F::decode(alloc.table(table).0[index], level) {
                Entry::Invalid => return None,
                Entry::Leaf(pa, kind) => return Some((PhysAddr(pa.0 + va % step), kind, level)),
                Entry::Table(next) => table = next,
            }
        }
        None
    }
}

/// Output-address bits [47:12] of a descriptor.
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
const VALID: u64 = 1 << 0;
/// At levels 1-2: table (1) or block (0); at level 3 it must be 1 (page).
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
/// XN (stage 1, EL2) / XN[1] (stage 2): no execution at any level.
const XN: u64 = 1 << 54;
/// Stage 2 S2AP[7:6] = 11: the guest may read and write.
const S2AP_RW: u64 = 0b11 << 6;
/// S2AP = 01: the guest may read; a write is a stage-2 permission fault.
const S2AP_RO: u64 = 0b01 << 6;
/// EL2 stage 1 AP[2] (bit 7): read-only.
const EL2_AP_READ_ONLY: u64 = 1 << 7;

fn leaf_type(level: usize) -> u64 {
    if level == 3 {
        VALID | TABLE_OR_PAGE
    } else {
        VALID
    }
}

fn decode_arm(desc: u64, level: usize, kind_of: impl Fn(u64) -> MemKind) -> Entry {
    let addr = PhysAddr(desc & ADDR_MASK);
    if desc & VALID == 0 {
        Entry::Invalid
    } else if level < 3 && desc & TABLE_OR_PAGE != 0 {
        Entry::Table(addr)
    } else {
        Entry::Leaf(addr, kind_of(desc))
    }
}

/// The EL2 stage-1 regime. MAIR_EL2 attribute 0 is Device-nGnRnE and
/// attribute 1 Normal write-back (see `MAIR_EL2_VALUE`). The hypervisor's
/// map is the identity, so what it translates is physical addresses.
#[derive(Debug)]
pub enum El2Stage1 {}

/// MAIR_EL2: Attr0 = 0x00 (Device-nGnRnE), Attr1 = 0xff (Normal, inner and
/// outer write-back, read/write-allocate). `arch` writes it as
/// `aarch64-cpu`'s fields, checked equal to this at compile time (as
/// TCR_EL2 and VTCR_EL2 below).
pub const MAIR_EL2_VALUE: u64 = 0xff << 8;

impl Format for El2Stage1 {
    type Input = PhysAddr;

    fn leaf(pa: PhysAddr, level: usize, kind: MemKind) -> u64 {
        // AP[2:1] = 00: read/write at EL2, 10: read-only.
        let attrs = match kind {
            MemKind::Normal => (1 << 2) | SH_INNER,
            MemKind::ReadOnly => (1 << 2) | SH_INNER | EL2_AP_READ_ONLY,
            MemKind::Device => XN,
        };
        (pa.0 & ADDR_MASK) | attrs | AF | leaf_type(level)
    }

    fn table(pa: PhysAddr) -> u64 {
        (pa.0 & ADDR_MASK) | VALID | TABLE_OR_PAGE
    }

    fn decode(desc: u64, level: usize) -> Entry {
        decode_arm(desc, level, |d| {
            match ((d >> 2) & 7, d & EL2_AP_READ_ONLY) {
                (1, 0) => MemKind::Normal,
                (1, _) => MemKind::ReadOnly,
                _ => MemKind::Device,
            }
        })
    }
}

/// The stage-2 regime of a partition.
#[derive(Debug)]
pub enum Stage2 {}

impl Format for Stage2 {
    type Input = Ipa;

    fn leaf(pa: PhysAddr, level: usize, kind: MemKind) -> u64 {
        // S2AP[7:6]: 11 read/write, 01 read-only. MemAttr[5:2]: 0b1111
        // Normal write-back, 0b0001 Device-nGnRE.
        let attrs = match kind {
            MemKind::Normal => (0b1111 << 2) | SH_INNER | S2AP_RW,
            MemKind::ReadOnly => (0b1111 << 2) | SH_INNER | S2AP_RO,
            MemKind::Device => (0b0001 << 2) | XN | S2AP_RW,
        };
        (pa.0 & ADDR_MASK) | attrs | AF | leaf_type(level)
    }

    fn table(pa: PhysAddr) -> u64 {
        (pa.0 & ADDR_MASK) | VALID | TABLE_OR_PAGE
    }

    fn decode(desc: u64, level: usize) -> Entry {
        decode_arm(desc, level, |d| match ((d >> 2) & 0xf, d & S2AP_RW) {
            (0b1111, S2AP_RO) => MemKind::ReadOnly,
            (0b1111, _) => MemKind::Normal,
            _ => MemKind::Device,
        })
    }
}

/// VTCR_EL2 for [`Stage2`] tables: T0SZ = 25 (39-bit IPA), SL0 = 1 (start
/// at level 1), inner/outer write-back walks, inner shareable, 4 KiB
/// granule, PS = 40-bit physical addresses, and RES1 bit 31.
pub const VTCR_EL2_VALUE: u64 =
    (1 << 31) | (0b010 << 16) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8) | (0b01 << 6) | 25;

/// TCR_EL2 for [`El2Stage1`] tables: the same geometry, and RES1 bits 31, 23.
pub const TCR_EL2_VALUE: u64 =
    (1 << 31) | (1 << 23) | (0b010 << 16) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8) | 25;

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables in a vector; "physical addresses" are made-up numbers.
    struct VecAlloc(Vec<Box<Table>>);
    const FAKE_BASE: u64 = 0x7_0000_0000;

    impl TableAlloc for VecAlloc {
        fn alloc(&mut self) -> Option<PhysAddr> {
            if self.0.len() == 64 {
                return None;
            }
            self.0.push(Box::new(Table([0; ENTRIES])));
            Some(PhysAddr(FAKE_BASE + (self.0.len() as u64 - 1) * 4096))
        }
        fn table(&mut self, pa: PhysAddr) -> &mut Table {
            &mut self.0[((pa.0 - FAKE_BASE) / 4096) as usize]
        }
    }

    /// An input address of any regime, from a number.
    trait Input: Copy + Into<u64> {
        fn at(addr: u64) -> Self;
    }
    impl Input for Ipa {
        fn at(addr: u64) -> Self {
            Ipa(addr)
        }
    }
    impl Input for PhysAddr {
        fn at(addr: u64) -> Self {
            PhysAddr(addr)
        }
    }
    impl Input for u64 {
        fn at(addr: u64) -> Self {
            addr
        }
    }

    /// An encoding unlike Arm's: valid in bit 63, table in bit 62, the
    /// address shifted down, the kind in bit 0; plain numbers as input.
    enum Fake {}
    impl Format for Fake {
        type Input = u64;
        fn leaf(pa: PhysAddr, _level: usize, kind: MemKind) -> u64 {
            let kind = match kind {
                MemKind::Normal => 0,
                MemKind::Device => 1,
                MemKind::ReadOnly => 2,
            };
            (1 << 63) | (pa.0 >> 4) | kind
        }
        fn table(pa: PhysAddr) -> u64 {
            (1 << 63) | (1 << 62) | (pa.0 >> 4)
        }
        fn decode(desc: u64, _level: usize) -> Entry {
            let addr = PhysAddr((desc & !(3 << 62) & !3) << 4);
            match desc >> 62 {
                0 | 1 => Entry::Invalid,
                3 => Entry::Table(addr),
                _ if desc & 1 == 1 => Entry::Leaf(addr, MemKind::Device),
                _ if desc & 2 == 2 => Entry::Leaf(addr, MemKind::ReadOnly),
                _ => Entry::Leaf(addr, MemKind::Normal),
            }
        }
    }

    fn levels_used<F: Format<Input: Input>>(va: u64, pa: u64, size: u64) -> Vec<(u64, usize)> {
        let mut alloc = VecAlloc(Vec::new());
        let mut pt = PageTable::<F>::new(&mut alloc).unwrap();
        pt.map(
            &mut alloc,
            F::Input::at(va),
            PhysAddr(pa),
            size,
            MemKind::Normal,
        )
        .unwrap();
        let mut out = Vec::new();
        let mut at = va;
        while at < va + size {
            let (out_pa, kind, level) = pt.translate(&mut alloc, F::Input::at(at)).unwrap();
            assert_eq!((out_pa, kind), (PhysAddr(pa + (at - va)), MemKind::Normal));
            out.push((at, level));
            at += entry_size(level) - at % entry_size(level);
        }
        assert_eq!(pt.translate(&mut alloc, F::Input::at(va + size)), None);
        if va > 0 {
            assert_eq!(pt.translate(&mut alloc, F::Input::at(va - 1)), None);
        }
        out
    }

    fn uses_largest_blocks<F: Format<Input: Input>>() {
        // 1 GiB aligned on both sides: one level-1 block.
        assert_eq!(
            levels_used::<F>(0x4000_0000, 0x8000_0000, 1 << 30),
            vec![(0x4000_0000, 1)]
        );
        // 64 MiB at 2 MiB alignment: 32 level-2 blocks.
        let l = levels_used::<F>(0x4000_0000, 0x5400_0000, 64 << 20);
        assert_eq!(l.len(), 32);
        assert!(l.iter().all(|&(_, level)| level == 2));
        // 4 KiB-aligned edges: pages up to the first 2 MiB boundary, a block, pages after.
        let l = levels_used::<F>(0x401f_e000, 0x501f_e000, 0x20_4000);
        assert_eq!(
            l,
            vec![
                (0x401f_e000, 3),
                (0x401f_f000, 3),
                (0x4020_0000, 2),
                (0x4040_0000, 3),
                (0x4040_1000, 3)
            ]
        );
        // IPA and PA aligned differently: 2 MiB blocks impossible, all pages.
        let l = levels_used::<F>(0x4000_0000, 0x5000_1000, 0x40_0000);
        assert_eq!(l.len(), 1024);
    }

    #[test]
    fn stage2_uses_the_largest_blocks_alignment_allows() {
        uses_largest_blocks::<Stage2>();
    }

    #[test]
    fn the_builder_does_not_depend_on_the_arm_encoding() {
        uses_largest_blocks::<Fake>();
        uses_largest_blocks::<El2Stage1>();
    }

    #[test]
    fn overlaps_misalignment_and_range_are_refused() {
        let mut alloc = VecAlloc(Vec::new());
        let mut pt = PageTable::<Stage2>::new(&mut alloc).unwrap();
        pt.map(
            &mut alloc,
            Ipa(0x4000_0000),
            PhysAddr(0x5000_0000),
            0x20_0000,
            MemKind::Normal,
        )
        .unwrap();
        assert_eq!(
            pt.map(
                &mut alloc,
                Ipa(0x401f_f000),
                PhysAddr(0x6000_0000),
                0x2000,
                MemKind::Normal
            ),
            Err(MapError::AlreadyMapped { va: 0x401f_f000 })
        );
        assert_eq!(
            pt.map(
                &mut alloc,
                Ipa(0x4000_0800),
                PhysAddr(0),
                0x1000,
                MemKind::Normal
            ),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            pt.map(
                &mut alloc,
                Ipa(0x5000_0000),
                PhysAddr(0),
                0,
                MemKind::Normal
            ),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            pt.map(
                &mut alloc,
                Ipa((1 << 39) - 0x1000),
                PhysAddr(0),
                0x2000,
                MemKind::Normal
            ),
            Err(MapError::OutOfRange)
        );
        // Next to the existing block is fine, and a device page keeps its kind.
        pt.map(
            &mut alloc,
            Ipa(0x0900_0000),
            PhysAddr(0x0900_0000),
            0x1000,
            MemKind::Device,
        )
        .unwrap();
        assert_eq!(
            pt.translate(&mut alloc, Ipa(0x0900_0010)),
            Some((PhysAddr(0x0900_0010), MemKind::Device, 3))
        );
    }

    /// A read-only mapping beside a writable one keeps its kind through
    /// the builder, in blocks and pages, whatever the encoding.
    fn read_only_beside_writable<F: Format<Input: Input>>() {
        let mut alloc = VecAlloc(Vec::new());
        let mut pt = PageTable::<F>::new(&mut alloc).unwrap();
        let map = |pt: &mut PageTable<F>, alloc: &mut VecAlloc, va: u64, size, kind| {
            pt.map(
                alloc,
                F::Input::at(va),
                PhysAddr(va + 0x1000_0000),
                size,
                kind,
            )
        };
        map(&mut pt, &mut alloc, 0x4000_0000, 0x20_0000, MemKind::Normal).unwrap();
        map(
            &mut pt,
            &mut alloc,
            0x4020_0000,
            0x20_1000,
            MemKind::ReadOnly,
        )
        .unwrap();
        for (va, kind, level) in [
            (0x401f_f000, MemKind::Normal, 2),
            (0x4020_0000, MemKind::ReadOnly, 2),
            (0x4040_0fff, MemKind::ReadOnly, 3),
        ] {
            let (pa, found, at) = pt.translate(&mut alloc, F::Input::at(va)).expect("mapped");
            assert_eq!((pa, found, at), (PhysAddr(va + 0x1000_0000), kind, level));
        }
        assert_eq!(pt.translate(&mut alloc, F::Input::at(0x4040_1000)), None);
    }

    #[test]
    fn read_only_mappings_stay_read_only() {
        read_only_beside_writable::<Stage2>();
        read_only_beside_writable::<El2Stage1>();
        read_only_beside_writable::<Fake>();
    }

    /// A stage-2 read/write RAM page at `pa`.
    fn normal_page(pa: u64) -> u64 {
        Stage2::leaf(PhysAddr(pa), 3, MemKind::Normal)
    }

    #[test]
    fn stage2_descriptors_have_the_architected_bits() {
        let normal = Stage2::leaf(PhysAddr(0x5000_0000), 2, MemKind::Normal);
        assert_eq!(normal & 3, 0b01, "block");
        assert_eq!((normal >> 2) & 0xf, 0b1111, "MemAttr normal WB");
        assert_eq!((normal >> 6) & 3, 0b11, "S2AP read/write");
        assert_eq!((normal >> 8) & 3, 0b11, "inner shareable");
        assert_ne!(normal & AF, 0);
        assert_eq!(normal & XN, 0, "RAM is executable");
        let dev = Stage2::leaf(PhysAddr(0x0901_0000), 3, MemKind::Device);
        assert_eq!(dev & 3, 0b11, "page");
        assert_eq!((dev >> 2) & 0xf, 0b0001, "Device-nGnRE");
        assert_ne!(dev & XN, 0);
        assert_eq!(
            Stage2::decode(dev, 3),
            Entry::Leaf(PhysAddr(0x0901_0000), MemKind::Device)
        );
        // Read-only RAM: the same memory, S2AP 01; each kind decodes back.
        let ro = Stage2::leaf(PhysAddr(0x7fff_f000), 3, MemKind::ReadOnly);
        assert_eq!((ro >> 6) & 3, 0b01, "S2AP read-only");
        assert_eq!(ro & !(3 << 6), normal_page(0x7fff_f000) & !(3 << 6));
        for kind in [MemKind::Normal, MemKind::ReadOnly, MemKind::Device] {
            let desc = Stage2::leaf(PhysAddr(0x7fff_f000), 3, kind);
            assert_eq!(
                Stage2::decode(desc, 3),
                Entry::Leaf(PhysAddr(0x7fff_f000), kind)
            );
        }
        // A level-3 descriptor with bit 1 clear is reserved: not a valid page.
        assert_eq!(Stage2::table(PhysAddr(0x1000)) & 3, 0b11);
        assert_eq!(VTCR_EL2_VALUE & 0x3f, 25);
        assert_eq!((VTCR_EL2_VALUE >> 6) & 3, 1, "SL0: start at level 1");
    }

    /// Each of `va`, `pa` and `size` alone misaligned is refused (also two
    /// misaligned by the same amount); the last page of the input range
    /// can be mapped, one past it cannot.
    #[test]
    fn every_argument_is_checked_to_the_edge_of_the_range() {
        let mut alloc = VecAlloc(Vec::new());
        let mut pt = PageTable::<Stage2>::new(&mut alloc).unwrap();
        assert_eq!(
            pt.root(),
            PhysAddr(FAKE_BASE),
            "the first table is the root"
        );
        for (va, pa, size) in [
            (0x4000_0800, 0x5000_0000, 0x1000),
            (0x4000_0000, 0x5000_0800, 0x1000),
            (0x4000_0000, 0x5000_0000, 0x1800),
            (0x4000_0800, 0x5000_0800, 0x1000),
        ] {
            assert_eq!(
                pt.map(&mut alloc, Ipa(va), PhysAddr(pa), size, MemKind::Normal),
                Err(MapError::Misaligned),
                "{va:#x} {pa:#x} {size:#x}"
            );
        }
        let top = 1u64 << INPUT_BITS;
        pt.map(
            &mut alloc,
            Ipa(top - 0x1000),
            PhysAddr(0x8000_0000),
            0x1000,
            MemKind::Normal,
        )
        .unwrap();
        assert_eq!(
            pt.translate(&mut alloc, Ipa(top - 1)),
            Some((PhysAddr(0x8000_0fff), MemKind::Normal, 3))
        );
        assert_eq!(
            pt.map(
                &mut alloc,
                Ipa(top),
                PhysAddr(0x8000_0000),
                0x1000,
                MemKind::Normal
            ),
            Err(MapError::OutOfRange)
        );
    }

    /// The EL2 regime's descriptors, MAIR_EL2, and the translation
    /// controls field by field (Arm ARM D8: VTCR_EL2, TCR_EL2, MAIR_EL2).
    #[test]
    fn el2_descriptors_and_translation_controls_have_the_architected_bits() {
        let normal = El2Stage1::leaf(PhysAddr(0x4000_0000), 3, MemKind::Normal);
        assert_eq!(normal & 3, 0b11, "page");
        assert_eq!((normal >> 2) & 7, 1, "AttrIndx 1: Normal");
        assert_eq!((normal >> 6) & 3, 0, "AP: read/write at EL2");
        assert_eq!((normal >> 8) & 3, 0b11, "inner shareable");
        assert_ne!(normal & AF, 0);
        assert_eq!(normal & XN, 0);
        assert_eq!(normal & ADDR_MASK, 0x4000_0000);
        let ro = El2Stage1::leaf(PhysAddr(0x4000_0000), 3, MemKind::ReadOnly);
        assert_eq!((ro >> 6) & 3, 0b10, "AP: read-only at EL2");
        assert_eq!(ro & !(3 << 6), normal);
        assert_eq!(
            El2Stage1::decode(ro, 3),
            Entry::Leaf(PhysAddr(0x4000_0000), MemKind::ReadOnly)
        );
        assert_eq!(
            El2Stage1::decode(normal, 3),
            Entry::Leaf(PhysAddr(0x4000_0000), MemKind::Normal)
        );
        let dev = El2Stage1::leaf(PhysAddr(0x0900_0000), 2, MemKind::Device);
        assert_eq!(dev & 3, 0b01, "block");
        assert_eq!((dev >> 2) & 7, 0, "AttrIndx 0: Device");
        assert_eq!(dev >> 54 & 1, 1, "XN (bit 54)");
        assert_eq!(
            Stage2::leaf(PhysAddr(0x0900_0000), 3, MemKind::Device) >> 54 & 1,
            1,
            "XN[1] (bit 54)"
        );
        assert_ne!(dev & AF, 0);
        assert_eq!(El2Stage1::table(PhysAddr(0x7000_1000)), 0x7000_1000 | 0b11);
        assert_eq!(
            El2Stage1::decode(normal, 3),
            Entry::Leaf(PhysAddr(0x4000_0000), MemKind::Normal)
        );
        assert_eq!(MAIR_EL2_VALUE & 0xff, 0x00, "Attr0 Device-nGnRnE");
        assert_eq!((MAIR_EL2_VALUE >> 8) & 0xff, 0xff, "Attr1 Normal WB");
        assert_eq!(MAIR_EL2_VALUE >> 16, 0);
        // T0SZ, IRGN0, ORGN0, SH0, TG0 (4 KiB = 0), PS / SL0, RES1.
        let fields = |v: u64| {
            (
                v & 0x3f,
                (v >> 8) & 3,
                (v >> 10) & 3,
                (v >> 12) & 3,
                (v >> 14) & 3,
                (v >> 16) & 7,
                v >> 31 & 1,
            )
        };
        assert_eq!(fields(VTCR_EL2_VALUE), (25, 1, 1, 3, 0, 0b010, 1));
        assert_eq!((VTCR_EL2_VALUE >> 6) & 3, 1, "SL0: start at level 1");
        assert_eq!(VTCR_EL2_VALUE >> 32, 0);
        assert_eq!(fields(TCR_EL2_VALUE), (25, 1, 1, 3, 0, 0b010, 1));
        assert_eq!(TCR_EL2_VALUE >> 23 & 1, 1, "RES1 bit 23");
        assert_eq!(TCR_EL2_VALUE & !(0x8087_ffff), 0, "nothing else set");
        assert_eq!((TCR_EL2_VALUE >> 6) & 3, 0);
    }

    #[test]
    fn running_out_of_tables_is_an_error_not_a_panic() {
        let mut alloc = VecAlloc(Vec::new());
        let mut pt = PageTable::<Stage2>::new(&mut alloc).unwrap();
        // Pages scattered over many 2 MiB regions need a table each.
        let mut result = Ok(());
        for i in 0..100u64 {
            result = pt.map(
                &mut alloc,
                Ipa(i << 21),
                PhysAddr(i << 21),
                0x1000,
                MemKind::Normal,
            );
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(MapError::NoMemory));
    }
}
