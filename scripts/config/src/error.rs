//! The one error type of the configuration tool.
//!
//! Every problem is reported as a [`ConfigError`]: *where* (the file, the
//! line when the TOML parser knows it, the partition, the field) and *what*
//! (an [`ErrorKind`]). Its `Display` is the build error a developer reads:
//!
//! ```text
//! boards/qemu-virt/demo.toml: partition "alpha": memory[1].phys: 0x54000000..0x58000000 overlaps partition "beta" memory[0]
//! ```

use std::fmt;
use std::io;

use crate::budget::Need;
use crate::check::Range;
use crate::elf::ElfError;

/// A configuration problem, located as precisely as the tool can.
///
/// Boxed: errors are rare and results are many, so `Result<_, ConfigError>`
/// stays one pointer wide.
#[derive(Debug)]
pub struct ConfigError(Box<Located>);

#[derive(Debug)]
struct Located {
    file: String,
    line: Option<usize>,
    partition: Option<String>,
    field: Option<String>,
    kind: ErrorKind,
}

impl ConfigError {
    /// An error in `file` (as shown to the user), at `line` if known,
    /// inside `partition` if any, at `field` if any.
    pub fn new(
        file: &str,
        line: Option<usize>,
        partition: Option<&str>,
        field: Option<&str>,
        kind: ErrorKind,
    ) -> Self {
        ConfigError(Box::new(Located {
            file: file.to_owned(),
            line,
            partition: partition.map(str::to_owned),
            field: field.map(str::to_owned),
            kind,
        }))
    }

    /// The file at fault, as shown to the user (relative to the repository root).
    pub fn file(&self) -> &str {
        &self.0.file
    }

    /// The 1-based line in [`Self::file`], when the TOML parser pointed at one.
    pub fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// The partition the problem is inside, if any.
    pub fn partition(&self) -> Option<&str> {
        self.0.partition.as_deref()
    }

    /// The field at fault, as a path inside the table it belongs to
    /// (`memory[1].phys`, `cpu[2].mpidr`, `devices[0]`).
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }
}

