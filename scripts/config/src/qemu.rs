//! QEMU, for the boards it emulates: the command line, from the board file
//! and nowhere else, and a run with a time limit, stopped by its own pid.
//!
//! A board's `[qemu]` table gives the machine (`-M`) and the CPU model
//! (`-cpu`); [`Machine`] adds what the board already says: `-smp`, one per
//! `[[cpu]]`, and `-m`, its RAM (or `[qemu].memory` for a machine of one
//! fixed size), `-dtb` for a machine whose firmware would pass a device
//! tree QEMU does not make (`[qemu].dtb`, from Debian's kernel package,
//! fetched by `scripts/linux.sh --dtb`), and `-no-reboot`, so that a
//! machine that resets (a Raspberry Pi's power-off) ends the run. `scripts/run.sh`, `scripts/bench.sh` and
//! the QEMU integration tests all start QEMU through this module (the
//! scripts through `bulkhead-config qemu`), so the command line and the
//! way a run is bounded and stopped are written once.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::check::{self, Board};
use crate::error::{ConfigError, ErrorKind};

/// The QEMU binary for every board: they are all AArch64.
pub const QEMU: &str = "qemu-system-aarch64";

/// `-icount` for deterministic runs: one instruction per virtual
/// nanosecond, virtual time never waiting on the host (an idle CPU jumps
/// to its next timer), so timer figures are the same on every host.
pub const ICOUNT: &str = "shift=0,align=off,sleep=off";

/// The measuring setting of `scripts/bench.sh` (the design notes'
/// measuring.md): a Cortex-A53 with a 1 GHz counter under [`ICOUNT`], so
/// one counter tick is one instruction; the PL031 on the virtual clock from
/// a fixed date, so its alarm is deterministic too.
pub const MEASURING_CPU: &str = "cortex-a53,cntfrq=1000000000";
/// The RTC part of the measuring setting.
pub const MEASURING_RTC: &str = "base=2025-01-01T00:00:00,clock=vm";

/// A QEMU command line for a board, without the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    machine: String,
    cpu: String,
    smp: usize,
    memory: String,
    dtb: Option<String>,
    extra: Vec<String>,
}

impl Machine {
    /// The board's machine as its `[qemu]` table and the rest of it say;
    /// `None` for a board QEMU does not emulate.
    pub fn of(board: &Board) -> Option<Machine> {
        let qemu = board.qemu.as_ref()?;
        Some(Machine {
            machine: qemu.machine.clone(),
            cpu: qemu.cpu.clone(),
            smp: board.cpus.len(),
            memory: qemu.memory.clone().unwrap_or_else(|| {
                format!("{}M", board.ram.iter().map(|r| r.size).sum::<u64>() >> 20)
            }),
            dtb: qemu.dtb.clone(),
            extra: Vec::new(),
        })
    }

    /// The `-dtb` of a board whose `[qemu].dtb` names one, as a path:
    /// `scripts/linux.sh --dtb` under `repo_root` fetches it (once; it is
    /// cached under target/linux/) and prints where it is.
    fn fetch_dtb(mut self, repo_root: &Path, file: &str) -> Result<Machine, ConfigError> {
        let Some(dtb) = self.dtb.take() else {
            return Ok(self);
        };
        let problem = |problem: String| {
            ConfigError::new(
                file,
                None,
                None,
                Some("qemu.dtb"),
                ErrorKind::Qemu { problem },
            )
        };
        let script = repo_root.join("scripts/linux.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("--dtb")
            .arg(&dtb)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| problem(format!("cannot run {}: {e}", script.display())))?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || path.is_empty() {
            return Err(problem(format!(
                "scripts/linux.sh --dtb {dtb} failed ({}): it fetches the device tree from Debian's arm64 kernel package",
                out.status
            )));
        }
        self.dtb = Some(path);
        Ok(self)
    }

