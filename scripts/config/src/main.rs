//! `bulkhead-config`: the configuration tool's command line.
//!
//! ```text
//! bulkhead-config check <config.toml> --guest-dir DIR [--repo-root DIR]
//! bulkhead-config map <config.toml> --guest-dir DIR [--repo-root DIR] [--svg FILE]
//! bulkhead-config elf2image <in.elf> <out.bin>
//! bulkhead-config qemu [--board NAME] [--repo-root DIR] [--native] [--cpu MODEL]
//!                      [--smp N] [--icount | --measuring] [--timeout SECONDS]
//!                      (--kernel FILE | --print) [-- QEMU-ARGS...]
//! ```
//!
//! `check` runs every configuration check and prints the first error (exit
//! status 1) or `ok`. `map` runs the same checks, then prints the partition
//! set's map as a table (physical memory, CPUs, each partition's
//! guest-physical view) and, with `--svg`, writes it as an SVG image too.
//! `elf2image` flattens an ELF's loadable segments, by physical address,
//! into the flat binary QEMU boots as an arm64 Image.
//! `qemu` boots an image on a board's QEMU machine (the command line from
//! its board.toml, see `bulkhead_config::qemu`), with the terminal as the
//! console; `--timeout` bounds the run, stopping QEMU by its pid and
//! exiting with status 124 (otherwise QEMU's own status); `--print` prints
//! the command line instead.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use std::{env, fs};

use bulkhead_config::elf::Elf;
use bulkhead_config::qemu::{End, Machine, Qemu, stdin_for};

/// Largest flat image `elf2image` writes: a sanity bound far above any
/// hypervisor image, below a span that means segments at unrelated addresses.
const MAX_IMAGE: u64 = 1 << 30;

const USAGE: &str = "usage:
  bulkhead-config check <config.toml> --guest-dir DIR [--repo-root DIR]
  bulkhead-config map <config.toml> --guest-dir DIR [--repo-root DIR] [--svg FILE]
  bulkhead-config elf2image <in.elf> <out.bin>
  bulkhead-config qemu [--board NAME] [--repo-root DIR] [--native] [--cpu MODEL]
                       [--smp N] [--icount | --measuring] [--timeout SECONDS]
                       (--kernel FILE | --print) [-- QEMU-ARGS...]";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("qemu") {
        return qemu(&args[1..]).unwrap_or_else(|message| {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        });
    }
    let result = match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("map") => map(&args[1..]),
        Some("elf2image") => elf2image(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &[String]) -> Result<(), String> {
    let args = ConfigArgs::parse(args, false)?;
    bulkhead_config::load(&args.config, &args.guest_dir, &args.repo_root)
        .map_err(|e| e.to_string())?;
    println!("ok");
    Ok(())
}

/// The arguments of `check` and `map`.
struct ConfigArgs {
    config: PathBuf,
    guest_dir: PathBuf,
    repo_root: PathBuf,
    /// `map --svg FILE`.
    svg: Option<PathBuf>,
}

impl ConfigArgs {
    /// Parses `<config.toml> --guest-dir DIR [--repo-root DIR]`, and
    /// `[--svg FILE]` when `svg` allows it.
    fn parse(args: &[String], svg: bool) -> Result<ConfigArgs, String> {
        let mut config = None;
        let mut guest_dir = None;
        let mut repo_root = None;
        let mut svg_file = None;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--guest-dir" => guest_dir = Some(PathBuf::from(value(&mut args, arg)?)),
                "--repo-root" => repo_root = Some(PathBuf::from(value(&mut args, arg)?)),
                "--svg" if svg => svg_file = Some(PathBuf::from(value(&mut args, arg)?)),
                _ if config.is_none() && !arg.starts_with("--") => {
                    config = Some(PathBuf::from(arg))
                }
                _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
            }
        }
        let (Some(config), Some(guest_dir)) = (config, guest_dir) else {
            return Err(USAGE.to_owned());
        };
        let repo_root = match repo_root {
            Some(root) => root,
            None => find_repo_root(&config)?,
        };
        Ok(ConfigArgs {
            config,
            guest_dir,
            repo_root,
            svg: svg_file,
        })
    }
}

/// The value after `option`, the next argument.
fn value(args: &mut std::slice::Iter<'_, String>, option: &str) -> Result<String, String> {
    args.next()
        .cloned()
        .ok_or_else(|| format!("{option} needs a value\n{USAGE}"))
}

