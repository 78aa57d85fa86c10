//! QEMU integration tests: real images booted on QEMU's virt machine,
//! asserting on what the guests printed (and on the hypervisor's reports
//! only where the report itself is the feature).

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use support::{Run, board_machine, boot, guest, image, shared_run, timestamp};

const DEMO: &str = "boards/qemu-virt/demo.toml";
const ISOLATION: &str = "tests/configs/isolation.toml";

/// Heartbeat timestamps of lines starting with `prefix`, in printed order.
fn beats(lines: &[&str], prefix: &str) -> Vec<u64> {
    lines
        .iter()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| timestamp(l))
        .collect()
}

fn demo_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let enough = |lines: &[String]| {
            let count = |p: &str| lines.iter().filter(|l| l.starts_with(p)).count();
            count("[alpha] vcpu 0 heartbeat") >= 4
                && count("[alpha] vcpu 1 heartbeat") >= 4
                && count("[beta] heartbeat") >= 4
        };
        boot(
            &board_machine(),
            &image(DEMO),
            Duration::from_secs(60),
            enough,
        )
    })
}

#[test]
fn demo_partitions_run_side_by_side_on_their_own_cpus() {
    let run = demo_run();
    let alpha = run.of("alpha");
    let beta = run.of("beta");
    assert!(
        alpha.contains(&"alpha: booted on vcpu 0 (bulkhead)"),
        "{}",
        run.dump()
    );
    assert!(beta.contains(&"beta: booted (bulkhead)"), "{}", run.dump());
    assert!(
        beta.iter().any(|l| l.starts_with("beta: primes below")),
        "{}",
        run.dump()
    );

    let vcpu0 = beats(&alpha, "vcpu 0 heartbeat");
    let vcpu1 = beats(&alpha, "vcpu 1 heartbeat");
    let beta_beats = beats(&beta, "heartbeat");
    for (name, beats) in [
        ("alpha vcpu 0", &vcpu0),
        ("alpha vcpu 1", &vcpu1),
        ("beta", &beta_beats),
    ] {
        assert!(
            beats.len() >= 4,
            "{name} beat {} times:\n{}",
            beats.len(),
            run.dump()
        );
        assert!(
            beats.windows(2).all(|w| w[0] < w[1]),
            "{name}'s clock went backwards"
        );
    }
    // There is no scheduler: if the partitions shared a CPU, one would be
    // silent while the other ran. Their heartbeats' physical-counter
    // stamps interleave instead: each partition beat while the other did.
    let overlap = |a: &[u64], b: &[u64]| a[0] < *b.last().unwrap() && b[0] < *a.last().unwrap();
    assert!(
        overlap(&vcpu0, &beta_beats),
        "alpha and beta did not run at the same time"
    );
    assert!(
        overlap(&vcpu0, &vcpu1),
        "alpha's two vCPUs did not run at the same time"
    );
}

#[test]
fn every_line_carries_one_partition_prefix_and_lines_never_interleave() {
    let run = demo_run();
    for line in &run.lines {
        let prefix = ["[bulkhead] ", "[alpha] ", "[beta] "]
            .iter()
            .find(|p| line.starts_with(*p))
            .unwrap_or_else(|| panic!("unprefixed line {line:?} in\n{}", run.dump()));
        let rest = &line[prefix.len()..];
        assert!(
            !rest.contains("[alpha]") && !rest.contains("[beta]"),
            "two partitions' output on one line: {line:?}"
        );
    }
}

fn isolation_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    shared_run(&RUN, ISOLATION, Duration::from_secs(90))
}

