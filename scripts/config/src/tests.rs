//! Host tests of the whole pipeline: one test per rule, each with a bad
//! configuration given as a string, plus the shipped configurations, the
//! generated device tree (read back with the `fdt` crate) and the generated
//! Rust (compiled with rustc against the hypervisor's `src/config.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use bulkhead_abi::board::{GicConfig, PhysAddr};

use crate::arm64_image::tests::image as kernel_image;
use crate::budget;
use crate::check::{Checked, MemoryRegion};
use crate::elf::ElfError;
use crate::error::{ConfigError, ErrorKind};
use crate::test_elf::{Seg, build_elf};

/// The shipped files: each test of them only checks that they pass.
const SHIPPED_BOARD: &str = include_str!("../../../boards/qemu-virt/board.toml");
/// A fixed QEMU virt board for the rule tests, which edit it; kept apart
/// from the shipped board so that tuning that file breaks no rule test.
pub(crate) const BOARD: &str = r#"
name = "qemu-virt"

[[ram]]
base = 0x4000_0000
size = 0x4000_0000

[hypervisor]
base = 0x4000_0000
size = 0x0200_0000

[uart]
base = 0x0900_0000
size = 0x1000

[gic]
version = 3
distributor = 0x0800_0000
redistributor = 0x080A_0000
maintenance_intid = 25

[[cpu]]
mpidr = 0x0

[[cpu]]
mpidr = 0x1

[[cpu]]
mpidr = 0x2

[[cpu]]
mpidr = 0x3

[[device]]
name = "rtc"
compatible = ["arm,pl031", "arm,primecell"]
base = 0x0901_0000
size = 0x1000
interrupts = [34]

[[device]]
name = "gpio"
compatible = ["arm,pl061", "arm,primecell"]
base = 0x0903_0000
size = 0x1000
interrupts = [39]
"#;
const DEMO: &str = include_str!("../../../boards/qemu-virt/demo.toml");
const ISOLATION: &str = include_str!("../../../tests/configs/isolation.toml");
const BOARD_FILE: &str = "boards/qemu-virt/board.toml";
const SET_FILE: &str = "boards/qemu-virt/set.toml";

/// Where the test guest is linked, as every real guest is.
const LINK: u64 = 0x4000_0000;

/// A test guest: code at 0x4000_0000, data at +0x1000, then 64 KiB of .bss.
fn guest_elf() -> Vec<u8> {
    build_elf(
        LINK,
        &[
            Seg {
                paddr: LINK,
                data: b"\x00\x00\x00\x14CODE", // `b .` then filler
                memsz: 8,
            },
            Seg {
                paddr: LINK + 0x1000,
                data: b"DATA",
                memsz: 0x1_0000,
            },
        ],
    )
}

/// Image lookup for the tests: "missing" does not exist, "raw" is a raw
/// image, "raw-N" a raw image of N (hex) bytes, "span-N" an ELF of two
/// one-byte segments N (hex, at least 2) bytes apart end to end from
/// [`LINK`], "huge" an ELF whose .bss runs 256 MiB, "top" one with a segment
/// in the last 32 KiB of a 64 MiB region at [`LINK`]; "kernel-N" an arm64
/// Image of [`KERNEL_FILE`] bytes whose header says image_size N (hex) and
/// text_offset 0, "kernel-big-endian" a big-endian one, "kernel-offset" one with
/// text_offset 0x8_0000; "initrd-N" N (hex) bytes; anything else is
/// [`guest_elf`].
fn images(name: &str) -> Result<Vec<u8>, ErrorKind> {
    let hex = |prefix: &str| {
        let digits = name.strip_prefix(prefix)?;
        u64::from_str_radix(digits, 16).ok()
    };
    if let Some(size) = hex("raw-") {
        return Ok(vec![0xaa; size as usize]);
    }
    if let Some(size) = hex("initrd-") {
        return Ok(vec![0x5a; size as usize]);
    }
    if let Some(image_size) = hex("kernel-") {
        return Ok(kernel_image(0, image_size, 0, KERNEL_FILE));
    }
    if let Some(span) = hex("span-") {
        let seg = |paddr, data| Seg {
            paddr,
            data,
            memsz: 1,
        };
        return Ok(build_elf(
            LINK,
            &[seg(LINK, b"A"), seg(LINK + span - 1, b"Z")],
        ));
    }
    match name {
        "missing" => Err(ErrorKind::ImageNotFound {
            path: format!("target/guests/{name}"),
        }),
        "raw" => Ok(b"RAW IMAGE BYTES".to_vec()),
        "huge" => Ok(build_elf(
            LINK,
            &[Seg {
                paddr: LINK,
                data: b"CODE",
                memsz: 0x1000_0000,
            }],
        )),
        "top" => Ok(build_elf(
            LINK,
            &[Seg {
                paddr: LINK + 0x3ff_8000,
                data: b"CODE",
                memsz: 0x1000,
            }],
        )),
        "truncated" => Ok(b"\x7fELF\x02\x01".to_vec()),
        "kernel-big-endian" => Ok(kernel_image(0, 0x1_0000, 1, KERNEL_FILE)),
        "kernel-offset" => Ok(kernel_image(0x8_0000, 0x1_0000, 0, KERNEL_FILE)),
        _ => Ok(guest_elf()),
    }
}

/// The file size of the tests' arm64 Images.
const KERNEL_FILE: usize = 0x2000;

fn run(board: &str, set: &str) -> Result<Checked, ConfigError> {
    crate::check(board, BOARD_FILE, set, SET_FILE, &images)
}

/// A partition set on the shipped board.
fn set(partitions: &str) -> String {
    format!("board = \"qemu-virt\"\n{partitions}")
}

/// One partition with 64 MiB at IPA 0x4000_0000; `extra` lines go in its table.
fn part(name: &str, cpus: &str, phys: u64, extra: &str) -> String {
    format!(
        "[[partition]]\nname = \"{name}\"\ncpus = {cpus}\nimage = \"guest\"\n{extra}\n\
         [[partition.memory]]\nipa = 0x4000_0000\nphys = {phys:#x}\nsize = 0x0400_0000\n"
    )
}

/// `partition` (from [`part`]) with another image than "guest".
fn with_image(partition: &str, image: &str) -> String {
    partition.replace("\"guest\"", &format!("\"{image}\""))
}

/// A valid two-partition set, for tests that change one thing in it.
fn two() -> String {
    set(&(part("alpha", "[0, 1]", 0x5000_0000, "") + &part("beta", "[2]", 0x5400_0000, "")))
}

/// `cells` as a device-tree property value: big-endian 32-bit words.
fn be_cells(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// The device tree of `c`'s partition `index`.
fn dtb_of(c: &Checked, index: usize) -> &[u8] {
    &c.partitions[index]
        .device_tree
        .as_ref()
        .expect("device tree")
        .bytes
}

/// Asserts that `result` is an error at `partition`/`field` of kind `kind`,
/// and returns it.
macro_rules! assert_error {
    ($result:expr, $file:expr, $partition:expr, $field:expr, $kind:pat) => {{
        let e: ConfigError = match $result {
            Ok(_) => panic!("configuration was accepted"),
            Err(e) => e,
        };
        assert!(matches!(e.kind(), $kind), "unexpected error kind: {e}");
        assert_eq!(e.file(), $file, "{e}");
        assert_eq!(e.partition(), $partition, "{e}");
        assert_eq!(e.field(), $field, "{e}");
        e
    }};
}

// ---- the shipped files ------------------------------------------------------

#[test]
fn shipped_configurations_are_accepted() {
    for set in [DEMO, ISOLATION] {
        let c = run(SHIPPED_BOARD, set).expect("shipped files are valid");
        assert_eq!(c.board.name, "qemu-virt");
        assert_eq!(c.board.cpus, [0, 1, 2, 3]);
        let names: Vec<&str> = c.board.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["rtc", "gpio"]);
    }
}

#[test]
fn demo_configuration_is_accepted() {
    let c = run(BOARD, DEMO).expect("demo.toml is valid");
    assert_eq!(c.board.name, "qemu-virt");
    assert_eq!(c.board.cpus, [0, 1, 2, 3]);
    let [alpha, beta] = &c.partitions[..] else {
        panic!("two partitions")
    };
    assert_eq!(
        (alpha.name.as_str(), &alpha.cpus[..]),
        ("alpha", &[0, 1][..])
    );
    assert_eq!(alpha.vmpidrs, [0, 1]);
    assert_eq!(
        alpha.memory,
        [MemoryRegion {
            ipa: 0x4000_0000,
            phys: 0x5000_0000,
            size: 0x400_0000
        }]
    );
    assert_eq!(alpha.entry, LINK);
    assert_eq!(alpha.image.ipa, LINK);
    // Code, zeroes up to the data page, data; not the .bss after it.
    assert_eq!(alpha.image.bytes.len(), 0x1004);
    assert_eq!(&alpha.image.bytes[0x1000..], b"DATA");
    let dt = alpha
        .device_tree
        .as_ref()
        .expect("a device tree by default");
    assert_eq!(dt.ipa, 0x4000_0000 + 0x400_0000 - 0x1_0000);
    assert_eq!(alpha.console_pl011, Some(0x900_0000));
    assert!(alpha.devices.is_empty());
    assert_eq!(beta.cpus, [2]);
    assert_eq!(beta.vmpidrs, [0]);
    assert_eq!(beta.memory[0].phys, 0x5400_0000);
    assert_eq!(beta.devices.len(), 1);
    assert_eq!(beta.devices[0].name, "rtc");
    assert_eq!(beta.devices[0].interrupts, [34]);
}

#[test]
fn isolation_configuration_is_accepted() {
    let c = run(BOARD, ISOLATION).expect("isolation.toml is valid");
    let names: Vec<&str> = c.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["intruder", "victim", "badcall", "rawuart"]);
    let phys: Vec<u64> = c.partitions.iter().map(|p| p.memory[0].phys).collect();
    assert_eq!(phys, [0x5000_0000, 0x5400_0000, 0x5800_0000, 0x5C00_0000]);
    assert_eq!(c.partitions[3].console_pl011, Some(0x900_0000));
    assert_eq!(c.partitions[0].console_pl011, None);
}

// ---- file format ------------------------------------------------------------

#[test]
fn unknown_top_level_field_is_rejected() {
    let e = assert_error!(
        run(BOARD, &format!("colour = 1\n{}", two())),
        SET_FILE,
        None,
        Some("colour"),
        ErrorKind::UnknownField { .. }
    );
    assert_eq!(e.line(), Some(1));
}

#[test]
fn unknown_partition_field_is_rejected() {
    let config = set(&(part("alpha", "[0]", 0x5000_0000, "priority = 3")
        + &part("beta", "[1]", 0x5400_0000, "")));
    let e = assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("priority"),
        ErrorKind::UnknownField { .. }
    );
    assert_eq!(e.line(), Some(6));
    assert!(e.to_string().starts_with(&format!(
        "{SET_FILE}:6: partition \"alpha\": priority: unknown field `priority`, expected one of"
    )));
}

#[test]
fn on_fault_is_stop_or_restart_and_nothing_else() {
    let with = |value: &str| {
        set(
            &(part("alpha", "[0]", 0x5000_0000, &format!("on_fault = {value}"))
                + &part("beta", "[1]", 0x5400_0000, "")),
        )
    };
    let c = run(BOARD, &with("\"restart\"")).expect("restart");
    assert_eq!(
        c.partitions[0].on_fault,
        bulkhead_abi::board::OnFault::Restart
    );
    assert_eq!(c.partitions[1].on_fault, bulkhead_abi::board::OnFault::Stop);
    assert!(crate::codegen::config_rs(&c).contains("on_fault: OnFault::Restart,"));
    let e = assert_error!(
        run(BOARD, &with("\"reboot\"")),
        SET_FILE,
        Some("alpha"),
        Some("on_fault"),
        ErrorKind::InvalidValue { .. }
    );
    assert!(
        e.to_string()
            .contains("unknown variant `reboot`, expected `stop` or `restart`"),
        "{e}"
    );
    assert_error!(
        run(BOARD, &with("true")),
        SET_FILE,
        Some("alpha"),
        Some("on_fault"),
        ErrorKind::InvalidValue { .. }
    );
}

#[test]
fn unknown_memory_field_is_rejected() {
    let config = two().replace(
        "size = 0x0400_0000\n[[partition]]\nname = \"beta\"",
        "size = 0x0400_0000\ncached = true\n[[partition]]\nname = \"beta\"",
    );
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("memory[0].cached"),
        ErrorKind::UnknownField { .. }
    );
}

#[test]
fn unknown_board_fields_are_rejected() {
    assert_error!(
        run(
            &BOARD.replace(
                "name = \"qemu-virt\"",
                "name = \"qemu-virt\"\nvendor = \"x\""
            ),
            &two()
        ),
        BOARD_FILE,
        None,
        Some("vendor"),
        ErrorKind::UnknownField { .. }
    );
    assert_error!(
        run(
            &BOARD.replace("name = \"gpio\"", "name = \"gpio\"\ndma = true"),
            &two()
        ),
        BOARD_FILE,
        None,
        Some("device[1].dma"),
        ErrorKind::UnknownField { .. }
    );
}

