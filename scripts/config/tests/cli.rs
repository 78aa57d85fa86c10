//! The command line, run as the built program: exit status, stdout and
//! stderr of `check`, `map`, `elf2image` and `qemu`, each in a scratch
//! repository (the shipped board, a one-partition set, a raw guest image).
//! QEMU itself is never started: `qemu` is run with `--print`, or with a
//! stand-in `qemu-system-aarch64` first on `PATH`.

#[path = "../src/test_elf.rs"]
mod test_elf;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_elf::{Seg, build_elf};

const BOARD: &str = include_str!("../../../boards/qemu-virt/board.toml");

/// The shipped board's QEMU arguments, before `-nographic`.
const QEMU_ARGS: &str =
    "-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 4 -m 1024M -no-reboot";

/// A partition set with one partition: CPU 0, 64 MiB, the raw image "guest".
const SET: &str = r#"board = "qemu-virt"

[[partition]]
name = "alpha"
cpus = [0]
image = "guest"
load = 0x4000_0000
entry = 0x4000_0000

[[partition.memory]]
ipa = 0x4000_0000
phys = 0x5000_0000
size = 0x0400_0000
"#;

/// The set's path in a scratch repository, as the tool shows it.
const SET_FILE: &str = "boards/qemu-virt/set.toml";

/// A scratch repository for one test: `boards/qemu-virt/{board,set}.toml`
/// (the set is `set_toml`) and `guests/guest`. Removed when dropped.
struct Repo(PathBuf);

