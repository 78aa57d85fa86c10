//! Stock Linux as a partition: Debian bookworm's arm64 cloud kernel with a
//! busybox initramfs (`scripts/linux.sh` fetches and builds both under
//! target/linux/ on the first run, about 30 MB, then reuses them), beside
//! an RTOS partition, in `tests/configs/linux.toml`.
//!
//! Its own file so that it runs once: scripts/test.sh runs tests/qemu.rs
//! a second time without the fast paths.

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::time::Duration;

use support::{boot_config, timestamp};

const LINUX: &str = "tests/configs/linux.toml";
/// What Linux's /init (scripts/linux-init.sh) starts its lines with.
const MARK: &str = "bulkhead-linux: ";

/// The per-CPU counts of the /init's `interrupts` line whose label (first
/// word, `IPI0:` or `11:`) or description holds `what`: one number per CPU.
fn interrupt_counts(linux: &[&str], what: &str) -> Vec<Vec<u64>> {
    linux
        .iter()
        .filter_map(|l| l.strip_prefix(MARK)?.strip_prefix("interrupts "))
        .filter(|l| l.contains(what))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map_while(|w| w.parse().ok())
                .collect()
        })
        .collect()
}

#[test]
fn linux_boots_to_its_init_beside_an_rtos_partition() {
    let run = boot_config(LINUX, Duration::from_secs(120));
    let linux = run.of("linux");
    let rtos = run.of("rtos");

    // The kernel's console is the emulated PL011 (console=ttyAMA0), and
    // its initramfs's /init ran and saw both vCPUs.
    assert!(
        linux
            .iter()
            .any(|l| l.contains("Run /init as init process")),
        "{}",
        run.dump()
    );
    for line in ["init reached", "nproc 2", "cpus online 0-1"] {
        assert!(
            linux.contains(&format!("{MARK}{line}").as_str()),
            "no {line:?} from Linux:\n{}",
            run.dump()
        );
    }
    // The virtual timer ticked on both vCPUs, and each took IPIs (SGIs
    // sent with one trapped write, routed inside the partition).
    let timer = interrupt_counts(&linux, "arch_timer");
    assert!(
        matches!(&timer[..], [counts] if counts.len() == 2 && counts.iter().all(|&n| n > 0)),
        "timer interrupts per CPU: {timer:?}\n{}",
        run.dump()
    );
    let ipis = interrupt_counts(&linux, "IPI");
    for cpu in 0..2 {
        let taken: u64 = ipis.iter().filter_map(|c| c.get(cpu)).sum();
        assert!(taken > 0, "CPU {cpu} took no IPI: {ipis:?}\n{}", run.dump());
    }

    // Linux's poweroff stops its own partition only (PSCI SYSTEM_OFF) ...
    let off = run
        .position("[bulkhead] partition linux stopped: vCPU 0 called PSCI SYSTEM_OFF")
        .unwrap_or_else(|| panic!("Linux did not power off:\n{}", run.dump()));
    assert!(
        run.lines[..off]
            .iter()
            .any(|l| l == &format!("[linux] {MARK}powering off")),
        "{}",
        run.dump()
    );
    // ... while the RTOS beside it beat all along and beats on after it.
    let beats_before = run.lines[..off]
        .iter()
        .filter(|l| l.starts_with("[rtos] heartbeat "))
        .count();
    let beats_after = run.lines[off..]
        .iter()
        .filter(|l| l.starts_with("[rtos] heartbeat "))
        .count();
    assert!(
        beats_before > 0 && beats_after > 0,
        "RTOS heartbeats: {beats_before} before Linux powered off, {beats_after} after \
         (the RTOS beats for 30 s: did Linux take longer?)\n{}",
        run.dump()
    );
    let stamps: Vec<u64> = rtos
        .iter()
        .filter(|l| l.starts_with("heartbeat "))
        .filter_map(|l| timestamp(l))
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "the RTOS's clock went backwards"
    );

    // When the RTOS is done too, the machine powers off by itself.
    assert!(rtos.contains(&"done"), "{}", run.dump());
    assert!(run.exited, "QEMU did not exit by itself:\n{}", run.dump());
    assert_eq!(
        run.lines.last().map(String::as_str),
        Some("[bulkhead] all partitions have stopped; powering off"),
        "{}",
        run.dump()
    );
}
