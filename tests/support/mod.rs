//! Booting real images in QEMU for the integration tests.
//!
//! The command line comes from the board file and the run is bounded by
//! `bulkhead_config::qemu`, as for scripts/run.sh and scripts/bench.sh:
//! every QEMU gets a time limit and is stopped through its own process
//! handle (its pid), never by name. Images are built by `scripts/build.sh`,
//! once per partition set per test run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use bulkhead_config::qemu::Machine;
use bulkhead_config::qemu::{End, Qemu};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default board's machine (boards/qemu-virt/board.toml, `[qemu]`).
pub fn board_machine() -> Machine {
    Machine::load(&root(), "qemu-virt").unwrap_or_else(|e| panic!("{e}"))
}

/// Builds the image for a partition set (path relative to the repository).
pub fn image(config: &str) -> PathBuf {
    let name = Path::new(config)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    image_named(config, &format!("test-{name}"))
}

/// Builds the image for a partition set as `target/images/<name>.bin`,
/// once per name per test run. With `BULKHEAD_FAST_PATHS=off` (which
/// scripts/build.sh reads) the hypervisor has no assembly fast paths, and
/// the image is `<name>-rust.bin`.
pub fn image_named(config: &str, name: &str) -> PathBuf {
    let name = &match std::env::var("BULKHEAD_FAST_PATHS").as_deref() {
        Ok("off") => format!("{name}-rust"),
        _ => name.to_owned(),
    };
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let out = root().join(format!("target/images/{name}.bin"));
    let result = build(config, &out);
    assert!(
        result.status.success(),
        "scripts/build.sh --config {config} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    built.insert(name.to_owned(), out.clone());
    out
}

/// Runs scripts/build.sh for a partition set, whatever the outcome.
pub fn build(config: &str, out: &Path) -> std::process::Output {
    Command::new(root().join("scripts/build.sh"))
        .arg("--config")
        .arg(root().join(config))
        .arg("--out")
        .arg(out)
        .output()
        .expect("scripts/build.sh runs")
}

/// A guest ELF built by scripts/build.sh (for native runs).
pub fn guest(name: &str) -> PathBuf {
    image("boards/qemu-virt/demo.toml");
    root()
        .join("target/bulkhead/aarch64-unknown-none/release/examples")
        .join(name)
}

/// What a QEMU run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub lines: Vec<String>,
    /// QEMU exited by itself (the machine powered off) before the limit.
    pub exited: bool,
}

impl Run {
    /// Lines printed by one partition, without the prefix.
    pub fn of(&self, partition: &str) -> Vec<&str> {
        let prefix = format!("[{partition}] ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect()
    }

    /// Index of the first line containing `needle`.
    pub fn position(&self, needle: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.contains(needle))
    }

    pub fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    pub fn dump(&self) -> String {
        self.lines.join("\n")
    }
}

/// Starts QEMU booting `kernel` on `machine`, bounded by `limit`, its
/// stdout piped and its stdin `stdin`.
fn start(machine: &Machine, kernel: &Path, limit: Duration, stdin: Stdio) -> Qemu {
    let mut command = machine.command(kernel);
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    Qemu::start(command, Some(limit)).unwrap_or_else(|e| panic!("{e}"))
}