impl Repo {
    fn new(name: &str, set_toml: &str) -> Repo {
        let root =
            std::env::temp_dir().join(format!("bulkhead-config-cli-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let repo = Repo(root);
        repo.write("boards/qemu-virt/board.toml", BOARD.as_bytes());
        repo.write(SET_FILE, set_toml.as_bytes());
        repo.write("guests/guest", b"RAW GUEST");
        repo
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }

    /// Writes `bytes` at `relative`, making its directory.
    fn write(&self, relative: &str, bytes: &[u8]) {
        let path = self.path(relative);
        let dir = path.parent().expect("a file inside the repository");
        fs::create_dir_all(dir).expect("create scratch directory");
        fs::write(&path, bytes).expect("write scratch file");
    }

    /// Runs the tool in `guests/` (no `boards/` there), with `args` and
    /// `{repo}` in them replaced by the repository's path.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with_path(args, None)
    }

    /// [`Repo::run`], with `dir` first on `PATH` if given.
    fn run_with_path(&self, args: &[&str], dir: Option<&Path>) -> Output {
        let root = self.0.display().to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_bulkhead-config"));
        command
            .args(args.iter().map(|a| a.replace("{repo}", &root)))
            .current_dir(self.path("guests"));
        if let Some(dir) = dir {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![dir.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            command.env("PATH", std::env::join_paths(dirs).expect("PATH"));
        }
        command.output().expect("run bulkhead-config")
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Exit status, stdout and stderr of a run, the text lossily.
fn outcome(output: &Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that a run failed with status 1, printing nothing on stdout and
/// an error that starts with `error: {start}`.
fn assert_fails(output: &Output, start: &str) {
    let (status, stdout, stderr) = outcome(output);
    assert_eq!(status, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(&format!("error: {start}")),
        "expected `error: {start}...`, got {stderr:?}"
    );
}

/// Asserts that a run succeeded, printing `stdout` and nothing on stderr.
fn assert_prints(output: &Output, stdout: &str) {
    assert_eq!(outcome(output), (Some(0), stdout.to_owned(), String::new()));
}

#[test]
fn without_a_known_command_it_prints_the_usage_and_fails() {
    let repo = Repo::new("usage", SET);
    for args in [&[][..], &["frobnicate"], &["--help"]] {
        assert_fails(
            &repo.run(args),
            "usage:\n  bulkhead-config check <config.toml>",
        );
    }
}

#[test]
fn check_prints_ok_for_a_good_set_and_the_located_error_for_a_bad_one() {
    let repo = Repo::new("check", SET);
    // Options in any order around the set; --repo-root given.
    let good = [
        "check",
        "--guest-dir",
        "{repo}/guests",
        "--repo-root",
        "{repo}",
    ];
    let good = repo.run(&[&good[..], &["{repo}/boards/qemu-virt/set.toml"]].concat());
    assert_prints(&good, "ok\n");

    // The repository root found above the set: the error shows paths from it.
    repo.write(SET_FILE, SET.replace("cpus = [0]", "cpus = [4]").as_bytes());
    let bad = repo.run(&[
        "check",
        "{repo}/boards/qemu-virt/set.toml",
        "--guest-dir",
        ".",
    ]);
    assert_eq!(
        outcome(&bad),
        (
            Some(1),
            String::new(),
            format!(
                "error: {SET_FILE}: partition \"alpha\": cpus[0]: CPU 4 does not exist: \
                 the board has 4 CPUs (0..=3)\n"
            )
        )
    );
}

#[test]
fn check_without_a_repository_root_says_to_give_one() {
    let repo = Repo::new("no-root", SET);
    fs::remove_dir_all(repo.path("boards")).expect("remove boards/");
    repo.write("elsewhere/set.toml", SET.as_bytes());
    assert!(repo.0.ancestors().all(|dir| !dir.join("boards").exists()));
    let output = repo.run(&["check", "{repo}/elsewhere/set.toml", "--guest-dir", "."]);
    assert_fails(&output, "no boards/ directory above ");
    assert!(
        outcome(&output)
            .2
            .ends_with("elsewhere/set.toml; give --repo-root\n")
    );
}

#[test]
fn check_and_map_refuse_what_they_do_not_take() {
    let repo = Repo::new("check-args", SET);
    let set = "{repo}/boards/qemu-virt/set.toml";
    let cases: [(&[&str], &str); 6] = [
        (
            &[set, "--guest-dir", ".", "--svg", "map.svg"],
            "unexpected argument \"--svg\"",
        ),
        (
            &[set, set, "--guest-dir", "."],
            "unexpected argument \"{repo}",
        ),
        (
            &["--bogus", set, "--guest-dir", "."],
            "unexpected argument \"--bogus\"",
        ),
        (&[set], "usage:"),
        // An option without its value is refused, not ignored.
        (&[set, "--guest-dir"], "--guest-dir needs a value\nusage:"),
        (
            &[set, "--guest-dir", ".", "--repo-root"],
            "--repo-root needs a value\nusage:",
        ),
    ];
    let root = repo.0.display().to_string();
    for (args, error) in cases {
        let output = repo.run(&[&["check"][..], args].concat());
        assert_fails(&output, &error.replace("{repo}", &root));
    }
    let output = repo.run(&["map", set, "--guest-dir", ".", "--svg"]);
    assert_fails(&output, "--svg needs a value\nusage:");
}

#[test]
fn map_prints_the_table_and_writes_the_svg_when_asked() {
    let repo = Repo::new("map", SET);
    let set = "{repo}/boards/qemu-virt/set.toml";
    let output = repo.run(&["map", set, "--guest-dir", ".", "--svg", "{repo}/map.svg"]);
    let (status, stdout, stderr) = outcome(&output);
    assert_eq!((status, stderr.as_str()), (Some(0), ""));
    assert!(
        stdout.starts_with(
            "Partition set boards/qemu-virt/set.toml on board qemu-virt \
             (boards/qemu-virt/board.toml)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  CPU 0 (MPIDR 0x0): alpha vCPU 0\n"),
        "{stdout}"
    );
    let svg = fs::read_to_string(repo.path("map.svg")).expect("the SVG is written");
    let svg = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    assert_eq!(svg.root_element().tag_name().name(), "svg");

    // Without --svg, the same table and no file.
    fs::remove_file(repo.path("map.svg")).expect("remove the SVG");
    let again = repo.run(&["map", set, "--guest-dir", "."]);
    assert_prints(&again, &stdout);
    assert!(!repo.path("map.svg").exists());

    repo.write(SET_FILE, SET.replace("cpus = [0]", "cpus = []").as_bytes());
    let bad = repo.run(&["map", set, "--guest-dir", "."]);
    assert_fails(
        &bad,
        &format!("{SET_FILE}: partition \"alpha\": cpus: no CPUs given"),
    );
}

/// `elf2image in.elf out` in `repo`, `in.elf` built from `segs`.
fn elf2image(repo: &Repo, segs: &[Seg<'_>], out: &str) -> Output {
    repo.write("in.elf", &build_elf(0x4000_0000, segs));
    repo.run(&["elf2image", "{repo}/in.elf", out])
}

#[test]
fn elf2image_writes_the_segments_flattened_by_physical_address() {
    let repo = Repo::new("elf2image", SET);
    let segs = [
        Seg {
            paddr: 0x4000_0010,
            data: b"DATA",
            memsz: 0x100, // .bss: not in the image
        },
        Seg {
            paddr: 0x4000_0000,
            data: b"CODE",
            memsz: 4,
        },
    ];
    assert_prints(&elf2image(&repo, &segs, "{repo}/out.bin"), "");
    let image = fs::read(repo.path("out.bin")).expect("the image is written");
    assert_eq!(image, b"CODE\0\0\0\0\0\0\0\0\0\0\0\0DATA");
}

#[test]
fn elf2image_takes_a_span_of_exactly_1_gib_not_one_byte_more() {
    let repo = Repo::new("elf2image-span", SET);
    // A byte at 0x4000_0000 and one at the end of the span. The 1 GiB image
    // goes to /dev/null (its zero pages are never touched).
    let span = |size: u64| {
        [
            Seg {
                paddr: 0x4000_0000,
                data: b"A",
                memsz: 1,
            },
            Seg {
                paddr: 0x4000_0000 + size - 1,
                data: b"Z",
                memsz: 1,
            },
        ]
    };
    assert_prints(&elf2image(&repo, &span(1 << 30), "/dev/null"), "");
    let output = elf2image(&repo, &span((1 << 30) + 1), "/dev/null");
    let root = repo.0.display();
    assert_fails(
        &output,
        &format!(
            "{root}/in.elf: loadable segments span 0x40000000..0x80000001, \
             more than 0x40000000 bytes\n"
        ),
    );
}

#[test]
fn elf2image_reports_a_malformed_elf_and_wrong_arguments() {
    let repo = Repo::new("elf2image-bad", SET);
    repo.write("bad.elf", b"\x7fELF\x02\x01\x01");
    let output = repo.run(&["elf2image", "{repo}/bad.elf", "{repo}/out.bin"]);
    assert_fails(
        &output,
        &format!("{}/bad.elf: file is truncated\n", repo.0.display()),
    );
    assert!(!repo.path("out.bin").exists());
    for args in [
        &["elf2image"][..],
        &["elf2image", "a"],
        &["elf2image", "a", "b", "c"],
    ] {
        assert_fails(&repo.run(args), "usage:");
    }
}

#[test]
fn qemu_print_shows_the_boards_command_line() {
    let repo = Repo::new("qemu", SET);
    let line = format!("qemu-system-aarch64 {QEMU_ARGS} -nographic\n");
    // The repository found from the working directory (guests/), or given.
    assert_prints(&repo.run(&["qemu", "--print"]), &line);
    assert_prints(
        &repo.run(&["qemu", "--repo-root", "{repo}", "--print"]),
        &line,
    );
    // A bound on the run changes nothing in the command line.
    assert_prints(&repo.run(&["qemu", "--timeout", "2.5", "--print"]), &line);

    let other = BOARD.replace("\"cortex-a72\"", "\"cortex-a57\"");
    repo.write("boards/other/board.toml", other.as_bytes());
    let output = repo.run(&["qemu", "--board", "other", "--print"]);
    assert_prints(&output, &line.replace("cortex-a72", "cortex-a57"));
}

#[test]
fn qemu_options_change_the_command_line() {
    let repo = Repo::new("qemu-options", SET);
    let args = [
        "qemu", "--native", "--cpu", "max", "--smp", "2", "--icount", "--print", "--kernel", "img",
        "--", "-s", "-S",
    ];
    let expected = "qemu-system-aarch64 -M virt,gic-version=3 -cpu max -smp 2 -m 1024M -no-reboot \
                    -icount shift=0,align=off,sleep=off -s -S -nographic -kernel img\n";
    assert_prints(&repo.run(&args), expected);

    let expected = "qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
                    -cpu cortex-a53,cntfrq=1000000000 -smp 4 -m 1024M -no-reboot \
                    -icount shift=0,align=off,sleep=off \
                    -rtc base=2025-01-01T00:00:00,clock=vm -nographic\n";
    assert_prints(&repo.run(&["qemu", "--measuring", "--print"]), expected);
}

#[test]
fn qemu_refuses_bad_values_and_a_run_without_a_kernel() {
    let repo = Repo::new("qemu-bad", SET);
    for seconds in ["0", "-1", "inf", "NaN", "soon"] {
        let output = repo.run(&["qemu", "--timeout", seconds, "--print"]);
        assert_fails(
            &output,
            &format!("--timeout {seconds}: not a number of seconds\n"),
        );
    }
    let cases: [(&[&str], &str); 5] = [
        (
            &["--smp", "two", "--print"],
            "--smp two: not a number of CPUs\n",
        ),
        (&["--print", "--cpu"], "--cpu needs a value\nusage:"),
        (
            &["--print", "--frob"],
            "unexpected argument \"--frob\"\nusage:",
        ),
        (
            &["--timeout", "1"],
            "--kernel FILE or --print is needed\nusage:",
        ),
        (
            &["--board", "nope", "--print"],
            "boards/nope/board.toml: cannot read boards/nope/board.toml: ",
        ),
    ];
    for (args, error) in cases {
        assert_fails(&repo.run(&[&["qemu"][..], args].concat()), error);
    }
}

/// A stand-in `qemu-system-aarch64` running `script` (sh), in `repo/bin`.
fn fake_qemu(repo: &Repo, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    repo.write(
        "bin/qemu-system-aarch64",
        format!("#!/bin/sh\n{script}\n").as_bytes(),
    );
    let path = repo.path("bin/qemu-system-aarch64");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    repo.path("bin")
}

#[test]
fn qemu_runs_the_command_line_and_exits_with_its_status() {
    let repo = Repo::new("qemu-run", SET);
    let bin = fake_qemu(&repo, "echo \"$@\" > ../args; exit 3");
    let output = repo.run_with_path(&["qemu", "--kernel", "img", "--timeout", "30"], Some(&bin));
    assert_eq!(outcome(&output), (Some(3), String::new(), String::new()));
    let args = fs::read_to_string(repo.path("args")).expect("the stand-in ran");
    assert_eq!(args, format!("{QEMU_ARGS} -nographic -kernel img\n"));
}

#[test]
fn qemu_is_stopped_at_its_timeout_with_status_124() {
    let repo = Repo::new("qemu-timeout", SET);
    let bin = fake_qemu(&repo, "exec sleep 30");
    let output = repo.run_with_path(&["qemu", "--kernel", "img", "--timeout", "0.2"], Some(&bin));
    let (status, stdout, stderr) = outcome(&output);
    assert_eq!((status, stdout.as_str()), (Some(124), ""));
    assert!(
        stderr.starts_with("bulkhead-config: stopped QEMU (pid ")
            && stderr.ends_with(") after 0.2s\n"),
        "{stderr}"
    );
}
