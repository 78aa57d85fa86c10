//! The GICv2 scenarios (issue 12), on both GICv2 boards: QEMU virt with
//! gic-version=2 (boards/qemu-virt-gicv2) and the Raspberry Pi 4's GIC-400
//! on QEMU raspi4b (boards/rpi4: the firmware's device tree, CPUs released
//! from the spin table, power-off through the watchdog). The hypervisor is
//! built with its GICv2 backend, the guests see a virtual GICv2 (guest-lib's
//! GICv2 mode) at the same addresses on both. The same guests and the same
//! assertions as the GICv3 tests of tests/qemu.rs, on what the guests
//! printed: the demo, the IPI ping-pong and its exact counts (with the
//! target's exits: the kick path, as neither QEMU machine gives usable
//! GICH aliases), broadcast, multicast, a burst of eight and sixteen at
//! once (more than the four list registers hold), priority order, SGIs
//! refused outside the partition, each vCPU's timer under `-icount`, and
//! masking with the flag word. Linux on both is tests/linux.rs's, the
//! hostile guest and its neighbour on both tests/hostile.rs's.

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::sync::OnceLock;
use std::time::Duration;

use support::{Machine, Run, boot, image, image_named, root};

/// A GICv2 board and the name its test partition sets start with
/// (tests/configs/<prefix>-ipi.toml and so on).
struct Board {
    name: &'static str,
    prefix: &'static str,
}

const VIRT: Board = Board {
    name: "qemu-virt-gicv2",
    prefix: "gicv2",
};
const RPI4: Board = Board {
    name: "rpi4",
    prefix: "rpi4",
};

