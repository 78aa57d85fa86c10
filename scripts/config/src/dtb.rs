//! The device tree a partition boots with, written with `vm-fdt`.
//!
//! It describes the machine as the partition sees it, nothing more: its
//! memory (IPAs), its vCPUs (virtual MPIDRs, started through PSCI over HVC),
//! the architected timer, the GIC windows the hypervisor emulates, the
//! emulated PL011 if it has one, and its passthrough devices at their
//! physical addresses; and in `/chosen`, the console, the kernel command
//! line (`bootargs`) and the initrd's range (`linux,initrd-start/end`).
//!
//! Channels between partitions (the README's "Channels between
//! partitions" documents the binding):
//! - each shared region it maps: `shared-memory@<ipa>`, compatible
//!   `"bulkhead,shared-memory", "generic-uio"`, `reg` its IPA and size,
//!   `label` its name, `read-only` when the partition may not write;
//! - its doorbell page, if it rings any: `doorbell@<ipa>`, compatible
//!   `"bulkhead,doorbell", "generic-uio"`, `reg` the page, `channel-names`
//!   the doorbells it rings (entry n is channel n);
//! - each doorbell it receives: `doorbell-<name>`, compatible
//!   `"bulkhead,doorbell-interrupt", "generic-uio"`, `label` its name,
//!   `interrupts` its SPI (edge-triggered), `bulkhead,vcpu` the vCPU it
//!   goes to.

use vm_fdt::{Error, FdtWriter};

use bulkhead_abi::board::GicConfig;

use crate::check::{Board, GicWindows, PL011_INTID, Partition};

/// `#interrupt-cells = 3` encoding, first cell: an SPI.
const GIC_SPI: u32 = 0;
/// First cell: a PPI.
const GIC_PPI: u32 = 1;
/// Third cell: level-sensitive, active high.
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;
/// Third cell: edge-triggered, rising.
const IRQ_TYPE_EDGE_RISING: u32 = 1;
/// The architected timer's PPIs, in the order the binding lists them:
/// secure physical (INTID 29), non-secure physical (30), virtual (27),
/// hypervisor physical (26). PPI n is INTID 16 + n.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// SPIs are numbered from INTID 32 in the device tree's second cell.
const SPI_BASE: u32 = 32;
/// The compatible every channel node ends with: Linux's
/// `uio_pdrv_genirq.of_id=generic-uio` makes each one a UIO device.
const GENERIC_UIO: &str = "generic-uio";
/// The PL011's reference clock, as QEMU models it.
const APB_CLOCK_HZ: u32 = 24_000_000;
/// PL011 register window.
const PL011_SIZE: u64 = 0x1000;
/// The doorbell register page.
const DOORBELL_PAGE_SIZE: u64 = 0x1000;
const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;

