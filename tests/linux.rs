//! Stock Linux as a partition: Debian bookworm's arm64 cloud kernel with a
//! busybox initramfs (`scripts/linux.sh` fetches and builds both under
//! target/linux/ on the first run, about 30 MB, then reuses them), beside
//! an RTOS partition, in `tests/configs/linux.toml` (QEMU virt, GICv3), and
//! the same on the GICv2 boards, where Linux's GICv2 driver runs against
//! the virtual GICv2: `gicv2-linux.toml` (QEMU virt with gic-version=2) and
//! `rpi4-linux.toml` (the Raspberry Pi 4, QEMU raspi4b). The test types on the
//! console as a user would, moves its focus between the two, and has
//! Linux reboot once (PSCI SYSTEM_RESET, a restart of its partition only)
//! and power off on its second boot.
//!
//! Its own file so that it runs once: scripts/test.sh runs tests/qemu.rs
//! a second time without the fast paths.

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::time::Duration;

use support::{Machine, Session, board_machine, image, root, timestamp};

/// What Linux's /init (scripts/linux-init.sh) starts its lines with.
const MARK: &str = "bulkhead-linux: ";

/// Per CPU, the sum of the counts on the /init's `interrupts <phase>`
/// lines (of one boot) whose label or description holds `what` (`IPI`,
/// `arch_timer`).
fn interrupt_counts(boot: &[&str], phase: &str, what: &str) -> Vec<u64> {
    let prefix = format!("{MARK}interrupts {phase} ");
    let mut sums = vec![0; 2];
    for line in boot
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| l.contains(what))
    {
        let counts = line
            .split_whitespace()
            .skip(1)
            .map_while(|w| w.parse::<u64>().ok());
        for (sum, n) in sums.iter_mut().zip(counts) {
            *sum += n;
        }
    }
    sums
}

#[test]
fn linux_boots_twice_beside_an_rtos_that_beats_on_and_takes_its_own_input() {
    // QEMU virt's counter: 62.5 MHz.
    linux_beside_an_rtos(board_machine(), "tests/configs/linux.toml", 62_500_000);
}

#[test]
fn linux_runs_on_a_virtual_gicv2_beside_an_rtos() {
    let machine = Machine::load(&root(), "qemu-virt-gicv2").unwrap_or_else(|e| panic!("{e}"));
    linux_beside_an_rtos(machine, "tests/configs/gicv2-linux.toml", 62_500_000);
}

#[test]
fn linux_runs_beside_an_rtos_on_the_raspberry_pi_4() {
    // QEMU's raspi4b counts at 62.5 MHz too (a Pi 4's counter: 54 MHz).
    let machine = Machine::load(&root(), "rpi4").unwrap_or_else(|e| panic!("{e}"));
    linux_beside_an_rtos(machine, "tests/configs/rpi4-linux.toml", 62_500_000);
}