#[test]
fn missing_required_fields_are_rejected() {
    let config = two().replace("cpus = [2]\n", "");
    let e = assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("beta"),
        Some("cpus"),
        ErrorKind::MissingField
    );
    assert!(
        e.to_string()
            .contains("partition \"beta\": cpus: required field is missing")
    );
    let board = BOARD.replace("[hypervisor]\nbase = 0x4000_0000\nsize = 0x0200_0000\n", "");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("hypervisor"),
        ErrorKind::MissingField
    );
    // A partition that has no name yet is named by its index.
    let config = two().replace("name = \"beta\"\n", "");
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        None,
        Some("partition[1].name"),
        ErrorKind::MissingField
    );
}

#[test]
fn values_of_the_wrong_type_are_rejected() {
    let config = two().replace("cpus = [2]", "cpus = \"2\"");
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("beta"),
        Some("cpus"),
        ErrorKind::InvalidValue { .. }
    );
}

#[test]
fn toml_syntax_errors_give_the_line() {
    let e = assert_error!(
        run(BOARD, "board = \"qemu-virt\"\n[[partition]\n"),
        SET_FILE,
        None,
        None,
        ErrorKind::Syntax { .. }
    );
    assert_eq!(e.line(), Some(2));
}

#[test]
fn an_errors_source_is_the_io_elf_or_device_tree_error_behind_it() {
    use std::error::Error as _;
    let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
    let path = String::from("guests/x");
    let kinds = [
        ErrorKind::Read {
            path: path.clone(),
            error: io(),
        },
        ErrorKind::Write { path, error: io() },
        ErrorKind::BadElf {
            error: ElfError::Truncated,
        },
        ErrorKind::DeviceTree {
            error: vm_fdt::Error::TotalSizeTooLarge,
        },
        ErrorKind::NoCpus,
    ];
    let sources: Vec<Option<String>> = kinds
        .into_iter()
        .map(|kind| ConfigError::new(SET_FILE, None, None, None, kind))
        .map(|e| e.source().map(|s| s.to_string()))
        .collect();
    let fdt_error = vm_fdt::Error::TotalSizeTooLarge.to_string();
    assert_eq!(
        sources,
        [
            Some("gone".to_owned()),
            Some("gone".to_owned()),
            Some("file is truncated".to_owned()),
            Some(fdt_error),
            None
        ]
    );
}

// ---- names ------------------------------------------------------------------

#[test]
fn bad_partition_names_are_rejected() {
    for name in ["Alpha", "", "a_b", "seventeen-chars-x"] {
        let config = set(&part(name, "[0]", 0x5000_0000, ""));
        assert_error!(
            run(BOARD, &config),
            SET_FILE,
            None,
            Some("partition[0].name"),
            ErrorKind::BadName { .. }
        );
    }
    let config = set(&part("sixteen-chars-xx", "[0]", 0x5000_0000, ""));
    run(BOARD, &config).expect("16 characters are allowed");
}

#[test]
fn a_bad_name_error_states_the_rule_for_what_is_named() {
    let partition = run(BOARD, &set(&part("Alpha", "[0]", 0x5000_0000, "")));
    assert_eq!(
        partition.map(|_| ()).map_err(|e| e.to_string()),
        Err(format!(
            "{SET_FILE}: partition[0].name: bad name \"Alpha\": \
             use 1 to 16 characters of a-z, 0-9 and '-'"
        ))
    );
    let board = run(BOARD, &two().replace("\"qemu-virt\"", "\"Qemu\""));
    assert_eq!(
        board.map(|_| ()).map_err(|e| e.to_string()),
        Err(format!(
            "{SET_FILE}: board: bad name \"Qemu\": use 1 to 32 characters of a-z, 0-9 and '-'"
        ))
    );
}

#[test]
fn duplicate_partition_names_are_rejected() {
    let config =
        set(&(part("alpha", "[0]", 0x5000_0000, "") + &part("alpha", "[1]", 0x5400_0000, "")));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("name"),
        ErrorKind::DuplicateName { .. }
    );
}

#[test]
fn a_set_without_partitions_is_rejected() {
    assert_error!(
        run(BOARD, "board = \"qemu-virt\"\n"),
        SET_FILE,
        None,
        Some("partition"),
        ErrorKind::NoPartitions
    );
}

#[test]
fn a_set_for_another_board_is_rejected() {
    assert_error!(
        run(
            BOARD,
            &two().replace("board = \"qemu-virt\"", "board = \"raspi4b\"")
        ),
        SET_FILE,
        None,
        Some("board"),
        ErrorKind::BoardMismatch { .. }
    );
    assert_error!(
        run(
            BOARD,
            &two().replace("board = \"qemu-virt\"", "board = \"../etc\"")
        ),
        SET_FILE,
        None,
        Some("board"),
        ErrorKind::BadName { .. }
    );
}

// ---- CPUs -------------------------------------------------------------------

#[test]
fn a_cpu_twice_in_one_partition_is_rejected() {
    assert_error!(
        run(BOARD, &two().replace("cpus = [0, 1]", "cpus = [0, 1, 0]")),
        SET_FILE,
        Some("alpha"),
        Some("cpus[2]"),
        ErrorKind::CpuTwice {
            cpu: 0,
            owner: None
        }
    );
}

/// More CPUs than a partition may have vCPUs is the first thing said about
/// its list (here with repeats, as the board has fewer CPUs than that).
#[test]
fn a_partition_listing_more_cpus_than_the_vcpu_limit_is_rejected() {
    assert_error!(
        run(
            BOARD,
            &two().replace("cpus = [0, 1]", "cpus = [0, 1, 0, 1, 0, 1, 0, 1, 0]")
        ),
        SET_FILE,
        Some("alpha"),
        Some("cpus"),
        ErrorKind::TooManyCpus { count: 9, max: 8 }
    );
}

#[test]
fn a_cpu_in_two_partitions_is_rejected() {
    let e = assert_error!(
        run(BOARD, &two().replace("cpus = [2]", "cpus = [1]")),
        SET_FILE,
        Some("beta"),
        Some("cpus[0]"),
        ErrorKind::CpuTwice {
            cpu: 1,
            owner: Some(_)
        }
    );
    assert!(
        e.to_string()
            .ends_with("CPU 1 is already given to partition \"alpha\"")
    );
}

#[test]
fn a_cpu_the_board_lacks_is_rejected() {
    assert_error!(
        run(BOARD, &two().replace("cpus = [2]", "cpus = [4]")),
        SET_FILE,
        Some("beta"),
        Some("cpus[0]"),
        ErrorKind::UnknownCpu {
            cpu: 4,
            board_cpus: 4
        }
    );
}

#[test]
fn a_partition_without_cpus_is_rejected() {
    assert_error!(
        run(BOARD, &two().replace("cpus = [2]", "cpus = []")),
        SET_FILE,
        Some("beta"),
        Some("cpus"),
        ErrorKind::NoCpus
    );
}

#[test]
fn a_board_may_have_8_cpus_not_9() {
    let cpus = |count: u64| {
        BOARD.replace(
            "[[cpu]]\nmpidr = 0x3\n",
            &(3..count)
                .map(|i| format!("[[cpu]]\nmpidr = {i:#x}\n"))
                .collect::<String>(),
        )
    };
    let c = run(&cpus(8), &two()).expect("8 CPUs are supported");
    assert_eq!(c.board.cpus, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_error!(
        run(&cpus(9), &two()),
        BOARD_FILE,
        None,
        Some("cpu"),
        ErrorKind::TooManyCpus { count: 9, max: 8 }
    );
}

// ---- ranges -----------------------------------------------------------------

#[test]
fn a_range_ends_before_base_plus_size() {
    use crate::check::Range;
    let r = Range {
        base: 0x1000,
        size: 0x1000,
    };
    let range = |base, size| Range { base, size };
    // contains: the first and last byte, not the one before or after.
    let inside: Vec<bool> = [0xfff, 0x1000, 0x1fff, 0x2000]
        .map(|a| r.contains(a))
        .into();
    assert_eq!(inside, [false, true, true, false]);
    // overlaps: touching ranges do not, one shared byte does.
    assert!(!r.overlaps(&range(0x2000, 0x1000)));
    assert!(!range(0, 0x1000).overlaps(&r));
    assert!(r.overlaps(&range(0x1fff, 1)));
    assert!(range(0, 0x1001).overlaps(&r));
    // encloses: itself, not one byte more on either side, and an empty
    // range at its base but not at its end.
    assert!(r.encloses(&r));
    assert!(!r.encloses(&range(0x1000, 0x1001)));
    assert!(!r.encloses(&range(0xfff, 0x1000)));
    assert!(r.encloses(&range(0x1000, 0)));
    assert!(!r.encloses(&range(0x2000, 0)));
}

// ---- memory -----------------------------------------------------------------

#[test]
fn a_partition_may_own_32_interrupts_not_33() {
    // The rtc raises INTIDs 64 and up, `count` of them.
    let board = |count: u32| {
        let intids: Vec<u32> = (64..64 + count).collect();
        BOARD.replace("interrupts = [34]", &format!("interrupts = {intids:?}"))
    };
    let config = set(&part("alpha", "[0]", 0x5000_0000, "devices = [\"rtc\"]\n"));
    let c = run(&board(32), &config).expect("32 interrupts fit the vGIC");
    assert_eq!(c.partitions[0].devices[0].interrupts.len(), 32);
    assert_error!(
        run(&board(33), &config),
        SET_FILE,
        Some("alpha"),
        Some("devices"),
        ErrorKind::TooManyInterrupts { count: 33, max: 32 }
    );
}

#[test]
fn a_control_page_over_memory_or_misaligned_is_rejected() {
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "control_page = 0x4000_1000\n",
    ));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("control_page"),
        ErrorKind::Overlap { .. }
    );
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "control_page = 0x7000_0010\n",
    ));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("control_page"),
        ErrorKind::Misaligned { .. }
    );
}

#[test]
fn guest_addresses_may_end_exactly_at_the_stage2_limit_not_beyond() {
    // A second region in the last page(s) below 2^39.
    let config = |size: u64| {
        set(&(part("alpha", "[0]", 0x5000_0000, "")
            + &format!(
                "[[partition.memory]]\nipa = {:#x}\nphys = 0x6000_0000\nsize = {size:#x}\n",
                (1u64 << 39) - 0x1000
            )))
    };
    let c = run(BOARD, &config(0x1000)).expect("a region ending at 2^39");
    assert_eq!(c.partitions[0].memory[1].ipa, 0x7f_ffff_f000);
    let e = assert_error!(
        run(BOARD, &config(0x2000)),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].ipa"),
        ErrorKind::IpaTooHigh { .. }
    );
    assert!(
        e.to_string().ends_with(
            "guest addresses 0x7ffffff000..0x8000001000 end beyond 0x8000000000, \
             the largest stage 2 translates"
        ),
        "{e}"
    );
}

#[test]
fn a_partition_without_memory_is_rejected() {
    let config = set("[[partition]]\nname = \"alpha\"\ncpus = [0]\nimage = \"guest\"\n");
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("memory"),
        ErrorKind::NoMemory
    );
}

#[test]
fn a_region_of_size_zero_is_rejected() {
    let config =
        set(&part("alpha", "[0]", 0x5000_0000, "").replace("size = 0x0400_0000", "size = 0"));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("memory[0].size"),
        ErrorKind::ZeroSize
    );
}

#[test]
fn misaligned_regions_are_rejected() {
    let cases = [
        ("ipa = 0x4000_0000", "ipa = 0x4000_0800", "memory[0].ipa"),
        ("phys = 0x50000000", "phys = 0x5000_0010", "memory[0].phys"),
        ("size = 0x0400_0000", "size = 0x0400_0100", "memory[0].size"),
    ];
    for (from, to, field) in cases {
        let config = set(&part("alpha", "[0]", 0x5000_0000, "").replace(from, to));
        assert_ne!(
            config,
            set(&part("alpha", "[0]", 0x5000_0000, "")),
            "{from}"
        );
        assert_error!(
            run(BOARD, &config),
            SET_FILE,
            Some("alpha"),
            Some(field),
            ErrorKind::Misaligned { align: 0x1000, .. }
        );
    }
}

#[test]
fn physical_overlap_across_partitions_is_rejected() {
    // alpha's second region (given first in IPA order: any order is fine)
    // lands on beta's memory.
    let alpha = part("alpha", "[0]", 0x5000_0000, "")
        + "[[partition.memory]]\nipa = 0x8000_0000\nphys = 0x5400_0000\nsize = 0x0400_0000\n";
    let config = set(&(part("beta", "[1]", 0x5400_0000, "") + &alpha));
    let e = assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].phys"),
        ErrorKind::Overlap { .. }
    );
    assert_eq!(
        e.to_string(),
        "boards/qemu-virt/set.toml: partition \"alpha\": memory[1].phys: \
         0x54000000..0x58000000 overlaps partition \"beta\" memory[0] (0x54000000..0x58000000)"
    );
}

#[test]
fn physical_overlap_within_a_partition_is_rejected() {
    let alpha = part("alpha", "[0]", 0x5000_0000, "")
        + "[[partition.memory]]\nipa = 0x8000_0000\nphys = 0x5200_0000\nsize = 0x0400_0000\n";
    assert_error!(
        run(BOARD, &set(&alpha)),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].phys"),
        ErrorKind::Overlap { .. }
    );
}

#[test]
fn ipa_overlap_within_a_partition_is_rejected() {
    let alpha = part("alpha", "[0]", 0x5000_0000, "")
        + "[[partition.memory]]\nipa = 0x43ff_f000\nphys = 0x6000_0000\nsize = 0x2000\n";
    let e = assert_error!(
        run(BOARD, &set(&alpha)),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].ipa"),
        ErrorKind::Overlap { .. }
    );
    assert!(e.to_string().contains("overlaps memory[0]"), "{e}");
}

