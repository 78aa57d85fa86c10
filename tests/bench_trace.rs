//! scripts/bench.py, the parser scripts/bench.sh streams QEMU's instruction
//! trace through, run on a recorded trace (tests/bench-trace/): the figures
//! it extracts and the `-dfilter` ranges it computes, both checked by hand
//! against the recording, and the errors it stops with.
//!
//! `trace.log` is three verbatim cuts of the 1,004,439-line `-d exec,nochain`
//! trace of one traced run of tests/configs/bench.toml taken as bench.sh
//! takes it (`-accel tcg,one-insn-per-tb=on`, its `-dfilter`, at commit
//! 17fcff7): lines 743044-743177, 776108-776259 and 877552-877696, each
//! holding one delivery (the timer's on CPU 0, an SGI's on CPU 1, the RTC's
//! on CPU 0). The `*.nm`, `*.nm-C` and `*.readelf` files are the
//! aarch64-linux-gnu binutils' output for that run's hypervisor ELF
//! (`bench.elf`) and guest ELF (`bench-irq.elf`); `bench.elf.objdump` keeps
//! only the direct calls to the functions the filter leaves out, all that
//! bench.py reads of `objdump -d`. `tests/bench-trace/binutils` plays the
//! three tools, first on PATH.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/bench-trace").join(name)
}

/// A fresh directory for one case under the test's temporary directory,
/// with the recorded binutils in `bin/`.
fn scratch(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bench-trace")
        .join(case);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("bin")).unwrap();
    for tool in ["nm", "readelf", "objdump"] {
        std::os::unix::fs::symlink(
            fixture("binutils"),
            dir.join("bin").join(format!("aarch64-linux-gnu-{tool}")),
        )
        .unwrap();
    }
    dir
}

/// `python3 scripts/bench.py`, with `dir`'s recorded binutils first on PATH.
fn bench_py(dir: &Path) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(dir.join("bin")).chain(std::env::split_paths(&path)))
            .unwrap();
    let mut command = Command::new("python3");
    command
        .arg(root().join("scripts/bench.py"))
        .env("PATH", path)
        .current_dir(root());
    command
}

/// `bench.py trace bench LOG ...` as bench.sh runs it, on `log`; what it
/// printed and where its figures go.
fn trace(dir: &Path, log: &Path) -> (Output, PathBuf) {
    let result = dir.join("trace.json");
    let output = bench_py(dir)
        .args(["trace", "bench"])
        .arg(log)
        .arg(fixture("bench.elf"))
        .arg(fixture("bench-irq.elf"))
        .arg(fixture("bench.toml"))
        .arg(&result)
        .arg("filtered")
        .output()
        .expect("python3 runs");
    (output, result)
}

/// `trace.log` without the lines `drop` (numbered from 1) and after `end`.
fn cut(dir: &Path, drop: &[usize], end: usize) -> PathBuf {
    let text = fs::read_to_string(fixture("trace.log")).unwrap();
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i < end && !drop.contains(&(i + 1)))
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    let path = dir.join("cut.log");
    fs::write(&path, kept).unwrap();
    path
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// By hand, from `trace.log` (EL2 IRQ vector entry 0x40200c80, the guest's
/// IRQ vector 0x40000a80, guest code 0x40000000..0x40006bc4): each window's
/// vector entry is logged, stopped by the next line and logged again; from
/// that last one to the guest's vector every line is the same CPU's.
/// - timer, CPU 0: lines 7 to 51, 44 instructions, one of them the guest's
///   (line 50, 0x40001968); then guest_lib::timer::on_interrupt (line 132);
/// - SGI, CPU 1: lines 142 to 203, 61, none the guest's; then
///   bench_irq::on_bench_sgi (line 284);
/// - RTC, CPU 0: lines 293 to 348, 55, one the guest's (line 347,
///   0x40003404); then bench_irq::on_rtc (line 429).
///
/// The whole run's figures were the same: 44, 61 and 55.
#[test]
fn the_parser_counts_each_deliverys_instructions_in_the_recorded_trace() {
    let dir = scratch("figures");
    let (output, result) = trace(&dir, &fixture("trace.log"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        fs::read_to_string(&result).unwrap(),
        concat!(
            r#"{"timer_el2_to_vector": {"min": 44, "median": 44, "max": 44}, "#,
            r#""sgi_target_el2_to_vector": {"min": 61, "median": 61, "max": 61}, "#,
            r#""passthrough_el2_to_vector": {"min": 55, "median": 55, "max": 55}}"#
        )
    );
    assert_eq!(
        stderr(&output),
        "\
trace: timer_el2_to_vector: 1 deliveries on CPU 0, min/median/max 44/44/44 instructions; the shortest has 1 guest instructions before the vector
trace: sgi_target_el2_to_vector: 1 deliveries on CPU 1, min/median/max 61/61/61 instructions; the shortest has 0 guest instructions before the vector
trace: passthrough_el2_to_vector: 1 deliveries on CPU 0, min/median/max 55/55/55 instructions; the shortest has 1 guest instructions before the vector
"
    );
}

/// By hand, from the recorded ELF information: the hypervisor's executable
/// segment, 0x40200000 + 0xf67c, without Runtime::build (0x4020465c +
/// 0x8f8), rust_primary_main (0x4020a578 + 0x17a8) and memset (0x4020f428 +
/// 0x144); then the guest's, 0x40000000 + 0x6bc4. The recorded run was
/// taken with exactly these ranges.
#[test]
fn the_filter_keeps_the_code_but_the_boots_bulk_work() {
    let dir = scratch("filter");
    let output = bench_py(&dir)
        .args(["filter", "bench"])
        .arg(fixture("bench.elf"))
        .arg(fixture("bench-irq.elf"))
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "0x40200000..0x4020465b,0x40204f54..0x4020a577,0x4020bd20..0x4020f427,\
         0x4020f56c..0x4020f67b,0x40000000..0x40006bc3\n"
    );
}

/// Without the third cut (from line 287) there is no RTC delivery.
#[test]
fn a_trace_without_a_delivery_fails_naming_it() {
    let dir = scratch("missing");
    let log = cut(&dir, &[], 286);
    let (output, result) = trace(&dir, &log);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).ends_with(&format!(
            "bench.sh: {}: no rtc interrupt delivered on CPU 0 in the trace\n",
            log.display()
        )),
        "{}",
        stderr(&output)
    );
    assert!(!result.exists());
}

/// Without line 5 the `Stopped execution` line 6 follows a block it does
/// not name (line 4's).
#[test]
fn a_stopped_line_naming_another_block_fails() {
    let dir = scratch("stopped");
    let log = cut(&dir, &[5], usize::MAX);
    let (output, result) = trace(&dir, &log);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "bench.sh: {}: 1 'Stopped execution' lines name another block than the one logged before them\n",
            log.display()
        )
    );
    assert!(!result.exists());
}
