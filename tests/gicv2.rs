//! The GICv2 scenario (issue 12): QEMU virt with gic-version=2
//! (boards/qemu-virt-gicv2), the hypervisor built with its GICv2 backend,
//! the guests seeing a virtual GICv2 (guest-lib's GICv2 mode). The same
//! guests and the same assertions as the GICv3 tests of tests/qemu.rs, on
//! what the guests printed: the demo, the IPI ping-pong and its exact
//! counts, broadcast, multicast, a burst and priority order, each vCPU's
//! timer under `-icount`, and masking with the flag word.
//!
//! Not yet here: the Raspberry Pi 4 (`-M raspi4b`), one exit per IPI
//! through the GICH aliases, the hostile and Linux tests.

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::sync::OnceLock;
use std::time::Duration;

use support::{Machine, Run, boot, image, image_named, root};

fn machine() -> Machine {
    Machine::load(&root(), "qemu-virt-gicv2").unwrap_or_else(|e| panic!("{e}"))
}

fn run(config: &str, machine: Machine, limit: u64, done: fn(&[String]) -> bool) -> Run {
    boot(&machine, &image(config), Duration::from_secs(limit), done)
}

#[test]
fn the_demo_runs_on_a_gicv2() {
    let demo = image_named("boards/qemu-virt-gicv2/demo.toml", "test-gicv2-demo");
    support::assert_demo_runs(&machine(), "qemu-virt-gicv2", &demo);
}

fn ipi_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run("tests/configs/gicv2-ipi.toml", machine(), 120, |_| false))
}

/// GICD_SGIR writes, each one trap, routed by the same policy as GICv3's
/// ICC_SGI1R_EL1: every SGI delivered once, in order, the senders' traps
/// counted; broadcast (all but self) and multicast (a target list); a burst
/// of eight; sixteen pending at once delivered in priority order.
#[test]
fn sgis_through_gicd_sgir_arrive_once_in_order() {
    let run = ipi_run();
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
#[test]
fn each_vcpus_virtual_timer_ticks_at_its_rate_on_a_gicv2() {
    let config = "tests/configs/gicv2-timer.toml";
    support::assert_timer_report(&run(config, machine().icount(), 120, |_| false));
}

/// Masking with the flag word: nothing handled inside a masked window,
/// everything once after it, no trap for a mask/unmask pair.
#[test]
fn the_flag_word_masks_on_a_gicv2() {
    let run = run(
        "tests/configs/gicv2-mask.toml",
        machine().icount(),
        180,
        |_| false,
    );
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
