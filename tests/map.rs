//! The partition-set map (`scripts/build.sh --map`): every shipped set maps
//! or, for the deliberately bad ones, fails as the build does; the demo's
//! table holds everything its TOML files say; and the committed
//! `boards/qemu-virt/demo-map.svg` is what the map code makes of the demo
//! today.
//!
//! The expectations for the demo are read from the TOML files with the
//! `toml` crate, not from `bulkhead-config`, so the table is checked
//! against the configuration rather than against itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The demo set, and the map of it committed as documentation.
const DEMO: &str = "boards/qemu-virt/demo.toml";
const DEMO_MAP: &str = "boards/qemu-virt/demo-map.svg";
/// What regenerates [`DEMO_MAP`].
const REGENERATE: &str = "scripts/build.sh --map --svg boards/qemu-virt/demo-map.svg";

use bulkhead_config::check::{
    DEFAULT_CONTROL_PAGE, DEVICE_TREE_AREA, GICV3_DISTRIBUTOR_SIZE, GICV3_REDISTRIBUTOR_STRIDE,
    PAGE,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch file for this test binary.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("map");
    fs::create_dir_all(&dir).expect("scratch directory");
    dir.join(name)
}

/// `scripts/build.sh --map --config CONFIG --svg SVG`, whatever the outcome.
fn map(config: &Path, svg: &Path) -> Output {
    Command::new(root().join("scripts/build.sh"))
        .arg("--map")
        .arg("--config")
        .arg(config)
        .arg("--svg")
        .arg(svg)
        .output()
        .expect("scripts/build.sh runs")
}

