//! The boot device tree against the board Bulkhead was built for.
//!
//! Bulkhead's view of the machine is fixed at build time (`boards/`); the
//! device tree the firmware or QEMU passes in x0 is only checked, never
//! used: every board RAM range must be inside a memory node, every board
//! CPU must have a cpu node with its MPIDR, and the GIC and the console
//! PL011 must be where the board says. A machine started with too little
//! memory, too few CPUs or another GIC version then stops at boot with a
//! sentence that says which, instead of faulting later.
//!
//! Pure: `hyp` checks the address with [`plausible_address`], the size
//! the header gives with [`blob_size`], and hands the blob to
//! [`check_bytes`]; nothing is read outside the board's RAM.
#![forbid(unsafe_code)]

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;

use crate::config::{BoardConfig, GicConfig};
use crate::mm::PhysAddr;

/// Bytes of a device tree header (version 17): the least a blob can have.
pub const HEADER: usize = 40;

/// Why the boot device tree does not describe the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// No device tree at this address (x0 at entry).
    Unreadable { address: PhysAddr },
    /// This board RAM range is in no memory node.
    RamMissing { base: PhysAddr, size: u64 },
    /// The board's CPU `index` has no cpu node with its MPIDR.
    CpuMissing { index: usize, mpidr: u64 },
    /// No interrupt controller of the board's GIC version has its
    /// distributor at `expected`.
    Gic { expected: PhysAddr },
    /// No PL011 at `expected`.
    Uart { expected: PhysAddr },
}

/// A [`Mismatch`] of the board named `board`, as a sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtbMismatch {
    pub board: &'static str,
    pub what: Mismatch,
}

impl fmt::Display for DtbMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let board = self.board;
        match self.what {
            Mismatch::Unreadable { address } => write!(
                f,
                "no valid device tree at {address} (x0 at entry); boot Bulkhead as an arm64 Image"
            ),
            Mismatch::RamMissing { base, size } => write!(
                f,
                "board {board} has RAM {base}..{:#x}, the boot device tree does not \
                 (too little memory given to the machine?)",
                base.0 + size
            ),
            Mismatch::CpuMissing { index, mpidr } => write!(
                f,
                "board {board} has CPU {index} (MPIDR {mpidr:#x}), the boot device tree does not \
                 (too few CPUs given to the machine?)"
            ),
            Mismatch::Gic { expected } => write!(
                f,
                "board {board} has its GIC distributor at {expected}, the boot device tree \
                 has no GIC of that version there"
            ),
            Mismatch::Uart { expected } => write!(
                f,
                "board {board} has a PL011 at {expected}, the boot device tree does not"
            ),
        }
    }
}

fn mismatch(board: &BoardConfig, what: Mismatch) -> DtbMismatch {
    DtbMismatch {
        board: board.name,
        what,
    }
}

/// Whether a device tree header can be read at `dtb`: not 0, 8-byte
/// aligned (the FDT specification's rule), and a whole header inside the
/// board's RAM. Checked before anything is read there.
pub fn plausible_address(dtb: PhysAddr, board: &BoardConfig) -> Result<(), DtbMismatch> {
    let readable = dtb != PhysAddr(0)
        && dtb.is_aligned(8)
        && board.ram.iter().any(|r| {
            r.contains(dtb) && r.end().offset_from(dtb).is_some_and(|n| n >= HEADER as u64)
        });
    if readable {
        Ok(())
    } else {
        Err(mismatch(board, Mismatch::Unreadable { address: dtb }))
    }
}

/// The size of the blob at `dtb` whose header is `header`: its
/// `totalsize` (big-endian, at byte 4), when the header's magic is right
/// and the whole blob lies in the board RAM range that holds `dtb`.
pub fn blob_size(
    header: &[u8; HEADER],
    dtb: PhysAddr,
    board: &BoardConfig,
) -> Result<usize, DtbMismatch> {
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let size = word(4);
    let fits = board.ram.iter().any(|r| {
        r.contains(dtb)
            && r.end()
                .offset_from(dtb)
                .is_some_and(|n| n >= u64::from(size))
    });
    if word(0) == 0xd00d_feed && size as usize >= HEADER && fits {
        Ok(size as usize)
    } else {
        Err(mismatch(board, Mismatch::Unreadable { address: dtb }))
    }
}