#[test]
fn memory_over_a_device_console_or_gic_window_is_rejected() {
    // A region at IPA 0x0900_0000 overlaps, in turn: the rtc (0x0901_0000)
    // it takes, the emulated PL011, the GIC distributor and redistributors.
    let region = |ipa: u64, size: u64| {
        format!("[[partition.memory]]\nipa = {ipa:#x}\nphys = 0x6000_0000\nsize = {size:#x}\n")
    };
    let with = |extra: &str, ipa: u64, size: u64| {
        set(&(part("alpha", "[0, 1]", 0x5000_0000, extra) + &region(ipa, size)))
    };

    // Of two entries of the partition's own, the later in the IPA map
    // (memory, devices, console) is blamed.
    let e = assert_error!(
        run(BOARD, &with("devices = [\"rtc\"]", 0x0901_0000, 0x1000)),
        SET_FILE,
        Some("alpha"),
        Some("devices[0]"),
        ErrorKind::Overlap { .. }
    );
    assert!(e.to_string().contains("overlaps memory[1]"), "{e}");

    let e = assert_error!(
        run(
            BOARD,
            &with("console_pl011 = 0x0900_0000", 0x0900_0000, 0x1000)
        ),
        SET_FILE,
        Some("alpha"),
        Some("console_pl011"),
        ErrorKind::Overlap { .. }
    );
    assert!(e.to_string().contains("overlaps memory[1]"), "{e}");

    let e = assert_error!(
        run(BOARD, &with("", 0x0800_f000, 0x1000)),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].ipa"),
        ErrorKind::Overlap { .. }
    );
    assert!(e.to_string().contains("the GIC distributor"), "{e}");

    // Two vCPUs see redistributors at 0x080A_0000..0x080E_0000: a region
    // right after them is fine, one in the second frame is not.
    run(BOARD, &with("", 0x080E_0000, 0x2_0000)).expect("beyond the redistributors");
    let e = assert_error!(
        run(BOARD, &with("", 0x080D_0000, 0x1000)),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].ipa"),
        ErrorKind::Overlap { .. }
    );
    assert!(e.to_string().contains("the GIC redistributors"), "{e}");
}

#[test]
fn a_device_over_the_console_page_is_rejected() {
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "devices = [\"rtc\"]\nconsole_pl011 = 0x0901_0000",
    ));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("console_pl011"),
        ErrorKind::Overlap { .. }
    );
}

#[test]
fn a_misaligned_console_is_rejected() {
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "console_pl011 = 0x0900_0800",
    ));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("console_pl011"),
        ErrorKind::Misaligned { .. }
    );
}

#[test]
fn memory_outside_ram_is_rejected() {
    // Straddles the end of RAM at 0x8000_0000.
    assert_error!(
        run(BOARD, &set(&part("alpha", "[0]", 0x7e00_0000, ""))),
        SET_FILE,
        Some("alpha"),
        Some("memory[0].phys"),
        ErrorKind::OutsideRam { .. }
    );
}

#[test]
fn memory_over_the_hypervisor_is_rejected() {
    assert_error!(
        run(BOARD, &set(&part("alpha", "[0]", 0x4100_0000, ""))),
        SET_FILE,
        Some("alpha"),
        Some("memory[0].phys"),
        ErrorKind::OverlapsHypervisor { .. }
    );
}

#[test]
fn regions_are_sorted_by_ipa() {
    let alpha = part("alpha", "[0]", 0x5000_0000, "")
        + "[[partition.memory]]\nipa = 0x2000_0000\nphys = 0x6000_0000\nsize = 0x10_0000\n";
    let c = run(BOARD, &set(&alpha)).expect("valid");
    let ipas: Vec<u64> = c.partitions[0].memory.iter().map(|m| m.ipa).collect();
    assert_eq!(ipas, [0x2000_0000, 0x4000_0000]);
    // The device tree goes in the lowest region, which the image is not in.
    let dt = c.partitions[0].device_tree.as_ref().expect("device tree");
    assert_eq!(dt.ipa, 0x2010_0000 - 0x1_0000);
}

// ---- devices and interrupts ---------------------------------------------------

#[test]
fn an_unknown_device_is_rejected() {
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "devices = [\"rtc\", \"uart1\"]",
    ));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("devices[1]"),
        ErrorKind::UnknownDevice { .. }
    );
}

#[test]
fn a_device_taken_twice_is_rejected() {
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "devices = [\"rtc\", \"rtc\"]",
    ));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("devices[1]"),
        ErrorKind::DeviceTwice { owner: None, .. }
    );
    let config = set(&(part("alpha", "[0]", 0x5000_0000, "devices = [\"rtc\"]")
        + &part("beta", "[1]", 0x5400_0000, "devices = [\"gpio\", \"rtc\"]")));
    let e = assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("beta"),
        Some("devices[1]"),
        ErrorKind::DeviceTwice { owner: Some(_), .. }
    );
    assert!(
        e.to_string()
            .ends_with("device \"rtc\" is already given to partition \"alpha\"")
    );
}

#[test]
fn an_interrupt_owned_twice_is_rejected() {
    // A board where two devices share a line: they cannot go to two partitions.
    let board = BOARD.replace("interrupts = [39]", "interrupts = [34]");
    let config = set(&(part("alpha", "[0]", 0x5000_0000, "devices = [\"rtc\"]")
        + &part("beta", "[1]", 0x5400_0000, "devices = [\"gpio\"]")));
    let e = assert_error!(
        run(&board, &config),
        SET_FILE,
        Some("beta"),
        Some("devices[0]"),
        ErrorKind::InterruptTwice { intid: 34, .. }
    );
    assert!(
        e.to_string()
            .contains("device \"rtc\" of partition \"alpha\""),
        "{e}"
    );
    // ...but both may go to one.
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "devices = [\"rtc\", \"gpio\"]",
    ));
    run(&board, &config).expect("one partition may own a shared line");

    // A passthrough device on INTID 33 clashes with the emulated PL011's.
    let board = BOARD.replace("interrupts = [39]", "interrupts = [33]");
    let config = set(&part(
        "alpha",
        "[0]",
        0x5000_0000,
        "devices = [\"gpio\"]\nconsole_pl011 = 0x0900_0000",
    ));
    assert_error!(
        run(&board, &config),
        SET_FILE,
        Some("alpha"),
        Some("devices[0]"),
        ErrorKind::InterruptTwice { intid: 33, .. }
    );
}

// ---- images -----------------------------------------------------------------

#[test]
fn a_missing_image_is_rejected() {
    let e = assert_error!(
        run(
            BOARD,
            &two().replacen("image = \"guest\"", "image = \"missing\"", 1)
        ),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::ImageNotFound { .. }
    );
    assert!(e.to_string().contains("scripts/build.sh"), "{e}");
}

#[test]
fn a_malformed_elf_is_rejected() {
    assert_error!(
        run(
            BOARD,
            &two().replacen("image = \"guest\"", "image = \"truncated\"", 1)
        ),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::BadElf {
            error: ElfError::Truncated
        }
    );
}

#[test]
fn an_image_that_does_not_fit_is_rejected() {
    // 256 MiB of .bss in a 64 MiB region.
    let e = assert_error!(
        run(
            BOARD,
            &two().replacen("image = \"guest\"", "image = \"huge\"", 1)
        ),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::ImageOutsideMemory { .. }
    );
    assert!(e.to_string().contains("0x40000000..0x50000000"), "{e}");
}

#[test]
fn an_image_over_the_device_tree_is_rejected() {
    let config = two().replacen("image = \"guest\"", "image = \"top\"", 1);
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::ImageOverlapsDeviceTree { .. }
    );
    // Without a device tree, the top of memory is the image's.
    let config = config.replacen("image = \"top\"", "image = \"top\"\ndevice_tree = false", 1);
    let c = run(BOARD, &config).expect("no device-tree area");
    assert!(c.partitions[0].device_tree.is_none());
}

#[test]
fn an_entry_outside_memory_is_rejected() {
    let config = two().replacen(
        "image = \"guest\"",
        "image = \"guest\"\nentry = 0x8000_0000",
        1,
    );
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("entry"),
        ErrorKind::EntryOutsideMemory { entry: 0x8000_0000 }
    );
}

#[test]
fn an_entry_on_the_last_byte_of_memory_is_accepted_one_past_it_is_not() {
    // The region is 0x4000_0000..0x4400_0000.
    let with_entry = |entry: u64| {
        two().replacen(
            "image = \"guest\"",
            &format!("image = \"guest\"\nentry = {entry:#x}"),
            1,
        )
    };
    let c = run(BOARD, &with_entry(0x43ff_ffff)).expect("entry on the last byte");
    assert_eq!(c.partitions[0].entry, 0x43ff_ffff);
    let e = assert_error!(
        run(BOARD, &with_entry(0x4400_0000)),
        SET_FILE,
        Some("alpha"),
        Some("entry"),
        ErrorKind::EntryOutsideMemory { entry: 0x4400_0000 }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{SET_FILE}: partition \"alpha\": entry: entry point 0x44000000 is not inside \
             a memory region of the partition"
        )
    );
}

#[test]
fn an_empty_raw_image_at_the_end_of_a_region_is_outside_it() {
    let config = set(&with_image(
        &part(
            "alpha",
            "[0]",
            0x5000_0000,
            "device_tree = false\nload = 0x4400_0000\nentry = 0x4000_0000",
        ),
        "raw-0",
    ));
    let e = assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::ImageOutsideMemory { .. }
    );
    assert!(
        e.to_string().ends_with(
            "the image's bytes at 0x44000000..0x44000000 are not inside one memory region \
             of the partition"
        ),
        "{e}"
    );
}

#[test]
fn raw_images_need_load_and_entry() {
    let raw = |extra: &str| {
        set(&part("alpha", "[0]", 0x5000_0000, &format!("{extra}\n"))
            .replace("\"guest\"", "\"raw\""))
    };
    assert_error!(
        run(BOARD, &raw("entry = 0x4000_0000")),
        SET_FILE,
        Some("alpha"),
        Some("load"),
        ErrorKind::RawImageWithoutLoad
    );
    assert_error!(
        run(BOARD, &raw("load = 0x4020_0000")),
        SET_FILE,
        Some("alpha"),
        Some("entry"),
        ErrorKind::RawImageWithoutEntry
    );
    let c = run(BOARD, &raw("load = 0x4020_0000\nentry = 0x4020_0000")).expect("valid raw image");
    assert_eq!(c.partitions[0].image.ipa, 0x4020_0000);
    assert_eq!(c.partitions[0].image.bytes, b"RAW IMAGE BYTES");
    assert_eq!(c.partitions[0].entry, 0x4020_0000);
}

#[test]
fn load_is_refused_for_an_elf() {
    let config = two().replacen(
        "image = \"guest\"",
        "image = \"guest\"\nload = 0x4000_0000",
        1,
    );
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("alpha"),
        Some("load"),
        ErrorKind::LoadForElf
    );
}

#[test]
fn a_lowest_region_of_64_kib_holds_the_device_tree_one_page_less_does_not() {
    let alpha = |size: u64| {
        set(&(part("alpha", "[0]", 0x5000_0000, "")
            + &format!(
                "[[partition.memory]]\nipa = 0x1000_0000\nphys = 0x6000_0000\nsize = {size:#x}\n"
            )))
    };
    let c = run(BOARD, &alpha(0x1_0000)).expect("the area fills the region");
    let dt = c.partitions[0].device_tree.as_ref().expect("device tree");
    assert_eq!(dt.ipa, 0x1000_0000);
    assert_error!(
        run(BOARD, &alpha(0xf000)),
        SET_FILE,
        Some("alpha"),
        Some("memory[1].size"),
        ErrorKind::RegionTooSmallForDeviceTree { size: 0xf000 }
    );
}

/// The test board with its hypervisor range fixed at `size` bytes.
fn board_with_hypervisor(size: u64) -> String {
    BOARD.replace("size = 0x0200_0000", &format!("size = {size:#x}"))
}

/// A partition from [`part`] without a device tree, with `image`.
fn bare(name: &str, cpus: &str, phys: u64, image: &str) -> String {
    with_image(&part(name, cpus, phys, "device_tree = false"), image)
}

/// The heap the build counts for `n` partitions from [`bare`]: 4 stage-2
/// tables each (the root, a level-2 table for 64 MiB of memory that 2 MiB
/// blocks map, 2 for the control page).
fn bare_heap(n: u64) -> u64 {
    budget::HEAP_BASE + n * (budget::PARTITION_HEAP + 4 * budget::TABLE)
}

#[test]
fn a_set_needing_exactly_the_fixed_hypervisor_range_fits_one_byte_more_does_not() {
    // Code, two images and the heap make exactly 2 MiB.
    let room = 2 << 20;
    let each = (room - budget::CODE_BUDGET - bare_heap(2)) / 2;
    let board = board_with_hypervisor(room);
    let pair = |beta: u64| {
        set(
            &(bare("alpha", "[0]", 0x5000_0000, &format!("span-{each:x}"))
                + &bare("beta", "[1]", 0x5400_0000, &format!("span-{beta:x}"))),
        )
    };
    let c = run(&board, &pair(each)).expect("exactly the fixed size");
    assert_eq!(c.hypervisor.size, room);
    assert_eq!(c.need.total(), room);
    let e = assert_error!(
        run(&board, &pair(each + 1)),
        SET_FILE,
        None,
        None,
        ErrorKind::HypervisorTooLarge {
            room: 0x20_0000,
            ..
        }
    );
    assert!(
        e.to_string().ends_with(&format!(
            "the hypervisor needs 0x400000 bytes of RAM for this set (0x100000 for its code, \
             {:#x} for the images, initrds and device trees it embeds, {:#x} of heap), more \
             than the 0x200000 bytes the board lets it take (its [hypervisor].size, or the RAM \
             from [hypervisor].base to the end of its range)",
            2 * each + 1,
            bare_heap(2)
        )),
        "{e}"
    );
}

