//! The static configuration as the hypervisor sees it at run time.
//!
//! `build.rs` reads the board description and the partition set (TOML under
//! `boards/`), checks them with the configuration tool (`scripts/config`),
//! and writes a Rust file into `OUT_DIR` that builds one [`Config`] out of
//! these types. Nothing here is parsed at run time: a configuration that
//! reaches the hypervisor has already been checked.
//!
//! Every address is typed by its space: [`PhysAddr`] for the machine's,
//! [`Ipa`] for a partition's guest-physical one; sizes are plain `u64`.
#![forbid(unsafe_code)]

/// The address types and the board's interrupt controller: one definition
/// with the configuration tool, which checks them (`bulkhead_abi::board`).
pub use bulkhead_abi::board::{GicConfig, Ipa, OnFault, PhysAddr};

/// A physical address range: `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub base: PhysAddr,
    pub size: u64,
}

impl Range {
    pub const fn end(&self) -> PhysAddr {
        PhysAddr(self.base.0 + self.size)
    }

    pub const fn contains(&self, addr: PhysAddr) -> bool {
        matches!(addr.offset_from(self.base), Some(offset) if offset < self.size)
    }
}

/// One physical CPU of the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuConfig {
    /// The affinity fields of its MPIDR_EL1 (Aff3 in bits 39:32, Aff2..Aff0
    /// in bits 23:0), as the boot device tree's `reg` gives it.
    pub mpidr: u64,
    /// Where the firmware's spin table has it wait (the device tree's
    /// `cpu-release-addr`): the hypervisor writes its entry point there.
    /// `None`: PSCI CPU_ON starts it.
    pub spin_table: Option<PhysAddr>,
}

/// How the board powers off (when every partition has stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// PSCI SYSTEM_OFF to the firmware.
    Psci,
    /// No PSCI: the BCM2835/BCM2711 power manager (PM) block at this base;
    /// its watchdog resets the SoC into the firmware's halt partition.
    Bcm2835Watchdog(PhysAddr),
}

/// The machine, from `boards/<board>/board.toml`.
#[derive(Clone, Copy, Debug)]
pub struct BoardConfig {
    pub name: &'static str,
    /// RAM ranges, ascending, disjoint.
    pub ram: &'static [Range],
    /// The part of RAM the hypervisor keeps for itself (image, heap, tables).
    pub hypervisor: Range,
    /// The board UART, a PL011, owned by the hypervisor.
    pub uart: Range,
    /// Its interrupt (an SPI, no device's), when console input is wired.
    pub uart_interrupt: Option<u32>,
    pub gic: GicConfig,
    /// Physical CPUs; the index into this slice is the CPU id used everywhere.
    pub cpus: &'static [CpuConfig],
    pub power: Power,
}

/// A region of guest RAM: `size` bytes at `ipa` in the guest, `phys` in the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub ipa: Ipa,
    pub phys: PhysAddr,
    pub size: u64,
}

impl MemoryRegion {
    /// Whether `ipa` is in this region.
    pub const fn contains(&self, ipa: Ipa) -> bool {
        matches!(ipa.offset_from(self.ipa), Some(offset) if offset < self.size)
    }

    /// Where `ipa` is in the machine, if it is in this region.
    pub const fn phys_of(&self, ipa: Ipa) -> Option<PhysAddr> {
        match ipa.offset_from(self.ipa) {
            Some(offset) if offset < self.size => self.phys.checked_add(offset),
            _ => None,
        }
    }
}

/// A passthrough device: its MMIO mapped into the partition as device
/// memory, its interrupts owned by the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    pub name: &'static str,
    pub ipa: Ipa,
    pub phys: PhysAddr,
    pub size: u64,
    /// Physical INTIDs (SPIs) owned by the partition.
    pub interrupts: &'static [u32],
    /// Its interrupts are edge-triggered (else level): the board's, fixed.
    pub edge: bool,
}

/// A blob the hypervisor copies into a partition's memory before it starts.
#[derive(Clone, Copy, Debug)]
pub struct Blob {
    /// Where it goes, as a guest address (inside one of the memory regions).
    pub ipa: Ipa,
    pub bytes: &'static [u8],
}

/// One partition, from a `[[partition]]` table of the partition set.
#[derive(Clone, Copy, Debug)]
pub struct PartitionConfig {
    pub name: &'static str,
    /// Physical CPU (index into [`BoardConfig::cpus`]) of each vCPU:
    /// vCPU n runs on `cpus[n]` and nowhere else.
    pub cpus: &'static [usize],
    /// The virtual MPIDR of each vCPU, as the partition's device tree states it.
    pub vmpidrs: &'static [u64],
    /// RAM regions, ascending by IPA, disjoint.
    pub memory: &'static [MemoryRegion],
    pub devices: &'static [DeviceConfig],
    /// The guest image (loadable bytes only; the rest of memory is zeroed).
    pub image: Blob,
    /// Where vCPU 0 starts, at EL1 with its MMU off.
    pub entry: Ipa,
    /// An initial RAM disk, named in the device tree's `/chosen`.
    pub initrd: Option<Blob>,
    /// The generated device tree, passed in x0; `None`: x0 = 0.
    pub device_tree: Option<Blob>,
    /// Guest address of the emulated PL011, if the partition has one.
    pub console_pl011: Option<Ipa>,
    /// Guest address of the partition's control page (`bulkhead_abi::control`).
    pub control_page: Ipa,
    /// What a fault of the partition does.
    pub on_fault: OnFault,
    /// The shared regions it maps ([`Config::shared`] from its side), in
    /// the partition set's order.
    pub shared: &'static [SharedMapping],
    /// Guest address of its doorbell register page, when it rings a
    /// doorbell ([`Config::doorbells`] with it as `from`).
    pub doorbell_page: Option<Ipa>,
}