impl Board {
    fn machine(&self) -> Machine {
        Machine::load(&root(), self.name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn config(&self, test: &str) -> String {
        format!("tests/configs/{}-{test}.toml", self.prefix)
    }
}

fn run(config: &str, machine: Machine, limit: u64, done: fn(&[String]) -> bool) -> Run {
    boot(&machine, &image(config), Duration::from_secs(limit), done)
}

fn demo_runs(board: &Board) {
    let set = format!("boards/{}/demo.toml", board.name);
    let demo = image_named(&set, &format!("test-{}-demo", board.name));
    support::assert_demo_runs(&board.machine(), board.name, &demo);
}

#[test]
fn the_demo_runs_on_a_gicv2() {
    demo_runs(&VIRT);
}

#[test]
fn the_demo_runs_on_the_raspberry_pi_4() {
    demo_runs(&RPI4);
}

fn ipi_run(board: &Board) -> &'static Run {
    static RUNS: [OnceLock<Run>; 2] = [OnceLock::new(), OnceLock::new()];
    let cell = &RUNS[usize::from(board.name == RPI4.name)];
    cell.get_or_init(|| run(&board.config("ipi"), board.machine(), 120, |_| false))
}

/// GICD_SGIR writes, each one trap, routed by the same policy as GICv3's
/// ICC_SGI1R_EL1: every SGI delivered once, in order, the senders' traps
/// counted; broadcast (all but self) and multicast (a target list); a burst
/// of eight; sixteen pending at once delivered in priority order.
fn sgis_arrive_once_in_order(board: &Board) {
    let run = ipi_run(board);
    // Neither QEMU board lets one CPU write another's list registers
    // (virt maps no GICH aliases; raspi4b maps each CPU's GICC where the
    // GIC-400 has them, which the hypervisor finds and says at boot): the
    // target of each ping takes one exit, its kick.
    assert!(
        run.has("[ipi] ipi: vcpu 1 pinged=10000 irq_exits=10000"),
        "{}",
        run.dump()
    );
    // Each ping came from vCPU 0 and each reply from vCPU 1, by the CPUID
    // of the guest's GICC_IAR: the source the list register carried.
    assert!(
        run.has("[ipi] ipi: sgi sources checked=20000 wrong=0"),
        "{}",
        run.dump()
    );
    if board.name == RPI4.name {
        assert!(
            run.lines.iter().any(|l| l.starts_with(
                "[bulkhead] GICH aliases at 0xff845000 not used: this CPU's reads 0x0 where GICH_VTR is 0x90000003"
            )),
            "{}",
            run.dump()
        );
    }
    for line in [
        "[ipi] ipi: pingpong rounds=10000 received=10000 replies=10000 errors=0",
        "[ipi] ipi: vcpu 0 sent=10000 sgi_traps=10000",
        "[ipi] ipi: vcpu 1 sent=10000 sgi_traps=10000",
        "[ipi] ipi: broadcast sgi3 counts=0,1,1,1 sgi_traps=1",
        "[ipi] ipi: multicast sgi4 counts=0,1,0,1 sgi_traps=1",
        "[ipi] ipi: burst sgi5-12 counts=1,1,1,1,1,1,1,1 strays=0",
        "[ipi] ipi: priority in_order=yes",
        "[bulkhead] partition ipi stopped: vCPU 0 exited with code 0",
    ] {
        assert!(run.has(line), "no {line:?}:\n{}", run.dump());
    }
    assert!(
        run.lines
            .iter()
            .any(|l| l.starts_with("[ipi] ipi: priority delivered=16 duplicates=0 order=")),
        "{}",
        run.dump()
    );
    assert!(run.exited, "{}", run.dump());
}

/// Each vCPU's virtual timer, forwarded through a GICH list register with
/// its HW bit, ticks at its period (under `-icount`: exact).
fn timers_tick_at_their_rate(board: &Board) {
    let config = board.config("timer");
    support::assert_timer_report(&run(&config, board.machine().icount(), 120, |_| false));
}

/// Masking with the flag word: nothing handled inside a masked window,
/// everything once after it, no trap for a mask/unmask pair.
fn the_flag_word_masks(board: &Board) {
    let run = run(&board.config("mask"), board.machine().icount(), 180, |_| {
        false
    });
    for line in [
        "[mask] mask: in_window=0 after: timer=1 sgi=1:1,2:1,3:1,4:1,5:1",
        "[mask] mask: pairs=1000 traps=0",
        "[mask] mask: pending_unmask delivered=1",
        "[mask] mask: critical_section total=20000",
        "[mask] mask: critical_section handler_inside=0",
    ] {
        assert!(run.has(line), "no {line:?}:\n{}", run.dump());
    }
    assert!(run.exited, "{}", run.dump());
}

#[test]
fn sgis_through_gicd_sgir_arrive_once_in_order() {
    sgis_arrive_once_in_order(&VIRT);
}

#[test]
fn sgis_arrive_once_in_order_on_the_raspberry_pi_4() {
    sgis_arrive_once_in_order(&RPI4);
}

#[test]
fn each_vcpus_virtual_timer_ticks_at_its_rate_on_a_gicv2() {
    timers_tick_at_their_rate(&VIRT);
}

#[test]
fn each_vcpus_virtual_timer_ticks_at_its_rate_on_the_raspberry_pi_4() {
    timers_tick_at_their_rate(&RPI4);
}

#[test]
fn the_flag_word_masks_on_a_gicv2() {
    the_flag_word_masks(&VIRT);
}

#[test]
fn the_flag_word_masks_on_the_raspberry_pi_4() {
    the_flag_word_masks(&RPI4);
}

/// GICD_SGIR writes naming CPU interfaces outside the sender's partition
/// reach nobody there and are counted as refused.
fn sgis_outside_the_partition_are_refused(board: &Board) {
    let run = run(&board.config("sgi-isolation"), board.machine(), 60, |_| {
        false
    });
    support::assert_sgi_isolation(&run);
}

#[test]
fn sgis_outside_the_partition_are_refused_on_a_gicv2() {
    sgis_outside_the_partition_are_refused(&VIRT);
}

#[test]
fn sgis_outside_the_partition_are_refused_on_the_raspberry_pi_4() {
    sgis_outside_the_partition_are_refused(&RPI4);
}

/// A GICv3 image on a machine whose CPUs have no GIC system registers (a
/// GICv2 machine, given a device tree that claims a GICv3 so that the
/// device-tree check passes) stops with a sentence at boot rather than an
/// UNDEFINED exception at its first ICC_ access.
/// Channels between partitions on the GICv2 backend: the exchange, the
/// restart and the refused channels of tests/qemu.rs's test
/// (tests/configs/gicv2-channel.toml).
#[test]
fn rtos_partitions_exchange_messages_through_channels_on_a_gicv2() {
    let run = run(&VIRT.config("channel"), VIRT.machine(), 120, |_| false);
    support::assert_channel_exchange(&run);
}

/// The calls the GICv2 image answers at its exit vector answer as its Rust
/// handler does, and a trapped access to its virtual distributor touches
/// only the register it names (test-badcall alone,
/// tests/configs/gicv2-calls.toml).
#[test]
fn calls_and_register_accesses_answer_as_the_reference_does_on_a_gicv2() {
    let run = run(&VIRT.config("calls"), VIRT.machine(), 60, |_| false);
    support::assert_call_answers(&run, "badcall", 0);
    support::assert_register_probes(&run, "badcall");
    assert!(run.exited, "{}", run.dump());
}

#[test]
fn a_gicv3_image_without_gic_system_registers_is_a_clear_boot_error() {
    use bulkhead_config::qemu::{QEMU, Qemu};
    let dtb = root().join("target/images/test-virt-gicv3.dtb");
    let dump = Machine::load(&root(), "qemu-virt")
        .unwrap_or_else(|e| panic!("{e}"))
        .with(["-machine".to_owned(), format!("dumpdtb={}", dtb.display())]);
    let mut command = std::process::Command::new(QEMU);
    command.args(dump.args());
    let mut qemu = Qemu::start(command, Some(Duration::from_secs(30))).expect("QEMU starts");
    qemu.wait().expect("QEMU dumps its device tree");
    assert!(dtb.exists(), "no {}", dtb.display());
    let machine = VIRT
        .machine()
        .with(["-dtb".to_owned(), dtb.display().to_string()]);
    let run = boot(
        &machine,
        &image("boards/qemu-virt/demo.toml"),
        Duration::from_secs(30),
        |_| false,
    );
    assert!(
        run.has(
            "[bulkhead] boot error: board qemu-virt has a GICv3, but this CPU has no GIC system \
             registers (ID_AA64PFR0_EL1.GIC is 0): a GICv2 machine? Build for a GICv2 board"
        ),
        "{}",
        run.dump()
    );
    assert!(run.of("alpha").is_empty() && run.exited, "{}", run.dump());
}
