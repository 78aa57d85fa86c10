//! The Rust source `build.rs` writes into OUT_DIR: one
//! `pub static CONFIG: Config`, built from the types of the hypervisor's
//! `src/config.rs`, which the including module brings into scope. Blobs are
//! not inlined: each is a file beside it, pulled in with `include_bytes!`.
//! Addresses are written typed: `PhysAddr(..)` for the machine's, `Ipa(..)`
//! for a partition's guest-physical ones.
//! Also the linker-script fragment with the hypervisor's RAM range and the
//! heap it was sized with ([`crate::budget`]).

use bulkhead_abi::board::GicConfig;

use crate::check::{Blob, Board, Checked, Device, Partition, Range};

/// A hex literal with `_` every four digits: `0x4000_0000`.
pub fn hex(value: u64) -> String {
    let digits = format!("{value:x}");
    let mut out = String::from("0x");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// A machine address: `PhysAddr(0x4000_0000)`.
fn phys(value: u64) -> String {
    format!("PhysAddr({})", hex(value))
}

/// A guest-physical address: `Ipa(0x4000_0000)`.
fn ipa(value: u64) -> String {
    format!("Ipa({})", hex(value))
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let inner: Vec<String> = items.iter().map(f).collect();
    format!("&[{}]", inner.join(", "))
}

fn range(r: &Range) -> String {
    format!("Range {{ base: {}, size: {} }}", phys(r.base), hex(r.size))
}

fn include(file: &str) -> String {
    format!("include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}\"))")
}

fn blob(b: &Blob, file: &str) -> String {
    format!("Blob {{ ipa: {}, bytes: {} }}", ipa(b.ipa), include(file))
}

fn gic(g: &GicConfig) -> String {
    match *g {
        GicConfig::V3 {
            distributor,
            redistributor,
            maintenance_intid,
        } => format!(
            "GicConfig::V3 {{ distributor: {}, redistributor: {}, maintenance_intid: {maintenance_intid} }}",
            phys(distributor.0),
            phys(redistributor.0),
        ),
        GicConfig::V2 {
            distributor,
            cpu_interface,
            hyp_interface,
            virtual_cpu_interface,
            hyp_interface_aliases,
            maintenance_intid,
        } => format!(
            "GicConfig::V2 {{ distributor: {}, cpu_interface: {}, hyp_interface: {}, \
             virtual_cpu_interface: {}, hyp_interface_aliases: {}, maintenance_intid: {maintenance_intid} }}",
            phys(distributor.0),
            phys(cpu_interface.0),
            phys(hyp_interface.0),
            phys(virtual_cpu_interface.0),
            hyp_interface_aliases.map_or("None".to_owned(), |a| format!("Some({})", phys(a.0))),
        ),
    }
}

fn board(out: &mut String, b: &Board, hypervisor: &Range) {
    let cpus: Vec<(u64, Option<u64>)> = b
        .cpus
        .iter()
        .copied()
        .zip(b.spin_tables.iter().copied())
        .collect();
    let cpus = list(&cpus, |(m, spin)| {
        let spin = match spin {
            Some(a) => format!("Some({})", phys(*a)),
            None => "None".to_owned(),
        };
        format!("CpuConfig {{ mpidr: {}, spin_table: {spin} }}", hex(*m))
    });
    let power = match b.bcm2835_watchdog {
        Some(base) => format!("Power::Bcm2835Watchdog({})", phys(base)),
        None => "Power::Psci".to_owned(),
    };
    out.push_str(&format!(
        "    board: BoardConfig {{\n        name: {:?},\n        ram: {},\n        hypervisor: {},\n        \
         uart: {},\n        uart_interrupt: {:?},\n        gic: {},\n        cpus: {},\n        power: {power},\n    }},\n",
        b.name,
        list(&b.ram, range),
        range(hypervisor),
        range(&b.uart),
        b.uart_interrupt,
        gic(&b.gic),
        cpus,
    ));
}

fn device(d: &Device) -> String {
    format!(
        "DeviceConfig {{ name: {:?}, ipa: {}, phys: {}, size: {}, interrupts: {}, edge: {} }}",
        d.name,
        ipa(d.range.base),
        phys(d.range.base),
        hex(d.range.size),
        list(&d.interrupts, u32::to_string),
        d.edge,
    )
}

fn partition(out: &mut String, p: &Partition) {
    let memory = p
        .memory
        .iter()
        .map(|m| {
            format!(
                "                MemoryRegion {{ ipa: {}, phys: {}, size: {} }},\n",
                ipa(m.ipa),
                phys(m.phys),
                hex(m.size)
            )
        })
        .collect::<String>();
    let device_tree = match &p.device_tree {
        Some(dt) => format!("Some({})", blob(dt, &p.device_tree_file())),
        None => "None".to_owned(),
    };
    let initrd = match &p.initrd {
        Some(initrd) => format!("Some({})", blob(initrd, &p.initrd_file())),
        None => "None".to_owned(),
    };
    let console = match p.console_pl011 {
        Some(base) => format!("Some({})", ipa(base)),
        None => "None".to_owned(),
    };
    let doorbell_page = match p.doorbell_page {
        Some(base) => format!("Some({})", ipa(base)),
        None => "None".to_owned(),
    };
    let shared = list(&p.shared, |m| {
        let access = if m.writable { "ReadWrite" } else { "ReadOnly" };
        format!(
            "SharedMapping {{ name: {:?}, ipa: {}, phys: {}, size: {}, access: Access::{access} }}",
            m.name,
            ipa(m.ipa),
            // Placed by the check: every region has an address by now.
            phys(m.phys.unwrap_or_default()),
            hex(m.size),
        )
    });
    out.push_str(&format!(
        "        PartitionConfig {{\n            name: {:?},\n            cpus: {},\n            \
         vmpidrs: {},\n            memory: &[\n{}            ],\n            devices: {},\n            \
         image: {},\n            entry: {},\n            initrd: {},\n            \
         device_tree: {},\n            console_pl011: {},\n            control_page: {},\n            \
         on_fault: OnFault::{:?},\n            shared: {},\n            doorbell_page: {},\n        }},\n",
        p.name,
        list(&p.cpus, usize::to_string),
        list(&p.vmpidrs, |m| hex(*m)),
        memory,
        list(&p.devices, device),
        blob(&p.image, &p.image_file()),
        ipa(p.entry),
        initrd,
        device_tree,
        console,
        ipa(p.control_page),
        p.on_fault,
        shared,
        doorbell_page,
    ));
}

/// The contents of `bulkhead_config.rs`.
pub fn config_rs(c: &Checked) -> String {
    let mut out = format!(
        "// Generated by bulkhead-config from {} and {}. Do not edit.\n\
         pub static CONFIG: Config = Config {{\n    source: {:?},\n",
        c.source, c.board_source, c.source
    );
    board(&mut out, &c.board, &c.hypervisor);
    out.push_str("    partitions: &[\n");
    for p in &c.partitions {
        partition(&mut out, p);
    }
    out.push_str("    ],\n");
    let shared = list(&c.shared, |r| {
        format!(
            "SharedRegion {{ name: {:?}, phys: {}, size: {} }}",
            r.name,
            phys(r.phys.unwrap_or_default()),
            hex(r.size),
        )
    });
    let doorbells = list(&c.doorbells, |d| {
        format!(
            "DoorbellConfig {{ name: {:?}, from: {}, to: {}, vcpu: {}, intid: {}, channel: {} }}",
            d.name, d.from, d.to, d.vcpu, d.intid, d.channel,
        )
    });
    out.push_str(&format!(
        "    shared: {shared},\n    doorbells: {doorbells},\n}};\n"
    ));
    // The limits the check applied, asserted again where the tables they
    // size are built: a mismatch is a build error, never a boot-time one.
    out.push_str(&format!(
        "const _: () = assert!({} <= bulkhead_abi::limits::MAX_CPUS);\n",
        c.board.cpus.len()
    ));
    for p in &c.partitions {
        out.push_str(&format!(
            "const _: () = assert!({} <= bulkhead_abi::limits::MAX_VCPUS); // {}\n",
            p.cpus.len(),
            p.name,
        ));
        // (None for a partition without interrupts: `0 <=` is no check.)
        let spis = p.devices.iter().map(|d| d.interrupts.len()).sum::<usize>();
        if spis > 0 {
            out.push_str(&format!(
                "const _: () = assert!({spis} <= bulkhead_abi::limits::MAX_PARTITION_SPIS); // {}\n",
                p.name,
            ));
        }
    }
    out
}

/// The contents of `memory.ld`, for the linker script: the hypervisor's
/// RAM range, and the heap the build counted in it (the link fails if the
/// code and data leave less).
pub fn memory_ld(c: &Checked) -> String {
    format!(
        "HYP_BASE = {:#x};\nHYP_SIZE = {:#x};\nHYP_HEAP = {:#x};\n",
        c.hypervisor.base, c.hypervisor.size, c.need.heap
    )
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn hex_literals_are_grouped_by_four_digits() {
        assert_eq!(hex(0), "0x0");
        assert_eq!(hex(0x1000), "0x1000");
        assert_eq!(hex(0x4000_0000), "0x4000_0000");
        assert_eq!(hex(0x8_0A00), "0x8_0a00");
        assert_eq!(hex(u64::MAX), "0xffff_ffff_ffff_ffff");
    }
}
