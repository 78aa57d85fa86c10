//! Every rule a configuration must satisfy, and the checked model that
//! comes out: [`Checked`], from which [`crate::dtb`] and [`crate::codegen`]
//! work without re-checking anything.
//!
//! The board is checked first, on its own. The partitions are then checked
//! in file order, each against the board and against the partitions before
//! it (which CPUs, physical memory, devices and interrupts they already
//! took), so an error is reported on the later of two conflicting entries,
//! naming the earlier one.

use std::collections::HashMap;
use std::fmt;

use bulkhead_abi::board::{
    GUEST_GICV2_CPU_INTERFACE, GUEST_GICV2_DISTRIBUTOR, GicConfig, PhysAddr,
};

use crate::arm64_image::ImageHeader;
use crate::budget::Need;
use crate::channels::{self, Doorbell, DoorbellEnd, SharedMapping, SharedRegion};
use crate::dtb;
use crate::elf::{self, Elf};
use crate::error::{ConfigError, ErrorKind};
use crate::model::{
    BoardFile, DeviceFile, GicFile, HypervisorFile, InitrdFile, PartitionFile, PartitionSetFile,
    QemuFile, RangeFile,
};

/// The translation granule: every range is a whole number of 4 KiB pages,
/// because stage-2 (and the hypervisor's own) tables map nothing smaller.
pub const PAGE: u64 = 0x1000;
/// The device-tree area: at `device_tree_at`, by default at the top of a
/// partition's lowest memory region.
pub const DEVICE_TREE_AREA: u64 = 0x1_0000;
/// GICv3 distributor window (GICD): 64 KiB.
pub const GICV3_DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// One GICv3 redistributor: RD_base and SGI_base frames, 64 KiB each.
pub const GICV3_REDISTRIBUTOR_STRIDE: u64 = 0x2_0000;
/// GICv2 distributor (GICD): one 4 KiB page of registers.
pub const GICV2_DISTRIBUTOR_SIZE: u64 = 0x1000;
/// GICv2 CPU interface (GICC, and GICV which poses as it): 8 KiB, GICC_DIR is at 0x1000.
pub const GICV2_CPU_INTERFACE_SIZE: u64 = 0x2000;
/// GICv2 virtual interface control (GICH): 4 KiB.
pub const GICV2_HYP_INTERFACE_SIZE: u64 = 0x1000;
/// GICH's per-CPU aliases: 0x200 bytes for each of up to eight CPUs.
pub const GICV2_HYP_ALIASES_SIZE: u64 = 0x1000;
/// The emulated PL011's interrupt in a partition (the hypervisor's value).
pub const PL011_INTID: u32 = bulkhead_abi::board::CONSOLE_PL011_INTID;
/// Longest partition name: it prefixes every console line.
pub const PARTITION_NAME_MAX: usize = 16;
/// Longest board or device name.
pub const BOARD_NAME_MAX: usize = 32;
/// MPIDR_EL1 affinity fields: Aff3 (39:32), Aff2..Aff0 (23:0).
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;
/// Most physical CPUs a board may have (and so vCPUs a partition may have,
/// one per CPU, within the shared limit).
pub use bulkhead_abi::limits::MAX_CPUS;
/// Most vCPUs (CPUs) one partition may have.
pub use bulkhead_abi::limits::MAX_VCPUS;
/// Where a partition's control page is when its configuration does not say:
/// the last page below 2 GiB, inside the range guest-lib maps as normal
/// memory and away from QEMU virt's RAM at 1 GiB for any partition under 1 GiB.
pub const DEFAULT_CONTROL_PAGE: u64 = 0x7fff_f000;
/// Most SPIs one partition may own.
pub use bulkhead_abi::limits::MAX_PARTITION_SPIS;
/// Guest addresses are below 2^39: stage 2 uses T0SZ = 25, starting at level 1
/// (`mm::pagetable::INPUT_BITS` in the hypervisor).
pub const IPA_LIMIT: u64 = 1 << 39;
/// Longest kernel command line: arm64 Linux's COMMAND_LINE_SIZE (2048)
/// less its terminating NUL.
pub const BOOTARGS_MAX: usize = 2047;
/// An initrd must lie with the kernel in a window this aligned...
const KERNEL_WINDOW_ALIGN: u64 = 1 << 30;
/// ... and at most this large (arm64 booting.rst).
const KERNEL_WINDOW_MAX: u64 = 32 << 30;

/// A range `[base, base + size)` that does not wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Range {
    /// `None` when `base + size` does not fit in 64 bits.
    pub fn new(base: u64, size: u64) -> Option<Range> {
        base.checked_add(size).map(|_| Range { base, size })
    }

    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether the two share at least one address.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// Whether `addr` is inside.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.size
    }

    /// Whether `inner` lies wholly inside `self` (an empty `inner` at `self.end()` does not).
    pub fn encloses(&self, inner: &Range) -> bool {
        inner.base >= self.base && inner.end() <= self.end() && inner.base < self.end()
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.base, self.end())
    }
}

/// The checked board.
#[derive(Debug, Clone)]
pub struct Board {
    /// Its name.
    pub name: String,
    /// RAM, ascending, disjoint.
    pub ram: Vec<Range>,
    /// Where the RAM the hypervisor keeps starts, and how much it may take.
    pub hypervisor: HypervisorRam,
    /// The hypervisor's PL011.
    pub uart: Range,
    /// Its interrupt (an SPI no device has), if console input is wired.
    pub uart_interrupt: Option<u32>,
    /// The interrupt controller.
    pub gic: GicConfig,
    /// MPIDR of each physical CPU, by CPU index.
    pub cpus: Vec<u64>,
    /// Each CPU's spin-table release address, by CPU index (`None`: PSCI).
    pub spin_tables: Vec<Option<u64>>,
    /// The BCM2835 power manager that powers the board off, if not PSCI.
    pub bcm2835_watchdog: Option<u64>,
    /// Devices partitions may take.
    pub devices: Vec<Device>,
    /// How QEMU emulates it, if it does.
    pub qemu: Option<Qemu>,
}

/// The checked `[hypervisor]`. What the hypervisor keeps is sized with the
/// partition set ([`Checked::hypervisor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HypervisorRam {
    /// Its first address, inside a RAM range.
    pub base: u64,
    /// `[hypervisor].size` when the board fixes it (then the hypervisor
    /// keeps all of it).
    pub size: Option<u64>,
    /// The most it may take: the fixed size, or else the RAM from `base`
    /// to the end of its range.
    pub room: u64,
}

/// The checked `[qemu]`; [`crate::qemu::Machine`] makes the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    /// `-M`: the machine type and its options, as written.
    pub machine: String,
    /// `-cpu`.
    pub cpu: String,
    /// `-m` when fixed by the machine, as written.
    pub memory: Option<String>,
    /// `-dtb`: a path in Debian's arm64 kernel package (`dtbs/...`).
    pub dtb: Option<String>,
}

/// Where QEMU's `virt` machine puts RAM (hw/arm/virt.c, `VIRT_MEM`).
pub const QEMU_VIRT_RAM_BASE: u64 = 0x4000_0000;

