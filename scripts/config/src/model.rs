//! The two file formats, as written: serde structs with
//! `deny_unknown_fields`, and the parsing that turns a TOML or serde error
//! into a [`ConfigError`] naming the file, line, partition and field.
//!
//! Nothing here judges values; that is [`mod@crate::check`]'s job. Field names
//! are the TOML keys, so an error's field path is what the user wrote.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ConfigError, ErrorKind};

/// `boards/<name>/board.toml`: the machine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardFile {
    /// The board's name; a partition set's `board` must equal it.
    pub name: String,
    /// RAM ranges, in any order.
    pub ram: Vec<RangeFile>,
    /// The RAM the hypervisor keeps for itself.
    pub hypervisor: HypervisorFile,
    /// The PL011 the hypervisor owns.
    pub uart: UartFile,
    /// The interrupt controller.
    pub gic: GicFile,
    /// Physical CPUs; the index into this list is the CPU id partitions use.
    #[serde(default)]
    pub cpu: Vec<CpuFile>,
    /// Devices a partition may take as passthrough.
    #[serde(default)]
    pub device: Vec<DeviceFile>,
    /// How the machine powers off, when not through PSCI.
    pub power: Option<PowerFile>,
    /// How QEMU emulates the board, for boards it does.
    pub qemu: Option<QemuFile>,
}

/// `[power]`: a board without PSCI firmware powers off another way.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerFile {
    /// Base of the BCM2835/BCM2711 power manager (PM) block: power-off is
    /// its watchdog's reset into the firmware's halt partition.
    pub bcm2835_watchdog: Option<u64>,
}

/// `[qemu]`: the one place a board's QEMU command line comes from. The
/// rest of it is derived from the board: `-smp` from its CPUs, `-m` from
/// its RAM.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuFile {
    /// `-M`: the machine type and its options.
    pub machine: String,
    /// `-cpu`: the CPU model.
    pub cpu: String,
    /// `-m`, when the machine has one fixed size rather than the board's
    /// RAM (raspi4b has 2 GiB, the board only what every Pi 4 has).
    pub memory: Option<String>,
    /// `-dtb`: the device tree the board's firmware would pass, a path in
    /// Debian's arm64 kernel package under /usr/lib/linux-image-*/
    /// (scripts/linux.sh --dtb fetches it), for machines QEMU gives none.
    pub dtb: Option<String>,
}

/// A `base`/`size` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeFile {
    /// Start address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

/// `[uart]`: the hypervisor's PL011.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UartFile {
    /// Start address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
    /// Its interrupt (an SPI), for console input; without it the console
    /// has no input.
    pub interrupt: Option<u32>,
}

/// `[hypervisor]`: where the hypervisor's RAM starts and, optionally, a
/// fixed size. Without one the build sizes it for the partition set
/// ([`crate::budget`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypervisorFile {
    /// Start address: where the boot loader puts the hypervisor's image.
    pub base: u64,
    /// A fixed length in bytes: the most the build may take.
    pub size: Option<u64>,
}

/// `[gic]`: one table for both versions; [`mod@crate::check`] rejects the keys
/// of the other version, so a GICv3 board cannot carry a stray
/// `cpu_interface`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GicFile {
    /// 2 or 3.
    pub version: u32,
    /// GICD base (both versions).
    pub distributor: u64,
    /// GICR base of CPU 0 (GICv3 only).
    pub redistributor: Option<u64>,
    /// GICC base (GICv2 only).
    pub cpu_interface: Option<u64>,
    /// GICH base (GICv2 only).
    pub hyp_interface: Option<u64>,
    /// GICV base (GICv2 only).
    pub virtual_cpu_interface: Option<u64>,
    /// Base of GICH's per-CPU aliases (GICv2 only, where the GIC has them:
    /// the GIC-400's, at GICH + 0x1000).
    pub hyp_interface_aliases: Option<u64>,
    /// INTID of the maintenance interrupt (a PPI).
    pub maintenance_intid: u32,
}