/// Every partition set: each `.toml` but `board.toml` under `boards/*/`,
/// and every `.toml` under `tests/configs/`; sorted, relative to the root.
fn partition_sets() -> Vec<String> {
    let mut dirs = vec![root().join("tests/configs")];
    for board in fs::read_dir(root().join("boards")).expect("boards/") {
        let path = board.expect("boards/ entry").path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    let mut sets = Vec::new();
    for dir in dirs {
        for entry in fs::read_dir(&dir).expect("a set directory") {
            let path = entry.expect("directory entry").path();
            let is_toml = path.extension().is_some_and(|e| e == "toml");
            if is_toml && path.file_name().is_some_and(|n| n != "board.toml") {
                let rel = path.strip_prefix(root()).expect("inside the repository");
                sets.push(rel.display().to_string());
            }
        }
    }
    sets.sort();
    sets
}

fn is_bad(set: &str) -> bool {
    Path::new(set)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("bad-"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the map of one set to a scratch SVG; returns the output and the SVG path.
fn map_set(set: &str) -> (Output, PathBuf) {
    let svg = scratch(&format!("{}.svg", set.replace('/', "_")));
    let _ = fs::remove_file(&svg);
    (map(&root().join(set), &svg), svg)
}

#[test]
fn every_good_partition_set_maps_to_a_table_and_an_svg() {
    let sets: Vec<String> = partition_sets()
        .into_iter()
        .filter(|s| !is_bad(s))
        .collect();
    assert!(sets.iter().any(|s| s == DEMO), "{sets:?}");
    assert!(sets.len() >= 2, "{sets:?}");
    for set in sets {
        let (out, svg) = map_set(&set);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{set}: the map failed:\n{stderr}");
        assert!(
            stdout.starts_with(&format!("Partition set {set} on board ")),
            "{set}:\n{stdout}"
        );
        for heading in ["\nPhysical memory map\n", "\nCPUs\n", "\nPartition "] {
            assert!(
                stdout.contains(heading),
                "{set}: no {heading:?} in\n{stdout}"
            );
        }
        assert!(stdout.contains(" RAM\n"), "{set}:\n{stdout}");
        assert_eq!(
            stderr.lines().last(),
            Some(svg.to_string_lossy().as_ref()),
            "{set}: the SVG's path is not the last line on stderr"
        );
        let image = fs::read_to_string(&svg).unwrap_or_else(|e| panic!("{set}: no SVG: {e}"));
        let doc = roxmltree::Document::parse(&image)
            .unwrap_or_else(|e| panic!("{set}: the SVG is not XML: {e}"));
        assert!(doc.root_element().has_tag_name("svg"), "{set}");
    }
}

/// The build's error for a set: the `error: FILE: ...` line of a real
/// `scripts/build.sh` (the build script's message, inside cargo's report).
fn build_error(set: &str) -> String {
    let out = Command::new(root().join("scripts/build.sh"))
        .arg("--config")
        .arg(root().join(set))
        .arg("--out")
        .arg(scratch("bad.bin"))
        .output()
        .expect("scripts/build.sh runs");
    assert!(!out.status.success(), "{set} built");
    let stderr = text(&out.stderr);
    let prefix = format!("error: {set}: ");
    stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the build of {set} did not name it:\n{stderr}"))
        .to_owned()
}

#[test]
fn every_bad_partition_set_fails_with_the_builds_error() {
    let sets: Vec<String> = partition_sets().into_iter().filter(|s| is_bad(s)).collect();
    assert!(
        sets.iter().any(|s| s == "tests/configs/bad-overlap.toml"),
        "{sets:?}"
    );
    for set in sets {
        let (out, svg) = map_set(&set);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{set}: the map did not fail:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{set}: a table was printed");
        assert!(!svg.exists(), "{set}: an SVG was written");
        let expected = build_error(&set);
        assert!(
            stderr.lines().any(|l| l == expected),
            "{set}: the map's error differs from the build's ({expected:?}):\n{stderr}"
        );
        if set == "tests/configs/bad-overlap.toml" {
            assert!(
                expected.contains("partition \"beta\": memory[0].phys: "),
                "{expected}"
            );
        }
    }
}

/// The demo's map, made once: (table, SVG).
fn demo() -> &'static (String, String) {
    static DEMO_RUN: OnceLock<(String, String)> = OnceLock::new();
    DEMO_RUN.get_or_init(|| {
        let svg = scratch("demo-map.svg");
        let out = map(&root().join(DEMO), &svg);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let image = fs::read_to_string(&svg).expect("the demo's SVG");
        (text(&out.stdout), image)
    })
}

/// `0x0800_0000`: how the map writes addresses (at least eight digits,
/// `_` every four from the right).
fn addr(value: u64) -> String {
    let mut reversed = String::new();
    for (i, digit) in format!("{value:08x}").chars().rev().enumerate() {
        if i > 0 && i % 4 == 0 {
            reversed.push('_');
        }
        reversed.push(digit);
    }
    format!("0x{}", reversed.chars().rev().collect::<String>())
}

fn toml_file(path: &str) -> toml::Table {
    let text = fs::read_to_string(root().join(path)).expect("a TOML file");
    text.parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn int(table: &toml::Table, key: &str) -> u64 {
    let value = table.get(key).and_then(toml::Value::as_integer);
    let value = value.unwrap_or_else(|| panic!("no integer {key} in {table:?}"));
    u64::try_from(value).expect("not negative")
}

fn tables<'a>(table: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    let array = table.get(key).and_then(toml::Value::as_array);
    array
        .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
        .unwrap_or_default()
}

fn strings(table: &toml::Table, key: &str) -> Vec<String> {
    let array = table.get(key).and_then(toml::Value::as_array);
    array
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The rows of the table's section headed `heading`, up to the next blank
/// line: a description the table wrapped onto further lines (indented past
/// the row's first column) joined back to its row.
fn section(table: &str, heading: &str) -> Vec<String> {
    let mut lines = table.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "no section {heading:?} in\n{table}");
    let mut rows: Vec<String> = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        match rows.last_mut() {
            Some(row) if line.starts_with("    ") => {
                row.push(' ');
                row.push_str(line.trim_start());
            }
            _ => rows.push(line.to_owned()),
        }
    }
    rows
}

/// Asserts that `lines` has a row from `start` to `end` whose description
/// holds every one of `says`.
fn assert_row(lines: &[String], start: u64, end: u64, says: &[&str]) {
    let (start, end) = (addr(start), addr(end));
    let found = lines.iter().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some(start.as_str())
            && words.next() == Some(end.as_str())
            && says.iter().all(|s| line.contains(s))
    });
    assert!(
        found,
        "no row {start} {end} saying {says:?} in:\n{}",
        lines.join("\n")
    );
}