#[test]
fn an_image_spanning_more_than_the_hypervisor_may_take_is_refused_before_it_is_flattened() {
    let board = board_with_hypervisor(0x20_0000);
    let alpha = |image: &str| set(&bare("alpha", "[0]", 0x5000_0000, image));
    // A span of the whole room passes the image's own check; the total,
    // with code and heap, does not fit.
    assert_error!(
        run(&board, &alpha("span-200000")),
        SET_FILE,
        None,
        None,
        ErrorKind::HypervisorTooLarge { .. }
    );
    // One byte more is refused at the image, before a blob is made.
    let e = assert_error!(
        run(&board, &alpha("span-200001")),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::BlobsTooLarge {
            total: 0x20_0001,
            hypervisor: 0x20_0000
        }
    );
    assert!(
        e.to_string().ends_with(
            "the image spans 0x200001 bytes, more than the 0x200000 bytes of RAM the \
             hypervisor that embeds it may take (board [hypervisor])"
        ),
        "{e}"
    );
}

#[test]
fn without_a_fixed_size_the_hypervisor_takes_what_the_set_needs() {
    let board = SHIPPED_BOARD;
    let c = run(board, &two()).expect("valid");
    assert_eq!(c.board.hypervisor.size, None);
    // 1 MiB of code, two 0x1004-byte images and device trees, the heap:
    // under 2 MiB, so one 2 MiB block.
    assert!(c.need.total() == budget::ROUND, "{:?}", c.need);
    assert_eq!(
        (c.hypervisor.base, c.hypervisor.size),
        (0x4020_0000, 0x20_0000)
    );
    // Memory may start right after it, not a page earlier.
    let at = |phys: u64| {
        set(&(part("alpha", "[0, 1]", phys, "") + &part("beta", "[2]", 0x5400_0000, "")))
    };
    run(board, &at(0x4040_0000)).expect("memory right after the hypervisor");
    let e = assert_error!(
        run(board, &at(0x403f_f000)),
        SET_FILE,
        Some("alpha"),
        Some("memory[0].phys"),
        ErrorKind::OverlapsHypervisor { .. }
    );
    assert!(
        e.to_string()
            .contains("overlaps the hypervisor's RAM 0x40200000..0x40400000"),
        "{e}"
    );
    // A bigger image grows it, into the partition's memory.
    let big = set(
        &(with_image(&part("alpha", "[0, 1]", 0x4040_0000, ""), "span-100000")
            + &part("beta", "[2]", 0x5400_0000, "")),
    );
    assert_error!(
        run(board, &big),
        SET_FILE,
        Some("alpha"),
        Some("memory[0].phys"),
        ErrorKind::OverlapsHypervisor { .. }
    );
}

#[test]
fn without_a_fixed_size_the_hypervisor_may_grow_to_the_end_of_its_ram_range() {
    // 1 GiB of RAM from 0x4000_0000, the hypervisor from 0x4020_0000:
    // 1022 MiB of room.
    // An ELF with a byte at each end of two regions 1 GiB apart in guest
    // addresses spans more than that.
    let alpha = set(&(bare("alpha", "[0]", 0x5000_0000, "span-40000001")
        + "[[partition.memory]]\nipa = 0x8000_0000\nphys = 0x5400_0000\nsize = 0x0400_0000\n"));
    let e = assert_error!(
        run(SHIPPED_BOARD, &alpha),
        SET_FILE,
        Some("alpha"),
        Some("image"),
        ErrorKind::BlobsTooLarge {
            total: 0x4000_0001,
            hypervisor: 0x3fe0_0000
        }
    );
    assert!(e.to_string().contains("0x3fe00000 bytes"), "{e}");
}

#[test]
fn a_hypervisor_base_outside_ram_or_misaligned_is_rejected() {
    let board = SHIPPED_BOARD.replace("base = 0x4020_0000", "base = 0x3f00_0000");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("hypervisor"),
        ErrorKind::OutsideRam { .. }
    );
    let board = SHIPPED_BOARD.replace("base = 0x4020_0000", "base = 0x4020_0800");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("hypervisor.base"),
        ErrorKind::Misaligned { .. }
    );
}

// ---- Linux: arm64 Images, initrds, bootargs, device-tree placement ---------

/// A set of one partition "linux": CPUs 0 and 1, 256 MiB at IPA
/// 0x4000_0000 (phys 0x5000_0000), `image` loaded at 0x4020_0000, and the
/// `extra` lines in its table.
fn linux(image: &str, extra: &str) -> String {
    set(&format!(
        "[[partition]]\nname = \"linux\"\ncpus = [0, 1]\nimage = \"{image}\"\n\
         load = 0x4020_0000\n{extra}\n\
         [[partition.memory]]\nipa = 0x4000_0000\nphys = 0x5000_0000\nsize = 0x1000_0000\n"
    ))
}

/// An initrd of 0x3000 bytes at 128 MiB into the partition.
const INITRD: &str = "initrd = { file = \"initrd-3000\", at = 0x4800_0000 }";

/// `linux(image, extra)`'s error, asserted to be at `field` of partition "linux".
macro_rules! linux_error {
    ($image:expr, $extra:expr, $field:expr, $kind:pat) => {
        assert_error!(
            run(BOARD, &linux($image, $extra)),
            SET_FILE,
            Some("linux"),
            Some($field),
            $kind
        )
    };
}

#[test]
fn a_linux_image_boots_with_its_initrd_and_command_line_in_the_device_tree() {
    let extra = format!("bootargs = \"console=ttyAMA0 rdinit=/init\"\n{INITRD}");
    let c = run(BOARD, &linux("kernel-1000000", &extra)).expect("valid");
    let p = &c.partitions[0];
    let header = p.kernel.expect("an arm64 Image header");
    assert_eq!((header.text_offset, header.image_size), (0, 0x100_0000));
    // Loaded where `load` says; entered at its first byte by default.
    assert_eq!(
        (p.image.ipa, p.image.bytes.len()),
        (0x4020_0000, KERNEL_FILE)
    );
    assert_eq!(p.entry, 0x4020_0000);
    let initrd = p.initrd.as_ref().expect("initrd");
    assert_eq!((initrd.ipa, initrd.bytes.len()), (0x4800_0000, 0x3000));
    let dt = p.device_tree.as_ref().expect("device tree");
    assert_eq!(dt.ipa, 0x4fff_0000);
    // The hypervisor embeds all three.
    assert_eq!(c.need.blobs, (KERNEL_FILE + 0x3000 + dt.bytes.len()) as u64);

    let fdt = fdt::Fdt::new(&dt.bytes).expect("valid DTB");
    let chosen = fdt.find_node("/chosen").expect("/chosen");
    assert_eq!(
        chosen.property("bootargs").and_then(|p| p.as_str()),
        Some("console=ttyAMA0 rdinit=/init")
    );
    let u64_of = |name: &str| chosen.property(name).and_then(|p| p.as_usize());
    assert_eq!(u64_of("linux,initrd-start"), Some(0x4800_0000));
    assert_eq!(u64_of("linux,initrd-end"), Some(0x4800_3000));

    let rs = crate::codegen::config_rs(&c);
    let piece = "initrd: Some(Blob { ipa: Ipa(0x4800_0000), bytes: \
                 include_bytes!(concat!(env!(\"OUT_DIR\"), \"/linux.initrd\")) }),";
    assert!(rs.contains(piece), "missing {piece:?} in:\n{rs}");

    // `entry` still wins when given; without an initrd or bootargs,
    // /chosen has neither.
    let c = run(BOARD, &linux("kernel-10000", "entry = 0x4020_0040")).expect("valid");
    assert_eq!(c.partitions[0].entry, 0x4020_0040);
    let fdt = fdt::Fdt::new(dtb_of(&c, 0)).expect("valid DTB");
    let chosen = fdt.find_node("/chosen").expect("/chosen");
    assert!(chosen.property("bootargs").is_none());
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(crate::codegen::config_rs(&c).contains("initrd: None,"));
}

#[test]
fn a_linux_image_goes_text_offset_above_a_2_mib_boundary() {
    let at = |image: &str, load: &str| {
        linux(image, "").replace("load = 0x4020_0000", &format!("load = {load}"))
    };
    let e = assert_error!(
        run(BOARD, &at("kernel-10000", "0x4030_0000")),
        SET_FILE,
        Some("linux"),
        Some("load"),
        ErrorKind::KernelMisplaced {
            load: 0x4030_0000,
            text_offset: 0
        }
    );
    assert!(
        e.to_string().ends_with(
            "an arm64 Image goes text_offset (0x0) above a 2 MiB aligned address; \
             0x40300000 is not"
        ),
        "{e}"
    );
    // text_offset 0x8_0000: a 2 MiB boundary plus that, not the boundary.
    assert_error!(
        run(BOARD, &at("kernel-offset", "0x4020_0000")),
        SET_FILE,
        Some("linux"),
        Some("load"),
        ErrorKind::KernelMisplaced {
            text_offset: 0x8_0000,
            ..
        }
    );
    let c = run(BOARD, &at("kernel-offset", "0x4028_0000")).expect("text_offset above 2 MiB");
    assert_eq!(c.partitions[0].entry, 0x4028_0000);
}

#[test]
fn a_linux_images_bss_counts_as_its_memory_not_only_its_file() {
    // 256 MiB from 0x4000_0000; the device tree takes 0x4fff_0000..0x5000_0000.
    // The file (8 KiB at 0x4020_0000) fits either way; image_size decides.
    let e = linux_error!(
        "kernel-fe00001",
        "device_tree = false",
        "image",
        ErrorKind::KernelOutsideMemory {
            image_size: 0xfe0_0001,
            ..
        }
    );
    assert!(
        e.to_string().ends_with(
            "the arm64 Image takes 0x40200000..0x50000001 (image_size 0xfe00001 in its \
             header, its BSS included), not inside one memory region of the partition"
        ),
        "{e}"
    );
    run(BOARD, &linux("kernel-fe00000", "device_tree = false")).expect("exactly to the end");
    linux_error!(
        "kernel-fdf0001",
        "",
        "image",
        ErrorKind::ImageOverlapsDeviceTree { .. }
    );
    run(BOARD, &linux("kernel-fdf0000", "")).expect("up to the device tree");
}

#[test]
fn a_big_endian_linux_image_is_rejected() {
    linux_error!("kernel-big-endian", "", "image", ErrorKind::BigEndianImage);
}

#[test]
fn an_initrd_must_be_inside_memory_and_clear_of_the_image_and_device_tree() {
    let initrd = |file: &str, at: &str| format!("initrd = {{ file = \"{file}\", at = {at} }}");
    // Runs out of the region at 0x5000_0000.
    linux_error!(
        "kernel-10000",
        &initrd("initrd-3000", "0x4fff_e000"),
        "initrd.at",
        ErrorKind::InitrdOutsideMemory { .. }
    );
    let e = linux_error!(
        "kernel-10000",
        &initrd("initrd-3000", "0x4ffe_e000"),
        "initrd.at",
        ErrorKind::Overlap { .. }
    );
    assert!(
        e.to_string()
            .ends_with("overlaps the device-tree area (0x4fff0000..0x50000000)"),
        "{e}"
    );
    // The kernel's 8 KiB file ends at 0x4020_2000; its image_size (2 MiB)
    // at 0x4040_0000.
    let e = linux_error!(
        "kernel-200000",
        &initrd("initrd-3000", "0x4030_0000"),
        "initrd.at",
        ErrorKind::Overlap { .. }
    );
    assert!(
        e.to_string()
            .ends_with("overlaps the image (0x40200000..0x40400000)"),
        "{e}"
    );
    run(
        BOARD,
        &linux("kernel-200000", &initrd("initrd-3000", "0x4040_0000")),
    )
    .expect("right after the kernel's image_size");
    linux_error!(
        "kernel-10000",
        &initrd("initrd-3000", "0x4800_0800"),
        "initrd.at",
        ErrorKind::Misaligned { .. }
    );
}

#[test]
fn an_initrd_file_must_exist_and_hold_something() {
    let initrd = |file: &str| format!("initrd = {{ file = \"{file}\", at = 0x4800_0000 }}");
    let e = linux_error!(
        "kernel-10000",
        &initrd("missing"),
        "initrd.file",
        ErrorKind::InitrdNotFound { .. }
    );
    assert!(e.to_string().contains("scripts/linux.sh"), "{e}");
    linux_error!(
        "kernel-10000",
        &initrd("initrd-0"),
        "initrd.file",
        ErrorKind::EmptyInitrd
    );
    linux_error!(
        "kernel-10000",
        "initrd = { file = \"initrd-3000\" }",
        "initrd.at",
        ErrorKind::MissingField
    );
    linux_error!(
        "kernel-10000",
        "initrd = { file = \"initrd-3000\", at = 0x4800_0000, size = 0x3000 }",
        "initrd.size",
        ErrorKind::UnknownField { .. }
    );
}