/// The GIC's windows, as the checks, the device trees and the map need
/// them. [`GicConfig`] is shared with the hypervisor (`bulkhead_abi::board`),
/// so these helpers are a trait here rather than methods of it.
pub trait GicWindows {
    /// The GIC's physical windows on a board with `cpus` CPUs, all the
    /// hypervisor's: (its key in `[gic]`, base, size). Unchecked until
    /// [`check_board`] has checked them (then none wraps).
    fn board_windows(&self, cpus: usize) -> Vec<(&'static str, u64, u64)>;

    /// The GIC windows a partition with `vcpus` vCPUs sees: at the board's
    /// addresses on a GICv3, at `GUEST_GICV2_*` on a GICv2 (the hypervisor
    /// emulates the distributor and maps the GICV frame there).
    /// Ranges are unchecked: [`check_board`] made sure they do not wrap.
    fn guest_windows(&self, vcpus: usize) -> Vec<(&'static str, Range)>;
}

impl GicWindows for GicConfig {
    fn board_windows(&self, cpus: usize) -> Vec<(&'static str, u64, u64)> {
        match *self {
            GicConfig::V3 {
                distributor,
                redistributor,
                ..
            } => vec![
                ("distributor", distributor.0, GICV3_DISTRIBUTOR_SIZE),
                (
                    "redistributor",
                    redistributor.0,
                    cpus as u64 * GICV3_REDISTRIBUTOR_STRIDE,
                ),
            ],
            GicConfig::V2 {
                distributor,
                cpu_interface,
                hyp_interface,
                virtual_cpu_interface,
                hyp_interface_aliases,
                ..
            } => [
                ("distributor", distributor.0, GICV2_DISTRIBUTOR_SIZE),
                ("cpu_interface", cpu_interface.0, GICV2_CPU_INTERFACE_SIZE),
                ("hyp_interface", hyp_interface.0, GICV2_HYP_INTERFACE_SIZE),
                (
                    "virtual_cpu_interface",
                    virtual_cpu_interface.0,
                    GICV2_CPU_INTERFACE_SIZE,
                ),
            ]
            .into_iter()
            .chain(
                hyp_interface_aliases
                    .map(|a| ("hyp_interface_aliases", a.0, GICV2_HYP_ALIASES_SIZE)),
            )
            .collect(),
        }
    }

    fn guest_windows(&self, vcpus: usize) -> Vec<(&'static str, Range)> {
        match *self {
            GicConfig::V3 {
                distributor,
                redistributor,
                ..
            } => vec![
                (
                    "the GIC distributor",
                    Range {
                        base: distributor.0,
                        size: GICV3_DISTRIBUTOR_SIZE,
                    },
                ),
                (
                    "the GIC redistributors",
                    Range {
                        base: redistributor.0,
                        size: vcpus as u64 * GICV3_REDISTRIBUTOR_STRIDE,
                    },
                ),
            ],
            // QEMU virt's addresses on every GICv2 board.
            GicConfig::V2 { .. } => vec![
                (
                    "the GIC distributor",
                    Range {
                        base: GUEST_GICV2_DISTRIBUTOR.0,
                        size: GICV2_DISTRIBUTOR_SIZE,
                    },
                ),
                (
                    "the GIC CPU interface",
                    Range {
                        base: GUEST_GICV2_CPU_INTERFACE.0,
                        size: GICV2_CPU_INTERFACE_SIZE,
                    },
                ),
            ],
        }
    }
}

/// A board device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its name in the board file.
    pub name: String,
    /// Device-tree compatible strings.
    pub compatible: Vec<String>,
    /// Its MMIO, physical; a partition sees it at the same IPA.
    pub range: Range,
    /// The SPIs it raises.
    pub interrupts: Vec<u32>,
    /// They are edge-triggered (else level).
    pub edge: bool,
}

/// A region of partition RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Guest address.
    pub ipa: u64,
    /// Machine address.
    pub phys: u64,
    /// Length.
    pub size: u64,
}

impl MemoryRegion {
    /// The IPA range.
    pub fn ipa_range(&self) -> Range {
        Range {
            base: self.ipa,
            size: self.size,
        }
    }
}

/// Bytes to copy into a partition at `ipa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Guest address of the first byte.
    pub ipa: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A checked partition, ready for code generation.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Its name.
    pub name: String,
    /// Physical CPU of each vCPU.
    pub cpus: Vec<usize>,
    /// Virtual MPIDR of each vCPU: vCPU n has Aff0 = n.
    pub vmpidrs: Vec<u64>,
    /// RAM, ascending by IPA.
    pub memory: Vec<MemoryRegion>,
    /// Passthrough devices, mapped at IPA = physical address.
    pub devices: Vec<Device>,
    /// The loadable image.
    pub image: Blob,
    /// The image's arm64 Image header, if it is a raw image with one.
    pub kernel: Option<ImageHeader>,
    /// Where vCPU 0 starts.
    pub entry: u64,
    /// The initial RAM disk, if any.
    pub initrd: Option<Blob>,
    /// The kernel command line (`/chosen/bootargs`), if any.
    pub bootargs: Option<String>,
    /// The generated device tree, if the partition wants one.
    pub device_tree: Option<Blob>,
    /// The IPA of its emulated PL011.
    pub console_pl011: Option<u64>,
    /// The IPA of its control page.
    pub control_page: u64,
    /// What a fault does.
    pub on_fault: bulkhead_abi::board::OnFault,
    /// The shared regions it maps, in file order.
    pub shared: Vec<SharedMapping>,
    /// The IPA of its doorbell register page, if it has one.
    pub doorbell_page: Option<u64>,
    /// The doorbells it rings, by channel number.
    pub rings: Vec<DoorbellEnd>,
    /// The doorbells that interrupt it.
    pub receives: Vec<DoorbellEnd>,
}

impl Partition {
    /// Name of the image blob's file in OUT_DIR.
    pub fn image_file(&self) -> String {
        format!("{}.img", self.name)
    }

    /// Name of the device-tree blob's file in OUT_DIR.
    pub fn device_tree_file(&self) -> String {
        format!("{}.dtb", self.name)
    }

    /// Name of the initrd blob's file in OUT_DIR.
    pub fn initrd_file(&self) -> String {
        format!("{}.initrd", self.name)
    }
}

/// A whole checked configuration.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The partition set's file, as shown to the user.
    pub source: String,
    /// The board file, as shown to the user.
    pub board_source: String,
    /// The board.
    pub board: Board,
    /// The partitions, in file order.
    pub partitions: Vec<Partition>,
    /// The shared regions, in file order, each placed.
    pub shared: Vec<SharedRegion>,
    /// The doorbells, in file order.
    pub doorbells: Vec<Doorbell>,
    /// The RAM the hypervisor keeps: from the board's `[hypervisor].base`,
    /// its fixed size or else [`Need::total`].
    pub hypervisor: Range,
    /// What the hypervisor's RAM must hold for these partitions.
    pub need: Need,
}