/// What is wrong; [`ConfigError`] says where.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read.
    Read { path: String, error: io::Error },
    /// A generated file could not be written.
    Write { path: String, error: io::Error },
    /// The text is not valid TOML.
    Syntax { message: String },
    /// A key the format does not have (serde's message, with the accepted keys).
    UnknownField { message: String },
    /// A required key is absent; the field path ends with its name.
    MissingField,
    /// A value of the wrong type or out of range for its type.
    InvalidValue { message: String },
    /// A name that breaks the naming rule.
    BadName { name: String, rule: &'static str },
    /// A partition name used by an earlier partition.
    DuplicateName { name: String },
    /// The partition set names a board other than the board file describes.
    BoardMismatch { wanted: String, found: String },
    /// The partition set has no `[[partition]]`.
    NoPartitions,
    /// A partition (or the board) has no CPUs.
    NoCpus,
    /// A board with more CPUs than the hypervisor supports.
    TooManyCpus { count: usize, max: usize },
    /// A partition owning more interrupts than the virtual GIC holds.
    TooManyInterrupts { count: usize, max: usize },
    /// A guest address range beyond what stage 2 translates.
    IpaTooHigh { range: Range, limit: u64 },
    /// A CPU index that the board does not have.
    UnknownCpu { cpu: usize, board_cpus: usize },
    /// A CPU given twice; `owner` is the other partition, `None` for the same one.
    CpuTwice { cpu: usize, owner: Option<String> },
    /// Two board CPUs with the same MPIDR.
    DuplicateMpidr { mpidr: u64 },
    /// An MPIDR with bits set outside the affinity fields.
    BadMpidr { mpidr: u64 },
    /// A spin-table release address that is no aligned word of RAM clear
    /// of the hypervisor's.
    SpinTable { address: u64 },
    /// Partition memory over a CPU's spin-table release address.
    OverlapsSpinTable { range: Range, address: u64 },
    /// A partition without memory, or a board without RAM.
    NoMemory,
    /// A range of size zero.
    ZeroSize,
    /// A value that is not a multiple of `align`.
    Misaligned { value: u64, align: u64 },
    /// `base + size` does not fit in 64 bits.
    Wraps { base: u64, size: u64 },
    /// A range that is not inside one board RAM range.
    OutsideRam { range: Range },
    /// A partition's memory that overlaps the hypervisor's own RAM.
    OverlapsHypervisor { range: Range, hypervisor: Range },
    /// Two ranges that must be disjoint overlap; `other` names the one found first.
    Overlap {
        range: Range,
        other: String,
        other_range: Range,
    },
    /// A device name that the board does not list.
    UnknownDevice { name: String },
    /// A device taken twice; `owner` is the other partition, `None` for the same one.
    DeviceTwice { name: String, owner: Option<String> },
    /// An interrupt that already belongs to something else (`owner` says what).
    InterruptTwice { intid: u32, owner: String },
    /// A GIC version other than 2 or 3.
    GicVersion { version: u32 },
    /// A GIC key that belongs to the other GIC version.
    WrongGicField { version: u32 },
    /// An interrupt that must be a PPI (INTID 16..=31) and is not.
    NotPpi { intid: u32 },
    /// An interrupt that must be an SPI (INTID 32..=1019) and is not.
    NotSpi { intid: u32 },
    /// A board device without a `compatible` string.
    NoCompatible,
    /// A guest image file that does not exist.
    ImageNotFound { path: String },
    /// A guest image that starts like an ELF but is not one we can load.
    BadElf { error: ElfError },
    /// `load` given for an ELF image, which is loaded at its segments' addresses.
    LoadForElf,
    /// A raw (non-ELF) image without `load`.
    RawImageWithoutLoad,
    /// A raw (non-ELF) image without `entry`.
    RawImageWithoutEntry,
    /// Part of the image (`range`, a segment or the raw bytes) is not inside one memory region.
    ImageOutsideMemory { range: Range },
    /// Part of the image lies in the area kept for the device tree.
    ImageOverlapsDeviceTree { range: Range, device_tree: Range },
    /// The entry point is not inside a memory region.
    EntryOutsideMemory { entry: u64 },
    /// The lowest memory region cannot hold the device-tree area.
    RegionTooSmallForDeviceTree { size: u64 },
    /// The device-tree writer failed (a bug in this tool, not in the configuration).
    DeviceTree { error: vm_fdt::Error },
    /// One image's span alone is larger than the RAM the hypervisor may
    /// take, which embeds it.
    BlobsTooLarge { total: u64, hypervisor: u64 },
    /// The hypervisor's RAM, sized for the set, is larger than the board
    /// lets it take: its fixed `[hypervisor].size`, or else the RAM range
    /// from `[hypervisor].base` to its end.
    HypervisorTooLarge { need: Need, room: u64 },
    /// An initrd file that does not exist.
    InitrdNotFound { path: String },
    /// An initrd file of no bytes.
    EmptyInitrd,
    /// The initrd's bytes are not inside one memory region.
    InitrdOutsideMemory { range: Range },
    /// `device_tree_at`'s area is not inside one memory region.
    DeviceTreeOutsideMemory { range: Range },
    /// A field whose value goes into the device tree, with `device_tree = false`.
    NeedsDeviceTree,
    /// A kernel command line the device tree or Linux cannot take.
    Bootargs { problem: String },
    /// An arm64 Image whose header says it is big-endian.
    BigEndianImage,
    /// An arm64 Image whose load address is not `text_offset` above a 2 MiB
    /// aligned base.
    KernelMisplaced { load: u64, text_offset: u64 },
    /// An arm64 Image whose effective size (`image_size`, BSS included) runs
    /// out of its memory region.
    KernelOutsideMemory { range: Range, image_size: u64 },
    /// The initrd and an arm64 Image are not inside one 1 GiB aligned
    /// window of at most 32 GiB, as the boot protocol requires.
    KernelInitrdApart { kernel: Range, initrd: Range },
    /// A `[qemu]` value QEMU would refuse, or one that contradicts the board.
    Qemu { problem: String },
    /// A shared region or doorbell name used by an earlier one (`what`).
    NameTwice { name: String, what: &'static str },
    /// A partition name that no `[[partition]]` has.
    UnknownPartition { name: String },
    /// A shared region that no partition maps.
    NotMapped,
    /// A partition that maps a shared region twice, the same way;
    /// `first` is the index of the earlier mapping in the region's `map`.
    MappedTwice { region: String, first: usize },
    /// A partition that maps a shared region both read-only and writable.
    AccessConflict { region: String, first: usize },
    /// A doorbell whose `from` and `to` are one partition.
    DoorbellToItself,
    /// A partition that rings a doorbell and has no `doorbell_page`.
    NoDoorbellPage { doorbell: String },
    /// A vCPU index the partition does not have.
    NoSuchVcpu { vcpu: usize, vcpus: usize },
    /// No free board RAM holds a shared region the build is to place.
    NoRoomForShared { size: u64 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file())?;
        if let Some(line) = self.line() {
            write!(f, ":{line}")?;
        }
        if let Some(partition) = self.partition() {
            write!(f, ": partition \"{partition}\"")?;
        }
        if let Some(field) = self.field() {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.kind())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.kind() {
            ErrorKind::Read { error, .. } | ErrorKind::Write { error, .. } => Some(error),
            ErrorKind::BadElf { error } => Some(error),
            ErrorKind::DeviceTree { error } => Some(error),
            _ => None,
        }
    }
}