/// The scenario on `machine` with the partition set `config`, whose
/// counter runs at `counter_hz`.
fn linux_beside_an_rtos(machine: Machine, config: &str, counter_hz: u64) {
    // Under -icount: the RTOS's heartbeat intervals are exact, whatever
    // the host's load.
    let machine = machine.icount();
    let mut s = Session::start(&machine, &image(config), Duration::from_secs(400));
    let seen = |s: &Session, what: &str, needle: &str, times: usize| {
        let found = s.wait_for(Duration::from_secs(180), |out| {
            String::from_utf8_lossy(out).matches(needle).count() >= times
        });
        assert!(
            found,
            "{what}: {needle:?} not {times} time(s) in\n{}",
            s.lines().join("\n")
        );
    };
    let prompt = format!("[linux] {MARK}type reboot or poweroff");
    for boot in 1..=2 {
        seen(
            &s,
            "Linux's /init",
            &format!("[linux] {MARK}init reached"),
            boot,
        );
        // Boot 1 asks twice (a line that is no command comes first).
        seen(&s, "Linux's prompt", &prompt, 2 * boot - 1);
        if boot == 1 {
            // The RTOS takes what is typed while it has the focus.
            s.send(b"\x1d2");
            seen(&s, "Ctrl-] 2", "[bulkhead] console input: rtos", 1);
            s.send(b"for-the-rtos\r");
            seen(&s, "the RTOS's input", "[rtos] got: for-the-rtos", 1);
            s.send(b"\x1d1");
            seen(&s, "Ctrl-] 1", "[bulkhead] console input: linux", 2);
            s.send(b"not-a-command\r");
            seen(
                &s,
                "Linux's input",
                &format!("[linux] {MARK}got not-a-command"),
                1,
            );
            seen(&s, "Linux's prompt again", &prompt, 2);
            s.send(b"reboot\r");
        } else {
            s.send(b"poweroff\r");
        }
    }
    // Linux's partition has stopped; the focus went to the RTOS by itself.
    seen(&s, "Linux's power-off", "partition linux stopped", 1);
    seen(&s, "focus", "[bulkhead] console input: rtos", 2);
    // One more beat after Linux's power-off before the RTOS is told to exit.
    let beats = s
        .lines()
        .iter()
        .filter(|l| l.starts_with("[rtos] heartbeat "))
        .count();
    seen(
        &s,
        "a beat after the power-off",
        "[rtos] heartbeat ",
        beats + 1,
    );
    s.send(b"exit\r");
    seen(
        &s,
        "power-off",
        "all partitions have stopped; powering off",
        1,
    );
    std::thread::sleep(Duration::from_millis(500));
    let run = s.finish();
    let linux = run.of("linux");
    let rtos = run.of("rtos");

    // Two boots of Linux, each to its /init, through the restart.
    let restarting = "[bulkhead] partition linux restarting: vCPU 0 called PSCI SYSTEM_RESET";
    let reset_at = run
        .position(restarting)
        .unwrap_or_else(|| panic!("Linux did not reset:\n{}", run.dump()));
    assert!(
        run.has("[bulkhead] partition linux restarts (restart 1)"),
        "{}",
        run.dump()
    );
    let off_at = run
        .position("[bulkhead] partition linux stopped: vCPU 0 called PSCI SYSTEM_OFF")
        .unwrap_or_else(|| panic!("Linux did not power off:\n{}", run.dump()));
    let boots = [&run.lines[..reset_at], &run.lines[reset_at..off_at]];
    for (n, boot) in boots.iter().enumerate() {
        let boot: Vec<&str> = boot
            .iter()
            .filter_map(|l| l.strip_prefix("[linux] "))
            .collect();
        for line in [
            "init reached",
            "nproc 2",
            "cpus online 0-1",
            // A message through the channel to the RTOS, from user space
            // (/dev/mem), and its answer through the channel back.
            "channel: sent hello-from-linux",
            "channel: the rtos answered echo: hello-from-linux",
        ] {
            assert!(
                boot.contains(&format!("{MARK}{line}").as_str()),
                "boot {}: no {line:?} from Linux:\n{}",
                n + 1,
                run.dump()
            );
        }
        // Timer interrupts and IPIs (SGIs, one trapped write each) on both
        // CPUs, and more of each after the work on both CPUs.
        for what in ["arch_timer", "IPI"] {
            let (before, after) = (
                interrupt_counts(&boot, "before", what),
                interrupt_counts(&boot, "after", what),
            );
            assert!(
                (0..2).all(|cpu| before[cpu] > 0 && after[cpu] > before[cpu]),
                "boot {}: {what} per CPU before the work {before:?}, after {after:?}\n{}",
                n + 1,
                run.dump()
            );
        }
    }
    // The RTOS took Linux's message once per boot of Linux.
    assert_eq!(
        rtos.iter()
            .filter(|l| **l == "channel: got hello-from-linux")
            .count(),
        2,
        "{}",
        run.dump()
    );
    // Each partition got exactly what was typed while it had the focus.
    assert!(
        linux.contains(&format!("{MARK}got not-a-command").as_str()),
        "{}",
        run.dump()
    );
    assert!(
        linux.contains(&format!("{MARK}got reboot").as_str()),
        "{}",
        run.dump()
    );
    assert!(
        linux.contains(&format!("{MARK}got poweroff").as_str()),
        "{}",
        run.dump()
    );
    assert!(
        !linux
            .iter()
            .any(|l| l.contains("for-the-rtos") || l.contains("exit"))
    );
    let got: Vec<&&str> = rtos.iter().filter(|l| l.starts_with("got: ")).collect();
    assert_eq!(got, [&"got: for-the-rtos", &"got: exit"], "{}", run.dump());

    // The RTOS beat on through both boots, the reset and the power-off,
    // every interval its period (100 ms of the counter) to within 1%.
    let stamps: Vec<u64> = rtos
        .iter()
        .filter(|l| l.starts_with("heartbeat "))
        .filter_map(|l| timestamp(l))
        .collect();
    let beats_in = |from: usize, to: usize| {
        run.lines[from..to]
            .iter()
            .filter(|l| l.starts_with("[rtos] heartbeat "))
            .count()
    };
    assert!(
        beats_in(0, reset_at) > 0
            && beats_in(reset_at, off_at) > 0
            && beats_in(off_at, run.lines.len()) > 0,
        "{}",
        run.dump()
    );
    let period = counter_hz / 10;
    let intervals: Vec<u64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    let worst = intervals
        .iter()
        .map(|d| d.abs_diff(period))
        .max()
        .unwrap_or(0);
    assert!(
        stamps.len() > 10 && worst * 100 <= period,
        "the RTOS's heartbeat: {} beats, worst interval {worst} ticks off {period}:\n{intervals:?}",
        stamps.len()
    );
    assert!(
        rtos.contains(&format!("done beats={}", stamps.len()).as_str()),
        "every beat printed: {}",
        run.dump()
    );
    // Its exits are those of a timer, a console and its hypercalls only:
    // no SGI, no trapped register, no access outside what it has.
    let exits = run
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("[bulkhead] partition rtos vCPU 0 exits: "))
        .unwrap_or_else(|| panic!("no exit report of the RTOS:\n{}", run.dump()));
    for quiet in [
        "sgi-trap=0",
        "sysreg=0",
        "other=0",
        "sgi-refused=0",
        "external-abort=0",
    ] {
        assert!(exits.split(' ').any(|c| c == quiet), "RTOS exits: {exits}");
    }
    assert!(run.has("[bulkhead] partition rtos stopped: vCPU 0 exited with code 0"));

    // The machine powered off by itself once both were done.
    assert!(run.exited, "QEMU did not exit by itself:\n{}", run.dump());
}
