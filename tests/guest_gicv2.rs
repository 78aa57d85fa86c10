//! guest-lib on a GICv2: the same guest binaries, run natively (no
//! hypervisor) on QEMU virt with `gic-version=2`, print what they print on
//! the board's GICv3; each line asserted here is asserted for both GICs.
//!
//! guest-lib decides at boot from ID_AA64PFR0_EL1.GIC (0 on virt with
//! `gic-version=2`), so nothing in the guests or their build differs. The
//! machine is the board's (boards/qemu-virt/board.toml) with `-M
//! gic-version=...` added after it (QEMU merges `-M` options, the later
//! winning): without `virtualization=on` the guest starts at EL1, with it
//! at EL2, from where guest-lib drops itself to EL1 (native mode either
//! way). Every QEMU has a time limit and is stopped by its pid (support).

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::time::Duration;

use support::{Machine, Run, Session, board_machine, boot, guest};

/// Which GIC the machine has.
#[derive(Clone, Copy, Debug)]
enum Gic {
    V2,
    V3,
}

/// Where QEMU starts the guest.
#[derive(Clone, Copy, Debug)]
enum Entry {
    El1,
    El2,
}

fn machine(gic: Gic, entry: Entry, cpus: usize) -> Machine {
    let board = match entry {
        Entry::El1 => board_machine().native(),
        Entry::El2 => board_machine(),
    };
    let version = match gic {
        Gic::V2 => "gic-version=2",
        Gic::V3 => "gic-version=3",
    };
    board.smp(cpus).with(["-M", version])
}

/// Boots guest-lib example `name` natively until it powers off (or `limit`).
fn run(name: &str, gic: Gic, entry: Entry, cpus: usize, limit: Duration) -> Run {
    boot(&machine(gic, entry, cpus), &guest(name), limit, |_| false)
}

/// Asserts that the guest powered off and printed each of `lines`.
fn assert_printed(run: &Run, what: &str, lines: &[&str]) {
    assert!(run.exited, "{what}: did not power off:\n{}", run.dump());
    for line in lines {
        assert!(run.has(line), "{what}: missing {line:?}:\n{}", run.dump());
    }
}

const IPI_LINES: &[&str] = &[
    "ipi: pingpong rounds=10000 received=10000 replies=10000 errors=0",
    "ipi: vcpu 0 sent=10000 sgi_traps=unsupported",
    "ipi: vcpu 1 sent=10000 sgi_traps=unsupported",
    "ipi: broadcast sgi3 counts=0,1,1,1 sgi_traps=unsupported",
    "ipi: multicast sgi4 counts=0,1,0,1 sgi_traps=unsupported",
    "ipi: burst sgi5-12 counts=1,1,1,1,1,1,1,1 strays=0",
    // SGI n has priority ((n * 7) % 16) * 8: delivered highest first.
    "ipi: priority delivered=16 duplicates=0 order=0,7,14,5,12,3,10,1,8,15,6,13,4,11,2,9",
    "ipi: priority in_order=yes",
];

fn ipi(gic: Gic, entry: Entry) {
    let run = run("test-ipi", gic, entry, 4, Duration::from_secs(120));
    let what = format!("test-ipi {gic:?} {entry:?}");
    assert_printed(&run, &what, IPI_LINES);
    // A GICv2 names each SGI's source CPU interface in GICC_IAR.
    let sources = match gic {
        Gic::V2 => "ipi: sgi sources checked=20000 wrong=0",
        Gic::V3 => "ipi: sgi sources checked=0 wrong=0",
    };
    assert_printed(&run, &what, &[sources]);
}

/// SGIs by GICD_SGIR: ping-pong with exact counts, all-but-self (filter
/// 0b01), a target list, a burst, and priorities by IPRIORITYR bytes.
#[test]
fn sgis_on_a_gicv2_reach_exactly_their_targets_in_priority_order() {
    ipi(Gic::V2, Entry::El1);
}

/// The same guest entered at EL2 (virtualization=on) drops to EL1 itself.
#[test]
fn sgis_on_a_gicv2_entered_at_el2() {
    ipi(Gic::V2, Entry::El2);
}