/// A partition's rights to a shared region, enforced by stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: a write is a stage-2 permission fault, for the writer a
    /// synchronous external abort.
    ReadOnly,
}

/// A shared region as one partition maps it: `size` bytes at `ipa` in the
/// guest, `phys` in the machine (the region's, the same in every partition
/// that maps it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMapping {
    /// The region's name (its `label` in the device tree).
    pub name: &'static str,
    pub ipa: Ipa,
    pub phys: PhysAddr,
    pub size: u64,
    pub access: Access,
}

/// A region of board RAM shared between the partitions that map it
/// ([`PartitionConfig::shared`]): zeroed once at boot, never when one of
/// them restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedRegion {
    pub name: &'static str,
    pub phys: PhysAddr,
    pub size: u64,
}

/// A doorbell: partition `from` writes `channel` to its doorbell page, and
/// vCPU `vcpu` of partition `to` takes virtual SPI `intid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorbellConfig {
    pub name: &'static str,
    /// The ringing partition (index into [`Config::partitions`]).
    pub from: usize,
    /// The target partition (index into [`Config::partitions`]), never `from`.
    pub to: usize,
    /// The target's vCPU, one it has.
    pub vcpu: usize,
    /// The virtual SPI (32..=1019) the target takes, none of its others.
    pub intid: u32,
    /// The number `from` writes to ring it: its index among the doorbells
    /// `from` rings, in the partition set's order.
    pub channel: u32,
}

/// Everything the hypervisor is built for.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The partition set's file, for reports.
    pub source: &'static str,
    pub board: BoardConfig,
    pub partitions: &'static [PartitionConfig],
    /// Memory shared between partitions, each region once.
    pub shared: &'static [SharedRegion],
    /// The doorbells between partitions.
    pub doorbells: &'static [DoorbellConfig],
}

#[cfg(test)]
mod tests {
    use super::{Ipa, MemoryRegion, PhysAddr, Range};

    #[test]
    fn a_range_holds_its_first_and_last_byte_and_nothing_either_side() {
        let r = Range {
            base: PhysAddr(0x4000_0000),
            size: 0x2000,
        };
        assert_eq!(r.end(), PhysAddr(0x4000_2000));
        for (addr, inside) in [
            (0x3fff_ffff, false),
            (0x4000_0000, true),
            (0x4000_1fff, true),
            (0x4000_2000, false),
            (0, false),
            (u64::MAX, false),
        ] {
            assert_eq!(r.contains(PhysAddr(addr)), inside, "{addr:#x}");
        }
    }

    #[test]
    fn a_range_ending_at_the_top_of_the_address_space_does_not_wrap() {
        let r = Range {
            base: PhysAddr(u64::MAX - 0xfff),
            size: 0x1000,
        };
        assert!(r.contains(PhysAddr(u64::MAX)));
        assert!(r.contains(PhysAddr(u64::MAX - 0xfff)));
        assert!(!r.contains(PhysAddr(u64::MAX - 0x1000)));
        let empty = Range {
            base: PhysAddr(0x1000),
            size: 0,
        };
        assert!(!empty.contains(PhysAddr(0x1000)));
        assert_eq!(empty.end(), PhysAddr(0x1000));
    }

    #[test]
    fn a_region_translates_its_own_ipas_and_no_others() {
        let r = MemoryRegion {
            ipa: Ipa(0x4000_0000),
            phys: PhysAddr(0x5000_0000),
            size: 0x2000,
        };
        assert_eq!(r.phys_of(Ipa(0x4000_0000)), Some(PhysAddr(0x5000_0000)));
        assert_eq!(r.phys_of(Ipa(0x4000_1fff)), Some(PhysAddr(0x5000_1fff)));
        assert_eq!(r.phys_of(Ipa(0x4000_2000)), None);
        assert_eq!(r.phys_of(Ipa(0x3fff_ffff)), None);
        assert_eq!(
            r.phys_of(Ipa(0x5000_0000)),
            None,
            "a physical address is no IPA"
        );
        for (ipa, inside) in [
            (0x3fff_ffff, false),
            (0x4000_0000, true),
            (0x4000_1fff, true),
            (0x4000_2000, false),
        ] {
            assert_eq!(r.contains(Ipa(ipa)), inside, "{ipa:#x}");
        }
        // A region at the top of the physical address space translates
        // what it can and wraps nowhere.
        let top = MemoryRegion {
            phys: PhysAddr(u64::MAX - 0xfff),
            ..r
        };
        assert_eq!(top.phys_of(Ipa(0x4000_0fff)), Some(PhysAddr(u64::MAX)));
        assert_eq!(top.phys_of(Ipa(0x4000_1000)), None);
    }
}
