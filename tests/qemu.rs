//! QEMU integration tests: real images booted on QEMU's virt machine,
//! asserting on what the guests printed (and on the hypervisor's reports
//! only where the report itself is the feature).

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::sync::OnceLock;
use std::time::Duration;

use support::{Run, board_machine, boot, guest, image, shared_run, timestamp, value};

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
    // Their channel: alpha's greeting through the ring, beta's answer back.
    for line in support::DEMO_CHANNEL {
        assert!(run.has(line), "no {line:?}:\n{}", run.dump());
    }
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

/// A guest that reaches for an address its partition has nothing at (the
/// neighbour's memory, for a read and a write; an address with nothing at
/// all, for a call) takes the synchronous external abort hardware gives,
/// at its own vector, and carries on: the access never completes, the
/// hypervisor reports the first one once and counts all, and the
/// neighbour whose memory it was is untouched.
#[test]
fn a_guest_reaching_for_memory_it_does_not_have_takes_an_external_abort_and_carries_on() {
    let run = isolation_run();
    let intruder = run.of("intruder");
    for line in [
        "intruder: reading 0x54000000",
        // EC 0x25: data abort at EL1; DFSC 0x10: synchronous external abort.
        "intruder: read aborted EC=0x25 DFSC=0x10 WnR=0",
        "intruder: write aborted EC=0x25 DFSC=0x10 WnR=1",
        // EC 0x21: instruction abort at EL1; the guest came back to its caller.
        "intruder: fetch aborted EC=0x21 IFSC=0x10",
        "intruder: external aborts counted 3",
        "intruder: carried on",
    ] {
        assert!(
            intruder.contains(&line),
            "missing {line:?}:\n{}",
            run.dump()
        );
    }
    assert!(
        !intruder.iter().any(|l| l.contains("read succeeded")),
        "the intruder read another partition's memory:\n{}",
        run.dump()
    );
    // Reported once (the first), with the address and the guest's PC.
    let reports: Vec<_> = run
        .lines
        .iter()
        .filter(|l| l.contains("with nothing behind it"))
        .collect();
    assert_eq!(reports.len(), 1, "{}", run.dump());
    assert!(
        reports[0]
            .starts_with("[bulkhead] partition intruder vCPU 0: read of IPA 0x54000000 (PC 0x4000"),
        "{}",
        reports[0]
    );
    // The guest ended by itself; its exit counts show the three aborts.
    assert!(
        run.has("[bulkhead] partition intruder stopped: vCPU 0 exited with code 0"),
        "{}",
        run.dump()
    );
    assert!(
        run.lines.iter().any(
            |l| l.starts_with("[bulkhead] partition intruder vCPU 0 exits:")
                && l.contains(" external-abort=3")
        ),
        "{}",
        run.dump()
    );
    // The victim, whose memory it was, kept its heartbeat going afterwards.
    let report = run
        .position("[bulkhead] partition intruder vCPU 0: read of IPA 0x54000000")
        .unwrap_or_else(|| panic!("no report:\n{}", run.dump()));
    let victim_after = run.lines[report..]
        .iter()
        .filter(|l| l.starts_with("[victim] heartbeat"))
        .count();
    assert!(
        victim_after >= 5,
        "victim beat {victim_after} times after the aborts:\n{}",
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

/// The calls the hypervisor answers at its exit vector give exactly what
/// its Rust handler gives, in both runs of these tests (see
/// `support::assert_call_answers`).
#[test]
fn the_calls_answered_at_the_vector_answer_as_the_reference_does() {
    let run = isolation_run();
    support::assert_call_answers(run, "badcall", 2);
}

/// A trapped access to a virtual GIC register reads into or writes from
/// exactly the register it names, whichever it is, and leaves every other
/// one as it was (see `support::assert_register_probes`).
#[test]
fn an_emulated_access_touches_only_the_register_it_names() {
    support::assert_register_probes(isolation_run(), "badcall");
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

/// Partitions that stop while their lines still wait for the UART
/// (tests/configs/last-words.toml): "early" exits with 64 lines queued,
/// "late" and "later" 5 ms after starting. The last to stop drains every
/// partition before it powers off; draining one partition to the end
/// before the next waited for ever on the other's turn at the console.
#[test]
fn lines_still_waiting_when_the_last_partition_stops_all_come_out() {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = shared_run(
        &RUN,
        "tests/configs/last-words.toml",
        Duration::from_secs(60),
    );
    assert!(
        run.exited,
        "QEMU was still running at the time limit:\n{}",
        run.dump()
    );
    let expected: Vec<String> = (0..64)
        .map(|i| format!("words: 0 line {i} of 64 ......................................"))
        .collect();
    assert_eq!(run.of("early"), expected, "{}", run.dump());
    assert_eq!(run.of("late"), ["words: 1 line 0 of 1"], "{}", run.dump());
    assert_eq!(run.of("later"), ["words: 2 line 0 of 1"], "{}", run.dump());
    for name in ["early", "late", "later"] {
        let report = format!("[bulkhead] partition {name} stopped: vCPU 0 exited with code 0");
        assert!(run.has(&report), "missing {report:?}:\n{}", run.dump());
        let masking = format!("[bulkhead] partition {name} vCPU 0 masking: ");
        assert!(
            run.lines.iter().any(|l| l.starts_with(&masking)),
            "missing {masking:?}:\n{}",
            run.dump()
        );
    }
    assert_eq!(
        run.lines.last().map(String::as_str),
        Some("[bulkhead] all partitions have stopped; powering off"),
        "{}",
        run.dump()
    );
}

#[test]
fn the_same_guest_binary_runs_natively_without_the_hypervisor() {
    let machine = board_machine().native().smp(1);
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
    let machine = board_machine().smp(2);
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

// ---- interrupt virtualization (GICv3) ------------------------------------

fn ipi_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    shared_run(&RUN, "tests/configs/ipi.toml", Duration::from_secs(240))
}

#[test]
fn ten_thousand_ipis_ping_pong_between_two_vcpus_each_once_in_order() {
    let run = ipi_run();
    assert!(
        run.has("[ipi] ipi: pingpong rounds=10000 received=10000 replies=10000 errors=0"),
        "{}",
        run.dump()
    );
}

#[test]
fn broadcast_and_multicast_sgis_reach_exactly_their_targets() {
    let run = ipi_run();
    assert!(
        run.has("[ipi] ipi: broadcast sgi3 counts=0,1,1,1 sgi_traps=1"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[ipi] ipi: multicast sgi4 counts=0,1,0,1 sgi_traps=1"),
        "{}",
        run.dump()
    );
}

/// Eight SGIs sent back to back to a running vCPU: its CPU finds them
/// pending together at one kick, and each arrives once, on it.
#[test]
fn a_burst_of_sgis_to_one_vcpu_arrives_whole() {
    let run = ipi_run();
    assert!(
        run.has("[ipi] ipi: burst sgi5-12 counts=1,1,1,1,1,1,1,1 strays=0"),
        "{}",
        run.dump()
    );
}

#[test]
fn each_sgi_sent_costs_exactly_one_trap() {
    let run = ipi_run();
    for v in 0..2 {
        let line = format!("[ipi] ipi: vcpu {v} sent=10000 sgi_traps=10000");
        assert!(run.has(&line), "missing {line:?}:\n{}", run.dump());
    }
}

#[test]
fn more_pending_interrupts_than_list_registers_arrive_all_once_in_priority_order() {
    let run = ipi_run();
    let line = run
        .of("ipi")
        .into_iter()
        .find(|l| l.starts_with("ipi: priority delivered="))
        .unwrap_or_else(|| panic!("no priority report:\n{}", run.dump()));
    assert!(
        line.starts_with("ipi: priority delivered=16 duplicates=0 order="),
        "{line}"
    );
    // The guest's priorities: SGI n has ((n * 7) % 16) * 8.
    let order: Vec<u32> = line
        .rsplit_once("order=")
        .unwrap()
        .1
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let mut expected: Vec<u32> = (0..16).collect();
    expected.sort_by_key(|n| (n * 7) % 16);
    assert_eq!(order, expected);
    assert!(
        run.has("[ipi] ipi: priority in_order=yes"),
        "{}",
        run.dump()
    );
    assert!(run.exited, "{}", run.dump());
}

/// Two RTOS partitions exchange 100,000 messages each way through two
/// rings over shared regions, each side woken by the other's doorbell
/// only when its ring is empty: none lost, reordered, duplicated or
/// corrupted (each checked on arrival), across a SYSTEM_RESET of the
/// receiving partition half-way, whose second boot finds the rings and the
/// other side's messages as they were and goes on from the next. A
/// channel the ringer does not have (through its doorbell page, the
/// DOORBELL call, and a channel number past 32 bits) is refused and
/// counted, and the target takes nothing; the real one rung by call
/// arrives once.
#[test]
fn rtos_partitions_exchange_messages_through_channels_across_a_restart() {
    let run = support::boot_config("tests/configs/channel.toml", Duration::from_secs(120));
    support::assert_channel_exchange(&run);
}

/// A shared region: what one partition writes the other reads; the one
/// that maps it read-only takes an external abort when it writes, and the
/// value stays the writer's.
#[test]
fn a_read_only_shared_region_is_read_by_one_and_written_by_the_other_only() {
    let run = support::boot_config("tests/configs/shared.toml", Duration::from_secs(60));
    assert!(
        run.of("writer").contains(&"shared: wrote 0x5eed"),
        "{}",
        run.dump()
    );
    let reader = run.of("reader");
    for line in [
        "shared: read 0x5eed",
        "shared: write aborted EC=0x25 DFSC=0x10 WnR=1",
        "shared: still 0x5eed",
    ] {
        assert!(reader.contains(&line), "missing {line:?}:\n{}", run.dump());
    }
    assert!(
        run.lines.iter().any(|l| l
            .starts_with("[bulkhead] partition reader vCPU 0: write to IPA 0x70000000 (PC 0x4000")
            && l.contains("mapped read-only")),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[bulkhead] partition reader stopped: vCPU 0 exited with code 0"),
        "{}",
        run.dump()
    );
}

#[test]
fn sgis_to_vcpus_outside_the_partition_reach_nobody_and_are_counted() {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = shared_run(
        &RUN,
        "tests/configs/sgi-isolation.toml",
        Duration::from_secs(60),
    );
    support::assert_sgi_isolation(run);
}

/// The timer partition runs alone under `-icount`: virtual time follows
/// instructions, not the loaded host, so the figures are exact.
fn timer_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let machine = board_machine().icount();
        let image = image("tests/configs/timer.toml");
        boot(&machine, &image, Duration::from_secs(120), |_| false)
    })
}

#[test]
fn each_vcpus_virtual_timer_ticks_at_the_configured_rate() {
    support::assert_timer_report(timer_run());
}

#[test]
fn a_passthrough_device_interrupt_reaches_its_owner_and_nobody_else() {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = shared_run(&RUN, "tests/configs/rtc.toml", Duration::from_secs(60));
    assert!(run.has("[rtc] rtc: armed"), "{}", run.dump());
    assert!(run.has("[rtc] rtc: alarm interrupt 34"), "{}", run.dump());
    assert!(
        run.has("[listener] listener: received=0 by_intid=none"),
        "{}",
        run.dump()
    );
    assert!(run.exited, "{}", run.dump());
}

// ---- interrupt masking through the shared flag word ------------------------

/// Under `-icount`, like the timer: the statistics compare the
/// hypervisor's clock readings with the guest's, which host scheduling
/// would otherwise skew by milliseconds.
fn mask_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let machine = board_machine().icount();
        let image = image("tests/configs/mask.toml");
        boot(&machine, &image, Duration::from_secs(180), |_| false)
    })
}