#[test]
fn sgis_on_a_gicv3_print_the_same_lines() {
    ipi(Gic::V3, Entry::El1);
}

const MASK_LINES: &[&str] = &[
    "mask: in_window=0 after: timer=1 sgi=1:1,2:1,3:1,4:1,5:1",
    "mask: pairs=1000 traps=unsupported",
    "mask: pending_unmask hvc=unsupported",
    "mask: pending_unmask delivered=1",
    "mask: timer_unmask deferred=0 delivered=1",
    "mask: timer_stats unsupported",
    "mask: lazy inside=0 vector_masked=1 after=1",
    "mask: critical_section total=20000",
    "mask: critical_section handler_inside=0",
];

fn mask(gic: Gic) {
    let run = run("test-mask", gic, Entry::El1, 2, Duration::from_secs(60));
    assert_printed(&run, &format!("test-mask {gic:?}"), MASK_LINES);
}

/// Natively masking uses guest-lib's own mask byte, which its IRQ vector
/// applies: nothing is handled inside a window, the timer and SGIs that
/// arrived in it are handled once after, and an interrupt taken inside the
/// section is held back lazily.
#[test]
fn masking_on_a_gicv2_defers_and_delivers_each_interrupt_once() {
    mask(Gic::V2);
}

#[test]
fn masking_on_a_gicv3_prints_the_same_lines() {
    mask(Gic::V3);
}

/// The virtual timer (PPI 27) on both CPUs: 100 beats each at its period
/// (the mean within 2% of it: under `-icount`, so the host's load does not
/// stretch the intervals), then the SGI that wakes CPU 0.
fn timer(gic: Gic, entry: Entry) {
    let machine = machine(gic, entry, 2).icount();
    let run = boot(
        &machine,
        &guest("test-timer"),
        Duration::from_secs(60),
        |_| false,
    );
    assert!(run.exited, "test-timer {gic:?}: {}", run.dump());
    for cpu in 0..2 {
        let prefix = format!("timer: vcpu {cpu} beats=100 period=");
        let line = run
            .lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("test-timer {gic:?}: no {prefix:?}:\n{}", run.dump()));
        let field = |name: &str| -> u64 {
            let value = line.split(' ').find_map(|f| f.strip_prefix(name));
            value.and_then(|v| v.parse().ok()).expect(line)
        };
        let (period, mean) = (field("period="), field("mean="));
        assert!(mean.abs_diff(period) * 50 <= period, "{line}");
    }
}

#[test]
fn the_timer_ticks_on_a_gicv2_at_el1_and_el2() {
    timer(Gic::V2, Entry::El1);
    timer(Gic::V2, Entry::El2);
}

#[test]
fn the_timer_ticks_on_a_gicv3() {
    timer(Gic::V3, Entry::El1);
}

/// An SPI (the PL011's, INTID 33), routed by an ITARGETSR byte to the CPU
/// that enabled it: a line typed on the console is read by its handler.
fn console(gic: Gic) {
    let mut s = Session::start(
        &machine(gic, Entry::El1, 1),
        &guest("test-console"),
        Duration::from_secs(60),
    );
    let has =
        |needle: &'static [u8]| move |out: &[u8]| out.windows(needle.len()).any(|w| w == needle);
    assert!(
        s.wait_for(Duration::from_secs(30), has(b"console: ready\n> ")),
        "test-console {gic:?}: no prompt"
    );
    s.send(b"hello\r");
    let got = s.wait_for(Duration::from_secs(10), has(b"got: hello spurious=0\n"));
    s.send(b"exit\r");
    let exited = s.wait_for(Duration::from_secs(10), has(b"got: exit spurious=0\n"));
    let run = s.finish();
    assert!(got && exited, "test-console {gic:?}:\n{}", run.dump());
}

#[test]
fn a_device_spi_on_a_gicv2_reaches_its_handler() {
    console(Gic::V2);
}

#[test]
fn a_device_spi_on_a_gicv3_reaches_its_handler() {
    console(Gic::V3);
}