/// Checks the set, prints its map as a table, and writes the SVG if asked.
fn map(args: &[String]) -> Result<(), String> {
    let args = ConfigArgs::parse(args, true)?;
    let (checked, _) = bulkhead_config::load(&args.config, &args.guest_dir, &args.repo_root)
        .map_err(|e| e.to_string())?;
    if let Some(svg) = &args.svg {
        let image = bulkhead_config::map::svg(&checked);
        fs::write(svg, image).map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
    }
    print!("{}", bulkhead_config::map::text(&checked));
    Ok(())
}

/// The nearest directory above the config file that has a `boards/` directory.
fn find_repo_root(config: &Path) -> Result<PathBuf, String> {
    let absolute = config
        .canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    absolute
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("boards").is_dir())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "no boards/ directory above {}; give --repo-root",
                config.display()
            )
        })
}

fn elf2image(args: &[String]) -> Result<(), String> {
    let [input, output] = args else {
        return Err(USAGE.to_owned());
    };
    let bytes = fs::read(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    let elf = Elf::parse(&bytes).map_err(|e| format!("{input}: {e}"))?;
    let (base, end) = elf.file_span();
    if end - base > MAX_IMAGE {
        return Err(format!(
            "{input}: loadable segments span {base:#x}..{end:#x}, more than {MAX_IMAGE:#x} bytes"
        ));
    }
    let (_base, image) = elf.flatten();
    fs::write(output, image).map_err(|e| format!("cannot write {output}: {e}"))
}

/// The exit status of a run stopped at its `--timeout`, as coreutils'
/// `timeout` has it.
const TIMED_OUT: u8 = 124;

fn qemu(args: &[String]) -> Result<ExitCode, String> {
    let mut board = "qemu-virt".to_owned();
    let mut repo_root = None;
    let mut kernel = None;
    let mut limit = None;
    let mut print = false;
    let mut changes: Vec<Box<dyn FnOnce(Machine) -> Machine>> = Vec::new();
    let mut args = args.iter();
    let mut extra: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--board" => board = value(&mut args, arg)?,
            "--repo-root" => repo_root = Some(PathBuf::from(value(&mut args, arg)?)),
            "--kernel" => kernel = Some(PathBuf::from(value(&mut args, arg)?)),
            "--print" => print = true,
            "--native" => changes.push(Box::new(Machine::native)),
            "--icount" => changes.push(Box::new(Machine::icount)),
            "--measuring" => changes.push(Box::new(Machine::measuring)),
            "--cpu" => {
                let model = value(&mut args, arg)?;
                changes.push(Box::new(move |m: Machine| m.cpu(&model)));
            }
            "--smp" => {
                let cpus = value(&mut args, arg)?;
                let cpus: usize = cpus
                    .parse()
                    .map_err(|_| format!("--smp {cpus}: not a number of CPUs"))?;
                changes.push(Box::new(move |m: Machine| m.smp(cpus)));
            }
            "--timeout" => {
                let seconds = value(&mut args, arg)?;
                let seconds: f64 = seconds
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--timeout {seconds}: not a number of seconds"))?;
                limit = Some(Duration::from_secs_f64(seconds));
            }
            "--" => extra.extend(args.by_ref().cloned()),
            _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
        }
    }
    let repo_root = match repo_root {
        Some(root) => root,
        None => {
            let here = env::current_dir().map_err(|e| e.to_string())?;
            here.ancestors()
                .find(|dir| dir.join("boards").is_dir())
                .map(Path::to_path_buf)
                .ok_or("no boards/ directory here or above; give --repo-root")?
        }
    };
    let mut machine = Machine::load(&repo_root, &board).map_err(|e| e.to_string())?;
    for change in changes {
        machine = change(machine);
    }
    let machine = machine.with(extra);
    if print {
        let mut line = vec![bulkhead_config::qemu::QEMU.to_owned()];
        line.extend(machine.args());
        if let Some(kernel) = &kernel {
            line.extend(["-kernel".to_owned(), kernel.display().to_string()]);
        }
        println!("{}", line.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let kernel = kernel.ok_or_else(|| format!("--kernel FILE or --print is needed\n{USAGE}"))?;
    let mut command = machine.command(&kernel);
    command.stdin(stdin_for(limit));
    let mut run = Qemu::start(command, limit).map_err(|e| e.to_string())?;
    match run.wait().map_err(|e| format!("waiting for QEMU: {e}"))? {
        End::Exited(status) => Ok(ExitCode::from(status.code().unwrap_or(1) as u8)),
        End::Stopped => {
            let seconds = limit.map_or(0.0, |l| l.as_secs_f64());
            eprintln!(
                "bulkhead-config: stopped QEMU (pid {}) after {seconds}s",
                run.pid()
            );
            Ok(ExitCode::from(TIMED_OUT))
        }
    }
}