/// Where errors found now are reported.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) partition: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    fn file(file: &'a str) -> Self {
        Ctx {
            file,
            partition: None,
        }
    }

    pub(crate) fn err(&self, field: impl AsRef<str>, kind: ErrorKind) -> ConfigError {
        ConfigError::new(self.file, None, self.partition, Some(field.as_ref()), kind)
    }

    /// A range from the file: non-empty, 4 KiB aligned, not wrapping.
    /// `base_field` is the key of the base (`ipa`, `base`...), `size_field`
    /// the key of the size.
    pub(crate) fn range(
        &self,
        base_field: &str,
        base: u64,
        size_field: &str,
        size: u64,
    ) -> Result<Range, ConfigError> {
        if size == 0 {
            return Err(self.err(size_field, ErrorKind::ZeroSize));
        }
        self.aligned(base_field, base)?;
        self.aligned(size_field, size)?;
        Range::new(base, size).ok_or_else(|| self.err(base_field, ErrorKind::Wraps { base, size }))
    }

    pub(crate) fn aligned(&self, field: &str, value: u64) -> Result<(), ConfigError> {
        if !value.is_multiple_of(PAGE) {
            return Err(self.err(field, ErrorKind::Misaligned { value, align: PAGE }));
        }
        Ok(())
    }

    pub(crate) fn name(&self, field: &str, name: &str, max: usize) -> Result<(), ConfigError> {
        let ok = (1..=max).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            let rule = if max == PARTITION_NAME_MAX {
                "use 1 to 16 characters of a-z, 0-9 and '-'"
            } else {
                "use 1 to 32 characters of a-z, 0-9 and '-'"
            };
            return Err(self.err(
                field,
                ErrorKind::BadName {
                    name: name.to_owned(),
                    rule,
                },
            ));
        }
        Ok(())
    }
}

fn range_file(ctx: &Ctx<'_>, field: &str, r: &RangeFile) -> Result<Range, ConfigError> {
    ctx.range(
        &format!("{field}.base"),
        r.base,
        &format!("{field}.size"),
        r.size,
    )
}

/// Checks that `name` may be used to find a board file (`boards/<name>/`).
pub fn check_board_name(name: &str, file: &str) -> Result<(), ConfigError> {
    Ctx::file(file).name("board", name, BOARD_NAME_MAX)
}

/// Checks a board file.
pub fn check_board(b: &BoardFile, file: &str) -> Result<Board, ConfigError> {
    let ctx = Ctx::file(file);
    ctx.name("name", &b.name, BOARD_NAME_MAX)?;

    if b.ram.is_empty() {
        return Err(ctx.err("ram", ErrorKind::NoMemory));
    }
    let mut ram: Vec<Range> = Vec::new();
    for (i, r) in b.ram.iter().enumerate() {
        let range = range_file(&ctx, &format!("ram[{i}]"), r)?;
        if let Some((j, other)) = ram.iter().enumerate().find(|(_, o)| o.overlaps(&range)) {
            return Err(ctx.err(
                format!("ram[{i}]"),
                ErrorKind::Overlap {
                    range,
                    other: format!("ram[{j}]"),
                    other_range: *other,
                },
            ));
        }
        ram.push(range);
    }
    ram.sort_by_key(|r| r.base);

    let hypervisor = check_hypervisor(&ctx, &b.hypervisor, &ram)?;
    let uart = ctx.range("uart.base", b.uart.base, "uart.size", b.uart.size)?;
    let gic = check_gic(&ctx, &b.gic)?;

    if b.cpu.is_empty() {
        return Err(ctx.err("cpu", ErrorKind::NoCpus));
    }
    if b.cpu.len() > MAX_CPUS {
        let (count, max) = (b.cpu.len(), MAX_CPUS);
        return Err(ctx.err("cpu", ErrorKind::TooManyCpus { count, max }));
    }
    let mut cpus: Vec<u64> = Vec::new();
    let mut spin_tables = Vec::new();
    for (i, c) in b.cpu.iter().enumerate() {
        let field = format!("cpu[{i}].mpidr");
        if c.mpidr & !MPIDR_AFFINITY_MASK != 0 {
            return Err(ctx.err(field, ErrorKind::BadMpidr { mpidr: c.mpidr }));
        }
        if cpus.contains(&c.mpidr) {
            return Err(ctx.err(field, ErrorKind::DuplicateMpidr { mpidr: c.mpidr }));
        }
        cpus.push(c.mpidr);
        if let Some(address) = c.spin_table {
            // A 64-bit word in RAM, clear of the hypervisor's own RAM (the
            // partitions' memory is checked against it with the set).
            let word = Range::new(address, 8).filter(|_| address % 8 == 0);
            let in_ram = word.is_some_and(|w| ram.iter().any(|r| r.encloses(&w)));
            let clear = word.is_some_and(|w| {
                !w.overlaps(&Range {
                    base: hypervisor.base,
                    size: hypervisor.room,
                })
            });
            if !in_ram || !clear {
                return Err(ctx.err(
                    format!("cpu[{i}].spin_table"),
                    ErrorKind::SpinTable { address },
                ));
            }
        }
        spin_tables.push(c.spin_table);
    }
    if spin_tables.iter().any(Option::is_some) && spin_tables.iter().any(Option::is_none) {
        let i = spin_tables.iter().position(Option::is_none).unwrap_or(0);
        return Err(ctx.err(format!("cpu[{i}].spin_table"), ErrorKind::MissingField));
    }

    // Every MMIO window of the board, to keep them apart from RAM and each other.
    let mut mmio: Vec<(String, Range)> = vec![("uart".to_owned(), uart)];
    let bcm2835_watchdog = b.power.as_ref().and_then(|p| p.bcm2835_watchdog);
    if let Some(base) = bcm2835_watchdog {
        let range = ctx.range(
            "power.bcm2835_watchdog",
            base,
            "power.bcm2835_watchdog",
            PAGE,
        )?;
        mmio.push(("power.bcm2835_watchdog".to_owned(), range));
    }
    for (what, range) in board_gic_windows(&ctx, &gic, cpus.len())? {
        mmio.push((format!("gic.{what}"), range));
    }
    let mut devices = Vec::new();
    for (i, d) in b.device.iter().enumerate() {
        let device = check_device(&ctx, i, d, &devices)?;
        mmio.push((format!("device[{i}]"), device.range));
        devices.push(device);
    }
    for (j, (field, range)) in mmio.iter().enumerate() {
        let earlier = mmio[..j].iter().map(|(f, r)| (f.clone(), *r));
        let ram_ranges = ram
            .iter()
            .enumerate()
            .map(|(k, r)| (format!("ram[{k}]"), *r));
        if let Some((other, other_range)) =
            ram_ranges.chain(earlier).find(|(_, r)| r.overlaps(range))
        {
            return Err(ctx.err(
                field.clone(),
                ErrorKind::Overlap {
                    range: *range,
                    other,
                    other_range,
                },
            ));
        }
    }

    if let Some(intid) = b.uart.interrupt {
        if !(32..1020).contains(&intid) {
            return Err(ctx.err("uart.interrupt", ErrorKind::NotSpi { intid }));
        }
        if let Some(d) = devices.iter().find(|d| d.interrupts.contains(&intid)) {
            let owner = format!("device \"{}\"", d.name);
            return Err(ctx.err("uart.interrupt", ErrorKind::InterruptTwice { intid, owner }));
        }
    }

    let qemu = match &b.qemu {
        Some(q) => Some(check_qemu(&ctx, q, &gic, &ram)?),
        None => None,
    };

    Ok(Board {
        name: b.name.clone(),
        ram,
        hypervisor,
        uart,
        uart_interrupt: b.uart.interrupt,
        gic,
        cpus,
        spin_tables,
        bcm2835_watchdog,
        devices,
        qemu,
    })
}