/// Boots `kernel` on `machine`; stops QEMU once `done` holds for what it
/// printed, or at `limit`.
pub fn boot(
    machine: &Machine,
    kernel: &Path,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Run {
    let mut qemu = start(machine, kernel, limit, Stdio::null());
    let stdout = qemu.take_stdout().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let output_ended = loop {
        let left = qemu.time_left().unwrap_or_default();
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                lines.push(line);
                if done(&lines) {
                    break false;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break true,
            Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => break false,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    };
    // Its output ended: give QEMU a moment to exit by itself.
    let end = if output_ended {
        qemu.wait_for(Duration::from_secs(5))
            .expect("QEMU's status is readable")
    } else {
        None
    };
    // Stops this QEMU by its pid if it still runs.
    qemu.stop().expect("QEMU is stopped");
    Run {
        lines,
        exited: matches!(end, Some(End::Exited(status)) if status.success()),
    }
}

/// A QEMU run the test types into: what it writes reaches the board UART
/// (QEMU's stdin with `-nographic`), and everything QEMU prints is kept as
/// bytes, so a prompt that has no newline yet can be seen. QEMU is stopped
/// by its pid at `limit`, or when the session is dropped.
pub struct Session {
    qemu: Qemu,
    stdin: std::process::ChildStdin,
    out: std::sync::Arc<Mutex<Vec<u8>>>,
}

impl Session {
    pub fn start(machine: &Machine, kernel: &Path, limit: Duration) -> Session {
        let mut qemu = start(machine, kernel, limit, Stdio::piped());
        let stdin = qemu.take_stdin().expect("stdin is piped");
        let mut stdout = qemu.take_stdout().expect("stdout is piped");
        let out = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Session { qemu, stdin, out }
    }

    /// Types `bytes` on the console.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stdin.write_all(bytes).expect("QEMU takes input");
        self.stdin.flush().expect("QEMU takes input");
    }

    /// Everything printed so far.
    pub fn output(&self) -> Vec<u8> {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until what was printed satisfies `done` (true), or for at most
    /// `timeout` or the run's limit (false).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> bool {
        let until = std::time::Instant::now() + timeout;
        loop {
            if done(&self.output()) {
                return true;
            }
            if std::time::Instant::now() >= until || self.qemu.time_left() == Some(Duration::ZERO) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What was printed, as lines without their line ends.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.output())
            .split('\n')
            .map(|l| l.trim_end_matches('\r').to_owned())
            .collect()
    }

    /// Stops QEMU (by its pid) and returns everything it printed.
    pub fn finish(mut self) -> Run {
        let end = self.qemu.stop().expect("QEMU is stopped");
        // The reader thread sees end of file once QEMU is gone.
        std::thread::sleep(Duration::from_millis(50));
        Run {
            lines: self.lines(),
            exited: matches!(end, End::Exited(status) if status.success()),
        }
    }
}

/// The heartbeats that show both partitions of a board's demo set
/// (boards/<board>/demo.toml) running: each of alpha's two vCPUs and beta's
/// one, three times.
const DEMO_HEARTBEATS: [&str; 3] = [
    "[alpha] vcpu 0 heartbeat 3 ",
    "[alpha] vcpu 1 heartbeat 3 ",
    "[beta] heartbeat 3 ",
];

/// The demo's channel at work: alpha's greeting through the ring to beta,
/// and beta's answer back (guest-lib/examples/channel-echo).
pub const DEMO_CHANNEL: [&str; 2] = [
    "[beta] channel: got hello from alpha",
    "[alpha] channel: answered echo: hello from alpha",
];

/// Boots a demo set's image on `machine` until every partition has beaten
/// three times (60 s at most), and checks what it printed: the hypervisor's
/// banner naming `board`, alpha's second vCPU started, the heartbeats.
pub fn assert_demo_runs(machine: &Machine, board: &str, kernel: &Path) -> Run {
    let run = boot(machine, kernel, Duration::from_secs(60), |lines| {
        DEMO_HEARTBEATS
            .iter()
            .chain(&DEMO_CHANNEL)
            .all(|want| lines.iter().any(|l| l.starts_with(want)))
    });
    let banner = format!(
        "[bulkhead] Bulkhead {} on board {board}",
        env!("CARGO_PKG_VERSION")
    );
    for want in [banner.as_str(), "[alpha] alpha: vcpu 1 running"]
        .into_iter()
        .chain(DEMO_HEARTBEATS)
        .chain(DEMO_CHANNEL)
    {
        assert!(
            run.lines.iter().any(|l| l.starts_with(want)),
            "no {want:?}:\n{}",
            run.dump()
        );
    }
    run
}

/// What test-sgi-sender and test-sgi-listener report when the sender's
/// SGIs to vCPUs outside its partition (tests/configs/*sgi-isolation.toml)
/// reach nobody and are counted, and its own self-IPI arrives.
pub fn assert_sgi_isolation(run: &Run) {
    for line in [
        "[sender] sender: refused=2 self_received=1",
        "[sender] sender: still running",
        "[listener] listener: received=0 by_intid=none",
    ] {
        assert!(run.has(line), "no {line:?}:\n{}", run.dump());
    }
    assert!(run.exited, "{}", run.dump());
}

/// What test-badcall (partition `name`, the set's `index`th, on one vCPU)
/// prints of the calls the hypervisor answers at its exit vector (VERSION,
/// VCPU_INFO, EXIT_COUNT, PSCI's and SMCCC's versions and feature
/// queries): the Rust handler's answers, so the same with the fast paths
/// on and off. x0..x3 (x1..x3 kept where a call returns only x0), x4..x17
/// kept, function ids and 32-bit arguments read from their low halves,
/// bad counters refused.
pub fn assert_call_answers(run: &Run, name: &str, index: usize) {
    let calls: Vec<&str> = run
        .of(name)
        .into_iter()
        .filter_map(|l| l.strip_prefix("calls: "))
        .collect();
    // "BULKHEAD", the ABI's version, the default control page.
    let version = format!(
        "0x0 0x444145484b4c5542 {:#x} 0x7ffff000 true",
        bulkhead_abi::ABI_VERSION
    );
    let vcpu_info = format!("vcpu-info 0x0 {index:#x} 0x0 0x1 true");
    let not_supported = "0xffffffffffffffff";
    let expected = [
        &format!("version {version}"),
        &format!("version-w0 {version}"),
        &vcpu_info,
        &format!(
            "exit-count-bad 0xfffffffffffffffe {:#x} 0x2222 0x3333 true",
            bulkhead_abi::Counter::ALL.len()
        ),
        "exit-count-huge 0xfffffffffffffffe 0xdead000000000002 0x2222 0x3333 true",
        "exit-count 0x0 +1",
        "psci-version 0x10001 0x1111 0x2222 0x3333 true",
        "psci-version-w0 0x10001 0x1111 0x2222 0x3333 true",
        "migrate-info-type 0x2 0x1111 0x2222 0x3333 true",
        "smccc-version 0x10001 0x1111 0x2222 0x3333 true",
        "psci-features cpu-on-64 0x0 0xc4000003 0x2222 0x3333 true",
        "psci-features cpu-on-32-w1 0x0 0xdead000084000003 0x2222 0x3333 true",
        &format!("psci-features cpu-off-64 {not_supported} 0xc4000002 0x2222 0x3333 true"),
        "psci-features smccc-version 0x0 0x80000000 0x2222 0x3333 true",
        &format!("psci-features psci-31 {not_supported} 0x8400001f 0x2222 0x3333 true"),
        &format!("psci-features owner-5 {not_supported} 0x85000000 0x2222 0x3333 true"),
        "arch-features smccc-version 0x0 0x80000000 0x2222 0x3333 true",
        "arch-features arch-features 0x0 0x80000001 0x2222 0x3333 true",
        &format!("arch-features workaround-1 {not_supported} 0x80008000 0x2222 0x3333 true"),
        &format!("arch-features next {not_supported} 0x80000002 0x2222 0x3333 true"),
    ];
    assert_eq!(calls, expected, "{}", run.dump());
}

/// What test-badcall (partition `name`) prints after it loaded a virtual
/// GIC register into each of x0..x30 and xzr and stored one from each,
/// every other register holding a value of its own: each access left the
/// value in the register it names and every other register as it was (the
/// hypervisor saves x20..x29 for a data abort only when it names one).
pub fn assert_register_probes(run: &Run, name: &str) {
    let line = "registers: loads 32 ok, stores 32 ok";
    assert!(run.of(name).contains(&line), "no {line:?}:\n{}", run.dump());
}

/// Boots a partition set on the default board until it powers off (or `limit`).
pub fn boot_config(config: &str, limit: Duration) -> Run {
    boot(&board_machine(), &image(config), limit, |_| false)
}

/// Shares one boot between the tests that read the same run.
pub fn shared_run(cell: &'static OnceLock<Run>, config: &str, limit: Duration) -> &'static Run {
    cell.get_or_init(|| boot_config(config, limit))
}

/// The `t=<counter>` value of a heartbeat line.
pub fn timestamp(line: &str) -> Option<u64> {
    line.rsplit_once("t=")?.1.parse().ok()
}

/// `key=value` from a report line.
pub fn value(line: &str, key: &str) -> u64 {
    let field = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    field
        .parse()
        .unwrap_or_else(|_| panic!("{key}={field} is not a number"))
}

/// test-timer's reports (tests/configs/timer.toml and its GICv2 twin):
/// each of its two vCPUs ticked 100 times, its mean interval the period
/// to within 1% (periodic deadlines advance by exactly one period, no
/// drift: what is left is the handler's jitter), none of them zero; and
/// the machine powered off by itself.
pub fn assert_timer_report(run: &Run) {
    for v in 0..2 {
        let prefix = format!("timer: vcpu {v} beats=");
        let line = run
            .of("timer")
            .into_iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no timer report of vCPU {v}:\n{}", run.dump()));
        assert_eq!(value(line, "beats"), 100, "{line}");
        let (period, mean) = (value(line, "period"), value(line, "mean"));
        assert!(
            mean.abs_diff(period) * 100 <= period,
            "mean {mean} vs period {period}: {line}"
        );
        assert!(value(line, "min") > 0, "{line}");
    }
    assert!(run.exited, "{}", run.dump());
}

/// What test-channel's two partitions (`alpha`, `beta`) print when the
/// exchange of tests/configs/channel.toml went as it must (see
/// `rtos_partitions_exchange_messages_through_channels_across_a_restart`
/// in tests/qemu.rs).
pub fn assert_channel_exchange(run: &Run) {
    let alpha = run.of("alpha");
    let beta = run.of("beta");
    for line in [
        "channel: alpha may ring 1 channel(s)",
        "channel: alpha sent 100000 echoed 100000 bad 0",
        "channel: alpha wrong channels call=InvalidParameters wide=Some(InvalidParameters) refused=3",
        "channel: alpha rang channel 0 by call: Success",
    ] {
        assert!(alpha.contains(&line), "missing {line:?}:\n{}", run.dump());
    }
    for line in [
        "channel: beta boot 1 goes on from message 0",
        "channel: beta restarts after 50000",
        "channel: beta boot 2 goes on from message 50000",
        "channel: beta took 100000 bad 0 boots 2",
        "channel: beta doorbells during the wrong rings 0, then 1",
    ] {
        assert!(beta.contains(&line), "missing {line:?}:\n{}", run.dump());
    }
    let exits = |name: &str| {
        run.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("[bulkhead] partition {name} vCPU 0 exits: ")))
            .unwrap_or_else(|| panic!("no exit report of {name}:\n{}", run.dump()))
            .to_string()
    };
    assert!(
        exits("alpha").ends_with(" doorbell-refused=3"),
        "{}",
        run.dump()
    );
    assert!(
        exits("beta").ends_with(" doorbell-refused=0"),
        "{}",
        run.dump()
    );
    for name in ["alpha", "beta"] {
        assert!(
            run.has(&format!(
                "[bulkhead] partition {name} stopped: vCPU 0 exited with code 0"
            )),
            "{}",
            run.dump()
        );
    }
}