/// Removes the `FDT_NOP` tokens of the blob's structure block, in place,
/// and shortens the block's size in the header to match. Tools that delete
/// a property or a node leave NOPs in its place (libfdt's `fdt_delprop`,
/// QEMU's raspi4b disabling devices it does not model), and the `fdt`
/// crate, which reads NOPs only in a few places, stops on them elsewhere.
/// Every length is checked against the block: a malformed blob gives
/// `None`, never a read outside it.
pub fn drop_nops(blob: &mut [u8]) -> Option<()> {
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    const END: u32 = 9;
    let be = |bytes: &[u8], at: usize| -> Option<u32> {
        let w = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let pad4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    let start = be(blob, 8)? as usize;
    let size = be(blob, 36)? as usize;
    let block = blob.get_mut(start..start.checked_add(size)?)?;
    let (mut read, mut write) = (0usize, 0usize);
    loop {
        let token = be(block, read)?;
        let length = match token {
            BEGIN_NODE => {
                let name = block.get(read + 4..)?;
                let nul = name.iter().position(|&b| b == 0)?;
                4 + pad4(nul + 1)?
            }
            PROP => 12 + pad4(be(block, read + 4)? as usize)?,
            END_NODE | END => 4,
            NOP => 0,
            _ => return None,
        };
        let end = read.checked_add(length.max(4))?;
        if end > block.len() {
            return None;
        }
        if token != NOP {
            block.copy_within(read..end, write);
            write += length;
        }
        read = end;
        if token == END {
            break;
        }
    }
    blob.get_mut(36..40)?
        .copy_from_slice(&(write as u32).to_be_bytes());
    Some(())
}

/// Checks a device tree held in `bytes` (tests, and a blob copied out).
pub fn check_bytes(
    bytes: &[u8],
    address: PhysAddr,
    board: &BoardConfig,
) -> Result<(), DtbMismatch> {
    let fdt = Fdt::new(bytes).map_err(|_| mismatch(board, Mismatch::Unreadable { address }))?;
    check(&fdt, board)
}

/// Checks what the device tree says against the board description.
pub fn check(fdt: &Fdt<'_>, board: &BoardConfig) -> Result<(), DtbMismatch> {
    for r in board.ram {
        let covered = fdt.memory().regions().any(|m| {
            let base = m.starting_address as u64;
            let size = m.size.unwrap_or(0) as u64;
            r.base.0 >= base && r.end().0 <= base.saturating_add(size)
        });
        if !covered {
            return Err(mismatch(
                board,
                Mismatch::RamMissing {
                    base: r.base,
                    size: r.size,
                },
            ));
        }
    }
    for (index, c) in board.cpus.iter().enumerate() {
        if !fdt
            .cpus()
            .any(|cpu| cpu.ids().all().any(|id| id as u64 == c.mpidr))
        {
            return Err(mismatch(
                board,
                Mismatch::CpuMissing {
                    index,
                    mpidr: c.mpidr,
                },
            ));
        }
    }
    let (compatible, gicd): (&[&str], PhysAddr) = match board.gic {
        GicConfig::V3 { distributor, .. } => (&["arm,gic-v3"], distributor),
        GicConfig::V2 { distributor, .. } => (&["arm,gic-400", "arm,cortex-a15-gic"], distributor),
    };
    if !has_node_at(fdt, compatible, gicd) {
        return Err(mismatch(board, Mismatch::Gic { expected: gicd }));
    }
    if !has_node_at(fdt, &["arm,pl011"], board.uart.base) {
        return Err(mismatch(
            board,
            Mismatch::Uart {
                expected: board.uart.base,
            },
        ));
    }
    Ok(())
}

/// Whether a node compatible with one of `compatible` has its first `reg`
/// range at `base`, as the CPU sees it: translated through the `ranges` of
/// the buses above it (the Raspberry Pi 4's tree gives its peripherals'
/// VideoCore bus addresses, 0x7e20_1000 for the PL011 at 0xfe20_1000).
fn has_node_at(fdt: &Fdt<'_>, compatible: &[&str], base: PhysAddr) -> bool {
    let Some(root) = fdt.find_node("/") else {
        return false;
    };
    let cells = root.cell_sizes().address_cells;
    root.children()
        .any(|c| node_at(c, None, cells, compatible, base.0))
}

/// A bus between a node and the CPU: its `ranges` and the cell counts they
/// are written in, and the bus above it (`None`: the root, CPU addresses).
struct Bus<'a> {
    /// The `ranges` property; empty means identity.
    ranges: &'a [u8],
    /// `#address-cells` of the bus (its children's addresses).
    child_cells: usize,
    /// `#address-cells` of its parent.
    parent_cells: usize,
    /// `#size-cells` of the bus.
    size_cells: usize,
    up: Option<&'a Bus<'a>>,
}