#[test]
fn a_kernel_and_its_initrd_share_one_1_gib_aligned_window_of_at_most_32_gib() {
    // A second region, 512 MiB at IPA 0x8_3000_0000. The kernel's window
    // starts at 0x4000_0000 (1 GiB aligned): 32 GiB of it end at 0x8_4000_0000.
    let with_initrd_at = |at: u64| {
        linux(
            "kernel-10000",
            &format!("initrd = {{ file = \"initrd-3000\", at = {at:#x} }}"),
        ) + "[[partition.memory]]\nipa = 0x8_3000_0000\nphys = 0x6000_0000\nsize = 0x2000_0000\n"
    };
    run(BOARD, &with_initrd_at(0x8_3fff_d000)).expect("ends exactly 32 GiB from the window");
    let e = assert_error!(
        run(BOARD, &with_initrd_at(0x8_3fff_e000)),
        SET_FILE,
        Some("linux"),
        Some("initrd.at"),
        ErrorKind::KernelInitrdApart { .. }
    );
    assert!(e.to_string().contains("32 GiB"), "{e}");
}

#[test]
fn bootargs_fit_linuxs_command_line_and_a_device_tree_string() {
    let bootargs = |value: &str| format!("bootargs = \"{value}\"");
    run(BOARD, &linux("kernel-10000", &bootargs(&"x".repeat(2047)))).expect("2047 bytes");
    let e = linux_error!(
        "kernel-10000",
        &bootargs(&"x".repeat(2048)),
        "bootargs",
        ErrorKind::Bootargs { .. }
    );
    assert!(
        e.to_string()
            .ends_with("2048 bytes: Linux takes a command line of at most 2047"),
        "{e}"
    );
    linux_error!(
        "kernel-10000",
        &bootargs("console=ttyAMA0\\u0000quiet"),
        "bootargs",
        ErrorKind::Bootargs { .. }
    );
}

#[test]
fn what_goes_into_the_device_tree_needs_one() {
    for (extra, field) in [
        ("device_tree_at = 0x4000_0000", "device_tree_at"),
        ("bootargs = \"quiet\"", "bootargs"),
        (INITRD, "initrd"),
    ] {
        let e = linux_error!(
            "kernel-10000",
            &format!("device_tree = false\n{extra}"),
            field,
            ErrorKind::NeedsDeviceTree
        );
        assert!(e.to_string().contains("device_tree = false"), "{e}");
    }
}

#[test]
fn the_map_shows_where_the_initrd_and_a_moved_device_tree_are() {
    let text = |extra: &str| {
        let c = run(BOARD, &linux("kernel-10000", extra)).expect("valid");
        crate::map::text(&c)
    };
    let moved = text(&format!("{INITRD}\ndevice_tree_at = 0x4000_0000"));
    assert!(
        moved.contains("memory: phys 0x5000_0000; initrd at IPA 0x4800_0000; device"),
        "{moved}"
    );
    assert!(!moved.contains("    device tree: phys"), "{moved}");
    // By default the device tree is the region's tail, a row of its own.
    let default = text(INITRD);
    assert!(
        default.contains("0x4fff_0000  0x5000_0000  64 KiB     device tree: phys 0x5fff_0000"),
        "{default}"
    );
}

#[test]
fn device_tree_at_places_the_device_tree() {
    // At the base of RAM, where firmware-style guests look for it.
    let c = run(
        BOARD,
        &linux("kernel-10000", "device_tree_at = 0x4000_0000"),
    )
    .expect("valid");
    let dt = c.partitions[0].device_tree.as_ref().expect("device tree");
    assert_eq!(dt.ipa, 0x4000_0000);
    // The default area at the top is then the kernel's to use.
    run(
        BOARD,
        &linux("kernel-fe00000", "device_tree_at = 0x4000_0000"),
    )
    .expect("to the end");
    linux_error!(
        "kernel-10000",
        "device_tree_at = 0x4000_0800",
        "device_tree_at",
        ErrorKind::Misaligned { .. }
    );
    let e = linux_error!(
        "kernel-10000",
        "device_tree_at = 0x4fff_8000",
        "device_tree_at",
        ErrorKind::DeviceTreeOutsideMemory { .. }
    );
    assert!(e.to_string().contains("0x4fff8000..0x50008000"), "{e}");
    linux_error!(
        "kernel-10000",
        "device_tree_at = 0x4020_0000",
        "image",
        ErrorKind::ImageOverlapsDeviceTree { .. }
    );
}

// ---- board --------------------------------------------------------------------

#[test]
fn a_board_without_cpus_is_rejected() {
    let board: String = BOARD.replace("[[cpu]]\nmpidr = 0x", "# mpidr = ");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("cpu"),
        ErrorKind::NoCpus
    );
}

#[test]
fn a_duplicate_mpidr_is_rejected() {
    let board = BOARD.replace("mpidr = 0x3", "mpidr = 0x1");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("cpu[3].mpidr"),
        ErrorKind::DuplicateMpidr { mpidr: 1 }
    );
    let board = BOARD.replace("mpidr = 0x3", "mpidr = 0x8000_0003");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("cpu[3].mpidr"),
        ErrorKind::BadMpidr { .. }
    );
}

#[test]
fn an_unsupported_gic_version_is_rejected() {
    let board = BOARD.replace("version = 3", "version = 4");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("gic.version"),
        ErrorKind::GicVersion { version: 4 }
    );
    // A GICv2 key on a GICv3 board.
    let board = BOARD.replace("version = 3", "version = 3\ncpu_interface = 0x0801_0000");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("gic.cpu_interface"),
        ErrorKind::WrongGicField { version: 3 }
    );
    let board = BOARD.replace("maintenance_intid = 25", "maintenance_intid = 40");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("gic.maintenance_intid"),
        ErrorKind::NotPpi { intid: 40 }
    );
}

#[test]
fn a_hypervisor_range_outside_ram_is_rejected() {
    let board = BOARD.replace(
        "[hypervisor]\nbase = 0x4000_0000",
        "[hypervisor]\nbase = 0x3f00_0000",
    );
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("hypervisor"),
        ErrorKind::OutsideRam { .. }
    );
}

/// The board UART's interrupt, for console input: an SPI that no device has.
#[test]
fn the_uart_interrupt_is_an_spi_of_its_own() {
    let with = |intid: u32| {
        BOARD.replace(
            "size = 0x1000\n\n[gic]",
            &format!("size = 0x1000\ninterrupt = {intid}\n\n[gic]"),
        )
    };
    assert!(run(&with(33), &two()).is_ok());
    assert_error!(
        run(&with(27), &two()),
        BOARD_FILE,
        None,
        Some("uart.interrupt"),
        ErrorKind::NotSpi { intid: 27 }
    );
    assert_error!(
        run(&with(34), &two()),
        BOARD_FILE,
        None,
        Some("uart.interrupt"),
        ErrorKind::InterruptTwice { intid: 34, .. }
    );
}

#[test]
fn board_devices_are_checked() {
    let board = BOARD.replace("base = 0x0903_0000", "base = 0x0901_0000");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("device[1]"),
        ErrorKind::Overlap { .. }
    );
    let board = BOARD.replace("interrupts = [39]", "interrupts = [27]");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("device[1].interrupts[0]"),
        ErrorKind::NotSpi { intid: 27 }
    );
    let board = BOARD.replace("name = \"gpio\"", "name = \"rtc\"");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("device[1].name"),
        ErrorKind::DuplicateName { .. }
    );
    for compatible in ["[]", "[\"arm,pl061\", \"\"]"] {
        let board = BOARD.replace("[\"arm,pl061\", \"arm,primecell\"]", compatible);
        assert_error!(
            run(&board, &two()),
            BOARD_FILE,
            None,
            Some("device[1].compatible"),
            ErrorKind::NoCompatible
        );
    }
}

#[test]
fn board_devices_may_touch_the_gic_windows_but_not_overlap_them() {
    // The distributor is 0x0800_0000..0x0801_0000; four CPUs' redistributors
    // are 0x080A_0000..0x0812_0000.
    let gpio_at = |base: &str| BOARD.replace("base = 0x0903_0000", &format!("base = {base}"));
    for base in ["0x0801_0000", "0x0812_0000"] {
        run(&gpio_at(base), &two()).expect(base);
    }
    let cases = [
        ("0x0800_f000", "gic.distributor (0x8000000..0x8010000)"),
        ("0x0811_f000", "gic.redistributor (0x80a0000..0x8120000)"),
    ];
    for (base, window) in cases {
        let e = assert_error!(
            run(&gpio_at(base), &two()),
            BOARD_FILE,
            None,
            Some("device[1]"),
            ErrorKind::Overlap { .. }
        );
        assert!(
            e.to_string().ends_with(&format!("overlaps {window}")),
            "{e}"
        );
    }
    let board = BOARD.replace("distributor = 0x0800_0000", "distributor = 0x0800_0800");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("gic.distributor"),
        ErrorKind::Misaligned {
            value: 0x0800_0800,
            ..
        }
    );
}

/// The board as a GICv2 machine (QEMU virt with gic-version=2).
fn gicv2_board() -> String {
    BOARD.replace(
        "version = 3\ndistributor = 0x0800_0000\nredistributor = 0x080A_0000\nmaintenance_intid = 25",
        "version = 2\ndistributor = 0x0800_0000\ncpu_interface = 0x0801_0000\n\
         hyp_interface = 0x0803_0000\nvirtual_cpu_interface = 0x0804_0000\nmaintenance_intid = 25",
    )
}

#[test]
fn a_gicv2_board_is_accepted() {
    let c = run(&gicv2_board(), DEMO).expect("GICv2 board");
    assert!(matches!(
        c.board.gic,
        GicConfig::V2 {
            cpu_interface: PhysAddr(0x0801_0000),
            virtual_cpu_interface: PhysAddr(0x0804_0000),
            hyp_interface_aliases: None,
            ..
        }
    ));
    let fdt = fdt::Fdt::new(dtb_of(&c, 0)).expect("valid DTB");
    let gic = fdt
        .find_compatible(&["arm,cortex-a15-gic"])
        .expect("GICv2 node");
    let reg: Vec<(usize, Option<usize>)> = gic
        .reg()
        .expect("reg")
        .map(|r| (r.starting_address as usize, r.size))
        .collect();
    assert_eq!(
        reg,
        [(0x0800_0000, Some(0x1000)), (0x0801_0000, Some(0x2000))]
    );
    let missing = gicv2_board().replace("hyp_interface = 0x0803_0000\n", "");
    assert_error!(
        run(&missing, DEMO),
        BOARD_FILE,
        None,
        Some("gic.hyp_interface"),
        ErrorKind::MissingField
    );
}

// ---- device tree --------------------------------------------------------------

#[test]
fn the_device_tree_describes_the_partition() {
    let c = run(BOARD, DEMO).expect("valid");
    let alpha = &c.partitions[0];
    let dt = &alpha.device_tree.as_ref().expect("device tree").bytes;
    let fdt = fdt::Fdt::new(dt).expect("valid DTB");

    assert_eq!(fdt.root().model(), "Bulkhead partition alpha");
    assert!(
        fdt.root()
            .compatible()
            .all()
            .any(|c| c == "bulkhead,partition")
    );

    let memory: Vec<(usize, Option<usize>)> = fdt
        .memory()
        .regions()
        .map(|r| (r.starting_address as usize, r.size))
        .collect();
    assert_eq!(memory, [(0x4000_0000, Some(0x400_0000))]);

    let cpus: Vec<usize> = fdt.cpus().map(|c| c.ids().first()).collect();
    assert_eq!(cpus, [0, 1]);
    for cpu in fdt.cpus() {
        let method = cpu.property("enable-method").and_then(|p| p.as_str());
        assert_eq!(method, Some("psci"));
    }

    let control = fdt
        .find_compatible(&["bulkhead,control-page"])
        .expect("control page node");
    let reg = control.reg().and_then(|mut r| r.next()).expect("reg");
    assert_eq!(
        (reg.starting_address as u64, reg.size),
        (crate::check::DEFAULT_CONTROL_PAGE, Some(0x1000))
    );
    assert_eq!(alpha.control_page, crate::check::DEFAULT_CONTROL_PAGE);

    let psci = fdt.find_node("/psci").expect("psci node");
    assert_eq!(
        psci.property("method").and_then(|p| p.as_str()),
        Some("hvc")
    );
    let compatible: Vec<&str> = psci.compatible().expect("compatible").all().collect();
    assert_eq!(compatible, ["arm,psci-1.0", "arm,psci-0.2"]);

    let gic = fdt.find_compatible(&["arm,gic-v3"]).expect("GICv3 node");
    let reg: Vec<(usize, Option<usize>)> = gic
        .reg()
        .expect("reg")
        .map(|r| (r.starting_address as usize, r.size))
        .collect();
    // Two vCPUs: two redistributor frames of 128 KiB.
    assert_eq!(
        reg,
        [(0x0800_0000, Some(0x1_0000)), (0x080A_0000, Some(0x4_0000))]
    );
    assert_eq!(gic.interrupt_cells(), Some(3));
    assert!(gic.property("interrupt-controller").is_some());

    let timer = fdt.find_compatible(&["arm,armv8-timer"]).expect("timer");
    let cells = timer.property("interrupts").expect("interrupts").value;
    assert_eq!(cells.len(), 4 * 3 * 4);
    assert_eq!(&cells[4..8], &13u32.to_be_bytes());

    let stdout = fdt.chosen().stdout().expect("stdout-path resolves");
    assert_eq!(stdout.name, "pl011@9000000");
    let pl011 = fdt.find_compatible(&["arm,pl011"]).expect("pl011");
    let reg: Vec<usize> = pl011
        .reg()
        .expect("reg")
        .map(|r| r.starting_address as usize)
        .collect();
    assert_eq!(reg, [0x0900_0000]);
    let clock_names: Vec<&str> = pl011
        .property("clock-names")
        .map(|p| p.value.split(|&b| b == 0).filter(|s| !s.is_empty()))
        .into_iter()
        .flatten()
        .filter_map(|s| std::str::from_utf8(s).ok())
        .collect();
    assert_eq!(clock_names, ["uartclk", "apb_pclk"]);

    // beta has the rtc, with its SPI 2 (INTID 34).
    let fdt = fdt::Fdt::new(dtb_of(&c, 1)).expect("valid DTB");
    let rtc = fdt.find_compatible(&["arm,pl031"]).expect("rtc node");
    let cells = rtc.property("interrupts").expect("interrupts").value;
    assert_eq!(cells, be_cells(&[0, 2, 4]));
    assert_eq!(fdt.cpus().count(), 1);
}