/// Checks `[hypervisor]`: a base inside RAM, and a fixed size, if given,
/// that keeps it there.
fn check_hypervisor(
    ctx: &Ctx<'_>,
    h: &HypervisorFile,
    ram: &[Range],
) -> Result<HypervisorRam, ConfigError> {
    let range = match h.size {
        Some(size) => ctx.range("hypervisor.base", h.base, "hypervisor.size", size)?,
        None => {
            ctx.aligned("hypervisor.base", h.base)?;
            Range::new(h.base, PAGE).ok_or_else(|| {
                let (base, size) = (h.base, PAGE);
                ctx.err("hypervisor.base", ErrorKind::Wraps { base, size })
            })?
        }
    };
    let Some(holder) = ram.iter().find(|r| r.encloses(&range)) else {
        return Err(ctx.err("hypervisor", ErrorKind::OutsideRam { range }));
    };
    Ok(HypervisorRam {
        base: h.base,
        size: h.size,
        room: h.size.unwrap_or(holder.end() - h.base),
    })
}

/// Checks `[qemu]` as far as the board can tell: one word each, and for
/// QEMU's `virt` machine, what the hypervisor needs of it and what the
/// rest of the board already says (its GIC version, its RAM at 1 GiB).
fn check_qemu(
    ctx: &Ctx<'_>,
    q: &QemuFile,
    gic: &GicConfig,
    ram: &[Range],
) -> Result<Qemu, ConfigError> {
    let problem = |field: &str, problem: String| ctx.err(field, ErrorKind::Qemu { problem });
    for (field, value) in [("qemu.machine", &q.machine), ("qemu.cpu", &q.cpu)] {
        if value.is_empty() || value.contains(char::is_whitespace) || value.starts_with(',') {
            return Err(problem(
                field,
                format!("{value:?} is not one QEMU option value (no spaces, not empty)"),
            ));
        }
    }
    if let Some(memory) = &q.memory
        && (memory.is_empty() || memory.contains(char::is_whitespace))
    {
        return Err(problem(
            "qemu.memory",
            format!("{memory:?} is not one -m value"),
        ));
    }
    if let Some(dtb) = &q.dtb
        && (!dtb.ends_with(".dtb") || dtb.starts_with('/') || dtb.split('/').any(|c| c == ".."))
    {
        return Err(problem(
            "qemu.dtb",
            format!(
                "{dtb:?} is not a .dtb path inside a kernel package's dtbs (like broadcom/bcm2711-rpi-4-b.dtb)"
            ),
        ));
    }
    let mut options = q.machine.split(',');
    let machine_type = options.next().unwrap_or_default();
    if machine_type == "virt" {
        let options: Vec<&str> = options.collect();
        if !options.contains(&"virtualization=on") {
            return Err(problem(
                "qemu.machine",
                "QEMU's virt machine starts the hypervisor at EL2 only with virtualization=on"
                    .to_owned(),
            ));
        }
        let version = gic.version();
        if !options.contains(&format!("gic-version={version}").as_str()) {
            return Err(problem(
                "qemu.machine",
                format!("needs gic-version={version}, the board's gic.version"),
            ));
        }
        if !matches!(ram, [only] if only.base == QEMU_VIRT_RAM_BASE) {
            return Err(problem(
                "ram",
                format!(
                    "QEMU's virt machine has one RAM range, at {QEMU_VIRT_RAM_BASE:#x} (its size is -m)"
                ),
            ));
        }
    }
    Ok(Qemu {
        machine: q.machine.clone(),
        cpu: q.cpu.clone(),
        memory: q.memory.clone(),
        dtb: q.dtb.clone(),
    })
}

fn check_gic(ctx: &Ctx<'_>, g: &GicFile) -> Result<GicConfig, ConfigError> {
    let v3_only = [("gic.redistributor", g.redistributor.is_some())];
    let v2_only = [
        ("gic.cpu_interface", g.cpu_interface.is_some()),
        ("gic.hyp_interface", g.hyp_interface.is_some()),
        (
            "gic.virtual_cpu_interface",
            g.virtual_cpu_interface.is_some(),
        ),
        (
            "gic.hyp_interface_aliases",
            g.hyp_interface_aliases.is_some(),
        ),
    ];
    let foreign: &[(&str, bool)] = match g.version {
        3 => &v2_only,
        2 => &v3_only,
        version => return Err(ctx.err("gic.version", ErrorKind::GicVersion { version })),
    };
    if let Some((field, _)) = foreign.iter().find(|(_, present)| *present) {
        return Err(ctx.err(*field, ErrorKind::WrongGicField { version: g.version }));
    }
    let required = |field: &str, value: Option<u64>| {
        value
            .map(PhysAddr)
            .ok_or_else(|| ctx.err(field, ErrorKind::MissingField))
    };
    if !(16..32).contains(&g.maintenance_intid) {
        return Err(ctx.err(
            "gic.maintenance_intid",
            ErrorKind::NotPpi {
                intid: g.maintenance_intid,
            },
        ));
    }
    Ok(if g.version == 3 {
        GicConfig::V3 {
            distributor: PhysAddr(g.distributor),
            redistributor: required("gic.redistributor", g.redistributor)?,
            maintenance_intid: g.maintenance_intid,
        }
    } else {
        GicConfig::V2 {
            distributor: PhysAddr(g.distributor),
            cpu_interface: required("gic.cpu_interface", g.cpu_interface)?,
            hyp_interface: required("gic.hyp_interface", g.hyp_interface)?,
            virtual_cpu_interface: required("gic.virtual_cpu_interface", g.virtual_cpu_interface)?,
            hyp_interface_aliases: g.hyp_interface_aliases.map(PhysAddr),
            maintenance_intid: g.maintenance_intid,
        }
    })
}

/// The GIC's physical windows, checked for alignment and wrapping.
fn board_gic_windows(
    ctx: &Ctx<'_>,
    gic: &GicConfig,
    cpus: usize,
) -> Result<Vec<(&'static str, Range)>, ConfigError> {
    gic.board_windows(cpus)
        .into_iter()
        .map(|(what, base, size)| {
            let field = format!("gic.{what}");
            ctx.range(&field, base, &field, size).map(|r| (what, r))
        })
        .collect()
}