/// The line of `partition` starting with `prefix`.
fn line_of<'a>(run: &'a Run, partition: &str, prefix: &str) -> &'a str {
    run.of(partition)
        .into_iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line:\n{}", run.dump()))
}

#[test]
fn nothing_is_handled_inside_a_masked_window_and_everything_once_after() {
    let run = mask_run();
    assert!(
        run.has("[mask] mask: in_window=0 after: timer=1 sgi=1:1,2:1,3:1,4:1,5:1"),
        "{}",
        run.dump()
    );
}

#[test]
fn masking_costs_no_trap_and_an_unmask_with_something_pending_one_hypercall() {
    let run = mask_run();
    assert!(run.has("[mask] mask: pairs=1000 traps=0"), "{}", run.dump());
    assert!(
        run.has("[mask] mask: pending_unmask hvc=1"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[mask] mask: pending_unmask delivered=1"),
        "{}",
        run.dump()
    );
    // A forwarded interrupt (the timer) deferred alone: listed by the
    // unmask's hypercall with its physical INTID, taken once.
    assert!(
        run.has("[mask] mask: timer_unmask deferred=1 delivered=1"),
        "{}",
        run.dump()
    );
}

#[test]
fn an_interrupt_listed_just_before_the_mask_is_held_back_by_the_guest_vector() {
    let run = mask_run();
    assert!(
        run.has("[mask] mask: lazy inside=0 vector_masked=1 after=1"),
        "{}",
        run.dump()
    );
}

#[test]
fn the_critical_section_crate_excludes_both_vcpus_and_their_handlers() {
    let run = mask_run();
    assert!(
        run.has("[mask] mask: critical_section total=20000"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[mask] mask: critical_section handler_inside=0"),
        "{}",
        run.dump()
    );
}

#[test]
fn the_deferral_statistics_match_what_the_guest_measured() {
    let run = mask_run();
    let line = line_of(run, "mask", "mask: stats ");
    // The timer (once, a level interrupt) and SGIs 1..=5.
    assert_eq!(value(line, "deferred"), 6, "{line}");
    let (wait, window, guest) = (
        value(line, "max_wait"),
        value(line, "max_window"),
        value(line, "guest_wait"),
    );
    // The hypervisor's window runs from the first deferral (the timer's
    // deadline) to the unmask it sees; the guest's from the deadline it set
    // to its unmask: the same span, but for the exit on either end.
    assert!(
        window.abs_diff(guest) * 100 <= guest,
        "hypervisor window {window} vs guest {guest}: {line}"
    );
    // Six deferred, four list registers: the last two wait for a refill.
    assert!(wait >= window, "{line}");
    // Phase 2's timer, deferred alone for longer than phase 1's window and
    // listed by the unmask's hypercall: the longest wait and window are
    // its own (ended by the IRQ_UNMASK fast path, where it has one).
    let timer = line_of(run, "mask", "mask: timer_stats ");
    let guest = value(timer, "guest_wait");
    for figure in ["max_wait", "max_window"] {
        let hypervisor = value(timer, figure);
        assert!(
            hypervisor.abs_diff(guest) * 100 <= guest && hypervisor > window,
            "{figure} {hypervisor} vs guest {guest} (phase 1: {window}): {timer}"
        );
    }
    // The report at the partition's stop says what the guest read last.
    let last = line_of(run, "mask", "mask: final_stats ");
    let report = format!(
        "[bulkhead] partition mask vCPU 0 masking: deferred={} max_wait={} max_window={}",
        value(last, "deferred"),
        value(last, "max_wait"),
        value(last, "max_window")
    );
    assert!(
        run.lines.iter().any(|l| l.starts_with(&report)),
        "{report}\n{}",
        run.dump()
    );
}

#[test]
fn a_partition_that_masks_forever_and_scribbles_its_page_holds_only_itself() {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = shared_run(&RUN, "tests/configs/scribble.toml", Duration::from_secs(60));
    assert!(
        run.has("[scribble] scribble: page unchanged"),
        "{}",
        run.dump()
    );
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.starts_with("[beats] heartbeat"))
            .count(),
        20,
        "{}",
        run.dump()
    );
    assert!(run.has("[beats] done"), "{}", run.dump());
    assert!(run.exited, "{}", run.dump());
}