/// The timer's `interrupts` value when every PPI has flags `flags`.
fn timer_cells(flags: u32) -> Vec<u8> {
    be_cells(&[1, 13, flags, 1, 14, flags, 1, 11, flags, 1, 10, flags])
}

#[test]
fn timer_ppi_flags_carry_the_cpu_mask_on_gicv2_only() {
    let timer = |dt: &[u8]| {
        let fdt = fdt::Fdt::new(dt).expect("valid DTB");
        let node = fdt.find_compatible(&["arm,armv8-timer"]).expect("timer");
        node.property("interrupts")
            .expect("interrupts")
            .value
            .to_vec()
    };
    // GICv2: bits 15:8 are the vCPUs the PPI goes to (alpha 2, beta 1), then
    // level-high (4).
    let c = run(&gicv2_board(), DEMO).expect("GICv2 board");
    assert_eq!(timer(dtb_of(&c, 0)), timer_cells(0x304));
    assert_eq!(timer(dtb_of(&c, 1)), timer_cells(0x104));
    // GICv3: level-high alone.
    let c = run(BOARD, DEMO).expect("GICv3 board");
    assert_eq!(timer(dtb_of(&c, 0)), timer_cells(4));
}

/// The board with one more device, "fifo" at 0x0904_0000, that is not a
/// primecell, with one `compatible` string.
fn board_with_fifo(compatible: &str) -> String {
    format!(
        "{BOARD}\n[[device]]\nname = \"fifo\"\ncompatible = [\"{compatible}\"]\n\
         base = 0x0904_0000\nsize = 0x1000\n"
    )
}

#[test]
fn the_pl011_clock_exists_only_for_a_console_or_a_primecell_device() {
    let board = board_with_fifo("acme,fifo");
    let one = |extra: &str| {
        let c = run(&board, &set(&part("alpha", "[0]", 0x5000_0000, extra))).expect("valid");
        dtb_of(&c, 0).to_vec()
    };
    let clock_phandle = be_cells(&[2]);

    // A console: the clock, and the PL011 on SPI 1 with it twice.
    let dt = one("console_pl011 = 0x0900_0000");
    let fdt = fdt::Fdt::new(&dt).expect("valid DTB");
    let clock = fdt.find_node("/apb-pclk").expect("clock node");
    let frequency = clock.property("clock-frequency").and_then(|p| p.as_usize());
    assert_eq!(frequency, Some(24_000_000));
    let phandle = clock.property("phandle").expect("phandle").value;
    assert_eq!(phandle, clock_phandle);
    let pl011 = fdt.find_compatible(&["arm,pl011"]).expect("pl011");
    let interrupts = pl011.property("interrupts").expect("interrupts").value;
    assert_eq!(interrupts, be_cells(&[0, 1, 4]));
    let clocks = pl011.property("clocks").expect("clocks").value;
    assert_eq!(clocks, be_cells(&[2, 2]));

    // A primecell device without a console: the clock, and the device uses it.
    let dt = one("devices = [\"rtc\"]");
    let fdt = fdt::Fdt::new(&dt).expect("valid DTB");
    assert!(fdt.find_node("/apb-pclk").is_some());
    let rtc = fdt.find_compatible(&["arm,pl031"]).expect("rtc");
    assert_eq!(rtc.property("clocks").expect("clocks").value, clock_phandle);

    // Neither, with or without another device: no clock.
    for extra in ["", "devices = [\"fifo\"]"] {
        let dt = one(extra);
        let fdt = fdt::Fdt::new(&dt).expect("valid DTB");
        assert!(fdt.find_node("/apb-pclk").is_none(), "{extra:?}");
        assert!(fdt.find_compatible(&["arm,pl011"]).is_none(), "{extra:?}");
        let fifo = fdt.find_compatible(&["acme,fifo"]);
        assert_eq!(fifo.is_some(), !extra.is_empty());
        assert!(fifo.and_then(|f| f.property("clocks")).is_none());
    }
}

#[test]
fn a_device_tree_of_exactly_64_kib_fits_its_area_4_bytes_more_do_not() {
    // The fifo's one compatible string makes the tree as large as needed.
    let config = set(&part("alpha", "[0]", 0x5000_0000, "devices = [\"fifo\"]"));
    let with_compatible = |len: usize| run(&board_with_fifo(&"x".repeat(len)), &config);
    let size = |len: usize| {
        let c = with_compatible(len).expect("the tree fits");
        dtb_of(&c, 0).len()
    };
    // A string's bytes and its NUL are padded to 4: with lengths 3, 7, 11...
    // the tree grows 4 bytes at a time.
    let small = size(3);
    let grow = 0x1_0000 - small;
    assert_eq!(
        grow % 4,
        0,
        "a {small}-byte tree cannot grow to 64 KiB in steps of 4"
    );
    assert_eq!(size(3 + grow), 0x1_0000);
    assert_error!(
        with_compatible(3 + grow + 4),
        SET_FILE,
        Some("alpha"),
        Some("device_tree"),
        ErrorKind::DeviceTree {
            error: vm_fdt::Error::TotalSizeTooLarge
        }
    );
}

// ---- the map -------------------------------------------------------------------

/// The committed picture of the demo set, which the README shows.
const DEMO_MAP: &str = include_str!("../../../boards/qemu-virt/demo-map.svg");

/// `map::svg` draws the demo set exactly as the committed picture shows it
/// (the repository's tests/map.rs checks the same through scripts/build.sh,
/// which regenerates it: `scripts/build.sh --map --svg boards/qemu-virt/demo-map.svg`).
#[test]
fn the_demo_is_drawn_as_the_committed_picture() {
    let demo = "boards/qemu-virt/demo.toml";
    let c =
        crate::check(SHIPPED_BOARD, BOARD_FILE, DEMO, demo, &images).expect("demo.toml is valid");
    let svg = crate::map::svg(&c);
    let first_difference = svg.lines().zip(DEMO_MAP.lines()).position(|(a, b)| a != b);
    assert!(
        svg == DEMO_MAP,
        "the demo's map differs from the committed one (first at line {:?})",
        first_difference.map(|i| i + 1)
    );
}

// ---- generated code and build -----------------------------------------------

#[test]
fn generated_rust_has_the_expected_shape() {
    let c = run(BOARD, DEMO).expect("valid");
    let rs = crate::codegen::config_rs(&c);
    for piece in [
        "pub static CONFIG: Config = Config {",
        "source: \"boards/qemu-virt/set.toml\",",
        "name: \"qemu-virt\",",
        "ram: &[Range { base: PhysAddr(0x4000_0000), size: 0x4000_0000 }],",
        "hypervisor: Range { base: PhysAddr(0x4000_0000), size: 0x200_0000 },",
        "gic: GicConfig::V3 { distributor: PhysAddr(0x800_0000), redistributor: PhysAddr(0x80a_0000), \
         maintenance_intid: 25 },",
        "CpuConfig { mpidr: 0x3, spin_table: None }",
        "power: Power::Psci,",
        "name: \"alpha\",",
        "cpus: &[0, 1],",
        "vmpidrs: &[0x0, 0x1],",
        "MemoryRegion { ipa: Ipa(0x4000_0000), phys: PhysAddr(0x5000_0000), size: 0x400_0000 },",
        "image: Blob { ipa: Ipa(0x4000_0000), bytes: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/alpha.img\")) },",
        "entry: Ipa(0x4000_0000),",
        "device_tree: Some(Blob { ipa: Ipa(0x43ff_0000), bytes: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/alpha.dtb\")) }),",
        "console_pl011: Some(Ipa(0x900_0000)),",
        "control_page: Ipa(0x7fff_f000),",
        "on_fault: OnFault::Stop,",
        "devices: &[DeviceConfig { name: \"rtc\", ipa: Ipa(0x901_0000), phys: PhysAddr(0x901_0000), size: 0x1000, \
         interrupts: &[34], edge: false }],",
        "doorbell_page: Some(Ipa(0xa00_0000)),",
        // Placed from the top of RAM down, in file order.
        "SharedMapping { name: \"bulletin\", ipa: Ipa(0x7000_2000), phys: PhysAddr(0x7fff_d000), size: 0x1000, \
         access: Access::ReadOnly }",
        "SharedMapping { name: \"ring-alpha-beta\", ipa: Ipa(0x7000_0000), phys: PhysAddr(0x7fff_f000), \
         size: 0x1000, access: Access::ReadWrite }",
        "shared: &[SharedRegion { name: \"ring-alpha-beta\", phys: PhysAddr(0x7fff_f000), size: 0x1000 }, \
         SharedRegion { name: \"ring-beta-alpha\", phys: PhysAddr(0x7fff_e000), size: 0x1000 }, \
         SharedRegion { name: \"bulletin\", phys: PhysAddr(0x7fff_d000), size: 0x1000 }],",
        "doorbells: &[DoorbellConfig { name: \"alpha-to-beta\", from: 0, to: 1, vcpu: 0, intid: 48, channel: 0 }, \
         DoorbellConfig { name: \"beta-to-alpha\", from: 1, to: 0, vcpu: 0, intid: 48, channel: 0 }],",
    ] {
        assert!(rs.contains(piece), "missing {piece:?} in:\n{rs}");
    }
    assert_eq!(rs.matches("pub static").count(), 1);
    // The board fixes the range (32 MiB); the heap is what the build
    // counted: 256 KiB, 64 KiB a partition, and 22 stage-2 tables (alpha:
    // its root, a level-2 table for its memory, which 2 MiB blocks map,
    // 2 for its control page and 2 for each of its 3 shared regions; beta:
    // the same and 2 for its RTC).
    assert_eq!(
        crate::codegen::memory_ld(&c),
        "HYP_BASE = 0x40000000;\nHYP_SIZE = 0x2000000;\nHYP_HEAP = 0x76000;\n"
    );
}

/// A scratch directory for one test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bulkhead-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// A repository with the shipped board, a partition set and guest images.
fn scratch_repo(name: &str, set_toml: &str) -> PathBuf {
    let root = scratch(name);
    std::fs::create_dir_all(root.join("boards/qemu-virt")).expect("mkdir");
    std::fs::create_dir_all(root.join("guests")).expect("mkdir");
    std::fs::create_dir_all(root.join("out")).expect("mkdir");
    std::fs::write(root.join("boards/qemu-virt/board.toml"), BOARD).expect("write");
    std::fs::write(root.join("boards/qemu-virt/demo.toml"), set_toml).expect("write");
    for guest in ["demo-alpha", "demo-beta"] {
        std::fs::write(root.join("guests").join(guest), guest_elf()).expect("write");
    }
    root
}

fn build_in(root: &Path) -> Result<crate::BuildOutputs, ConfigError> {
    crate::build(&crate::BuildInputs {
        config: &root.join("boards/qemu-virt/demo.toml"),
        guest_dir: &root.join("guests"),
        out_dir: &root.join("out"),
        repo_root: root,
    })
}