fn check_device(
    ctx: &Ctx<'_>,
    i: usize,
    d: &DeviceFile,
    earlier: &[Device],
) -> Result<Device, ConfigError> {
    let field = |key: &str| format!("device[{i}].{key}");
    ctx.name(&field("name"), &d.name, BOARD_NAME_MAX)?;
    if earlier.iter().any(|e| e.name == d.name) {
        return Err(ctx.err(
            field("name"),
            ErrorKind::DuplicateName {
                name: d.name.clone(),
            },
        ));
    }
    if d.compatible.is_empty() || d.compatible.iter().any(String::is_empty) {
        return Err(ctx.err(field("compatible"), ErrorKind::NoCompatible));
    }
    let range = ctx.range(&field("base"), d.base, &field("size"), d.size)?;
    for (k, &intid) in d.interrupts.iter().enumerate() {
        if !(32..1020).contains(&intid) {
            return Err(ctx.err(
                format!("device[{i}].interrupts[{k}]"),
                ErrorKind::NotSpi { intid },
            ));
        }
    }
    Ok(Device {
        name: d.name.clone(),
        compatible: d.compatible.clone(),
        range,
        interrupts: d.interrupts.clone(),
        edge: d.trigger == crate::model::Trigger::Edge,
    })
}

/// What earlier partitions already own.
#[derive(Default)]
struct Claims {
    /// CPU index → partition.
    cpus: HashMap<usize, String>,
    /// Physical memory: (partition, memory index in its file, range).
    memory: Vec<(String, usize, Range)>,
    /// Device name → partition.
    devices: HashMap<String, String>,
    /// INTID → (partition, device).
    interrupts: HashMap<u32, (String, String)>,
}

/// Reads a guest image, or an initrd, by the name given in the partition
/// set: the bytes, or the error to report on the partition's `image` (or
/// `initrd.file`) field (typically [`ErrorKind::ImageNotFound`]).
pub type ImageLoader<'a> = dyn Fn(&str) -> Result<Vec<u8>, ErrorKind> + 'a;

/// What [`check_partitions`] returns: the partitions (each with its
/// device tree and its ends of the channels), the shared regions (not yet
/// placed where the set gives no `phys`) and the doorbells.
pub type CheckedPartitions = (Vec<Partition>, Vec<SharedRegion>, Vec<Doorbell>);

/// Checks a partition set against a checked board; `file` names the set in errors.
pub fn check_partitions(
    set: &PartitionSetFile,
    file: &str,
    board: &Board,
    images: &ImageLoader<'_>,
) -> Result<CheckedPartitions, ConfigError> {
    let ctx = Ctx::file(file);
    if set.board != board.name {
        return Err(ctx.err(
            "board",
            ErrorKind::BoardMismatch {
                wanted: set.board.clone(),
                found: board.name.clone(),
            },
        ));
    }
    if set.partition.is_empty() {
        return Err(ctx.err("partition", ErrorKind::NoPartitions));
    }
    let shared = channels::declare(set, file)?;
    let mut claims = Claims::default();
    let mut partitions: Vec<Partition> = Vec::new();
    let mut device_tree_areas = Vec::new();
    for p in &set.partition {
        // Name errors are reported before the partition has a trusted name.
        ctx.name(
            &format!("partition[{}].name", partitions.len()),
            &p.name,
            PARTITION_NAME_MAX,
        )?;
        let pctx = Ctx {
            file,
            partition: Some(&p.name),
        };
        if partitions.iter().any(|q| q.name == p.name) {
            return Err(pctx.err(
                "name",
                ErrorKind::DuplicateName {
                    name: p.name.clone(),
                },
            ));
        }
        let windows = channels::windows_of(&shared, partitions.len());
        let (partition, area) = check_partition(&pctx, p, board, &mut claims, &windows, images)?;
        partitions.push(partition);
        device_tree_areas.push(area);
    }
    let doorbells = channels::doorbells(set, file, &partitions)?;
    channels::attach(&mut partitions, &shared, &doorbells);
    // The device trees last: they describe the channels too.
    for (partition, area) in partitions.iter_mut().zip(device_tree_areas) {
        let Some(area) = area else { continue };
        let pctx = Ctx {
            file,
            partition: Some(&partition.name),
        };
        let bytes = dtb::device_tree(board, partition)
            .map_err(|error| pctx.err("device_tree", ErrorKind::DeviceTree { error }))?;
        if bytes.len() as u64 > area.size {
            let error = vm_fdt::Error::TotalSizeTooLarge;
            return Err(pctx.err("device_tree", ErrorKind::DeviceTree { error }));
        }
        partition.device_tree = Some(Blob {
            ipa: area.base,
            bytes,
        });
    }
    Ok((partitions, shared, doorbells))
}

/// Sizes the hypervisor's RAM for the checked `partitions` of `set`
/// ([`crate::budget`]) and checks that it fits where the board lets it
/// grow and that no partition's memory, and no `shared` region the set
/// places, is in it. Returns the range and
/// what it holds.
pub fn size_hypervisor(
    set: &PartitionSetFile,
    file: &str,
    board: &Board,
    partitions: &[Partition],
    shared: &[SharedRegion],
) -> Result<(Range, Need), ConfigError> {
    let need = Need::of(&board.gic, partitions);
    if need.total() > board.hypervisor.room {
        let kind = ErrorKind::HypervisorTooLarge {
            need,
            room: board.hypervisor.room,
        };
        return Err(ConfigError::new(file, None, None, None, kind));
    }
    let hypervisor = Range {
        base: board.hypervisor.base,
        size: board.hypervisor.size.unwrap_or(need.total()),
    };
    for p in &set.partition {
        let ctx = Ctx {
            file,
            partition: Some(&p.name),
        };
        for (i, m) in p.memory.iter().enumerate() {
            // Checked: the range does not wrap.
            let phys = Range {
                base: m.phys,
                size: m.size,
            };
            clear_of_hypervisor(&ctx, &format!("memory[{i}].phys"), phys, board, hypervisor)?;
        }
    }
    let ctx = Ctx::file(file);
    for (i, r) in shared.iter().enumerate() {
        let Some(base) = r.phys else { continue };
        // Checked: the range does not wrap.
        let range = Range { base, size: r.size };
        clear_of_hypervisor(&ctx, &format!("shared[{i}].phys"), range, board, hypervisor)?;
    }
    Ok((hypervisor, need))
}

/// Checks that machine memory a partition gets (its own `range`, at
/// `field`) is clear of the hypervisor's RAM and of the firmware's spin
/// tables: a partition writing there could start a CPU of another
/// partition's at its own code.
fn clear_of_hypervisor(
    ctx: &Ctx<'_>,
    field: &str,
    range: Range,
    board: &Board,
    hypervisor: Range,
) -> Result<(), ConfigError> {
    if range.overlaps(&hypervisor) {
        let kind = ErrorKind::OverlapsHypervisor { range, hypervisor };
        return Err(ctx.err(field, kind));
    }
    let spin_table = board
        .spin_tables
        .iter()
        .flatten()
        .copied()
        .find(|&a| Range::new(a, 8).is_some_and(|w| w.overlaps(&range)));
    if let Some(address) = spin_table {
        return Err(ctx.err(field, ErrorKind::OverlapsSpinTable { range, address }));
    }
    Ok(())
}

