//! How much RAM the hypervisor keeps: the build sizes it from the partition
//! set rather than take a fixed reservation, so a kernel and an initrd of
//! any size fit without editing the board.
//!
//! The hypervisor's RAM starts at the board's `[hypervisor].base` and holds,
//! in this order (`linker/hypervisor.ld`):
//! - its code and data: text, rodata, data and BSS (the EL2 stacks, the
//!   EL2 map's tables), within [`CODE_BUDGET`];
//! - every blob it copies into partitions at boot, embedded in its rodata:
//!   images, initrds and device trees, each counted at its size;
//! - its heap: the stage-2 tables (counted from the partitions' mappings,
//!   [`stage2_tables`]), each partition's run-time state, console ring and
//!   control page ([`PARTITION_HEAP`]), and [`HEAP_BASE`] for the rest.
//!
//! The sum, rounded up to [`ROUND`], is [`Need::total`]. When the board
//! fixes `[hypervisor].size`, the need must fit in it; otherwise the range
//! is exactly the need, and must fit in the board RAM range it starts in
//! and overlap no partition's memory (`check::size_hypervisor`).
//!
//! The build cannot measure its own code, so [`CODE_BUDGET`] is a bound the
//! linker checks: `memory.ld` gives it the heap counted here (`HYP_HEAP`),
//! and the link fails if the code and data leave less than that.

use crate::check::{GICV2_CPU_INTERFACE_SIZE, PAGE, Partition, Range};

use bulkhead_abi::board::GicConfig;

/// Room for the hypervisor's code and data, blobs apart: 1 MiB. Measured
/// (the demo, fast paths on): 63 KiB of text, 12 KiB of rodata and data
/// besides the guests, 233 KiB of BSS (nine 16 KiB EL2 stacks, the EL2
/// map's 16 tables, the per-CPU blocks).
pub const CODE_BUDGET: u64 = 1 << 20;
/// Heap beyond what [`stage2_tables`] and [`PARTITION_HEAP`] count: the
/// partitions' vector and the allocator's rounding (it hands out powers of
/// two). Measured: the whole heap in use after boot was 80 KiB for the
/// demo's two partitions, 144 KiB for four (tests/configs/isolation.toml).
pub const HEAP_BASE: u64 = 256 << 10;
/// Heap for each partition's run-time state besides its stage-2 tables:
/// its console ring (16 KiB), its control page (4 KiB) and its
/// `Partition` (3 KiB), about 24 KiB measured.
pub const PARTITION_HEAP: u64 = 64 << 10;
/// A translation table: 4 KiB.
pub const TABLE: u64 = PAGE;
/// The range is a whole number of 2 MiB blocks, as the boot protocol
/// places the image's base.
pub const ROUND: u64 = 2 << 20;

/// 1 GiB: what a level-1 entry maps (a level-2 table's reach).
const LEVEL1_BLOCK: u64 = 1 << 30;
/// 2 MiB: what a level-2 entry maps (a level-3 table's reach).
const LEVEL2_BLOCK: u64 = 2 << 20;

/// What the hypervisor's RAM must hold for a partition set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Code and data: [`CODE_BUDGET`].
    pub code: u64,
    /// The embedded blobs: images, initrds, device trees.
    pub blobs: u64,
    /// The heap.
    pub heap: u64,
}

impl Need {
    /// What a partition set needs.
    pub fn of(gic: &GicConfig, partitions: &[Partition]) -> Need {
        let blobs = partitions
            .iter()
            .flat_map(|p| {
                std::iter::once(&p.image)
                    .chain(&p.initrd)
                    .chain(&p.device_tree)
            })
            .map(|b| b.bytes.len() as u64)
            .sum();
        let heap = HEAP_BASE
            + partitions
                .iter()
                .map(|p| PARTITION_HEAP + TABLE * stage2_tables(gic, p))
                .sum::<u64>();
        Need {
            code: CODE_BUDGET,
            blobs,
            heap,
        }
    }

    /// The bytes to keep: the sum, rounded up to [`ROUND`]. Saturates
    /// rather than wraps (a set that large fits nowhere anyway).
    pub fn total(&self) -> u64 {
        let sum = self
            .code
            .saturating_add(self.blobs)
            .saturating_add(self.heap);
        sum.div_ceil(ROUND).saturating_mul(ROUND)
    }
}

/// At most how many tables partition `p`'s stage-2 map takes: its root,
/// and for each mapping (memory, devices, the GIC's CPU interface, the
/// control page, the shared regions) a level-2 table per 1 GiB it touches and a level-3 table
/// per 2 MiB it touches that no 2 MiB block can map. The hypervisor maps
/// a block wherever the input and output are aligned to it
/// (`mm::pagetable`), so where guest and machine addresses agree modulo
/// 2 MiB only the two ends of a mapping need level-3 tables.
pub fn stage2_tables(gic: &GicConfig, p: &Partition) -> u64 {
    // (IPA, machine address if known, size).
    let mut mappings: Vec<(u64, Option<u64>, u64)> = p
        .memory
        .iter()
        .map(|m| (m.ipa, Some(m.phys), m.size))
        .collect();
    mappings.extend(
        p.devices
            .iter()
            .map(|d| (d.range.base, Some(d.range.base), d.range.size)),
    );
    if let GicConfig::V2 {
        virtual_cpu_interface,
        ..
    } = *gic
    {
        // GICV, at the guest's GICC.
        mappings.push((
            bulkhead_abi::board::GUEST_GICV2_CPU_INTERFACE.0,
            Some(virtual_cpu_interface.0),
            GICV2_CPU_INTERFACE_SIZE,
        ));
    }
    // The control page is on the heap: its address is chosen at boot.
    mappings.push((p.control_page, None, PAGE));
    // Shared regions, counted as if their machine addresses were unknown:
    // the hypervisor is sized before the build places them.
    mappings.extend(p.shared.iter().map(|m| (m.ipa, None, m.size)));
    1 + mappings
        .iter()
        .map(|&(ipa, phys, size)| mapping_tables(ipa, phys, size))
        .sum::<u64>()
}