/// `[[cpu]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuFile {
    /// Affinity fields of the CPU's MPIDR_EL1.
    pub mpidr: u64,
    /// Its spin-table release address (the device tree's
    /// `cpu-release-addr`), on a board whose firmware parks the CPUs in a
    /// spin table; without it the CPU is started with PSCI CPU_ON.
    pub spin_table: Option<u64>,
}

/// `[[device]]` of a board.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFile {
    /// What partitions call it in their `devices` list.
    pub name: String,
    /// Device-tree compatible strings, most specific first.
    pub compatible: Vec<String>,
    /// MMIO base (physical; also the IPA the device is mapped at).
    pub base: u64,
    /// MMIO size.
    pub size: u64,
    /// The SPIs it raises, as INTIDs.
    #[serde(default)]
    pub interrupts: Vec<u32>,
    /// How its interrupts signal (default `level`): fixed by the hardware,
    /// so the physical GIC is set once at boot and a partition's virtual
    /// GICD_ICFGR shows it read-only.
    #[serde(default)]
    pub trigger: Trigger,
}

/// An interrupt's trigger.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Level-sensitive, active high.
    #[default]
    Level,
    /// Edge-triggered, rising.
    Edge,
}

/// A partition set (e.g. `boards/qemu-virt/demo.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSetFile {
    /// The board: `<repo_root>/boards/<board>/board.toml`.
    pub board: String,
    /// The partitions, in order: partition index n is the nth table.
    #[serde(default)]
    pub partition: Vec<PartitionFile>,
    /// Memory shared between partitions, each region named with who maps
    /// it where and how.
    #[serde(default)]
    pub shared: Vec<SharedFile>,
    /// Doorbells: which partition may interrupt which vCPU of another.
    #[serde(default)]
    pub doorbell: Vec<DoorbellFile>,
}

/// One `[[shared]]`: a region of board RAM that the partitions its `map`
/// names (and no others) see.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedFile {
    /// 1..=32 characters of `[a-z0-9-]`, unique among the regions: its
    /// `label` in the device trees.
    pub name: String,
    /// Length in bytes, a whole number of 4 KiB pages.
    pub size: u64,
    /// Where it is in the machine; default: placed by the build in board
    /// RAM that nothing else uses.
    pub phys: Option<u64>,
    /// Who sees it: one entry per partition.
    #[serde(default)]
    pub map: Vec<SharedMapFile>,
}

/// One `[[shared.map]]`: a partition's view of a shared region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedMapFile {
    /// The partition's name.
    pub partition: String,
    /// Where the partition sees the region.
    pub ipa: u64,
    /// `"rw"` or `"ro"`.
    pub access: Access,
}

/// A partition's rights to a shared region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read and write.
    Rw,
    /// Read only: a write is a synchronous external abort for the writer.
    Ro,
}

/// One `[[doorbell]]`: a channel from one partition to a virtual interrupt
/// of a vCPU of another.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorbellFile {
    /// 1..=32 characters of `[a-z0-9-]`, unique among the doorbells.
    pub name: String,
    /// The partition that rings it (through its `doorbell_page`).
    pub from: String,
    /// The partition it interrupts.
    pub to: String,
    /// The vCPU of `to` that takes the interrupt (default 0).
    #[serde(default)]
    pub vcpu: usize,
    /// The virtual interrupt `to` takes: an SPI (INTID 32..=1019) none of
    /// its devices, its emulated PL011 or another doorbell uses.
    pub intid: u32,
}