    /// Reads and checks `boards/<board>/board.toml` under `repo_root` and
    /// returns its machine. A board without `[qemu]` is an error on that field.
    pub fn load(repo_root: &Path, board: &str) -> Result<Machine, ConfigError> {
        let path = repo_root.join("boards").join(board).join("board.toml");
        let file = crate::shown(&path, repo_root);
        let text = std::fs::read_to_string(&path).map_err(|error| {
            let kind = ErrorKind::Read {
                path: file.clone(),
                error,
            };
            ConfigError::new(&file, None, None, None, kind)
        })?;
        let board_file = crate::model::parse_board(&text, &file)?;
        let board = check::check_board(&board_file, &file)?;
        let machine = Machine::of(&board).ok_or_else(|| {
            let problem = "QEMU does not emulate this board (it has no [qemu] table)".to_owned();
            ConfigError::new(&file, None, None, Some("qemu"), ErrorKind::Qemu { problem })
        })?;
        machine.fetch_dtb(repo_root, &file)
    }

    /// Without the virtualization extensions: QEMU then starts the image
    /// at EL1, as a guest runs natively (the baseline of every benchmark).
    pub fn native(mut self) -> Machine {
        self.machine = self
            .machine
            .split(',')
            .filter(|option| *option != "virtualization=on")
            .collect::<Vec<_>>()
            .join(",");
        self
    }

    /// Another CPU model (with its properties) than the board's.
    pub fn cpu(mut self, model: &str) -> Machine {
        self.cpu = model.to_owned();
        self
    }

    /// Another number of CPUs than the board's (a machine unlike the board).
    pub fn smp(mut self, cpus: usize) -> Machine {
        self.smp = cpus;
        self
    }

    /// Deterministic virtual time ([`ICOUNT`]).
    pub fn icount(self) -> Machine {
        self.with(["-icount", ICOUNT])
    }

    /// The measuring setting: [`MEASURING_CPU`], [`ICOUNT`], [`MEASURING_RTC`].
    pub fn measuring(self) -> Machine {
        self.cpu(MEASURING_CPU)
            .icount()
            .with(["-rtc", MEASURING_RTC])
    }

    /// More arguments, after the machine's.
    pub fn with<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Machine {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// The arguments: machine, CPU, CPUs, memory, the extras, and
    /// `-nographic` (the console is the process's stdio).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-M".to_owned(),
            self.machine.clone(),
            "-cpu".to_owned(),
            self.cpu.clone(),
            "-smp".to_owned(),
            self.smp.to_string(),
            "-m".to_owned(),
            self.memory.clone(),
            "-no-reboot".to_owned(),
        ];
        if let Some(dtb) = &self.dtb {
            args.extend(["-dtb".to_owned(), dtb.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        args.push("-nographic".to_owned());
        args
    }

    /// The command that boots `kernel` (an arm64 Image or an ELF) on it.
    pub fn command(&self, kernel: &Path) -> Command {
        let mut command = Command::new(QEMU);
        command.args(self.args()).arg("-kernel").arg(kernel);
        command
    }
}

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// QEMU exited by itself (the machine powered off, or QEMU failed).
    Exited(ExitStatus),
    /// It was still running at its time limit, or was asked to stop, and
    /// was stopped by its pid.
    Stopped,
}

/// A running QEMU with a time limit. Stopped by its own pid (never by
/// name) at the limit, on [`Qemu::stop`], or when dropped: no QEMU a
/// script or test starts outlives it.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    deadline: Option<Instant>,
    end: Option<End>,
}

/// How often [`Qemu::wait`] looks whether QEMU has exited.
const POLL: Duration = Duration::from_millis(20);

