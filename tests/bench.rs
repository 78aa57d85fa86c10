//! The interference benchmark's guests (tests/configs/bench-interference.toml,
//! scripts/bench.sh) on the machine of measuring.md, under `-icount`: the
//! untraced run completes, the two partitions agree on the schedule, the
//! victim takes at least 200 samples in every phase and the neighbour runs
//! every aggressor and keeps to the schedule. Only that the run is usable
//! for the benchmark is asserted, never its figures.

#[allow(dead_code)] // each test binary uses only some of the shared helpers
mod support;

use std::time::Duration;

use support::{board_machine, boot, image};

const CONFIG: &str = "tests/configs/bench-interference.toml";

/// Idle and the eight aggressors of the issue.
const PHASES: usize = 9;

/// The value of `key=` in a `key=value key=value` line.
fn field(line: &str, key: &str) -> Option<u64> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(&prefix))?
        .parse()
        .ok()
}

#[test]
fn the_interference_benchmark_runs_every_aggressor_beside_a_sampling_victim() {
    let machine = board_machine().measuring();
    let run = boot(&machine, &image(CONFIG), Duration::from_secs(120), |_| {
        false
    });
    let victim = run.of("victim");
    let aggressor = run.of("aggressor");
    assert!(victim.contains(&"bench: done"), "{}", run.dump());
    assert!(aggressor.contains(&"aggressor: done"), "{}", run.dump());
    assert!(run.exited, "{}", run.dump());

    let schedule = |lines: &[&str], who: &str| {
        let prefix = format!("{who}: schedule ");
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {who} schedule:\n{}", run.dump()))
            .to_owned()
    };
    let agreed = schedule(&victim, "victim");
    assert_eq!(agreed, schedule(&aggressor, "aggressor"), "{}", run.dump());
    let margin = field(&agreed, "margin").expect("the schedule has a margin");

    // `victim: <phase> samples=<n> ..` and `aggressor: <phase> ops=<n>
    // late=<ticks>`, a line a phase, in the schedule's order.
    let phases = |lines: &[&str], who: &str, key: &str| -> Vec<(String, String)> {
        let prefix = format!("{who}: ");
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix)?.split_once(' '))
            .filter(|(_, rest)| rest.starts_with(key))
            .map(|(phase, rest)| (phase.to_owned(), rest.to_owned()))
            .collect()
    };
    let sampled = phases(&victim, "victim", "samples=");
    let attacked = phases(&aggressor, "aggressor", "ops=");
    assert_eq!(sampled.len(), PHASES, "{}", run.dump());
    assert_eq!(attacked.len(), PHASES, "{}", run.dump());
    for ((phase, samples), (other, ops)) in sampled.iter().zip(&attacked) {
        assert_eq!(
            phase,
            other,
            "the two guests' phases differ:\n{}",
            run.dump()
        );
        let samples = field(samples, "samples").expect("samples=");
        let late = field(ops, "late").expect("late=");
        let ops = field(ops, "ops").expect("ops=");
        assert!(samples >= 200, "{phase}: {samples} samples");
        assert_eq!(ops == 0, phase == "idle", "{phase}: {ops} operations");
        assert!(
            late < margin,
            "{phase}: the last operation ended {late} ticks late"
        );
    }
}
