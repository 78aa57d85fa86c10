//! Booting real images in QEMU for the integration tests.
//!
//! Every QEMU gets a time limit and is stopped through its own process
//! handle (its pid), never by name. Images are built by `scripts/build.sh`,
//! once per partition set per test run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default board's machine options (boards/qemu-virt/qemu-args).
pub fn board_machine() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("boards/qemu-virt/qemu-args"))
        .expect("boards/qemu-virt/qemu-args exists");
    text.split_whitespace().map(str::to_owned).collect()
}

/// Builds the image for a partition set (path relative to the repository).
pub fn image(config: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(config) {
        return path.clone();
    }
    let name = Path::new(config)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = root().join(format!("target/images/test-{name}.bin"));
    let result = build(config, &out);
    assert!(
        result.status.success(),
        "scripts/build.sh --config {config} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    built.insert(config.to_owned(), out.clone());
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

/// Boots `kernel` on a machine with options `machine`; stops QEMU once
/// `done` holds for what it printed, or at `limit`.
pub fn boot(
    machine: &[String],
    kernel: &Path,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Run {
    let mut child = Command::new("qemu-system-aarch64")
        .args(machine)
        .args(["-nographic", "-kernel"])
        .arg(kernel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-aarch64 starts (scripts/setup.sh installs it)");
    let stdout = child.stdout.take().expect("stdout is piped");
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
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    let exited = loop {
        let left = deadline.saturating_duration_since(Instant::now());
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
    let grace = Instant::now() + Duration::from_secs(5);
    let mut status = None;
    while exited && status.is_none() && Instant::now() < grace {
        status = child.try_wait().expect("QEMU's status is readable");
        std::thread::sleep(Duration::from_millis(20));
    }
    let powered_off = status.is_some_and(|s| s.success());
    // Stop this QEMU by its own handle (its pid) if it still runs.
    if status.is_none() {
        let _ = child.kill();
    }
    child.wait().expect("QEMU is waited for");
    Run {
        lines,
        exited: powered_off,
    }
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