/// At most how many level-2 and level-3 tables mapping `size` bytes at
/// input address `ipa` to `phys` (`None`: unknown) adds to a stage-2 map:
/// one level-2 table per 1 GiB slot it touches, one level-3 table per 2 MiB
/// slot it touches that it cannot map with one block (only the two ends
/// when `ipa` and `phys` agree modulo 2 MiB). Over several mappings the
/// sum bounds the tables, shared ones counted more than once.
pub fn mapping_tables(ipa: u64, phys: Option<u64>, size: u64) -> u64 {
    let range = Range { base: ipa, size };
    let congruent = phys.is_some_and(|phys| (ipa ^ phys).is_multiple_of(LEVEL2_BLOCK));
    let touched = slots(&range, LEVEL2_BLOCK);
    let level3 = if congruent && touched > 0 {
        // Blocks map every whole 2 MiB slot: only a partial first or last
        // slot needs pages.
        let first = !ipa.is_multiple_of(LEVEL2_BLOCK);
        let last = !range.end().is_multiple_of(LEVEL2_BLOCK);
        if touched == 1 {
            u64::from(first || last)
        } else {
            u64::from(first) + u64::from(last)
        }
    } else {
        touched
    };
    slots(&range, LEVEL1_BLOCK) + level3
}

/// How many `block`-sized, `block`-aligned slots `range` touches.
fn slots(range: &Range, block: u64) -> u64 {
    if range.size == 0 {
        return 0;
    }
    (range.end() - 1) / block - range.base / block + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_touches_the_slots_its_first_to_last_byte_are_in() {
        let r = |base, size| Range { base, size };
        assert_eq!(slots(&r(0, 0), LEVEL2_BLOCK), 0);
        assert_eq!(slots(&r(0, 1), LEVEL2_BLOCK), 1);
        assert_eq!(slots(&r(0, LEVEL2_BLOCK), LEVEL2_BLOCK), 1);
        assert_eq!(slots(&r(0, LEVEL2_BLOCK + 1), LEVEL2_BLOCK), 2);
        assert_eq!(slots(&r(LEVEL2_BLOCK - 1, 2), LEVEL2_BLOCK), 2);
        assert_eq!(slots(&r(0x4000_0000, 0x1000_0000), LEVEL2_BLOCK), 128);
        assert_eq!(slots(&r(0x4000_0000, 0x1000_0000), LEVEL1_BLOCK), 1);
        assert_eq!(slots(&r(0x7fff_f000, 0x2000), LEVEL1_BLOCK), 2);
    }

    #[test]
    fn a_mapping_needs_level3_tables_only_where_no_2_mib_block_fits() {
        // 256 MiB at 1 GiB, guest and machine addresses 2 MiB apart: blocks
        // all the way, one level-2 table.
        assert_eq!(
            mapping_tables(0x4000_0000, Some(0x5020_0000), 0x1000_0000),
            1
        );
        // Unaligned ends: a level-3 table at each.
        assert_eq!(
            mapping_tables(0x4000_1000, Some(0x5000_1000), 0x1000_0000),
            3
        );
        // Addresses that disagree modulo 2 MiB: pages everywhere.
        assert_eq!(
            mapping_tables(0x4000_0000, Some(0x5000_1000), 0x40_0000),
            1 + 2
        );
        assert_eq!(mapping_tables(0x4000_0000, None, 0x1000), 1 + 1);
        // One partial 2 MiB slot: one level-3 table.
        assert_eq!(
            mapping_tables(0x4000_1000, Some(0x5000_1000), 0x1000),
            1 + 1
        );
        // Across a 1 GiB boundary: two level-2 tables.
        assert_eq!(mapping_tables(0x7fe0_0000, Some(0x7fe0_0000), 0x40_0000), 2);
    }

    #[test]
    fn the_total_is_rounded_up_to_whole_2_mib_blocks() {
        let need = |code, blobs, heap| Need { code, blobs, heap }.total();
        assert_eq!(need(1, 0, 0), ROUND);
        assert_eq!(need(ROUND - 2, 1, 1), ROUND);
        assert_eq!(need(ROUND - 2, 2, 1), 2 * ROUND);
        assert_eq!(need(CODE_BUDGET, 27 << 20, HEAP_BASE), 30 << 20);
        assert_eq!(need(u64::MAX, 1, 1), u64::MAX);
    }
}