/// Checks one partition; its device tree is written once the channels are
/// known: returned is the area it goes to.
fn check_partition(
    ctx: &Ctx<'_>,
    p: &PartitionFile,
    board: &Board,
    claims: &mut Claims,
    shared: &[(String, String, Range)],
    images: &ImageLoader<'_>,
) -> Result<(Partition, Option<Range>), ConfigError> {
    let name = &p.name;

    // CPUs.
    if p.cpus.is_empty() {
        return Err(ctx.err("cpus", ErrorKind::NoCpus));
    }
    if p.cpus.len() > MAX_VCPUS {
        let (count, max) = (p.cpus.len(), MAX_VCPUS);
        return Err(ctx.err("cpus", ErrorKind::TooManyCpus { count, max }));
    }
    for (i, &cpu) in p.cpus.iter().enumerate() {
        let field = format!("cpus[{i}]");
        if cpu >= board.cpus.len() {
            return Err(ctx.err(
                field,
                ErrorKind::UnknownCpu {
                    cpu,
                    board_cpus: board.cpus.len(),
                },
            ));
        }
        if p.cpus[..i].contains(&cpu) {
            return Err(ctx.err(field, ErrorKind::CpuTwice { cpu, owner: None }));
        }
        if let Some(owner) = claims.cpus.get(&cpu) {
            let owner = Some(owner.clone());
            return Err(ctx.err(field, ErrorKind::CpuTwice { cpu, owner }));
        }
    }
    for &cpu in &p.cpus {
        claims.cpus.insert(cpu, name.clone());
    }

    // Memory, physical side.
    if p.memory.is_empty() {
        return Err(ctx.err("memory", ErrorKind::NoMemory));
    }
    let mut memory = Vec::new();
    for (i, m) in p.memory.iter().enumerate() {
        let field = |key: &str| format!("memory[{i}].{key}");
        let ipa = ctx.range(&field("ipa"), m.ipa, &field("size"), m.size)?;
        let phys = ctx.range(&field("phys"), m.phys, &field("size"), m.size)?;
        if !board.ram.iter().any(|r| r.encloses(&phys)) {
            return Err(ctx.err(field("phys"), ErrorKind::OutsideRam { range: phys }));
        }
        if let Some((owner, j, other_range)) =
            claims.memory.iter().find(|(_, _, r)| r.overlaps(&phys))
        {
            let other = if owner == name {
                format!("memory[{j}]")
            } else {
                format!("partition \"{owner}\" memory[{j}]")
            };
            return Err(ctx.err(
                field("phys"),
                ErrorKind::Overlap {
                    range: phys,
                    other,
                    other_range: *other_range,
                },
            ));
        }
        claims.memory.push((name.clone(), i, phys));
        memory.push((i, ipa));
    }

    // Devices and their interrupts.
    let mut devices: Vec<Device> = Vec::new();
    for (j, dev_name) in p.devices.iter().enumerate() {
        let field = format!("devices[{j}]");
        let Some(device) = board.devices.iter().find(|d| &d.name == dev_name) else {
            return Err(ctx.err(
                field,
                ErrorKind::UnknownDevice {
                    name: dev_name.clone(),
                },
            ));
        };
        if devices.iter().any(|d| &d.name == dev_name) {
            return Err(ctx.err(
                field,
                ErrorKind::DeviceTwice {
                    name: dev_name.clone(),
                    owner: None,
                },
            ));
        }
        if let Some(owner) = claims.devices.get(dev_name) {
            let owner = Some(owner.clone());
            return Err(ctx.err(
                field,
                ErrorKind::DeviceTwice {
                    name: dev_name.clone(),
                    owner,
                },
            ));
        }
        for &intid in &device.interrupts {
            if p.console_pl011.is_some() && intid == PL011_INTID {
                let owner = "the partition's emulated PL011 (console_pl011)".to_owned();
                return Err(ctx.err(field, ErrorKind::InterruptTwice { intid, owner }));
            }
            match claims.interrupts.get(&intid) {
                Some((owner, other)) if owner != name => {
                    let owner = format!("device \"{other}\" of partition \"{owner}\"");
                    return Err(ctx.err(field, ErrorKind::InterruptTwice { intid, owner }));
                }
                _ => {}
            }
        }
        for &intid in &device.interrupts {
            claims
                .interrupts
                .insert(intid, (name.clone(), dev_name.clone()));
        }
        claims.devices.insert(dev_name.clone(), name.clone());
        devices.push(device.clone());
    }
    // The emulated PL011's SPI is one of the partition's too.
    let interrupts = devices.iter().map(|d| d.interrupts.len()).sum::<usize>()
        + usize::from(p.console_pl011.is_some());
    if interrupts > MAX_PARTITION_SPIS {
        return Err(ctx.err(
            "devices",
            ErrorKind::TooManyInterrupts {
                count: interrupts,
                max: MAX_PARTITION_SPIS,
            },
        ));
    }

    if let Some(base) = p.console_pl011 {
        ctx.aligned("console_pl011", base)?;
    }
    if let Some(base) = p.control_page {
        ctx.aligned("control_page", base)?;
    }
    if let Some(base) = p.doorbell_page {
        ctx.aligned("doorbell_page", base)?;
    }

    check_ipa_map(ctx, p, board, &memory, &devices, shared)?;

    let mut memory_sorted: Vec<MemoryRegion> = p
        .memory
        .iter()
        .map(|m| MemoryRegion {
            ipa: m.ipa,
            phys: m.phys,
            size: m.size,
        })
        .collect();
    memory_sorted.sort_by_key(|m| m.ipa);

    let device_tree_area = device_tree_area(ctx, p, &memory, &memory_sorted)?;
    if let Some(bootargs) = &p.bootargs {
        check_bootargs(ctx, bootargs)?;
    }

    let loaded = load_image(ctx, p, board, &memory_sorted, device_tree_area, images)?;
    let initrd = match &p.initrd {
        Some(initrd) => Some(load_initrd(
            ctx,
            initrd,
            &memory_sorted,
            device_tree_area,
            &loaded,
            images,
        )?),
        None => None,
    };

    let vcpus = p.cpus.len();
    let partition = Partition {
        name: name.clone(),
        cpus: p.cpus.clone(),
        vmpidrs: (0..vcpus as u64).collect(),
        memory: memory_sorted,
        devices,
        image: loaded.blob,
        kernel: loaded.kernel,
        entry: loaded.entry,
        initrd,
        bootargs: p.bootargs.clone(),
        device_tree: None,
        console_pl011: p.console_pl011,
        control_page: p.control_page.unwrap_or(DEFAULT_CONTROL_PAGE),
        on_fault: p.on_fault.into(),
        shared: Vec::new(),
        doorbell_page: p.doorbell_page,
        rings: Vec::new(),
        receives: Vec::new(),
    };
    Ok((partition, device_tree_area))
}