// ---- benchmark guard ---------------------------------------------------------

/// The benchmark (scripts/bench.sh, tests/configs/bench.toml) on the
/// machine of measuring.md, under `-icount`: only its functional figures
/// are asserted, never its timings. One trapped write per SGI at the
/// sender, and no exit at all for a flag mask/unmask with nothing pending.
#[test]
fn benchmark_functional_figures_hold() {
    let machine = board_machine().measuring();
    let image = image("tests/configs/bench.toml");
    let run = boot(&machine, &image, Duration::from_secs(120), |_| false);
    let figure = |name: &str| {
        let prefix = format!("bench: {name}=");
        run.of("bench")
            .into_iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} figure:\n{}", run.dump()))
            .to_owned()
    };
    assert_eq!(figure("exits_per_ipi_sender"), "1", "{}", run.dump());
    assert_eq!(figure("traps_per_1000_mask_unmask"), "0", "{}", run.dump());
    assert!(run.exited, "{}", run.dump());
}

fn psci_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    shared_run(&RUN, "tests/configs/psci.toml", Duration::from_secs(60))
}

#[test]
fn a_vcpu_powers_off_and_on_again_through_psci() {
    let run = psci_run();
    for line in [
        "[psci] psci: version=0x10001",
        "[psci] psci: vcpu 1 life 1",
        "[psci] psci: affinity off after life 1",
        "[psci] psci: vcpu 1 life 2",
        "[psci] psci: affinity off after life 2",
        // Every vCPU starts with all registers but x0 zero: at boot and at
        // each CPU_ON, although life 1 powered off with them all ones (a
        // planted `nop` for the hypervisor's `mov x18, xzr` showed 0xff00ff
        // 00000000 at boot and all ones in life 2).
        "[psci] psci: vcpu 0 entry registers 0x0",
        "[psci] psci: vcpu 1 life 1 entry registers 0x0",
        "[psci] psci: vcpu 1 life 2 entry registers 0x0",
    ] {
        assert!(run.has(line), "missing {line:?}:\n{}", run.dump());
    }
    // PSCI_FEATURES answers for the calls it implements, and
    // SMCCC_ARCH_FEATURES for itself (NOT_SUPPORTED for a workaround).
    assert!(
        run.has(
            "[psci] psci: features cpu_on=0 system_reset=0 smccc_version=0 \
             arch_features=0 workaround_1=-1"
        ),
        "{}",
        run.dump()
    );
    // A CPU_ON of a vCPU that is on or on its way (ALREADY_ON either way,
    // as KVM and QEMU answer), and of one the partition does not have.
    assert!(
        run.has("[psci] psci: cpu_on refused already_on=-4 absent=-2"),
        "{}",
        run.dump()
    );
    assert!(!run.has("[psci] psci: CPU_OFF returned"), "{}", run.dump());
}