/// Builds the DTB of `p`. The partition must be checked: this only writes.
pub fn device_tree(board: &Board, p: &Partition) -> Result<Vec<u8>, Error> {
    let vcpus = p.cpus.len();
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "bulkhead,partition")?;
    fdt.property_string("model", &format!("Bulkhead partition {}", p.name))?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let chosen = fdt.begin_node("chosen")?;
    if let Some(base) = p.console_pl011 {
        fdt.property_string("stdout-path", &format!("/pl011@{base:x}"))?;
    }
    if let Some(bootargs) = &p.bootargs {
        fdt.property_string("bootargs", bootargs)?;
    }
    if let Some(initrd) = &p.initrd {
        // Linux reads both as numbers of any cell count: 64-bit here.
        fdt.property_u64("linux,initrd-start", initrd.ipa)?;
        fdt.property_u64("linux,initrd-end", initrd.ipa + initrd.bytes.len() as u64)?;
    }
    fdt.end_node(chosen)?;

    // The control page (interrupt mask flag word, deferral pending word):
    // hypervisor memory shared with this partition, not RAM to allocate.
    let control = fdt.begin_node(&format!("bulkhead-control@{:x}", p.control_page))?;
    fdt.property_string("compatible", "bulkhead,control-page")?;
    fdt.property_array_u64("reg", &[p.control_page, 0x1000])?;
    fdt.end_node(control)?;

    for m in &p.memory {
        let node = fdt.begin_node(&format!("memory@{:x}", m.ipa))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[m.ipa, m.size])?;
        fdt.end_node(node)?;
    }

    let cpus = fdt.begin_node("cpus")?;
    // vMPIDRs are Aff0 only (< 256), so one cell holds them.
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for &mpidr in &p.vmpidrs {
        let cpu = fdt.begin_node(&format!("cpu@{mpidr:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", mpidr as u32)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".to_owned(), "arm,psci-0.2".to_owned()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    // GICv2 PPI flags carry a mask of the CPUs the PPI is wired to (bits
    // 15:8); the GICv3 binding has no such field.
    let ppi_flags = match board.gic {
        GicConfig::V3 { .. } => IRQ_TYPE_LEVEL_HIGH,
        GicConfig::V2 { .. } => ((1u32 << vcpus.min(8)) - 1) << 8 | IRQ_TYPE_LEVEL_HIGH,
    };
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let cells: Vec<u32> = TIMER_PPIS
        .iter()
        .flat_map(|&ppi| [GIC_PPI, ppi, ppi_flags])
        .collect();
    fdt.property_array_u32("interrupts", &cells)?;
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    write_gic(&mut fdt, board, vcpus)?;

    let primecell = |compatible: &[String]| compatible.iter().any(|c| c == "arm,primecell");
    if p.console_pl011.is_some() || p.devices.iter().any(|d| primecell(&d.compatible)) {
        // AMBA (primecell) drivers want an "apb_pclk"; one fixed clock serves all.
        let clock = fdt.begin_node("apb-pclk")?;
        fdt.property_string("compatible", "fixed-clock")?;
        fdt.property_u32("#clock-cells", 0)?;
        fdt.property_u32("clock-frequency", APB_CLOCK_HZ)?;
        fdt.property_string("clock-output-names", "clk24mhz")?;
        fdt.property_phandle(CLOCK_PHANDLE)?;
        fdt.end_node(clock)?;
    }

    if let Some(base) = p.console_pl011 {
        let uart = fdt.begin_node(&format!("pl011@{base:x}"))?;
        fdt.property_string_list(
            "compatible",
            vec!["arm,pl011".to_owned(), "arm,primecell".to_owned()],
        )?;
        fdt.property_array_u64("reg", &[base, PL011_SIZE])?;
        fdt.property_array_u32(
            "interrupts",
            &[GIC_SPI, PL011_INTID - SPI_BASE, IRQ_TYPE_LEVEL_HIGH],
        )?;
        fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
        fdt.property_string_list(
            "clock-names",
            vec!["uartclk".to_owned(), "apb_pclk".to_owned()],
        )?;
        fdt.end_node(uart)?;
    }

    for d in &p.devices {
        let node = fdt.begin_node(&format!("{}@{:x}", d.name, d.range.base))?;
        fdt.property_string_list("compatible", d.compatible.clone())?;
        fdt.property_array_u64("reg", &[d.range.base, d.range.size])?;
        if !d.interrupts.is_empty() {
            let trigger = if d.edge {
                IRQ_TYPE_EDGE_RISING
            } else {
                IRQ_TYPE_LEVEL_HIGH
            };
            let cells: Vec<u32> = d
                .interrupts
                .iter()
                .flat_map(|&intid| [GIC_SPI, intid - SPI_BASE, trigger])
                .collect();
            fdt.property_array_u32("interrupts", &cells)?;
        }
        if primecell(&d.compatible) {
            fdt.property_u32("clocks", CLOCK_PHANDLE)?;
            fdt.property_string("clock-names", "apb_pclk")?;
        }
        fdt.end_node(node)?;
    }

    write_channels(&mut fdt, p)?;

    fdt.end_node(root)?;
    fdt.finish()
}

/// The partition's ends of the channels: its shared regions, its doorbell
/// page and the doorbells' interrupts it receives.
fn write_channels(fdt: &mut FdtWriter, p: &Partition) -> Result<(), Error> {
    let compatible = |ours: &str| vec![ours.to_owned(), GENERIC_UIO.to_owned()];
    for m in &p.shared {
        let node = fdt.begin_node(&format!("shared-memory@{:x}", m.ipa))?;
        fdt.property_string_list("compatible", compatible("bulkhead,shared-memory"))?;
        fdt.property_array_u64("reg", &[m.ipa, m.size])?;
        fdt.property_string("label", &m.name)?;
        if !m.writable {
            fdt.property_null("read-only")?;
        }
        fdt.end_node(node)?;
    }
    if let (Some(page), false) = (p.doorbell_page, p.rings.is_empty()) {
        let node = fdt.begin_node(&format!("doorbell@{page:x}"))?;
        fdt.property_string_list("compatible", compatible("bulkhead,doorbell"))?;
        fdt.property_array_u64("reg", &[page, DOORBELL_PAGE_SIZE])?;
        // `rings` is in channel order: entry n names channel n.
        let names = p.rings.iter().map(|d| d.name.clone()).collect();
        fdt.property_string_list("channel-names", names)?;
        fdt.end_node(node)?;
    }
    for d in &p.receives {
        let node = fdt.begin_node(&format!("doorbell-{}", d.name))?;
        fdt.property_string_list("compatible", compatible("bulkhead,doorbell-interrupt"))?;
        fdt.property_string("label", &d.name)?;
        fdt.property_array_u32(
            "interrupts",
            &[GIC_SPI, d.intid - SPI_BASE, IRQ_TYPE_EDGE_RISING],
        )?;
        fdt.property_u32("bulkhead,vcpu", d.vcpu as u32)?;
        fdt.end_node(node)?;
    }
    Ok(())
}

/// The interrupt controller node, with the windows [`GicWindows::guest_windows`] gives.
fn write_gic(fdt: &mut FdtWriter, board: &Board, vcpus: usize) -> Result<(), Error> {
    let windows = board.gic.guest_windows(vcpus);
    let distributor = windows.first().map_or(0, |(_, r)| r.base);
    let gic = fdt.begin_node(&format!("interrupt-controller@{distributor:x}"))?;
    match board.gic {
        GicConfig::V3 { .. } => {
            fdt.property_string("compatible", "arm,gic-v3")?;
            fdt.property_u32("#redistributor-regions", 1)?;
        }
        GicConfig::V2 { .. } => fdt.property_string("compatible", "arm,cortex-a15-gic")?,
    }
    fdt.property_u32("#interrupt-cells", 3)?;
    // No child nodes (no ITS); stated so interrupt-map parsers need not guess.
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_null("interrupt-controller")?;
    let reg: Vec<u64> = windows.iter().flat_map(|(_, r)| [r.base, r.size]).collect();
    fdt.property_array_u64("reg", &reg)?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)
}