/// The partition's device-tree area: [`DEVICE_TREE_AREA`] bytes at
/// `device_tree_at`, by default at the top of the lowest memory region;
/// `None` with `device_tree = false` (which refuses the fields that go into
/// the tree). `memory` is the regions with their index in the file.
fn device_tree_area(
    ctx: &Ctx<'_>,
    p: &PartitionFile,
    memory: &[(usize, Range)],
    sorted: &[MemoryRegion],
) -> Result<Option<Range>, ConfigError> {
    if !p.device_tree {
        let into_tree = [
            ("device_tree_at", p.device_tree_at.is_some()),
            ("bootargs", p.bootargs.is_some()),
            ("initrd", p.initrd.is_some()),
        ];
        if let Some((field, _)) = into_tree.iter().find(|(_, given)| *given) {
            return Err(ctx.err(*field, ErrorKind::NeedsDeviceTree));
        }
        return Ok(None);
    }
    if let Some(at) = p.device_tree_at {
        ctx.aligned("device_tree_at", at)?;
        let range = Range::new(at, DEVICE_TREE_AREA).ok_or_else(|| {
            let (base, size) = (at, DEVICE_TREE_AREA);
            ctx.err("device_tree_at", ErrorKind::Wraps { base, size })
        })?;
        if !sorted.iter().any(|m| m.ipa_range().encloses(&range)) {
            return Err(ctx.err(
                "device_tree_at",
                ErrorKind::DeviceTreeOutsideMemory { range },
            ));
        }
        return Ok(Some(range));
    }
    let (index, lowest) = memory
        .iter()
        .min_by_key(|(_, r)| r.base)
        .copied()
        .unwrap_or((0, Range { base: 0, size: 0 }));
    if lowest.size < DEVICE_TREE_AREA {
        return Err(ctx.err(
            format!("memory[{index}].size"),
            ErrorKind::RegionTooSmallForDeviceTree { size: lowest.size },
        ));
    }
    Ok(Some(Range {
        base: lowest.end() - DEVICE_TREE_AREA,
        size: DEVICE_TREE_AREA,
    }))
}

/// A kernel command line fits Linux's buffer and a device-tree string.
fn check_bootargs(ctx: &Ctx<'_>, bootargs: &str) -> Result<(), ConfigError> {
    let problem = if bootargs.len() > BOOTARGS_MAX {
        format!(
            "{} bytes: Linux takes a command line of at most {BOOTARGS_MAX}",
            bootargs.len()
        )
    } else if bootargs.contains('\0') {
        "a NUL character would end the device tree's string there".to_owned()
    } else {
        return Ok(());
    };
    Err(ctx.err("bootargs", ErrorKind::Bootargs { problem }))
}

/// Reads and places the initrd: inside one memory region, clear of the
/// device-tree area and of the image (a Linux Image's whole `image_size`),
/// and, beside a Linux Image, in the window the boot protocol allows.
fn load_initrd(
    ctx: &Ctx<'_>,
    initrd: &InitrdFile,
    memory: &[MemoryRegion],
    device_tree_area: Option<Range>,
    loaded: &Loaded,
    images: &ImageLoader<'_>,
) -> Result<Blob, ConfigError> {
    let bytes = images(&initrd.file).map_err(|kind| {
        let kind = match kind {
            ErrorKind::ImageNotFound { path } => ErrorKind::InitrdNotFound { path },
            other => other,
        };
        ctx.err("initrd.file", kind)
    })?;
    if bytes.is_empty() {
        return Err(ctx.err("initrd.file", ErrorKind::EmptyInitrd));
    }
    let at = initrd.at;
    ctx.aligned("initrd.at", at)?;
    let size = bytes.len() as u64;
    let range = Range::new(at, size)
        .ok_or_else(|| ctx.err("initrd.at", ErrorKind::Wraps { base: at, size }))?;
    if !memory.iter().any(|m| m.ipa_range().encloses(&range)) {
        return Err(ctx.err("initrd.at", ErrorKind::InitrdOutsideMemory { range }));
    }
    let overlap = |other: &str, other_range: Range| {
        ctx.err(
            "initrd.at",
            ErrorKind::Overlap {
                range,
                other: other.to_owned(),
                other_range,
            },
        )
    };
    if let Some(area) = device_tree_area.filter(|a| a.overlaps(&range)) {
        return Err(overlap("the device-tree area", area));
    }
    if let Some(image) = loaded.footprint.iter().find(|r| r.overlaps(&range)) {
        return Err(overlap("the image", *image));
    }
    if let (Some(_), [kernel]) = (loaded.kernel, &loaded.footprint[..]) {
        let low = kernel.base.min(range.base) / KERNEL_WINDOW_ALIGN * KERNEL_WINDOW_ALIGN;
        let high = kernel.end().max(range.end());
        if high - low > KERNEL_WINDOW_MAX {
            let kind = ErrorKind::KernelInitrdApart {
                kernel: *kernel,
                initrd: range,
            };
            return Err(ctx.err("initrd.at", kind));
        }
    }
    Ok(Blob { ipa: at, bytes })
}

/// A window of the partition's IPA space.
struct Window {
    /// How a message names it.
    what: String,
    /// The field to blame, if it is the partition's own (the GIC is not).
    field: Option<String>,
    range: Range,
}

/// Checks that nothing in the partition's IPA space overlaps: its memory,
/// its devices, its emulated PL011 page, its control and doorbell pages,
/// the shared regions it maps (`shared`: what, field, range, from
/// [`channels::windows_of`]) and the GIC windows it sees.
fn check_ipa_map(
    ctx: &Ctx<'_>,
    p: &PartitionFile,
    board: &Board,
    memory: &[(usize, Range)],
    devices: &[Device],
    shared: &[(String, String, Range)],
) -> Result<(), ConfigError> {
    let mut windows: Vec<Window> = memory
        .iter()
        .map(|(i, r)| Window {
            what: format!("memory[{i}]"),
            field: Some(format!("memory[{i}].ipa")),
            range: *r,
        })
        .collect();
    windows.extend(devices.iter().enumerate().map(|(j, d)| Window {
        what: format!("device \"{}\"", d.name),
        field: Some(format!("devices[{j}]")),
        range: d.range,
    }));
    // The one-page windows: (field, what a message calls it, IPA).
    let pages = [
        ("console_pl011", "the emulated PL011", p.console_pl011),
        (
            "control_page",
            "the control page",
            Some(p.control_page.unwrap_or(DEFAULT_CONTROL_PAGE)),
        ),
        ("doorbell_page", "the doorbell page", p.doorbell_page),
    ];
    for (field, what, base) in pages {
        let Some(base) = base else { continue };
        let range = Range::new(base, PAGE)
            .ok_or_else(|| ctx.err(field, ErrorKind::Wraps { base, size: PAGE }))?;
        windows.push(Window {
            what: format!("{what} ({field})"),
            field: Some(field.to_owned()),
            range,
        });
    }
    windows.extend(shared.iter().map(|(what, field, range)| Window {
        what: what.clone(),
        field: Some(field.clone()),
        range: *range,
    }));
    windows.extend(
        board
            .gic
            .guest_windows(p.cpus.len())
            .into_iter()
            .map(|(what, range)| Window {
                what: format!("{what} this partition sees"),
                field: None,
                range,
            }),
    );
    for w in &windows {
        if w.range.end() > IPA_LIMIT {
            let field = w.field.clone().unwrap_or_else(|| "cpus".to_owned());
            return Err(ctx.err(
                field,
                ErrorKind::IpaTooHigh {
                    range: w.range,
                    limit: IPA_LIMIT,
                },
            ));
        }
    }
    for (j, later) in windows.iter().enumerate() {
        for earlier in &windows[..j] {
            if !later.range.overlaps(&earlier.range) {
                continue;
            }
            let (blamed, other) = match (&later.field, &earlier.field) {
                (Some(_), _) => (later, earlier),
                (None, Some(_)) => (earlier, later),
                (None, None) => continue, // two GIC windows: the board check's business
            };
            let field = blamed.field.clone().unwrap_or_default();
            return Err(ctx.err(
                field,
                ErrorKind::Overlap {
                    range: blamed.range,
                    other: other.what.clone(),
                    other_range: other.range,
                },
            ));
        }
    }
    Ok(())
}