#[test]
fn an_unemulated_system_register_is_undefined_for_the_guest_not_fatal() {
    let run = psci_run();
    let line = line_of(
        run,
        "psci",
        "exception: synchronous from current EL on cpu 0:",
    );
    assert!(
        line.contains("(EC=0x0)"),
        "an Undefined Instruction exception: {line}"
    );
    assert!(
        !run.of("psci").iter().any(|l| l.contains("must not happen")),
        "{}",
        run.dump()
    );
    // The guest's own handler ended it (EXIT_EXCEPTION), not the hypervisor.
    assert!(
        run.has("[bulkhead] partition psci stopped: vCPU 0 exited with code 102"),
        "{}",
        run.dump()
    );
}

// ---- freedom from interference ---------------------------------------------

/// The victim beside a neighbour that floods the console and storms its
/// own virtual GIC (tests/configs/interference.toml), under `-icount`:
/// virtual time follows instructions, so what the victim measures is the
/// same on every run and every host.
fn interference_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let machine = board_machine().icount();
        let image = image("tests/configs/interference.toml");
        boot(&machine, &image, Duration::from_secs(240), |_| false)
    })
}

/// The victim's figures for one phase of its neighbour.
fn victim_phase(run: &Run, phase: &str) -> std::collections::HashMap<String, u64> {
    let prefix = format!("victim: {phase} ");
    let figures: std::collections::HashMap<String, u64> = run
        .of("victim")
        .into_iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .flat_map(str::split_whitespace)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
        .collect();
    for key in [
        "ticks",
        "console_n",
        "console_max_ns",
        "gic_max_ns",
        "null_slow",
    ] {
        assert!(
            figures.contains_key(key),
            "no {key} for {phase}:\n{}",
            run.dump()
        );
    }
    figures
}

/// A neighbour writing 160-character lines as fast as it can, on two
/// vCPUs, through CONSOLE_WRITE and its emulated PL011, neither slows the
/// victim's timer nor makes its console writes wait, and every line of the
/// victim's reaches the console. (With one console lock for the UART, held
/// while a line was written out, 13 to 18 of the victim's 99 writes waited,
/// up to 7.3 to 9.1 ms.)
#[test]
fn a_console_flood_next_door_neither_delays_nor_silences_a_partition() {
    let run = interference_run();
    let quiet = victim_phase(run, "quiet");
    let flood = victim_phase(run, "console");
    // Not one timer tick fewer in the victim's window. (More: each line
    // the neighbour starts through CONSOLE_WRITE, 48 bytes a call, arms its
    // own CPU's EL2 timer in case the rest does not follow, and under
    // -icount each timer programmed ends QEMU's round-robin slice, so the
    // victim runs more often. With whole lines only, as before output went
    // out by the character, the two were equal.)
    assert!(
        flood["ticks"] >= quiet["ticks"],
        "timer ticks: {flood:?} vs {quiet:?}: {}",
        run.dump()
    );
    // The victim's own EL2 path differs by a few instructions when the
    // neighbour holds the UART's turn (its line then waits in its ring):
    // within 10%. Waiting for the neighbour took a thousand times longer.
    assert!(
        flood["console_median_ns"] * 10 <= quiet["console_median_ns"] * 11,
        "{flood:?} vs {quiet:?}"
    );
    // Under -icount a call can take longer only when QEMU's single TCG
    // thread runs the other vCPUs in the middle of it (round robin, each
    // until the next timer deadline): when a deadline falls inside the
    // call, the neighbour's two vCPUs each run one slice, about 1 ms (the
    // EL2 retry timers' period) while their lines wait; a second deadline
    // within the same call (the victim's own retry timer, armed when a line
    // is left for its next turn) makes it two rounds. Which call a
    // deadline lands in moves with every change of an exit's instruction
    // count: one GIC write spanned three slices (3.25 ms) once a slow path
    // got shorter. Waiting for the neighbour itself took 7.3 to 9.1 ms.
    // The retry timer's interrupt can land inside the victim's timing of
    // any call (when depends on the host draining QEMU's UART), so the same
    // bound, two rounds of the neighbour's two vCPUs, holds for all.
    for call in ["console", "gic", "null"] {
        assert!(
            flood[&format!("{call}_max_ns")] < 4_000_000,
            "{call}: {flood:?}"
        );
    }
    // Every line the victim wrote arrived, whole, however much the
    // neighbour wrote.
    let samples: u64 = ["quiet", "console", "gic"]
        .iter()
        .map(|p| victim_phase(run, p)["console_n"])
        .sum();
    let printed = run
        .of("victim")
        .iter()
        .filter(|l| l.starts_with("victim sample "))
        .count() as u64;
    assert_eq!(printed, samples, "{}", run.dump());
    let aggressor = run
        .of("aggressor")
        .into_iter()
        .find_map(|l| l.strip_prefix("aggressor: console_lines="))
        .unwrap_or_else(|| panic!("no aggressor report:\n{}", run.dump()));
    let lines: u64 = aggressor
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lines > 1000, "the neighbour did not flood: {aggressor}");
    assert!(run.exited, "{}", run.dump());
}

