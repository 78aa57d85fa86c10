//! `bulkhead-config`: the configuration tool's command line.
//!
//! ```text
//! bulkhead-config check <config.toml> --guest-dir DIR [--repo-root DIR]
//! bulkhead-config elf2image <in.elf> <out.bin>
//! ```
//!
//! `check` runs every configuration check and prints the first error (exit
//! status 1) or `ok`. `elf2image` flattens an ELF's loadable segments, by
//! physical address, into the flat binary QEMU boots as an arm64 Image.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

use bulkhead_config::elf::Elf;

/// Largest flat image `elf2image` writes: a sanity bound far above any
/// hypervisor image, below a span that means segments at unrelated addresses.
const MAX_IMAGE: u64 = 1 << 30;

const USAGE: &str = "usage:
  bulkhead-config check <config.toml> --guest-dir DIR [--repo-root DIR]
  bulkhead-config elf2image <in.elf> <out.bin>";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
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
    let mut config = None;
    let mut guest_dir = None;
    let mut repo_root = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--guest-dir" => guest_dir = args.next().map(PathBuf::from),
            "--repo-root" => repo_root = args.next().map(PathBuf::from),
            _ if config.is_none() && !arg.starts_with("--") => config = Some(PathBuf::from(arg)),
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
    bulkhead_config::load(&config, &guest_dir, &repo_root).map_err(|e| e.to_string())?;
    println!("ok");
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