#[test]
fn a_guest_reading_another_partitions_memory_is_stopped_with_a_report() {
    let run = isolation_run();
    let intruder = run.of("intruder");
    assert!(
        intruder.contains(&"intruder: reading 0x54000000"),
        "{}",
        run.dump()
    );
    assert!(
        !intruder.iter().any(|l| l.contains("read succeeded")),
        "the intruder read another partition's memory:\n{}",
        run.dump()
    );
    let report = run
        .position(
            "[bulkhead] partition intruder stopped: vCPU 0: stage-2 data abort (read of 8 bytes)",
        )
        .unwrap_or_else(|| panic!("no report:\n{}", run.dump()));
    let line = &run.lines[report];
    assert!(line.contains("address (IPA) 0x54000000"), "{line}");
    assert!(
        line.contains("ESR 0x93"),
        "a data abort's ESR (EC 0x24): {line}"
    );
    assert!(
        line.contains("ELR 0x4000"),
        "the faulting PC in the guest's image: {line}"
    );

    // The victim, whose memory it was, kept its heartbeat going afterwards.
    let victim_after = run.lines[report..]
        .iter()
        .filter(|l| l.starts_with("[victim] heartbeat"))
        .count();
    assert!(
        victim_after >= 5,
        "victim beat {victim_after} times after the fault:\n{}",
        run.dump()
    );
    assert!(run.has("[victim] done"), "{}", run.dump());
}

#[test]
fn an_undefined_hypercall_returns_an_error_and_the_guest_continues() {
    let run = isolation_run();
    let badcall = run.of("badcall");
    let returned = badcall.iter().position(|l| *l == "badcall: returned -1");
    let continued = badcall.iter().position(|l| *l == "badcall: still running");
    assert!(returned.is_some() && continued > returned, "{}", run.dump());
    assert!(
        badcall
            .iter()
            .filter(|l| l.starts_with("heartbeat"))
            .count()
            >= 3,
        "{}",
        run.dump()
    );
    assert!(run.has("[bulkhead] partition badcall stopped: vCPU 0 exited with code 0"));
}

#[test]
fn a_guest_printing_through_the_emulated_pl011_gets_its_prefix() {
    let run = isolation_run();
    assert_eq!(
        run.of("rawuart"),
        ["raw pl011 line one", "raw pl011 line two"],
        "{}",
        run.dump()
    );
}

#[test]
fn qemu_exits_by_itself_when_every_partition_has_stopped() {
    let run = isolation_run();
    assert!(
        run.exited,
        "QEMU was still running at the time limit:\n{}",
        run.dump()
    );
    assert_eq!(
        run.lines.last().map(String::as_str),
        Some("[bulkhead] all partitions have stopped; powering off")
    );
}

#[test]
fn the_same_guest_binary_runs_natively_without_the_hypervisor() {
    let machine: Vec<String> = "-M virt,gic-version=3 -cpu cortex-a72 -smp 1 -m 1G"
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let run = boot(
        &machine,
        &guest("test-heartbeat"),
        Duration::from_secs(60),
        |_| false,
    );
    assert!(
        run.exited,
        "the native guest did not power off:\n{}",
        run.dump()
    );
    let beats: Vec<&str> = run.lines.iter().map(String::as_str).collect();
    assert_eq!(
        beats.iter().filter(|l| l.starts_with("heartbeat ")).count(),
        20
    );
    assert!(run.has("done"), "{}", run.dump());
}

#[test]
fn a_machine_unlike_the_board_is_a_clear_boot_error() {
    let mut machine = board_machine();
    let smp = machine.iter().position(|a| a == "-smp").unwrap();
    machine[smp + 1] = "2".into();
    let run = boot(&machine, &image(DEMO), Duration::from_secs(30), |_| false);
    assert!(
        run.exited,
        "a boot error must power off, not hang:\n{}",
        run.dump()
    );
    assert!(
        run.has(
            "[bulkhead] boot error: board qemu-virt has CPU 2 (MPIDR 0x2), the boot device tree \
             does not (too few CPUs given to the machine?)"
        ),
        "{}",
        run.dump()
    );
    assert!(
        run.of("alpha").is_empty(),
        "no guest may start on a mismatched machine"
    );
}

#[test]
fn a_bad_partition_set_fails_the_build_naming_file_partition_and_field() {
    let out = support::root().join("target/images/test-bad-overlap.bin");
    let result = support::build("tests/configs/bad-overlap.toml", &out);
    assert!(
        !result.status.success(),
        "a partition set with overlapping memory built"
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("tests/configs/bad-overlap.toml")
            && stderr.contains("partition \"beta\"")
            && stderr.contains("memory[0].phys"),
        "{stderr}"
    );
}