#[test]
fn the_demo_table_lists_everything_its_configuration_says() {
    let (table, _) = demo();
    let set = toml_file(DEMO);
    let board_name = set
        .get("board")
        .and_then(toml::Value::as_str)
        .expect("board");
    let board = toml_file(&format!("boards/{board_name}/board.toml"));
    let partitions = tables(&set, "partition");
    assert!(partitions.len() >= 2, "the demo has two partitions");
    let physical = section(table, "Physical memory map");

    // The hypervisor's reservation, UART and GIC.
    let hyp = board
        .get("hypervisor")
        .and_then(toml::Value::as_table)
        .expect("hypervisor");
    // A fixed [hypervisor].size, or else what the build sizes for the
    // demo: code, heap and its two small guests take one 2 MiB block.
    let size = match hyp.get("size") {
        Some(_) => int(hyp, "size"),
        None => bulkhead_config::budget::ROUND,
    };
    let base = int(hyp, "base");
    assert_row(
        &physical,
        base,
        base + size,
        &[
            "hypervisor",
            "image",
            "heap",
            "control pages",
            "page tables",
            "stacks",
        ],
    );
    let uart = board
        .get("uart")
        .and_then(toml::Value::as_table)
        .expect("uart");
    let (base, size) = (int(uart, "base"), int(uart, "size"));
    assert_row(&physical, base, base + size, &["UART", "hypervisor"]);
    let gic = board
        .get("gic")
        .and_then(toml::Value::as_table)
        .expect("gic");
    assert_eq!(int(gic, "version"), 3, "the demo board is GICv3");
    let cpus = tables(&board, "cpu");
    let distributor = int(gic, "distributor");
    let redistributor = int(gic, "redistributor");
    let maintenance = format!("maintenance INTID {}", int(gic, "maintenance_intid"));
    let dist_end = distributor + GICV3_DISTRIBUTOR_SIZE;
    assert_row(
        &physical,
        distributor,
        dist_end,
        &["GIC distributor", "hypervisor", &maintenance],
    );
    let all_cpus = redistributor + cpus.len() as u64 * GICV3_REDISTRIBUTOR_STRIDE;
    assert_row(
        &physical,
        redistributor,
        all_cpus,
        &["GIC redistributors", "hypervisor"],
    );
    for ram in tables(&board, "ram") {
        let (base, size) = (int(ram, "base"), int(ram, "size"));
        assert_row(&physical, base, base + size, &["RAM"]);
    }

    // Every board device, with its owner or "unassigned", and its interrupts.
    for device in tables(&board, "device") {
        let name = device
            .get("name")
            .and_then(toml::Value::as_str)
            .expect("name");
        let (base, end) = (
            int(device, "base"),
            int(device, "base") + int(device, "size"),
        );
        let owner = partitions
            .iter()
            .find(|p| strings(p, "devices").iter().any(|d| d == name));
        let owner_name = owner.map_or("unassigned".to_owned(), |p| {
            p.get("name")
                .and_then(toml::Value::as_str)
                .expect("name")
                .to_owned()
        });
        let intids: Vec<String> = device
            .get("interrupts")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_integer().map(|i| i.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let what = format!("device {name} ");
        let owned_by = format!(": {owner_name}; INTID");
        assert_row(
            &physical,
            base,
            end,
            &[&what, &owned_by, &intids.join(", ")],
        );
        if owner.is_some() {
            let view = section(
                table,
                &format!("Partition {owner_name}: guest-physical (IPA) map"),
            );
            assert_row(
                &view,
                base,
                end,
                &[&what, "passthrough", &intids.join(", ")],
            );
        }
    }

    // Every shared region in RAM, with who maps it where, and in each
    // partition that maps it with its rights; each doorbell page with the
    // channels it rings.
    for region in tables(&set, "shared") {
        let name = region
            .get("name")
            .and_then(toml::Value::as_str)
            .expect("name");
        let size = int(region, "size");
        let shared = format!("shared {name}: ");
        assert!(
            physical.iter().any(|l| l.contains(&shared)),
            "no {shared:?} in\n{}",
            physical.join("\n")
        );
        for map in tables(region, "map") {
            let who = map
                .get("partition")
                .and_then(toml::Value::as_str)
                .expect("partition");
            let ipa = int(map, "ipa");
            let access = match map.get("access").and_then(toml::Value::as_str) {
                Some("ro") => "read-only",
                _ => "rw",
            };
            let view = section(table, &format!("Partition {who}: guest-physical (IPA) map"));
            assert_row(
                &view,
                ipa,
                ipa + size,
                &[&format!("shared {name}: {access}; phys ")],
            );
        }
    }
    for p in &partitions {
        let Some(page) = p.get("doorbell_page").map(|_| int(p, "doorbell_page")) else {
            continue;
        };
        let name = p.get("name").and_then(toml::Value::as_str).expect("name");
        let view = section(
            table,
            &format!("Partition {name}: guest-physical (IPA) map"),
        );
        let rings: Vec<String> = tables(&set, "doorbell")
            .iter()
            .filter(|d| d.get("from").and_then(toml::Value::as_str) == Some(name))
            .enumerate()
            .map(|(n, d)| {
                let doorbell = d.get("name").and_then(toml::Value::as_str).expect("name");
                format!("channel {n}: {doorbell}")
            })
            .collect();
        let mut says = vec!["doorbell page: emulated (hypervisor)"];
        says.extend(rings.iter().map(String::as_str));
        assert_row(&view, page, page + 0x1000, &says);
    }

    // Every CPU with what runs on it.
    let cpu_lines = section(table, "CPUs");
    for (index, cpu) in cpus.iter().enumerate() {
        let runs = partitions.iter().find_map(|p| {
            let list = p.get("cpus").and_then(toml::Value::as_array)?;
            let vcpu = list
                .iter()
                .position(|c| c.as_integer() == Some(index as i64))?;
            let name = p.get("name").and_then(toml::Value::as_str)?;
            Some(format!("{name} vCPU {vcpu}"))
        });
        let line = format!(
            "  CPU {index} (MPIDR {:#x}): {}",
            int(cpu, "mpidr"),
            runs.unwrap_or_else(|| "unassigned".to_owned())
        );
        assert!(cpu_lines.contains(&line), "no {line:?} in\n{table}");
    }
    assert_eq!(cpu_lines.len(), cpus.len());

    // Every partition: its memory at both addresses, its device tree, its
    // control page, its GIC windows, its console, its vCPUs.
    for p in &partitions {
        let name = p.get("name").and_then(toml::Value::as_str).expect("name");
        let view = section(
            table,
            &format!("Partition {name}: guest-physical (IPA) map"),
        );
        let memory = tables(p, "memory");
        for m in &memory {
            let (ipa, phys, size) = (int(m, "ipa"), int(m, "phys"), int(m, "size"));
            let at_ipa = format!("{name} memory: at IPA {}", addr(ipa));
            assert_row(&physical, phys, phys + size, &[&at_ipa]);
            let at_phys = format!("memory: phys {}", addr(phys));
            assert_row(&view, ipa, ipa + size, &[&at_phys]);
        }
        let lowest = memory.iter().min_by_key(|m| int(m, "ipa")).expect("memory");
        let wants_tree = p
            .get("device_tree")
            .and_then(toml::Value::as_bool)
            .unwrap_or(true);
        if wants_tree {
            let ipa_end = int(lowest, "ipa") + int(lowest, "size");
            let phys_end = int(lowest, "phys") + int(lowest, "size");
            let tree_ipa = format!("device tree: at IPA {}", addr(ipa_end - DEVICE_TREE_AREA));
            assert_row(
                &physical,
                phys_end - DEVICE_TREE_AREA,
                phys_end,
                &[&tree_ipa],
            );
            let tree_phys = format!("device tree: phys {}", addr(phys_end - DEVICE_TREE_AREA));
            assert_row(&view, ipa_end - DEVICE_TREE_AREA, ipa_end, &[&tree_phys]);
        }
        let control = p
            .get("control_page")
            .map_or(DEFAULT_CONTROL_PAGE, |_| int(p, "control_page"));
        assert_row(
            &view,
            control,
            control + PAGE,
            &["control page", "hypervisor heap"],
        );
        let vcpus: Vec<u64> = p
            .get("cpus")
            .and_then(toml::Value::as_array)
            .expect("cpus")
            .iter()
            .filter_map(|c| c.as_integer().and_then(|c| u64::try_from(c).ok()))
            .collect();
        assert_row(&view, distributor, dist_end, &["GIC distributor"]);
        let own = redistributor + vcpus.len() as u64 * GICV3_REDISTRIBUTOR_STRIDE;
        assert_row(&view, redistributor, own, &["GIC redistributors"]);
        if p.contains_key("console_pl011") {
            let base = int(p, "console_pl011");
            assert_row(&view, base, base + PAGE, &["PL011 console", "INTID 33"]);
        }
        for (vcpu, cpu) in vcpus.iter().enumerate() {
            let mpidr = int(cpus[*cpu as usize], "mpidr");
            let line = format!("  vCPU {vcpu} on CPU {cpu} (MPIDR {mpidr:#x})");
            assert!(view.contains(&line), "no {line:?} in\n{table}");
        }
        assert!(
            view.iter().any(|l| l.starts_with("  entry 0x")),
            "{name}: no entry point"
        );
    }
}

#[test]
fn the_committed_demo_map_is_up_to_date() {
    let (_, generated) = demo();
    let committed = fs::read_to_string(root().join(DEMO_MAP))
        .unwrap_or_else(|e| panic!("{DEMO_MAP}: {e}; make it with `{REGENERATE}`"));
    if committed != *generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |i| i,
            )
            + 1;
        panic!(
            "{DEMO_MAP} is stale (it first differs from today's map at line {line}): \
             regenerate it with `{REGENERATE}` and commit it"
        );
    }
}