/// A neighbour enabling and disabling an SGI in its own redistributor as
/// fast as it can, on two vCPUs, never makes the victim's own GIC writes
/// wait: the physical GIC follows each partition's virtual one with
/// single-register writes of its own interrupts, under no lock another
/// partition takes. (With one lock for the physical GIC, held while every
/// owned interrupt was reprogrammed, 8 to 15 of the victim's writes in the
/// phase waited, up to 7.3 ms.)
#[test]
fn a_virtual_gic_storm_next_door_never_makes_a_partition_wait() {
    let run = interference_run();
    let quiet = victim_phase(run, "quiet");
    let storm = victim_phase(run, "gic");
    assert_eq!(storm["ticks"], quiet["ticks"], "{}", run.dump());
    assert_eq!(storm["gic_slow"], 0, "{storm:?}");
    assert_eq!(
        storm["gic_max_ns"], quiet["gic_max_ns"],
        "{storm:?} vs {quiet:?}"
    );
    assert_eq!(storm["null_slow"], 0, "{storm:?}");
    assert_eq!(storm["console_slow"], 0, "{storm:?}");
    let aggressor = run
        .of("aggressor")
        .into_iter()
        .find_map(|l| l.split_once("gic_writes=").map(|(_, n)| n.to_owned()))
        .unwrap_or_else(|| panic!("no aggressor report:\n{}", run.dump()));
    let writes: u64 = aggressor.trim().parse().unwrap();
    assert!(writes > 10_000, "the neighbour did not storm: {writes}");
}

// ---- interrupts never lost, withdrawals honoured (test-fidelity.rs) --------

fn fidelity_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    shared_run(
        &RUN,
        "tests/configs/fidelity.toml",
        Duration::from_secs(120),
    )
}