/// One `[[partition]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionFile {
    /// 1..=16 characters of `[a-z0-9-]`; the console prefix.
    pub name: String,
    /// Board CPU indices; vCPU n runs on `cpus[n]`.
    pub cpus: Vec<usize>,
    /// The guest image: a name in the guest directory, or a path (with a
    /// `/`) relative to the partition set's directory.
    pub image: String,
    /// Where vCPU 0 starts; default: the ELF's `e_entry`.
    pub entry: Option<u64>,
    /// Raw images only: the IPA the image's bytes go to.
    pub load: Option<u64>,
    /// Generate a device tree and pass it in x0 (default true).
    #[serde(default = "yes")]
    pub device_tree: bool,
    /// The IPA of an emulated PL011, if the partition has one.
    pub console_pl011: Option<u64>,
    /// The IPA of the partition's control page (default
    /// `check::DEFAULT_CONTROL_PAGE`).
    pub control_page: Option<u64>,
    /// Board devices given to this partition as passthrough.
    #[serde(default)]
    pub devices: Vec<String>,
    /// The IPA of the partition's doorbell register page: required when it
    /// rings a `[[doorbell]]`.
    pub doorbell_page: Option<u64>,
    /// The IPA the device tree goes to; default: the last
    /// `check::DEVICE_TREE_AREA` bytes of the lowest memory region.
    pub device_tree_at: Option<u64>,
    /// The kernel command line: `/chosen/bootargs` in the device tree.
    pub bootargs: Option<String>,
    /// An initial RAM disk: loaded into the partition's memory, its range
    /// in the device tree's `/chosen`.
    pub initrd: Option<InitrdFile>,
    /// What a fault of the partition does: `"stop"` (default) or `"restart"`.
    #[serde(default)]
    pub on_fault: OnFaultFile,
    /// RAM regions, in any order.
    #[serde(default)]
    pub memory: Vec<MemoryFile>,
}

/// `on_fault = "stop" | "restart"` of a partition.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFaultFile {
    #[default]
    Stop,
    Restart,
}

impl From<OnFaultFile> for bulkhead_abi::board::OnFault {
    fn from(value: OnFaultFile) -> Self {
        match value {
            OnFaultFile::Stop => Self::Stop,
            OnFaultFile::Restart => Self::Restart,
        }
    }
}

/// `initrd = { file = "...", at = 0x... }` of a partition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitrdFile {
    /// The file, named as `image` is: a name in the guest directory, or a
    /// path (with a `/`) relative to the partition set's directory.
    pub file: String,
    /// The IPA its first byte goes to.
    pub at: u64,
}

fn yes() -> bool {
    true
}

/// `[[partition.memory]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryFile {
    /// Guest address.
    pub ipa: u64,
    /// Machine address.
    pub phys: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Parses a board file; `file` is the name errors show.
pub fn parse_board(text: &str, file: &str) -> Result<BoardFile, ConfigError> {
    parse(text, file)
}

/// Parses a partition-set file; `file` is the name errors show.
pub fn parse_partition_set(text: &str, file: &str) -> Result<PartitionSetFile, ConfigError> {
    parse(text, file)
}

/// Deserializes `text`, tracking the path of the value being read so an error
/// can say which partition and field it is in.
fn parse<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let kind = ErrorKind::Syntax {
            message: e.message().to_owned(),
        };
        ConfigError::new(file, line, None, None, kind)
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let line = e.inner().span().map(|s| line_of(text, s.start));
        let message = e.inner().message().to_owned();
        let path = e.path().to_string();
        locate(text, file, line, &path, message)
    })
}

/// Builds the error for a serde failure at `path` (`partition[1].memory[0].ipa`).
fn locate(text: &str, file: &str, line: Option<usize>, path: &str, message: String) -> ConfigError {
    // serde's own wording (serde::de::Error::missing_field / unknown_field).
    let (mut field, kind) = if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        (join(path, name), ErrorKind::MissingField)
    } else if message.starts_with("unknown field `") {
        (path.to_owned(), ErrorKind::UnknownField { message })
    } else {
        (path.to_owned(), ErrorKind::InvalidValue { message })
    };
    // `partition[i].rest`: name the partition, keep `rest` as the field.
    let mut partition = None;
    if let Some(after) = field.strip_prefix("partition[")
        && let Some((index, rest)) = after.split_once(']')
        && let Some(name) = index
            .parse::<usize>()
            .ok()
            .and_then(|i| partition_name(text, i))
    {
        partition = Some(name);
        field = rest.trim_start_matches('.').to_owned();
    }
    let field = (!field.is_empty() && field != ".").then_some(field.as_str());
    ConfigError::new(file, line, partition.as_deref(), field, kind)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The `name` of the `index`th partition, read loosely (the strict parse failed).
fn partition_name(text: &str, index: usize) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let name = table.get("partition")?.get(index)?.get("name")?.as_str()?;
    Some(name.to_owned())
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