impl Qemu {
    /// Starts `command` (from [`Machine::command`]); `limit` bounds its run,
    /// `None` for an interactive run that ends only when QEMU does.
    pub fn start(mut command: Command, limit: Option<Duration>) -> io::Result<Qemu> {
        let child = command.spawn().map_err(|e| {
            let program: OsString = command.get_program().to_owned();
            io::Error::new(
                e.kind(),
                format!(
                    "cannot start {}: {e} (scripts/setup.sh installs QEMU)",
                    program.to_string_lossy()
                ),
            )
        })?;
        Ok(Qemu {
            child,
            deadline: limit.map(|l| Instant::now() + l),
            end: None,
        })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// QEMU's stdout, if it was piped (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// QEMU's stdin, if it was piped (once): with `-nographic` what is
    /// written to it reaches the board's UART (Ctrl-A is QEMU's monitor
    /// escape).
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Time left before the limit (`None`: no limit).
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether QEMU has exited by itself; reaps it if so.
    pub fn try_end(&mut self) -> io::Result<Option<End>> {
        if self.end.is_none()
            && let Some(status) = self.child.try_wait()?
        {
            self.end = Some(End::Exited(status));
        }
        Ok(self.end)
    }

    /// Waits until QEMU exits, or stops it at the time limit.
    pub fn wait(&mut self) -> io::Result<End> {
        if self.deadline.is_none() && self.end.is_none() {
            let status = self.child.wait()?;
            self.end = Some(End::Exited(status));
        }
        loop {
            if let Some(end) = self.try_end()? {
                return Ok(end);
            }
            if self.time_left() == Some(Duration::ZERO) {
                return self.stop();
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to `grace` for QEMU to exit by itself; `None` if it did not.
    pub fn wait_for(&mut self, grace: Duration) -> io::Result<Option<End>> {
        let until = Instant::now() + grace;
        loop {
            if let Some(end) = self.try_end()? {
                return Ok(Some(end));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops QEMU by its pid if it still runs, and reaps it.
    pub fn stop(&mut self) -> io::Result<End> {
        if let Some(end) = self.try_end()? {
            return Ok(end);
        }
        // SIGKILL to this child's pid: QEMU holds nothing that needs a
        // clean exit (its disk images, if any, are throw-away).
        self.child.kill()?;
        self.child.wait()?;
        self.end = Some(End::Stopped);
        Ok(End::Stopped)
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Stdin for a bounded run of a script: nothing; an interactive run keeps
/// the terminal. (A test that types on the console pipes it instead:
/// [`Qemu::take_stdin`].)
pub fn stdin_for(limit: Option<Duration>) -> Stdio {
    if limit.is_some() {
        Stdio::null()
    } else {
        Stdio::inherit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    /// The rule tests' board, emulated by QEMU.
    fn board() -> String {
        format!(
            "{}\n[qemu]\nmachine = \"virt,virtualization=on,gic-version=3\"\ncpu = \"cortex-a72\"\n",
            crate::tests::BOARD
        )
    }

    fn machine(board: &str) -> Result<Option<Machine>, ConfigError> {
        let file = model::parse_board(board, "board.toml")?;
        Ok(Machine::of(&check::check_board(&file, "board.toml")?))
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_command_line_comes_from_the_board() {
        let m = machine(&board()).unwrap().unwrap();
        assert_eq!(
            m.args(),
            words(
                "-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 4 -m 1024M -no-reboot -nographic"
            )
        );
        assert_eq!(
            m.clone().native().smp(1).args(),
            words("-M virt,gic-version=3 -cpu cortex-a72 -smp 1 -m 1024M -no-reboot -nographic")
        );
        assert_eq!(
            m.measuring().args(),
            words(
                "-M virt,virtualization=on,gic-version=3 -cpu cortex-a53,cntfrq=1000000000 \
                 -smp 4 -m 1024M -no-reboot -icount shift=0,align=off,sleep=off \
                 -rtc base=2025-01-01T00:00:00,clock=vm -nographic"
            )
        );
    }

    #[test]
    fn a_board_without_qemu_has_no_machine() {
        assert_eq!(machine(crate::tests::BOARD).unwrap(), None);
    }

    fn error(board: &str) -> String {
        machine(board).unwrap_err().to_string()
    }

    #[test]
    fn a_virt_machine_that_contradicts_the_board_is_refused() {
        let no_el2 = board().replace("virt,virtualization=on,", "virt,");
        assert_eq!(
            error(&no_el2),
            "board.toml: qemu.machine: QEMU's virt machine starts the hypervisor at EL2 only \
             with virtualization=on"
        );
        let v2 = board().replace("gic-version=3", "gic-version=2");
        assert_eq!(
            error(&v2),
            "board.toml: qemu.machine: needs gic-version=3, the board's gic.version"
        );
        // A second RAM range: QEMU's virt has none.
        let ram = board().replace(
            "[hypervisor]",
            "[[ram]]\nbase = 0x1_0000_0000\nsize = 0x1000\n[hypervisor]",
        );
        assert_eq!(
            error(&ram),
            "board.toml: ram: QEMU's virt machine has one RAM range, at 0x40000000 (its size is -m)"
        );
    }

    #[test]
    fn qemu_values_are_single_words() {
        let spaced = board().replace("\"cortex-a72\"", "\"cortex-a72 -s\"");
        assert!(error(&spaced).starts_with("board.toml: qemu.cpu: \"cortex-a72 -s\" is not one"));
        let empty = board().replace(
            "machine = \"virt,virtualization=on,gic-version=3\"",
            "machine = \"\"",
        );
        assert!(error(&empty).starts_with("board.toml: qemu.machine: \"\" is not one"));
        let unknown = board().replace("cpu = \"cortex-a72\"", "cpu = \"cortex-a72\"\nsmp = 4");
        assert!(
            error(&unknown).contains("unknown field `smp`"),
            "{}",
            error(&unknown)
        );
    }

    /// A process that outlives its limit is stopped by its pid, and one
    /// that exits first is reported with its status.
    #[test]
    fn a_bounded_run_is_stopped_at_its_limit() {
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        let started = Instant::now();
        let mut run = Qemu::start(sleeper, Some(Duration::from_millis(300))).unwrap();
        let pid = run.pid();
        assert_eq!(run.wait().unwrap(), End::Stopped);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(10));
        // The pid is gone (reaped): /proc has no such process any more,
        // or another process took the number after the wait.
        let status = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!status.starts_with("sleep\0"), "{status:?}");

        let mut quick = Command::new("sh");
        quick.args(["-c", "exit 7"]);
        let mut run = Qemu::start(quick, Some(Duration::from_secs(30))).unwrap();
        match run.wait().unwrap() {
            End::Exited(status) => assert_eq!(status.code(), Some(7)),
            End::Stopped => panic!("a process that exited was reported stopped"),
        }
    }

    /// A shell that prints its pid, then becomes `sleep 30`, its stdout piped.
    fn sleeper_telling_its_pid() -> Command {
        let mut command = Command::new("sh");
        command
            .args(["-c", "echo $$; exec sleep 30"])
            .stdout(std::process::Stdio::piped());
        command
    }

    /// What is written to a run's piped stdin reaches the process (as
    /// typing reaches QEMU's serial console).
    #[test]
    fn a_run_takes_input_on_its_piped_stdin() {
        use std::io::{BufRead, BufReader, Write};
        let mut cat = Command::new("cat");
        cat.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut run = Qemu::start(cat, Some(Duration::from_secs(30))).unwrap();
        let mut stdin = run.take_stdin().expect("stdin is piped");
        assert!(run.take_stdin().is_none(), "stdin is taken once");
        let mut stdout = BufReader::new(run.take_stdout().unwrap());
        stdin.write_all(b"typed\n").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "typed\n");
        drop(stdin);
        match run.wait().unwrap() {
            End::Exited(status) => assert!(status.success()),
            End::Stopped => panic!("cat did not end with its input"),
        }
    }

    /// A run's pid and stdout are its process's; dropping the run stops the
    /// process (its stdout reaches end of file at once, not in 30 s).
    #[test]
    fn dropping_a_run_stops_it() {
        use std::io::{BufRead, BufReader, Read};
        let mut run = Qemu::start(sleeper_telling_its_pid(), None).unwrap();
        let mut stdout = BufReader::new(run.take_stdout().expect("stdout is piped"));
        assert!(run.take_stdout().is_none(), "stdout is taken once");
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim().parse::<u32>().ok(), Some(run.pid()));
        let dropped = Instant::now();
        drop(run);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
        assert!(dropped.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn waiting_with_a_grace_returns_the_end_only_if_it_comes_in_time() {
        let mut quick = Command::new("sh");
        quick.args(["-c", "sleep 0.2; exit 5"]);
        let mut run = Qemu::start(quick, None).unwrap();
        match run.wait_for(Duration::from_secs(30)).unwrap() {
            Some(End::Exited(status)) => assert_eq!(status.code(), Some(5)),
            other => panic!("a run that exits in 0.2 s ended as {other:?}"),
        }

        let mut run = Qemu::start(sleeper_telling_its_pid(), None).unwrap();
        let started = Instant::now();
        assert_eq!(run.wait_for(Duration::from_millis(200)).unwrap(), None);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(run.stop().unwrap(), End::Stopped);
    }

    #[test]
    fn a_missing_binary_says_how_to_get_it() {
        let error = Qemu::start(Command::new("/nonexistent/qemu"), None).unwrap_err();
        assert!(
            error.to_string().contains("scripts/setup.sh installs QEMU"),
            "{error}"
        );
    }
}
