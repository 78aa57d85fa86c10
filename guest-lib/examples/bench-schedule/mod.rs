//! The interference benchmark's schedule (scripts/bench.sh), shared by its
//! two guests, bench-victim.rs and bench-aggressor.rs (a `#[path]` module
//! of each). Phase k runs from `START + k * PHASE` to
//! `START + (k + 1) * PHASE` on the physical counter (ticks, one per
//! instruction in the measuring setting), which both partitions read and
//! the hypervisor does not offset: they agree on the phase without talking.

use guest_lib::println;

/// The first phase's start: after every guest has booted. Each
/// partition's CPU loads its memory first, reading every block of it, and
/// under `-icount` the CPUs take turns on one virtual clock, so a partition
/// that is up and busy delays the others' boots: the victim's first
/// instruction came at 178.9 million ticks beside three busy neighbours of
/// 64 MiB each (tests/configs/bench-growth-4.toml), at 22.0 million alone.
pub const START: u64 = 300_000_000;
pub const PHASE: u64 = 1_500_000;
/// The victim samples from this long after a phase's start: what the
/// neighbour did in the previous phase has ended by then (it reports how
/// late its last operation of each phase ended, and bench.sh checks).
pub const MARGIN: u64 = 300_000;

/// The aggressors, one a phase, in order.
pub const PHASES: [&str; 9] = [
    "idle",
    "console_hvc",
    "console_pl011",
    "gic",
    "sgi",
    "hvc",
    "psci",
    "mmio",
    "cache",
];
pub const IDLE: usize = 0;
pub const CONSOLE_HVC: usize = 1;
pub const CONSOLE_PL011: usize = 2;
pub const GIC: usize = 3;
pub const SGI: usize = 4;
pub const HVC: usize = 5;
pub const PSCI: usize = 6;
pub const MMIO: usize = 7;
pub const CACHE: usize = 8;

/// Prints `<who>: schedule start=.. phase=.. margin=..`: bench.sh checks
/// that the two guests print the same.
pub fn print(who: &str) {
    println!(
        "{}: schedule start={} phase={} margin={}",
        who, START, PHASE, MARGIN
    );
}