/// A placed image.
struct Loaded {
    /// The bytes to copy.
    blob: Blob,
    /// Where vCPU 0 starts.
    entry: u64,
    /// The IPA ranges the image occupies: an ELF's segments (their .bss
    /// included), a raw image's bytes, an arm64 Image's `image_size`.
    footprint: Vec<Range>,
    /// The arm64 Image header of a raw image that has one.
    kernel: Option<ImageHeader>,
}

/// Reads and places the image: the blob to copy, the entry point, and what
/// it occupies. A raw image that starts with an arm64 Image header is
/// placed as the boot protocol asks: `text_offset` above a 2 MiB aligned
/// base, its whole `image_size` (BSS included) inside memory and clear of
/// the device-tree area; its entry defaults to its first byte.
fn load_image(
    ctx: &Ctx<'_>,
    p: &PartitionFile,
    board: &Board,
    memory: &[MemoryRegion],
    device_tree_area: Option<Range>,
    images: &ImageLoader<'_>,
) -> Result<Loaded, ConfigError> {
    let bytes = images(&p.image).map_err(|kind| ctx.err("image", kind))?;

    let elf = if elf::is_elf(&bytes) {
        let elf =
            Elf::parse(&bytes).map_err(|error| ctx.err("image", ErrorKind::BadElf { error }))?;
        if p.load.is_some() {
            return Err(ctx.err("load", ErrorKind::LoadForElf));
        }
        Some(elf)
    } else {
        None
    };
    let kernel = match elf {
        Some(_) => None,
        None => ImageHeader::parse(&bytes),
    };

    // What is loaded where (IPA ranges), and the entry point.
    let (footprint, entry): (Vec<Range>, u64) = match &elf {
        // Elf::parse made sure no segment wraps.
        Some(elf) => (
            elf.segments
                .iter()
                .map(|s| Range {
                    base: s.paddr,
                    size: s.memsz,
                })
                .collect(),
            p.entry.unwrap_or(elf.entry),
        ),
        None => {
            let load = p
                .load
                .ok_or_else(|| ctx.err("load", ErrorKind::RawImageWithoutLoad))?;
            let file_size = bytes.len() as u64;
            let (size, entry) = match kernel {
                Some(header) => {
                    if header.big_endian() {
                        return Err(ctx.err("image", ErrorKind::BigEndianImage));
                    }
                    if !header.placed_right(load) {
                        let text_offset = header.text_offset;
                        return Err(
                            ctx.err("load", ErrorKind::KernelMisplaced { load, text_offset })
                        );
                    }
                    (header.footprint(file_size), p.entry.unwrap_or(load))
                }
                None => {
                    let entry = p
                        .entry
                        .ok_or_else(|| ctx.err("entry", ErrorKind::RawImageWithoutEntry))?;
                    (file_size, entry)
                }
            };
            let range = Range::new(load, size)
                .ok_or_else(|| ctx.err("load", ErrorKind::Wraps { base: load, size }))?;
            (vec![range], entry)
        }
    };

    for range in &footprint {
        if !memory.iter().any(|m| m.ipa_range().encloses(range)) {
            let kind = match kernel {
                Some(header) => ErrorKind::KernelOutsideMemory {
                    range: *range,
                    image_size: header.image_size,
                },
                None => ErrorKind::ImageOutsideMemory { range: *range },
            };
            return Err(ctx.err("image", kind));
        }
        if let Some(area) = device_tree_area
            && range.overlaps(&area)
        {
            return Err(ctx.err(
                "image",
                ErrorKind::ImageOverlapsDeviceTree {
                    range: *range,
                    device_tree: area,
                },
            ));
        }
    }
    if !memory.iter().any(|m| m.ipa_range().contains(entry)) {
        return Err(ctx.err("entry", ErrorKind::EntryOutsideMemory { entry }));
    }

    let blob = match elf {
        Some(elf) => {
            // Every segment is inside memory, but the blob spans from the
            // lowest to the highest one: refuse a span (two regions far
            // apart) that the hypervisor could not embed, before making it.
            let (low, high) = elf.file_span();
            if high - low > board.hypervisor.room {
                return Err(ctx.err(
                    "image",
                    ErrorKind::BlobsTooLarge {
                        total: high - low,
                        hypervisor: board.hypervisor.room,
                    },
                ));
            }
            let (ipa, bytes) = elf.flatten();
            Blob { ipa, bytes }
        }
        None => Blob {
            ipa: footprint[0].base,
            bytes,
        },
    };
    Ok(Loaded {
        blob,
        entry,
        footprint,
        kernel,
    })
}

/// Checks a parsed board and partition set together: the whole job, minus
/// reading files. `board_file`/`set_file` are the names errors show.
pub fn check_all(
    board: &BoardFile,
    board_file: &str,
    set: &PartitionSetFile,
    set_file: &str,
    images: &ImageLoader<'_>,
) -> Result<Checked, ConfigError> {
    check_board_name(&set.board, set_file)?;
    let board_checked = check_board(board, board_file)?;
    let (mut partitions, mut shared, doorbells) =
        check_partitions(set, set_file, &board_checked, images)?;
    channels::check_phys(set, set_file, &board_checked, &shared)?;
    let (hypervisor, need) = size_hypervisor(set, set_file, &board_checked, &partitions, &shared)?;
    // What a region placed by the build must stay clear of.
    let taken: Vec<Range> = partitions
        .iter()
        .flat_map(|p| p.memory.iter().map(|m| Range::new(m.phys, m.size)))
        .chain(
            board_checked
                .spin_tables
                .iter()
                .flatten()
                .map(|&a| Range::new(a, 8)),
        )
        .flatten()
        .chain([hypervisor])
        .collect();
    channels::place(set_file, &board_checked, &taken, &mut shared)?;
    for p in &mut partitions {
        for m in &mut p.shared {
            m.phys = shared[m.region].phys;
        }
    }
    Ok(Checked {
        source: set_file.to_owned(),
        board_source: board_file.to_owned(),
        board: board_checked,
        partitions,
        shared,
        doorbells,
        hypervisor,
        need,
    })
}