/// The figures of one check of the fidelity guest.
fn fidelity(check: &str) -> std::collections::HashMap<String, String> {
    let run = fidelity_run();
    let prefix = format!("fidelity: {check} ");
    let line = run
        .of("fidelity")
        .into_iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {check} line:\n{}", run.dump()));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn number(figures: &std::collections::HashMap<String, String>, key: &str) -> u64 {
    figures[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number: {figures:?}"))
}

/// A forwarded interrupt that fires while software has set it pending
/// (Linux's IRQ resend writes ISPENDR) is not merged away: the one physical
/// interrupt keeps its link to the guest's deactivation. (Before: the timer
/// ticked 0 times in 330 ms after it; the PL031's second alarm never came.)
#[test]
fn a_forwarded_interrupt_set_pending_by_software_is_never_lost() {
    // About 33 at 10 ms; a loaded host delays and skips some, never all.
    let timer = fidelity("timer_resend");
    assert!(number(&timer, "ticks") >= 10, "{timer:?}");
    let rtc = fidelity("rtc_resend");
    assert_eq!(number(&rtc, "alarms"), 2, "{rtc:?}");
}

/// CPU_OFF gives back what the vCPU's list registers held (its timer's
/// forwarded interrupt deactivated) and resets its virtual CPU interface:
/// after CPU_ON its timer ticks, and a vCPU that powered off inside a
/// handler comes back idle and takes SGIs. (Before: 0 ticks; ICC_RPR_EL1
/// 0xa0 and 0 of 10 SGIs.)
#[test]
fn cpu_off_loses_no_interrupt_and_cpu_on_starts_clean() {
    // About 30 at 10 ms; a loaded host delays and skips some, never all.
    let timer = fidelity("cpu_off_timer");
    assert!(number(&timer, "ticks") >= 10, "{timer:?}");
    let handler = fidelity("cpu_off_in_handler");
    assert_eq!(handler["rpr"], "0xff", "{handler:?}");
    assert_eq!(number(&handler, "sgis"), 10, "{handler:?}");
}

/// ICPENDR, ICENABLER and ICACTIVER reach what the list registers hold:
/// a cleared interrupt is not taken, a disabled one waits until enabled,
/// a cleared active state reads clear. (Before: each was taken or read as
/// before the write.)
#[test]
fn clearing_pending_active_or_enable_withdraws_from_the_list_registers() {
    let sgi = fidelity("icpendr_sgi");
    assert_eq!(
        (number(&sgi, "ran"), number(&sgi, "pending")),
        (0, 0),
        "{sgi:?}"
    );
    let disabled = fidelity("icenabler_sgi");
    assert_eq!(number(&disabled, "while_disabled"), 0, "{disabled:?}");
    assert_eq!(number(&disabled, "after_enable"), 1, "{disabled:?}");
    let spi = fidelity("icpendr_spi");
    assert_eq!(number(&spi, "ran"), 0, "{spi:?}");
    let active = fidelity("icactiver_sgi");
    assert_eq!(number(&active, "active"), 0, "{active:?}");
}

/// An SPI routed to an affinity no vCPU has goes to nobody until it is
/// routed to one; group 0 SGIs reach no vCPU and are counted; CPU_SUSPEND
/// exists (PSCI 1.x requires it). (Before: vCPU 0 took the SPI at once;
/// the SGI was dropped uncounted; CPU_SUSPEND was NOT_SUPPORTED.)
#[test]
fn routing_to_nobody_group0_sgis_and_cpu_suspend_follow_the_architecture() {
    let route = fidelity("irouter_none");
    assert_eq!(
        (number(&route, "before"), number(&route, "after")),
        (0, 1),
        "{route:?}"
    );
    let sgi0 = fidelity("sgi0r");
    assert_eq!(
        (number(&sgi0, "refused"), number(&sgi0, "received")),
        (1, 0),
        "{sgi0:?}"
    );
    let suspend = fidelity("cpu_suspend");
    assert_eq!(suspend["status"], "0", "{suspend:?}");
}

/// GICD_CTLR.EnableGrp1 clear holds back an SGI sent to a waiting vCPU
/// (the fast path checks the group, as the Rust path does); enabling the
/// group again delivers it, once.
#[test]
fn group_1_disabled_holds_interrupts_back_until_enabled() {
    let g = fidelity("group1_off");
    assert_eq!(
        (number(&g, "while_off"), number(&g, "after_on")),
        (0, 1),
        "{g:?}"
    );
}

/// The EL1 physical timer is the guest's, as on hardware: CNTP_* at EL1 and
/// its PPI 30 at the guest's own vector, beside the virtual timer. (Before:
/// every CNTP_* access was UNDEFINED.)
#[test]
fn the_el1_physical_timer_ticks_at_the_guests_vector_beside_the_virtual_one() {
    // About 30 each at 10 ms; a loaded host delays and skips some, never all.
    let t = fidelity("ptimer");
    assert_eq!(t["undefined"], "false", "{t:?}");
    assert!(number(&t, "ticks") >= 10, "{t:?}");
    assert!(number(&t, "vticks") >= 10, "{t:?}");
}

/// GICR_ISPENDR0 of a forwarded PPI is the physical interrupt's state: a
/// timer that fired while its interrupt is disabled reads pending, and not
/// pending once the timer is stopped, for the virtual and the physical
/// timer, and for another vCPU's timer read through its redistributor.
#[test]
fn ispendr_shows_a_fired_timer_whose_interrupt_is_disabled() {
    let t = fidelity("ispendr_timer");
    for timer in ["v", "p", "other"] {
        let (fired, cleared) = (format!("{timer}_fired"), format!("{timer}_cleared"));
        assert_eq!(
            (number(&t, &fired), number(&t, &cleared)),
            (1, 0),
            "{timer}: {t:?}"
        );
    }
}

/// A level-triggered passthrough SPI whose line drops before the guest
/// acknowledges it is not delivered, as on hardware: raised while the
/// guest masks IRQs (PSTATE.I, or the flag word) and cleared at the device
/// before the unmask, and raised again by an end of interrupt that comes
/// before the device is cleared. An alarm taken with IRQs unmasked costs
/// no trapped system-register access. (Before: 1 1 and 2.)
#[test]
fn a_level_interrupt_whose_line_drops_before_the_acknowledge_is_not_delivered() {
    let d = fidelity("level_drop");
    assert_eq!(number(&d, "daif"), 0, "{d:?}");
    assert_eq!(number(&d, "flag"), 0, "{d:?}");
    assert_eq!(number(&d, "eoi_first"), 1, "{d:?}");
    let plain = fidelity("level_plain");
    assert_eq!(number(&plain, "alarms"), 1, "{plain:?}");
    assert_eq!(number(&plain, "sysreg_traps"), 0, "{plain:?}");
}

/// The performance monitors are not the guest's (they could count the
/// hypervisor's cycles), ACTLR_EL1 reads as zero, and data cache
/// maintenance by set/way (which would reach the L2 other partitions
/// share) does nothing, without an exception. (Before: PMCCNTR_EL0 read.)
#[test]
fn a_guest_cannot_time_the_hypervisor_or_disturb_shared_caches() {
    let pmu = fidelity("pmu");
    assert_eq!(pmu["pmccntr_undefined"], "true", "{pmu:?}");
    assert_eq!(pmu["actlr"], "0x0", "{pmu:?}");
    assert_eq!(pmu["actlr_exception"], "false", "{pmu:?}");
    assert_eq!(pmu["set_way_ok"], "true", "{pmu:?}");
    let run = fidelity_run();
    assert!(run.has("[fidelity] fidelity: done"), "{}", run.dump());
    assert!(run.exited, "{}", run.dump());
}

/// The flag gate holds on its own, seen by a guest whose IRQ vector only
/// records what it is given (test-rawgate.rs, not guest-lib's vector, which
/// re-checks the flag itself): nothing is taken while the flag is set, all
/// six interrupts arrive after the unmask protocol in priority order, and
/// in the window between clearing the flag and the hypercall a new, less
/// urgent interrupt does not overtake the deferred ones. (Planted bugs
/// caught: the fast path ignoring the flag, 6 taken while masked; the fast
/// path ignoring the queue, the timer first.)
#[test]
fn the_mask_flag_holds_without_help_from_the_guests_vector() {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = shared_run(&RUN, "tests/configs/rawgate.toml", Duration::from_secs(60));
    assert!(
        run.has("[rawgate] rawgate: masked taken_while_masked=0 flagged=0 after=2,4,5,3,1,27"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[rawgate] rawgate: window first=2 after=2,4,27"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[rawgate] rawgate: done") && run.exited,
        "{}",
        run.dump()
    );
}

/// Every partition reaches the first and last byte of each of its regions,
/// and the first byte past a region is a synchronous external abort for
/// the toucher and no one else (guest-lib reports it and exits); with
/// partitions back to back in physical memory, a stage-2 map one page too
/// long would have let them read and write their neighbours (a planted
/// `size + 0x1000` did: p0 read p1's memory, p2 overwrote p3's first
/// instructions).
#[test]
fn the_first_byte_past_a_partitions_memory_faults_for_the_toucher_only() {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = shared_run(&RUN, "tests/configs/bounds.toml", Duration::from_secs(60));
    for p in 0..4 {
        let line = format!("[p{p}] bounds: {p} edges ok");
        assert!(run.has(&line), "missing {line:?}:\n{}", run.dump());
    }
    for (p, access, address) in [
        (0, "read of", "0x42000000"),
        (1, "read of", "0x44100000"),
        (2, "write to", "0x42000000"),
    ] {
        let report = format!("[bulkhead] partition p{p} vCPU 0: {access} IPA {address} (PC ");
        assert!(
            run.lines.iter().any(|l| l.starts_with(&report)),
            "missing {report:?}:\n{}",
            run.dump()
        );
        // The guest took a data abort (EC 0x25) for that address at its own
        // vector: guest-lib's handler reports it and exits.
        let taken = format!("(EC=0x25) FAR={address}");
        assert!(
            run.of(&format!("p{p}"))
                .iter()
                .any(|l| l.starts_with("exception: synchronous from current EL")
                    && l.contains(&taken)),
            "missing the abort at p{p}'s vector:\n{}",
            run.dump()
        );
        let stopped = format!("[bulkhead] partition p{p} stopped: vCPU 0 exited with code 102");
        assert!(run.has(&stopped), "missing {stopped:?}:\n{}", run.dump());
        assert!(
            !run.of(&format!("p{p}"))
                .iter()
                .any(|l| l.contains("survived")),
            "{}",
            run.dump()
        );
    }
    assert!(
        run.has("[p3] bounds: 3 first bytes intact"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[bulkhead] partition p3 stopped: vCPU 0 exited with code 0"),
        "{}",
        run.dump()
    );
    assert!(run.exited, "{}", run.dump());
}

// ---- console input (test-console.rs) ----------------------------------------

/// Typing on the console (tests/configs/console.toml): the focus starts on
/// alpha, the first partition with an emulated PL011; each guest takes its
/// PL011's interrupt, echoes, prints a line and its prompt; Ctrl-] n and
/// Ctrl-] <digit> move the focus, which passes "beats" by (no PL011), and
/// moves on by itself when the focused partition stops. No partition gets
/// a byte typed while another had the focus, none takes an interrupt with
/// nothing raised, and a prompt shows before any newline follows it.
#[test]
fn typed_lines_reach_the_partition_with_the_focus_and_only_it() {
    use support::Session;
    let machine = board_machine();
    let mut s = Session::start(
        &machine,
        &image("tests/configs/console.toml"),
        Duration::from_secs(120),
    );
    // Waits until `needle` has been printed `times` times.
    let seen = |s: &Session, what: &str, needle: &[u8], times: usize| {
        let found = s.wait_for(Duration::from_secs(60), |out| {
            out.windows(needle.len()).filter(|w| *w == needle).count() >= times
        });
        assert!(
            found,
            "{what}: {:?} not {times} time(s) in\n{}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&s.output())
        );
    };
    let wait = |s: &Session, what: &str, needle: &[u8]| seen(s, what, needle, 1);
    // A prompt is out, and nothing (no newline) after it yet.
    let prompt = |s: &Session, name: &str| {
        let tail = format!("\n[{name}] > ");
        let shown = s.wait_for(Duration::from_secs(30), |out| {
            out.ends_with(tail.as_bytes())
        });
        assert!(
            shown,
            "{name}'s prompt is not the last thing shown:\n{}",
            String::from_utf8_lossy(&s.output())
        );
    };
    wait(&s, "boot", b"[bulkhead] console input: alpha\r\n");
    wait(&s, "alpha", b"[alpha] console: ready\r\n");
    wait(&s, "beta", b"[beta] console: ready\r\n");
    // The heartbeats printed while both prompts waited.
    wait(&s, "beats", b"[beats] done\r\n");
    wait(&s, "beats", b"partition beats stopped");

    s.send(b"hello\r");
    wait(&s, "alpha's line", b"[alpha] got: hello spurious=0\r\n");
    prompt(&s, "alpha");
    s.send(b"\x1dn");
    wait(&s, "Ctrl-] n", b"[bulkhead] console input: beta\r\n");
    s.send(b"world\r");
    wait(&s, "beta's line", b"[beta] got: world spurious=0\r\n");
    prompt(&s, "beta");
    // A digit names a partition; beats takes no input; an unknown command
    // says how it works; Ctrl-] Ctrl-] types a Ctrl-].
    s.send(b"\x1d2");
    wait(
        &s,
        "Ctrl-] 2",
        b"[bulkhead] console: partition 2 (beats) takes no input",
    );
    s.send(b"\x1dx");
    wait(
        &s,
        "help",
        b"[bulkhead] console: Ctrl-] n gives the input to the next partition",
    );
    s.send(b"\x1d1");
    seen(&s, "Ctrl-] 1", b"[bulkhead] console input: alpha\r\n", 2);
    s.send(b"a\x1d\x1db\r");
    wait(
        &s,
        "a literal Ctrl-]",
        b"[alpha] got: a\x1db spurious=0\r\n",
    );
    // Alpha stops: the focus moves on to beta by itself.
    s.send(b"exit\r");
    wait(&s, "alpha's exit", b"partition alpha stopped");
    seen(
        &s,
        "the focus after alpha stopped",
        b"[bulkhead] console input: beta\r\n",
        2,
    );
    s.send(b"exit\r");
    wait(
        &s,
        "beta's exit",
        b"[bulkhead] all partitions have stopped; powering off",
    );
    let run = s.finish();

    let got = |name: &str| -> Vec<String> {
        run.of(name)
            .iter()
            .filter_map(|l| l.strip_prefix("got: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        got("alpha"),
        ["hello spurious=0", "a\x1db spurious=0", "exit spurious=0"],
        "{}",
        run.dump()
    );
    assert_eq!(
        got("beta"),
        ["world spurious=0", "exit spurious=0"],
        "{}",
        run.dump()
    );
    // Every visible line starts with one prefix and holds no other.
    let prefixes = ["[bulkhead] ", "[alpha] ", "[beta] ", "[beats] "];
    for line in run.lines.iter().filter(|l| !l.is_empty()) {
        let prefix = prefixes
            .iter()
            .find(|p| line.starts_with(*p))
            .unwrap_or_else(|| panic!("unprefixed line {line:?} in\n{}", run.dump()));
        let rest = &line[prefix.len()..];
        assert!(
            !prefixes.iter().any(|p| rest.contains(p)),
            "two senders in one line: {line:?}"
        );
    }
    assert!(run.exited, "{}", run.dump());
}

// ---- restarting one partition ----------------------------------------------

/// PSCI SYSTEM_RESET restarts the calling partition only, from its own
/// RTC alarm handler with that forwarded interrupt active
/// (tests/configs/restart.toml, under `-icount` with the RTC on virtual
/// time): the guest finds itself as from a reset (memory reloaded, its
/// virtual GIC, timer, control page and vCPUs back at reset), its device's
/// interrupt comes again, and the partition beside it beats on at its
/// period, through the restart, without a gap.
#[test]
fn system_reset_restarts_that_partition_only_and_as_new() {
    let machine = board_machine()
        .icount()
        .with(["-rtc", bulkhead_config::qemu::MEASURING_RTC]);
    let stopped = "[bulkhead] partition restarter stopped";
    let run = boot(
        &machine,
        &image("tests/configs/restart.toml"),
        Duration::from_secs(120),
        |lines| {
            lines
                .iter()
                .position(|l| l.starts_with(stopped))
                .is_some_and(|at| {
                    lines[at..]
                        .iter()
                        .filter(|l| l.starts_with("[steady] heartbeat "))
                        .count()
                        >= 3
                })
        },
    );
    let restarter = run.of("restarter");
    let expected = [
        "restart: boot 1 data=0x5eed1234 bss=0x0",
        "restart: vcpu 1 up",
        "restart: boot 1 armed",
        "restart: boot 1 resetting from the alarm handler",
        // As it started: .data from the image, .bss zero.
        "restart: boot 2 data=0x5eed1234 bss=0x0",
        // The virtual GIC at reset (priority 0xa0, nothing enabled or pending).
        "restart: vgic sgi5_priority=0xa0 sgi5_enabled=0 sgi6_pending=0",
        // The control page's flags and the virtual timer at reset.
        "restart: mask=0 pending=0 cntv_ctl=0x0",
        // vCPU 1 off (AFFINITY_INFO 1) and startable again.
        "restart: vcpu1 affinity=1 cpu_on=ok",
        "restart: vcpu 1 up",
        // The RTC's interrupt, left active by boot 1, was deactivated.
        "restart: alarm taken",
    ];
    let mut at = 0;
    for line in expected {
        at += restarter[at..]
            .iter()
            .position(|l| *l == line)
            .unwrap_or_else(|| {
                panic!("no {line:?} (in order) from the restarter:\n{}", run.dump())
            })
            + 1;
    }
    assert!(
        !restarter
            .iter()
            .any(|l| l.contains("returned") || l.contains("no alarm")),
        "{}",
        run.dump()
    );
    let restarting = "[bulkhead] partition restarter restarting: vCPU 0 called PSCI SYSTEM_RESET";
    assert!(run.has(restarting), "{}", run.dump());
    assert!(
        run.has("[bulkhead] partition restarter restarts (restart 1)"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[bulkhead] partition restarter stopped: vCPU 0 exited with code 0"),
        "{}",
        run.dump()
    );
    assert!(
        run.has("[bulkhead] partition restarter restarted 1 time(s) (exit counts since boot)"),
        "{}",
        run.dump()
    );
    // The neighbour: untouched. It beat before, during and after the
    // restart, every interval within 1% of its period.
    let reset_at = run.position(restarting).expect("seen above");
    let beats: Vec<(usize, u64)> = run
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("[steady] heartbeat "))
        .filter_map(|(i, l)| Some((i, timestamp(l)?)))
        .collect();
    assert!(
        beats.iter().filter(|(i, _)| *i < reset_at).count() >= 2
            && beats.iter().filter(|(i, _)| *i > reset_at).count() >= 3,
        "{}",
        run.dump()
    );
    let intervals: Vec<u64> = beats.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let mut sorted = intervals.clone();
    sorted.sort_unstable();
    let period = sorted[sorted.len() / 2];
    assert!(
        intervals
            .iter()
            .all(|&d| d.abs_diff(period) * 100 <= period),
        "the neighbour's heartbeat intervals (period {period} ticks): {intervals:?}\n{}",
        run.dump()
    );
    assert!(
        !run.has("[steady] done"),
        "the neighbour still runs at the end"
    );
}