/// A GICv2 board builds, and says which backend the hypervisor needs.
#[test]
fn a_gicv2_board_builds_for_the_gicv2_backend() {
    let root = scratch_repo("gicv2", DEMO);
    std::fs::write(root.join("boards/qemu-virt/board.toml"), gicv2_board()).expect("write");
    let out = build_in(&root).expect("a GICv2 board builds");
    assert_eq!(out.gic_version, 2);
    assert!(root.join("out/bulkhead_config.rs").exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn build_writes_the_generated_files() {
    let root = scratch_repo("build", DEMO);
    let out = build_in(&root).expect("build succeeds");
    assert_eq!(out.hypervisor, (0x4000_0000, 0x200_0000));
    assert_eq!(out.gic_version, 3);
    assert_eq!(out.files_read.len(), 4, "{:?}", out.files_read);
    assert!(out.files_read.contains(&root.join("guests/demo-beta")));
    assert!(
        out.files_read
            .contains(&root.join("boards/qemu-virt/board.toml"))
    );
    let read = |f: &str| std::fs::read(root.join("out").join(f)).expect("generated file");
    assert_eq!(
        read("memory.ld"),
        b"HYP_BASE = 0x40000000;\nHYP_SIZE = 0x2000000;\nHYP_HEAP = 0x76000;\n"
    );
    assert_eq!(&read("alpha.img")[0x1000..], b"DATA");
    assert!(fdt::Fdt::new(&read("beta.dtb")).is_ok());
    let rs = String::from_utf8(read("bulkhead_config.rs")).expect("UTF-8");
    assert!(
        rs.contains("source: \"boards/qemu-virt/demo.toml\""),
        "{rs}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn build_errors_show_paths_relative_to_the_repository() {
    let root = scratch_repo("build-error", &DEMO.replace("demo-beta", "demo-gamma"));
    let e = assert_error!(
        build_in(&root),
        "boards/qemu-virt/demo.toml",
        Some("beta"),
        Some("image"),
        ErrorKind::ImageNotFound { .. }
    );
    assert_eq!(
        e.to_string(),
        "boards/qemu-virt/demo.toml: partition \"beta\": image: guest image guests/demo-gamma \
         not found (guest images are built by scripts/build.sh)"
    );
    // A board that does not exist is the partition set's `board` field's fault.
    std::fs::write(
        root.join("boards/qemu-virt/demo.toml"),
        DEMO.replace("board = \"qemu-virt\"", "board = \"nope\""),
    )
    .expect("write");
    assert_error!(
        build_in(&root),
        "boards/qemu-virt/demo.toml",
        None,
        Some("board"),
        ErrorKind::Read { .. }
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn images_with_a_slash_are_relative_to_the_config() {
    let root = scratch_repo(
        "relative",
        &DEMO.replace("\"demo-beta\"", "\"../../guests/demo-beta\""),
    );
    build_in(&root).expect("image found relative to the partition set");
    let _ = std::fs::remove_dir_all(&root);
}

/// The generated file compiles against the hypervisor's own `src/config.rs`,
/// with `bulkhead_abi` (whose types `src/config.rs` re-exports) as the crate
/// it is to the hypervisor.
#[test]
fn generated_rust_compiles_against_the_config_types() {
    let root = scratch_repo("rustc", DEMO);
    build_in(&root).expect("build succeeds");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config_rs = manifest.join("../../src/config.rs");
    let abi_rs = manifest.join("../../guest-lib/abi/src/lib.rs");
    let rustc = || Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()));
    let abi_rmeta = root.join("libbulkhead_abi.rmeta");
    let abi = rustc()
        .args(["--edition", "2024", "--crate-type", "lib"])
        .args(["--crate-name", "bulkhead_abi", "--emit", "metadata", "-o"])
        .arg(&abi_rmeta)
        .arg(&abi_rs)
        .status()
        .expect("run rustc");
    assert!(abi.success(), "bulkhead-abi does not compile");
    let wrapper = root.join("wrapper.rs");
    std::fs::write(
        &wrapper,
        format!(
            "#![allow(dead_code, unused_attributes)]\n\
             #[path = {:?}]\nmod config;\n\
             mod generated {{\n    use crate::config::*;\n    \
             include!(concat!(env!(\"OUT_DIR\"), \"/bulkhead_config.rs\"));\n}}\n\
             pub fn partitions() -> usize {{ generated::CONFIG.partitions.len() }}\n",
            config_rs.display().to_string(),
        ),
    )
    .expect("write wrapper");
    let compiles = || {
        rustc()
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "lib",
                "--emit",
                "metadata",
                "-o",
            ])
            .arg(root.join("wrapper.rmeta"))
            .arg("--extern")
            .arg(format!("bulkhead_abi={}", abi_rmeta.display()))
            .arg(&wrapper)
            .env("OUT_DIR", root.join("out"))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run rustc")
            .success()
    };
    assert!(compiles(), "the generated code does not compile");
    // The limits are asserted again in the generated code: a board beyond
    // them (had the check let it through) fails to compile.
    let generated = root.join("out/bulkhead_config.rs");
    let text = std::fs::read_to_string(&generated).expect("generated file");
    let board_cpus = "const _: () = assert!(4 <= bulkhead_abi::limits::MAX_CPUS);";
    assert!(text.contains(board_cpus), "{text}");
    std::fs::write(
        &generated,
        text.replace(board_cpus, &board_cpus.replace('4', "9")),
    )
    .expect("rewrite");
    assert!(!compiles(), "9 CPUs compiled against a limit of 8");
    let _ = std::fs::remove_dir_all(&root);
}

/// The shipped board with each CPU parked in a spin table at `release[i]`.
fn spin_board(release: [u64; 4]) -> String {
    let mut board = BOARD.to_owned();
    for (i, address) in release.iter().enumerate() {
        board = board.replace(
            &format!("mpidr = 0x{i}\n"),
            &format!("mpidr = 0x{i}\nspin_table = {address:#x}\n"),
        );
    }
    board
}

#[test]
fn spin_tables_are_words_of_ram_no_one_else_has() {
    let ok = [0x4800_0000, 0x4800_0008, 0x4800_0010, 0x4800_0018];
    let checked = run(&spin_board(ok), &two()).unwrap();
    assert_eq!(checked.board.spin_tables, ok.map(Some).to_vec());

    let mixed = BOARD.replace("mpidr = 0x2\n", "mpidr = 0x2\nspin_table = 0x4800_0000\n");
    assert_error!(
        run(&mixed, &two()),
        BOARD_FILE,
        None,
        Some("cpu[0].spin_table"),
        ErrorKind::MissingField
    );
    for bad in [0x4800_0004, 0x4000_0000, 0x3fff_fff8] {
        assert_error!(
            run(&spin_board([ok[0], ok[1], ok[2], bad]), &two()),
            BOARD_FILE,
            None,
            Some("cpu[3].spin_table"),
            ErrorKind::SpinTable { .. }
        );
    }
    // In a partition's memory: its guest could start another partition's CPU.
    assert_error!(
        run(&spin_board([ok[0], ok[1], ok[2], 0x5400_0100]), &two()),
        SET_FILE,
        Some("beta"),
        Some("memory[0].phys"),
        ErrorKind::OverlapsSpinTable {
            address: 0x5400_0100,
            ..
        }
    );
}

#[test]
fn the_power_manager_is_a_page_of_its_own() {
    let board = format!("{BOARD}\n[power]\nbcm2835_watchdog = 0x0900_0000\n");
    assert_error!(
        run(&board, &two()),
        BOARD_FILE,
        None,
        Some("power.bcm2835_watchdog"),
        ErrorKind::Overlap { .. }
    );
    let board = board.replace("watchdog = 0x0900_0000", "watchdog = 0x0c00_0000");
    assert_eq!(
        run(&board, &two()).unwrap().board.bcm2835_watchdog,
        Some(0x0c00_0000)
    );
}

#[test]
fn a_qemu_device_tree_is_a_path_inside_the_kernel_package() {
    for bad in ["/etc/x.dtb", "../x.dtb", "broadcom/x.dts"] {
        let board =
            format!("{BOARD}\n[qemu]\nmachine = \"raspi4b\"\ncpu = \"max\"\ndtb = \"{bad}\"\n");
        assert_error!(
            run(&board, &two()),
            BOARD_FILE,
            None,
            Some("qemu.dtb"),
            ErrorKind::Qemu { .. }
        );
    }
    let board = format!(
        "{BOARD}\n[qemu]\nmachine = \"raspi4b\"\ncpu = \"max\"\n\
         dtb = \"broadcom/bcm2711-rpi-4-b.dtb\"\nmemory = \"2G\"\n"
    );
    let qemu = run(&board, &two()).unwrap().board.qemu.unwrap();
    assert_eq!(qemu.dtb.as_deref(), Some("broadcom/bcm2711-rpi-4-b.dtb"));
    assert_eq!(qemu.memory.as_deref(), Some("2G"));
}

// ---- channels: shared regions and doorbells ----------------------------------

/// alpha (2 vCPUs, doorbell page at 0x0a00_0000, PL011) and beta (1 vCPU,
/// the rtc, doorbell page), then `channels` ([[shared]] and [[doorbell]]).
fn with_channels(channels: &str) -> String {
    set(&(part(
        "alpha",
        "[0, 1]",
        0x5000_0000,
        "console_pl011 = 0x0900_0000\ndoorbell_page = 0x0a00_0000",
    ) + &part(
        "beta",
        "[2]",
        0x5400_0000,
        "devices = [\"rtc\"]\ndoorbell_page = 0x0a00_0000",
    ) + channels))
}

/// A [[shared]] region `name` of `size` bytes, `phys` extra lines, mapped
/// by each (partition, ipa, access) of `maps`.
fn shared(name: &str, size: u64, extra: &str, maps: &[(&str, u64, &str)]) -> String {
    let mut out = format!("[[shared]]\nname = \"{name}\"\nsize = {size:#x}\n{extra}\n");
    for (partition, ipa, access) in maps {
        out += &format!(
            "[[shared.map]]\npartition = \"{partition}\"\nipa = {ipa:#x}\naccess = \"{access}\"\n"
        );
    }
    out
}

/// A [[doorbell]] `name` from `from` to `to`'s vCPU `vcpu`, interrupt `intid`.
fn doorbell(name: &str, from: &str, to: &str, vcpu: usize, intid: u32) -> String {
    format!(
        "[[doorbell]]\nname = \"{name}\"\nfrom = \"{from}\"\nto = \"{to}\"\nvcpu = {vcpu}\nintid = {intid}\n"
    )
}

/// A region both map read-write at 0x7000_0000.
fn ring() -> String {
    shared(
        "ring",
        0x1000,
        "",
        &[("alpha", 0x7000_0000, "rw"), ("beta", 0x7000_0000, "rw")],
    )
}

#[test]
fn shared_regions_and_doorbells_reach_both_partitions() {
    let channels = ring()
        + &shared(
            "bulletin",
            0x4000,
            "phys = 0x6000_0000",
            &[("alpha", 0x7100_0000, "rw"), ("beta", 0x7200_0000, "ro")],
        )
        + &doorbell("a-to-b", "alpha", "beta", 0, 48)
        + &doorbell("b-to-a", "beta", "alpha", 1, 48)
        + &doorbell("a-to-b-2", "alpha", "beta", 0, 49);
    let c = run(BOARD, &with_channels(&channels)).expect("valid");
    // The region without `phys` at the top of RAM; the other where given.
    let phys: Vec<Option<u64>> = c.shared.iter().map(|r| r.phys).collect();
    assert_eq!(phys, [Some(0x7fff_f000), Some(0x6000_0000)]);
    let [alpha, beta] = &c.partitions[..] else {
        panic!("two partitions")
    };
    let view = |p: &crate::check::Partition| -> Vec<(String, u64, Option<u64>, bool)> {
        p.shared
            .iter()
            .map(|m| (m.name.clone(), m.ipa, m.phys, m.writable))
            .collect()
    };
    assert_eq!(
        view(alpha),
        [
            ("ring".to_owned(), 0x7000_0000, Some(0x7fff_f000), true),
            ("bulletin".to_owned(), 0x7100_0000, Some(0x6000_0000), true),
        ]
    );
    assert_eq!(
        view(beta),
        [
            ("ring".to_owned(), 0x7000_0000, Some(0x7fff_f000), true),
            ("bulletin".to_owned(), 0x7200_0000, Some(0x6000_0000), false),
        ]
    );
    // Channel numbers count per ringing partition, in file order.
    let numbered: Vec<(&str, usize, usize, usize, u32, u32)> = c
        .doorbells
        .iter()
        .map(|d| (d.name.as_str(), d.from, d.to, d.vcpu, d.intid, d.channel))
        .collect();
    assert_eq!(
        numbered,
        [
            ("a-to-b", 0, 1, 0, 48, 0),
            ("b-to-a", 1, 0, 1, 48, 0),
            ("a-to-b-2", 0, 1, 0, 49, 1),
        ]
    );
    let rings: Vec<(&str, u32)> = alpha
        .rings
        .iter()
        .map(|d| (d.name.as_str(), d.channel))
        .collect();
    assert_eq!(rings, [("a-to-b", 0), ("a-to-b-2", 1)]);
    let receives: Vec<(&str, u32, &str)> = beta
        .receives
        .iter()
        .map(|d| (d.name.as_str(), d.intid, d.peer.as_str()))
        .collect();
    assert_eq!(
        receives,
        [("a-to-b", 48, "alpha"), ("a-to-b-2", 49, "alpha")]
    );
}

#[test]
fn the_device_tree_describes_the_channels() {
    let channels = ring()
        + &shared(
            "bulletin",
            0x4000,
            "",
            &[("alpha", 0x7100_0000, "rw"), ("beta", 0x7200_0000, "ro")],
        )
        + &doorbell("a-to-b", "alpha", "beta", 0, 48)
        + &doorbell("a-to-b-2", "alpha", "beta", 0, 50);
    let c = run(BOARD, &with_channels(&channels)).expect("valid");
    let reg_of = |node: &fdt::node::FdtNode| {
        let reg = node.reg().and_then(|mut r| r.next()).expect("reg");
        (reg.starting_address as u64, reg.size)
    };
    let compatible = |node: &fdt::node::FdtNode| -> Vec<String> {
        node.compatible()
            .expect("compatible")
            .all()
            .map(str::to_owned)
            .collect()
    };

    // beta: both regions (the bulletin read-only), no doorbell page (it
    // rings nothing), the two doorbells' interrupts.
    let fdt = fdt::Fdt::new(dtb_of(&c, 1)).expect("valid DTB");
    let ring = fdt.find_node("/shared-memory@70000000").expect("ring node");
    assert_eq!(compatible(&ring), ["bulkhead,shared-memory", "generic-uio"]);
    assert_eq!(reg_of(&ring), (0x7000_0000, Some(0x1000)));
    assert_eq!(
        ring.property("label").and_then(|p| p.as_str()),
        Some("ring")
    );
    assert!(ring.property("read-only").is_none());
    let bulletin = fdt
        .find_node("/shared-memory@72000000")
        .expect("bulletin node");
    assert_eq!(reg_of(&bulletin), (0x7200_0000, Some(0x4000)));
    assert!(bulletin.property("read-only").is_some());
    assert!(fdt.find_compatible(&["bulkhead,doorbell"]).is_none());
    let irq = fdt.find_node("/doorbell-a-to-b-2").expect("doorbell node");
    assert_eq!(
        compatible(&irq),
        ["bulkhead,doorbell-interrupt", "generic-uio"]
    );
    assert_eq!(
        irq.property("interrupts").map(|p| p.value),
        Some(&be_cells(&[0, 50 - 32, 1])[..]),
        "GIC_SPI, INTID - 32, IRQ_TYPE_EDGE_RISING"
    );
    assert_eq!(
        irq.property("bulkhead,vcpu").and_then(|p| p.as_usize()),
        Some(0)
    );
    assert!(fdt.find_node("/doorbell-a-to-b").is_some());

    // alpha: the bulletin writable, its doorbell page with its channels.
    let fdt = fdt::Fdt::new(dtb_of(&c, 0)).expect("valid DTB");
    let bulletin = fdt
        .find_node("/shared-memory@71000000")
        .expect("bulletin node");
    assert!(bulletin.property("read-only").is_none());
    let page = fdt.find_node("/doorbell@a000000").expect("doorbell page");
    assert_eq!(compatible(&page), ["bulkhead,doorbell", "generic-uio"]);
    assert_eq!(reg_of(&page), (0x0a00_0000, Some(0x1000)));
    assert_eq!(
        page.property("channel-names").map(|p| p.value),
        Some(&b"a-to-b\0a-to-b-2\0"[..]),
        "channel n is entry n"
    );
    assert!(
        fdt.find_compatible(&["bulkhead,doorbell-interrupt"])
            .is_none()
    );
}

#[test]
fn a_shared_region_over_other_physical_memory_is_rejected() {
    // Over a partition's memory, the hypervisor's RAM, another region,
    // outside RAM (the rtc's MMIO): each reported on the region's `phys`.
    let cases: [(u64, &str); 4] = [
        (0x5400_0000, "partition \"beta\" memory[0]"),
        (0x4100_0000, "the hypervisor's RAM"),
        (0x6000_1000, "shared region \"first\" (shared[0])"),
        (0x0901_0000, "not inside one board RAM range"),
    ];
    for (phys, says) in cases {
        let channels = shared(
            "first",
            0x2000,
            "phys = 0x6000_0000",
            &[("alpha", 0x7000_0000, "rw")],
        ) + &shared(
            "second",
            0x1000,
            &format!("phys = {phys:#x}"),
            &[("beta", 0x7000_0000, "rw")],
        );
        let e = match run(BOARD, &with_channels(&channels)) {
            Ok(_) => panic!("{phys:#x} was accepted"),
            Err(e) => e,
        };
        assert!(
            matches!(
                e.kind(),
                ErrorKind::Overlap { .. }
                    | ErrorKind::OverlapsHypervisor { .. }
                    | ErrorKind::OutsideRam { .. }
            ),
            "{e}"
        );
        assert_eq!(
            (e.file(), e.partition(), e.field()),
            (SET_FILE, None, Some("shared[1].phys"))
        );
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn a_shared_mapping_over_anything_else_in_the_guest_address_space_is_rejected() {
    // alpha's memory, console, control page, doorbell page, the GIC, and
    // an earlier mapping; beta's rtc.
    let cases: [(&str, u64, &str); 7] = [
        ("alpha", 0x43ff_f000, "memory[0]"),
        ("alpha", 0x0900_0000, "the emulated PL011"),
        ("alpha", 0x7fff_f000, "the control page"),
        ("alpha", 0x0a00_0000, "the doorbell page"),
        ("alpha", 0x0800_0000, "the GIC distributor"),
        (
            "alpha",
            0x7000_1000,
            "shared region \"ring\" (shared[0].map[0])",
        ),
        ("beta", 0x0901_0000, "device \"rtc\""),
    ];
    for (partition, ipa, says) in cases {
        let channels = shared(
            "ring",
            0x2000,
            "",
            &[("alpha", 0x7000_0000, "rw"), ("beta", 0x7000_0000, "rw")],
        ) + &shared("other", 0x1000, "", &[(partition, ipa, "ro")]);
        let e = assert_error!(
            run(BOARD, &with_channels(&channels)),
            SET_FILE,
            Some(partition),
            Some("shared[1].map[0].ipa"),
            ErrorKind::Overlap { .. }
        );
        assert!(e.to_string().contains(says), "{ipa:#x}: {e}");
    }
    // A misaligned one.
    let channels = shared("odd", 0x1000, "", &[("beta", 0x7000_0800, "rw")]);
    assert_error!(
        run(BOARD, &with_channels(&channels)),
        SET_FILE,
        Some("beta"),
        Some("shared[0].map[0].ipa"),
        ErrorKind::Misaligned { .. }
    );
}

#[test]
fn a_region_shared_with_a_partition_that_does_not_exist_is_rejected() {
    let channels = shared(
        "ring",
        0x1000,
        "",
        &[("alpha", 0x7000_0000, "rw"), ("gamma", 0x7000_0000, "rw")],
    );
    let e = assert_error!(
        run(BOARD, &with_channels(&channels)),
        SET_FILE,
        None,
        Some("shared[0].map[1].partition"),
        ErrorKind::UnknownPartition { .. }
    );
    assert!(e.to_string().contains("no partition \"gamma\""), "{e}");
}

#[test]
fn a_region_mapped_read_only_and_writable_by_one_partition_is_rejected() {
    let channels = shared(
        "ring",
        0x1000,
        "",
        &[
            ("alpha", 0x7000_0000, "rw"),
            ("beta", 0x7000_0000, "ro"),
            ("beta", 0x7100_0000, "rw"),
        ],
    );
    let e = assert_error!(
        run(BOARD, &with_channels(&channels)),
        SET_FILE,
        Some("beta"),
        Some("shared[0].map[2].access"),
        ErrorKind::AccessConflict { first: 1, .. }
    );
    assert!(e.to_string().contains("not both"), "{e}");
    // The same access twice: mapped twice.
    let channels = shared(
        "ring",
        0x1000,
        "",
        &[("beta", 0x7000_0000, "ro"), ("beta", 0x7100_0000, "ro")],
    );
    assert_error!(
        run(BOARD, &with_channels(&channels)),
        SET_FILE,
        Some("beta"),
        Some("shared[0].map[1].partition"),
        ErrorKind::MappedTwice { first: 0, .. }
    );
    // And an access that is neither.
    let channels = shared("ring", 0x1000, "", &[("beta", 0x7000_0000, "wo")]);
    let e = run(BOARD, &with_channels(&channels)).expect_err("\"wo\" is no access");
    assert_eq!(e.field(), Some("shared[0].map[0].access"), "{e}");
}

#[test]
fn a_shared_region_needs_a_unique_name_pages_and_a_partition() {
    let map = [("alpha", 0x7000_0000, "rw")];
    let twice = shared("ring", 0x1000, "", &map)
        + &shared("ring", 0x1000, "", &[("beta", 0x7000_0000, "rw")]);
    assert_error!(
        run(BOARD, &with_channels(&twice)),
        SET_FILE,
        None,
        Some("shared[1].name"),
        ErrorKind::NameTwice { .. }
    );
    assert_error!(
        run(BOARD, &with_channels(&shared("ring", 0x1800, "", &map))),
        SET_FILE,
        None,
        Some("shared[0].size"),
        ErrorKind::Misaligned { .. }
    );
    assert_error!(
        run(BOARD, &with_channels(&shared("ring", 0, "", &map))),
        SET_FILE,
        None,
        Some("shared[0].size"),
        ErrorKind::ZeroSize
    );
    assert_error!(
        run(BOARD, &with_channels(&shared("ring", 0x1000, "", &[]))),
        SET_FILE,
        None,
        Some("shared[0].map"),
        ErrorKind::NotMapped
    );
    // Larger than any free RAM.
    assert_error!(
        run(
            BOARD,
            &with_channels(&shared(
                "ring",
                0x3000_0000, // the largest gap is 640 MiB
                "",
                &[("alpha", 0x1_0000_0000, "rw")]
            ))
        ),
        SET_FILE,
        None,
        Some("shared[0].size"),
        ErrorKind::NoRoomForShared { .. }
    );
}

#[test]
fn a_doorbell_intid_already_used_in_the_target_is_rejected() {
    // beta's rtc (34), its PL011 (33), an earlier doorbell (48); a PPI
    // (the virtual timer's 27) and an SGI are no SPIs.
    let cases: [(u32, &str); 3] = [
        (34, "device \"rtc\""),
        (33, "emulated PL011"),
        (48, "doorbell \"first\""),
    ];
    let partitions = set(&(part(
        "alpha",
        "[0, 1]",
        0x5000_0000,
        "doorbell_page = 0x0a00_0000",
    ) + &part(
        "beta",
        "[2]",
        0x5400_0000,
        "devices = [\"rtc\"]\nconsole_pl011 = 0x0900_0000",
    )));
    for (intid, says) in cases {
        let config = partitions.clone()
            + &doorbell("first", "alpha", "beta", 0, 48)
            + &doorbell("second", "alpha", "beta", 0, intid);
        let e = assert_error!(
            run(BOARD, &config),
            SET_FILE,
            Some("beta"),
            Some("doorbell[1].intid"),
            ErrorKind::InterruptTwice { .. }
        );
        assert!(e.to_string().contains(says), "{intid}: {e}");
    }
    for intid in [27, 7, 1020] {
        let config = partitions.clone() + &doorbell("first", "alpha", "beta", 0, intid);
        assert_error!(
            run(BOARD, &config),
            SET_FILE,
            Some("beta"),
            Some("doorbell[0].intid"),
            ErrorKind::NotSpi { .. }
        );
    }
    // The same INTID in another target is another interrupt.
    let config = with_channels(
        &(doorbell("ab", "alpha", "beta", 0, 48) + &doorbell("ba", "beta", "alpha", 0, 48)),
    );
    run(BOARD, &config).expect("one INTID per target");
}

#[test]
fn a_doorbell_to_itself_is_rejected() {
    let e = assert_error!(
        run(
            BOARD,
            &with_channels(&doorbell("echo", "alpha", "alpha", 1, 48))
        ),
        SET_FILE,
        Some("alpha"),
        Some("doorbell[0].to"),
        ErrorKind::DoorbellToItself
    );
    assert!(e.to_string().contains("send an SGI"), "{e}");
}

#[test]
fn a_doorbell_between_partitions_that_do_not_exist_is_rejected() {
    for (from, to, field) in [
        ("gamma", "beta", "doorbell[0].from"),
        ("alpha", "gamma", "doorbell[0].to"),
    ] {
        assert_error!(
            run(BOARD, &with_channels(&doorbell("d", from, to, 0, 48))),
            SET_FILE,
            None,
            Some(field),
            ErrorKind::UnknownPartition { .. }
        );
    }
}

#[test]
fn a_doorbell_to_a_vcpu_the_target_does_not_have_is_rejected() {
    // alpha has vCPUs 0 and 1, beta only 0.
    run(
        BOARD,
        &with_channels(&doorbell("d", "beta", "alpha", 1, 48)),
    )
    .expect("alpha's vCPU 1");
    let e = assert_error!(
        run(
            BOARD,
            &with_channels(&doorbell("d", "alpha", "beta", 1, 48))
        ),
        SET_FILE,
        Some("beta"),
        Some("doorbell[0].vcpu"),
        ErrorKind::NoSuchVcpu { vcpu: 1, vcpus: 1 }
    );
    assert!(e.to_string().contains("has 1 (0..=0)"), "{e}");
}

#[test]
fn a_partition_that_rings_needs_a_doorbell_page() {
    // beta rings without one; alpha only receives, which needs none.
    let config =
        set(&(part("alpha", "[0]", 0x5000_0000, "") + &part("beta", "[1]", 0x5400_0000, "")))
            + &doorbell("up", "beta", "alpha", 0, 40);
    let e = assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("beta"),
        Some("doorbell_page"),
        ErrorKind::NoDoorbellPage { .. }
    );
    assert!(e.to_string().contains("doorbell \"up\""), "{e}");
    let config = set(&(part("alpha", "[0]", 0x5000_0000, "")
        + &part("beta", "[1]", 0x5400_0000, "doorbell_page = 0x0a00_0800")));
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        Some("beta"),
        Some("doorbell_page"),
        ErrorKind::Misaligned { .. }
    );
}

#[test]
fn doorbell_names_are_unique() {
    let config = with_channels(
        &(doorbell("d", "alpha", "beta", 0, 48) + &doorbell("d", "beta", "alpha", 0, 48)),
    );
    assert_error!(
        run(BOARD, &config),
        SET_FILE,
        None,
        Some("doorbell[1].name"),
        ErrorKind::NameTwice { .. }
    );
}

#[test]
fn shared_regions_count_in_the_stage2_budget() {
    let plain = run(BOARD, &with_channels("")).expect("valid");
    let c = run(BOARD, &with_channels(&ring())).expect("valid");
    // A 4 KiB region in a 1 GiB slot of its own: a level-2 and a level-3 table.
    assert_eq!(
        budget::stage2_tables(&c.board.gic, &c.partitions[1]),
        budget::stage2_tables(&plain.board.gic, &plain.partitions[1]) + 2
    );
}