/// Reads `cells` big-endian 32-bit cells at `*at` as a number (at most 2).
fn cells(bytes: &[u8], at: &mut usize, cells: usize) -> Option<u64> {
    let mut value = 0u64;
    for _ in 0..cells {
        let word = bytes.get(*at..*at + 4)?;
        value = (value << 32) | u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
        *at += 4;
    }
    (cells <= 2).then_some(value)
}

/// `address` on `bus`, as the CPU sees it; `None` when a bus does not map it.
fn to_cpu(bus: Option<&Bus<'_>>, address: u64) -> Option<u64> {
    let Some(bus) = bus else {
        return Some(address);
    };
    if bus.ranges.is_empty() {
        return to_cpu(bus.up, address);
    }
    let mut at = 0;
    while at < bus.ranges.len() {
        let child = cells(bus.ranges, &mut at, bus.child_cells)?;
        let parent = cells(bus.ranges, &mut at, bus.parent_cells)?;
        let size = cells(bus.ranges, &mut at, bus.size_cells)?;
        if let Some(offset) = address.checked_sub(child).filter(|&o| o < size) {
            return to_cpu(bus.up, parent.checked_add(offset)?);
        }
    }
    None
}

/// [`has_node_at`] from `node` down: `node`'s `reg` is an address on
/// `bus` (`None`: the CPU's), of `reg_cells` cells. Bounded by the tree's
/// depth (a blob the board's RAM holds).
fn node_at(
    node: FdtNode<'_, '_>,
    bus: Option<&Bus<'_>>,
    reg_cells: usize,
    compatible: &[&str],
    base: u64,
) -> bool {
    let matches = node
        .compatible()
        .is_some_and(|c| c.all().any(|s| compatible.contains(&s)));
    let first = || node.reg()?.next().map(|r| r.starting_address as u64);
    if matches && first().and_then(|a| to_cpu(bus, a)) == Some(base) {
        return true;
    }
    // Without `ranges` a node maps none of its children into its parent's
    // space: nothing below it is at a CPU address.
    let Some(ranges) = node.property("ranges") else {
        return false;
    };
    let sizes = node.cell_sizes();
    let child_bus = Bus {
        ranges: ranges.value,
        child_cells: sizes.address_cells,
        parent_cells: reg_cells,
        size_cells: sizes.size_cells,
        up: bus,
    };
    node.children()
        .any(|c| node_at(c, Some(&child_bus), sizes.address_cells, compatible, base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CpuConfig, Range};
    use vm_fdt::FdtWriter;

    static RAM: [Range; 1] = [Range {
        base: PhysAddr(0x4000_0000),
        size: 0x4000_0000,
    }];
    static CPUS: [CpuConfig; 4] = [
        CpuConfig {
            mpidr: 0,
            spin_table: None,
        },
        CpuConfig {
            mpidr: 1,
            spin_table: None,
        },
        CpuConfig {
            mpidr: 2,
            spin_table: None,
        },
        CpuConfig {
            mpidr: 3,
            spin_table: None,
        },
    ];
    const GICD: PhysAddr = PhysAddr(0x0800_0000);
    const UART: PhysAddr = PhysAddr(0x0900_0000);
    /// Where the tests' device tree is.
    const AT: PhysAddr = PhysAddr(0x4800_0000);

    /// Board qemu-virt as boards/qemu-virt/board.toml describes it.
    fn board(gic: GicConfig) -> BoardConfig {
        BoardConfig {
            name: "qemu-virt",
            ram: &RAM,
            hypervisor: Range {
                base: PhysAddr(0x4020_0000),
                size: 0x01e0_0000,
            },
            uart: Range {
                base: UART,
                size: 0x1000,
            },
            uart_interrupt: Some(33),
            gic,
            cpus: &CPUS,
            power: crate::config::Power::Psci,
        }
    }

    fn v3() -> BoardConfig {
        board(GicConfig::V3 {
            distributor: GICD,
            redistributor: PhysAddr(0x080a_0000),
            maintenance_intid: 25,
        })
    }

    fn v2() -> BoardConfig {
        board(GicConfig::V2 {
            distributor: GICD,
            cpu_interface: PhysAddr(0x0801_0000),
            hyp_interface: PhysAddr(0x0803_0000),
            virtual_cpu_interface: PhysAddr(0x0804_0000),
            hyp_interface_aliases: None,
            maintenance_intid: 25,
        })
    }

    /// What a machine gives: the shape of QEMU virt's tree (two address and
    /// size cells at the root, one address cell under /cpus).
    struct Machine {
        ram: (u64, u64),
        cpus: &'static [u32],
        gic: (&'static [&'static str], PhysAddr),
        uart: PhysAddr,
    }

    impl Machine {
        /// QEMU virt with -smp 4 -m 1G and gic-version=3.
        fn virt() -> Self {
            Self {
                ram: (0x4000_0000, 0x4000_0000),
                cpus: &[0, 1, 2, 3],
                gic: (&["arm,gic-v3"], GICD),
                uart: UART,
            }
        }

        fn blob(&self) -> Vec<u8> {
            let mut w = FdtWriter::new().unwrap();
            let root = w.begin_node("").unwrap();
            w.property_u32("#address-cells", 2).unwrap();
            w.property_u32("#size-cells", 2).unwrap();
            w.property_string("compatible", "linux,dummy-virt").unwrap();
            let memory = w.begin_node(&format!("memory@{:x}", self.ram.0)).unwrap();
            w.property_string("device_type", "memory").unwrap();
            w.property_array_u64("reg", &[self.ram.0, self.ram.1])
                .unwrap();
            w.end_node(memory).unwrap();
            let cpus = w.begin_node("cpus").unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 0).unwrap();
            for &id in self.cpus {
                let cpu = w.begin_node(&format!("cpu@{id:x}")).unwrap();
                w.property_string("device_type", "cpu").unwrap();
                w.property_string("compatible", "arm,cortex-a72").unwrap();
                w.property_u32("reg", id).unwrap();
                w.end_node(cpu).unwrap();
            }
            w.end_node(cpus).unwrap();
            let intc = w.begin_node(&format!("intc@{:x}", self.gic.1.0)).unwrap();
            w.property_string_list(
                "compatible",
                self.gic.0.iter().map(|s| s.to_string()).collect(),
            )
            .unwrap();
            w.property_array_u64("reg", &[self.gic.1.0, 0x1_0000, 0x080a_0000, 0xf6_0000])
                .unwrap();
            w.end_node(intc).unwrap();
            let uart = w.begin_node(&format!("pl011@{:x}", self.uart.0)).unwrap();
            w.property_string_list(
                "compatible",
                vec!["arm,pl011".to_string(), "arm,primecell".to_string()],
            )
            .unwrap();
            w.property_array_u64("reg", &[self.uart.0, 0x1000]).unwrap();
            w.end_node(uart).unwrap();
            w.end_node(root).unwrap();
            w.finish().unwrap()
        }

        fn check(&self, board: &BoardConfig) -> Result<(), Mismatch> {
            check_bytes(&self.blob(), AT, board).map_err(|e| e.what)
        }
    }

    #[test]
    fn qemu_virt_as_the_board_describes_it_passes() {
        assert_eq!(Machine::virt().check(&v3()), Ok(()));
        let larger = Machine {
            ram: (0x4000_0000, 0x8000_0000),
            cpus: &[0, 1, 2, 3, 4, 5],
            ..Machine::virt()
        };
        assert_eq!(larger.check(&v3()), Ok(()), "more than the board is fine");
    }

    /// The Raspberry Pi 4's shape: the GIC and the PL011 under a `soc` bus
    /// of one address cell whose `ranges` map VideoCore bus addresses
    /// (0x7e00_0000 up, 0x4000_0000 up) to the CPU's (0xfe00_0000 up,
    /// 0xff80_0000 up), and an `scb` bus without `ranges`.
    fn pi4_blob(uart_bus: u32) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        let memory = w.begin_node("memory@0").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0, 0, 0x3c00_0000]).unwrap();
        w.end_node(memory).unwrap();
        let soc = w.begin_node("soc").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_array_u32(
            "ranges",
            &[
                0x7e00_0000,
                0,
                0xfe00_0000,
                0x180_0000,
                0x4000_0000,
                0,
                0xff80_0000,
                0x80_0000,
            ],
        )
        .unwrap();
        let uart = w.begin_node(&format!("serial@{uart_bus:x}")).unwrap();
        w.property_string_list(
            "compatible",
            vec!["arm,pl011".into(), "arm,primecell".into()],
        )
        .unwrap();
        w.property_array_u32("reg", &[uart_bus, 0x200]).unwrap();
        w.end_node(uart).unwrap();
        let gic = w.begin_node("interrupt-controller@40041000").unwrap();
        w.property_string("compatible", "arm,gic-400").unwrap();
        w.property_array_u32("reg", &[0x4004_1000, 0x1000, 0x4004_2000, 0x2000])
            .unwrap();
        w.end_node(gic).unwrap();
        w.end_node(soc).unwrap();
        // No `ranges`: its children are not at CPU addresses.
        let scb = w.begin_node("scb").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        let other = w.begin_node("serial@fe201000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        w.property_array_u32("reg", &[0xfe20_1000, 0x200]).unwrap();
        w.end_node(other).unwrap();
        w.end_node(scb).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn addresses_are_translated_through_the_buses_ranges() {
        let good = pi4_blob(0x7e20_1000);
        let f = Fdt::new(&good).unwrap();
        assert!(has_node_at(&f, &["arm,pl011"], PhysAddr(0xfe20_1000)));
        assert!(has_node_at(&f, &["arm,gic-400"], PhysAddr(0xff84_1000)));
        assert!(
            !has_node_at(&f, &["arm,pl011"], PhysAddr(0x7e20_1000)),
            "a bus address is not a CPU address"
        );
        // The same UART at a bus address no range maps is nowhere; the
        // one under the bus without `ranges` does not count either.
        let unmapped = pi4_blob(0x7d20_1000);
        let f = Fdt::new(&unmapped).unwrap();
        assert!(!has_node_at(&f, &["arm,pl011"], PhysAddr(0xfe20_1000)));
    }

    #[test]
    fn too_little_memory_names_the_board_ram_range() {
        for (base, size) in [(0x4000_0000, 0x3fff_f000), (0x4000_1000, 0x4000_0000)] {
            let machine = Machine {
                ram: (base, size),
                ..Machine::virt()
            };
            assert_eq!(
                machine.check(&v3()),
                Err(Mismatch::RamMissing {
                    base: PhysAddr(0x4000_0000),
                    size: 0x4000_0000
                }),
                "{base:#x} + {size:#x}"
            );
        }
    }

    #[test]
    fn too_few_cpus_name_the_first_missing_one() {
        let machine = Machine {
            cpus: &[0, 1],
            ..Machine::virt()
        };
        assert_eq!(
            machine.check(&v3()),
            Err(Mismatch::CpuMissing { index: 2, mpidr: 2 })
        );
        let other = Machine {
            cpus: &[0, 1, 2, 0x100],
            ..Machine::virt()
        };
        assert_eq!(
            other.check(&v3()),
            Err(Mismatch::CpuMissing { index: 3, mpidr: 3 })
        );
    }

    #[test]
    fn the_gic_must_be_of_the_boards_version_at_its_address() {
        let v2_machine = Machine {
            gic: (&["arm,cortex-a15-gic"], GICD),
            ..Machine::virt()
        };
        let gic = Err(Mismatch::Gic { expected: GICD });
        assert_eq!(v2_machine.check(&v3()), gic);
        assert_eq!(v2_machine.check(&v2()), Ok(()));
        let gic_400 = Machine {
            gic: (&["arm,gic-400"], GICD),
            ..Machine::virt()
        };
        assert_eq!(gic_400.check(&v2()), Ok(()));
        assert_eq!(Machine::virt().check(&v2()), gic);
        let moved = Machine {
            gic: (&["arm,gic-v3"], PhysAddr(GICD.0 + 0x1_0000)),
            ..Machine::virt()
        };
        assert_eq!(moved.check(&v3()), gic);
    }

    #[test]
    fn the_console_pl011_must_be_at_the_boards_address() {
        let machine = Machine {
            uart: PhysAddr(UART.0 + 0x1000),
            ..Machine::virt()
        };
        assert_eq!(machine.check(&v3()), Err(Mismatch::Uart { expected: UART }));
    }

    /// `blob` with a NOP token inserted at each of the structure block
    /// offsets `at` (ascending), as a tool that deleted properties there
    /// leaves it; the header's offsets and sizes follow.
    fn with_nops(blob: &[u8], at: &[usize]) -> Vec<u8> {
        let word = |b: &[u8], i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        let start = word(blob, 8) as usize;
        let mut out = blob.to_vec();
        for (n, &offset) in at.iter().enumerate() {
            let i = start + offset + 4 * n;
            out.splice(i..i, 4u32.to_be_bytes());
        }
        let grow = 4 * at.len() as u32;
        for field in [4, 12, 36] {
            // totalsize, off_dt_strings (after the structure block), size_dt_struct
            let v = word(&out, field) + grow;
            out[field..field + 4].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    #[test]
    fn nops_are_dropped_before_the_tree_is_read() {
        let clean = pi4_blob(0x7e20_1000);
        let struct_size = u32::from_be_bytes(clean[36..40].try_into().unwrap()) as usize;
        // After the root's name (8 bytes: token and padded empty name),
        // between the root's last property and its `soc` child (where the
        // `fdt` crate stops), and just before FDT_END.
        let start = u32::from_be_bytes(clean[8..12].try_into().unwrap()) as usize;
        let soc = clean[start..]
            .windows(8)
            .position(|w| w == b"\0\0\0\x01soc\0")
            .unwrap();
        let mut blob = with_nops(&clean, &[8, 8, soc, struct_size - 4]);
        assert!(Fdt::new(&blob).is_ok());
        drop_nops(&mut blob).unwrap();
        let f = Fdt::new(&blob).unwrap();
        assert!(has_node_at(&f, &["arm,pl011"], PhysAddr(0xfe20_1000)));
        assert!(has_node_at(&f, &["arm,gic-400"], PhysAddr(0xff84_1000)));
        assert_eq!(
            u32::from_be_bytes(blob[36..40].try_into().unwrap()) as usize,
            struct_size,
            "the block is as long as before the NOPs"
        );
        // A blob with nothing to drop is left as it is.
        let mut same = clean.clone();
        drop_nops(&mut same).unwrap();
        assert_eq!(same, clean);
        // A token no tree has, or a property longer than the block: refused.
        let mut bad = clean.clone();
        bad[start..start + 4].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(drop_nops(&mut bad), None);
        let mut long = with_nops(&clean, &[]);
        let prop = start + 8; // the root's first property
        long[prop + 4..prop + 8].copy_from_slice(&0x10_0000u32.to_be_bytes());
        assert_eq!(drop_nops(&mut long), None);
    }

    #[test]
    fn a_blob_that_is_no_device_tree_is_unreadable() {
        let mut blob = Machine::virt().blob();
        blob[0] ^= 1; // the magic
        assert_eq!(
            check_bytes(&blob, AT, &v3()).map_err(|e| e.what),
            Err(Mismatch::Unreadable { address: AT })
        );
        assert!(check_bytes(&[], AT, &v3()).is_err());
    }

    #[test]
    fn only_an_aligned_address_with_a_whole_header_in_ram_is_read() {
        let board = v3();
        let header = HEADER as u64;
        for good in [0x4000_0000, 0x4800_0000, 0x8000_0000 - header] {
            assert_eq!(
                plausible_address(PhysAddr(good), &board),
                Ok(()),
                "{good:#x}"
            );
        }
        for bad in [
            0,
            0x4800_0004,
            0x3fff_fff8,
            0x8000_0000 - header + 8,
            0x8000_0000,
            u64::MAX - 7,
        ] {
            assert_eq!(
                plausible_address(PhysAddr(bad), &board).map_err(|e| e.what),
                Err(Mismatch::Unreadable {
                    address: PhysAddr(bad)
                }),
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn the_blob_the_header_announces_must_lie_in_ram() {
        let board = v3();
        let blob = Machine::virt().blob();
        let header: &[u8; HEADER] = blob[..HEADER].try_into().unwrap();
        assert_eq!(blob_size(header, AT, &board), Ok(blob.len()));
        let end = PhysAddr(0x8000_0000 - blob.len() as u64);
        assert_eq!(blob_size(header, end, &board), Ok(blob.len()));
        let unreadable = |address| Err(mismatch(&board, Mismatch::Unreadable { address }));
        let past = PhysAddr(end.0 + 8);
        assert_eq!(blob_size(header, past, &board), unreadable(past));
        let mut bad = *header;
        bad[3] ^= 1; // the magic
        assert_eq!(blob_size(&bad, AT, &board), unreadable(AT));
        let mut small = *header;
        small[4..8].copy_from_slice(&(HEADER as u32 - 1).to_be_bytes());
        assert_eq!(blob_size(&small, AT, &board), unreadable(AT));
        let mut huge = *header;
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(blob_size(&huge, AT, &board), unreadable(AT));
    }

    #[test]
    fn each_mismatch_reads_as_a_sentence_naming_the_board() {
        let text = |what| {
            DtbMismatch {
                board: "qemu-virt",
                what,
            }
            .to_string()
        };
        assert_eq!(
            text(Mismatch::RamMissing {
                base: PhysAddr(0x4000_0000),
                size: 0x4000_0000
            }),
            "board qemu-virt has RAM 0x40000000..0x80000000, the boot device tree does not \
             (too little memory given to the machine?)"
        );
        assert_eq!(
            text(Mismatch::CpuMissing { index: 2, mpidr: 2 }),
            "board qemu-virt has CPU 2 (MPIDR 0x2), the boot device tree does not \
             (too few CPUs given to the machine?)"
        );
        assert_eq!(
            text(Mismatch::Gic { expected: GICD }),
            "board qemu-virt has its GIC distributor at 0x8000000, the boot device tree \
             has no GIC of that version there"
        );
        assert_eq!(
            text(Mismatch::Uart { expected: UART }),
            "board qemu-virt has a PL011 at 0x9000000, the boot device tree does not"
        );
        assert_eq!(
            text(Mismatch::Unreadable {
                address: PhysAddr(0x1234)
            }),
            "no valid device tree at 0x1234 (x0 at entry); boot Bulkhead as an arm64 Image"
        );
    }
}