fn owner_or_this(owner: &Option<String>) -> String {
    match owner {
        Some(p) => format!("partition \"{p}\""),
        None => "this partition".to_owned(),
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            Read { path, error } => write!(f, "cannot read {path}: {error}"),
            Write { path, error } => write!(f, "cannot write {path}: {error}"),
            Syntax { message } => write!(f, "invalid TOML: {message}"),
            UnknownField { message } => f.write_str(message),
            MissingField => f.write_str("required field is missing"),
            InvalidValue { message } => f.write_str(message),
            BadName { name, rule } => write!(f, "bad name \"{name}\": {rule}"),
            DuplicateName { name } => {
                write!(f, "name \"{name}\" is already used by an earlier partition")
            }
            BoardMismatch { wanted, found } => write!(
                f,
                "the partition set is for board \"{wanted}\" but the board file describes \"{found}\""
            ),
            NoPartitions => f.write_str("the partition set has no [[partition]]"),
            NoCpus => f.write_str("no CPUs given"),
            TooManyCpus { count, max } => {
                write!(f, "{count} CPUs: Bulkhead supports at most {max}")
            }
            TooManyInterrupts { count, max } => write!(
                f,
                "its devices have {count} interrupts: a partition may own at most {max}"
            ),
            IpaTooHigh { range, limit } => write!(
                f,
                "guest addresses {range} end beyond {limit:#x}, the largest stage 2 translates"
            ),
            UnknownCpu { cpu, board_cpus } => write!(
                f,
                "CPU {cpu} does not exist: the board has {board_cpus} CPUs (0..={})",
                board_cpus.saturating_sub(1)
            ),
            CpuTwice { cpu, owner } => {
                write!(f, "CPU {cpu} is already given to {}", owner_or_this(owner))
            }
            DuplicateMpidr { mpidr } => write!(f, "MPIDR {mpidr:#x} is given twice"),
            BadMpidr { mpidr } => write!(
                f,
                "MPIDR {mpidr:#x} has bits outside the affinity fields (mask 0xff00ffffff)"
            ),
            SpinTable { address } => write!(
                f,
                "release address {address:#x} is not an 8-byte-aligned word of board RAM \
                 outside the hypervisor's RAM"
            ),
            OverlapsSpinTable { range, address } => write!(
                f,
                "{range} holds the firmware's spin-table release address {address:#x} \
                 (a CPU's, in the board file)"
            ),
            NoMemory => f.write_str("no memory given"),
            ZeroSize => f.write_str("size is 0"),
            Misaligned { value, align } => {
                write!(f, "{value:#x} is not a multiple of {align:#x}")
            }
            Wraps { base, size } => {
                write!(f, "{base:#x} + {size:#x} does not fit in 64 bits")
            }
            OutsideRam { range } => write!(f, "{range} is not inside one board RAM range"),
            OverlapsHypervisor { range, hypervisor } => write!(
                f,
                "{range} overlaps the hypervisor's RAM {hypervisor} (from board \
                 [hypervisor].base, as large as this set needs: its code, heap and the images, \
                 initrds and device trees it embeds; `scripts/build.sh --map` shows it)"
            ),
            Overlap {
                range,
                other,
                other_range,
            } => write!(f, "{range} overlaps {other} ({other_range})"),
            UnknownDevice { name } => write!(f, "the board has no device \"{name}\""),
            DeviceTwice { name, owner } => write!(
                f,
                "device \"{name}\" is already given to {}",
                owner_or_this(owner)
            ),
            InterruptTwice { intid, owner } => {
                write!(f, "INTID {intid} already belongs to {owner}")
            }
            GicVersion { version } => {
                write!(f, "GIC version {version} is not supported (2 or 3)")
            }
            WrongGicField { version } => {
                write!(f, "this key does not belong to a version {version} GIC")
            }
            NotPpi { intid } => write!(f, "INTID {intid} is not a PPI (16..=31)"),
            NotSpi { intid } => write!(f, "INTID {intid} is not an SPI (32..=1019)"),
            NoCompatible => f.write_str("a device needs at least one compatible string"),
            ImageNotFound { path } => write!(
                f,
                "guest image {path} not found (guest images are built by scripts/build.sh)"
            ),
            BadElf { error } => write!(f, "not a loadable guest ELF: {error}"),
            LoadForElf => f.write_str(
                "`load` is for raw images; an ELF is loaded at its segments' physical addresses",
            ),
            RawImageWithoutLoad => {
                f.write_str("a raw (non-ELF) image needs `load`, the IPA its bytes go to")
            }
            RawImageWithoutEntry => {
                f.write_str("a raw (non-ELF) image needs `entry`, the IPA vCPU 0 starts at")
            }
            ImageOutsideMemory { range } => write!(
                f,
                "the image's bytes at {range} are not inside one memory region of the partition"
            ),
            ImageOverlapsDeviceTree { range, device_tree } => write!(
                f,
                "the image at {range} overlaps the device-tree area {device_tree} \
                 (device_tree_at, by default the last 64 KiB of the lowest memory region; \
                 or set device_tree = false)"
            ),
            EntryOutsideMemory { entry } => write!(
                f,
                "entry point {entry:#x} is not inside a memory region of the partition"
            ),
            RegionTooSmallForDeviceTree { size } => write!(
                f,
                "the lowest memory region ({size:#x} bytes) is smaller than the 64 KiB \
                 device-tree area kept at its top (or set device_tree = false)"
            ),
            DeviceTree { error } => write!(f, "cannot write the device tree: {error}"),
            BlobsTooLarge { total, hypervisor } => write!(
                f,
                "the image spans {total:#x} bytes, more than the {hypervisor:#x} bytes of RAM \
                 the hypervisor that embeds it may take (board [hypervisor])"
            ),
            HypervisorTooLarge { need, room } => write!(
                f,
                "the hypervisor needs {:#x} bytes of RAM for this set ({:#x} for its code, \
                 {:#x} for the images, initrds and device trees it embeds, {:#x} of heap), \
                 more than the {room:#x} bytes the board lets it take (its [hypervisor].size, \
                 or the RAM from [hypervisor].base to the end of its range)",
                need.total(),
                need.code,
                need.blobs,
                need.heap
            ),
            InitrdNotFound { path } => write!(
                f,
                "initrd {path} not found (scripts/linux.sh builds Linux's initramfs)"
            ),
            EmptyInitrd => f.write_str("the initrd file is empty"),
            InitrdOutsideMemory { range } => write!(
                f,
                "the initrd at {range} is not inside one memory region of the partition"
            ),
            DeviceTreeOutsideMemory { range } => write!(
                f,
                "the device-tree area {range} (64 KiB) is not inside one memory region of \
                 the partition"
            ),
            NeedsDeviceTree => f.write_str(
                "this goes into the partition's device tree, which device_tree = false turns off",
            ),
            Bootargs { problem } => f.write_str(problem),
            BigEndianImage => f.write_str(
                "the arm64 Image's header says it is big-endian (flags bit 0); partitions \
                 start little-endian",
            ),
            KernelMisplaced { load, text_offset } => write!(
                f,
                "an arm64 Image goes text_offset ({text_offset:#x}) above a 2 MiB aligned \
                 address; {load:#x} is not"
            ),
            KernelOutsideMemory { range, image_size } => write!(
                f,
                "the arm64 Image takes {range} (image_size {image_size:#x} in its header, its \
                 BSS included), not inside one memory region of the partition"
            ),
            KernelInitrdApart { kernel, initrd } => write!(
                f,
                "the initrd at {initrd} and the kernel at {kernel} must lie in one 1 GiB \
                 aligned window of at most 32 GiB (arm64 boot protocol)"
            ),
            Qemu { problem } => f.write_str(problem),
            NameTwice { name, what } => {
                write!(f, "name \"{name}\" is already used by an earlier {what}")
            }
            UnknownPartition { name } => {
                write!(f, "there is no partition \"{name}\" in this set")
            }
            NotMapped => f.write_str(
                "a shared region needs at least one [[shared.map]]: the partitions that see it",
            ),
            MappedTwice { region, first } => write!(
                f,
                "this partition already maps shared region \"{region}\" (map[{first}]); \
                 a partition sees a region once"
            ),
            AccessConflict { region, first } => write!(
                f,
                "this partition already maps shared region \"{region}\" (map[{first}]) with \
                 the other access: a region is read-only (\"ro\") or writable (\"rw\") for a \
                 partition, not both"
            ),
            DoorbellToItself => f.write_str(
                "a doorbell rings another partition (`from` and `to` are the same); within a \
                 partition, send an SGI",
            ),
            NoDoorbellPage { doorbell } => write!(
                f,
                "the partition rings doorbell \"{doorbell}\" and needs a doorbell_page: the \
                 guest address of its doorbell register page"
            ),
            NoSuchVcpu { vcpu, vcpus } => write!(
                f,
                "vCPU {vcpu} does not exist: the partition has {vcpus} (0..={})",
                vcpus.saturating_sub(1)
            ),
            NoRoomForShared { size } => write!(
                f,
                "no free board RAM holds {size:#x} bytes clear of the partitions, the \
                 hypervisor and the other regions (give `phys`, or free some RAM)"
            ),
        }
    }
}
