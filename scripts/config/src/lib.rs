//! `bulkhead-config`: the host-side half of Bulkhead's configuration.
//!
//! The hypervisor is built for one board and one partition set, both TOML
//! files under `boards/` (or `tests/configs/`). Its `build.rs` calls
//! [`build`], which reads them, rejects anything inconsistent with an error
//! naming the file, the partition and the field, and writes into `OUT_DIR`
//! a Rust file that builds the hypervisor's `config::Config`, the guest
//! blobs that file embeds (images, initrds, device trees), and the
//! linker-script fragment with the hypervisor's RAM range, which it sizes
//! for the set. Nothing is parsed at run time.
//!
//! Layering, one module per step, data flowing one way:
//! - [`model`]: the file formats as serde structs; parse errors located.
//! - [`mod@check`]: every rule, producing the checked model [`check::Checked`].
//! - [`channels`]: the rules of shared regions and doorbells, for `check`.
//! - [`elf`]: guest ELFs read and flattened into blobs.
//! - [`arm64_image`]: the arm64 Linux Image header of a raw image.
//! - [`budget`]: what the hypervisor's own RAM must hold for a set.
//! - [`dtb`]: each partition's device tree.
//! - [`codegen`]: the generated Rust and linker fragment.
//! - [`map`]: the partition set as a text table and an SVG image, for people.
//! - [`qemu`]: a board's QEMU command line, and QEMU runs with a time limit.
//! - [`error`]: [`ConfigError`], shared by all of them.
//!
//! [`check()`] is the whole pipeline on strings, without files, for tests.
#![forbid(unsafe_code)]

pub mod arm64_image;
pub mod budget;
pub mod channels;
pub mod check;
pub mod codegen;
pub mod dtb;
pub mod elf;
pub mod error;
pub mod map;
pub mod model;
pub mod qemu;
#[cfg(test)]
mod test_elf;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use check::{Checked, ImageLoader};
pub use error::{ConfigError, ErrorKind};

/// What [`build`] reads and where it writes.
#[derive(Debug, Clone, Copy)]
pub struct BuildInputs<'a> {
    /// The partition set file.
    pub config: &'a Path,
    /// Where guest images named without a `/` are found.
    pub guest_dir: &'a Path,
    /// Where the generated files go (the build script's OUT_DIR).
    pub out_dir: &'a Path,
    /// The repository root: boards are `<repo_root>/boards/<board>/board.toml`,
    /// and error messages show paths relative to it.
    pub repo_root: &'a Path,
}

/// What [`build`] did.
#[derive(Debug, Clone)]
pub struct BuildOutputs {
    /// Every file read (for `cargo:rerun-if-changed`).
    pub files_read: Vec<PathBuf>,
    /// The hypervisor's RAM range, as sized for the set: (base, size).
    pub hypervisor: (u64, u64),
    /// The board's GIC architecture version (2 or 3): which backend the
    /// hypervisor is built with.
    pub gic_version: u32,
}

/// Name of the generated Rust file in `out_dir`.
pub const CONFIG_RS: &str = "bulkhead_config.rs";
/// Name of the generated linker-script fragment in `out_dir`.
pub const MEMORY_LD: &str = "memory.ld";

/// Checks a board and a partition set given as text, without touching files.
///
/// `board_file` and `config_file` are the names errors show; `images`
/// returns a guest image's bytes given its `image` value as written.
pub fn check(
    board_toml: &str,
    board_file: &str,
    config_toml: &str,
    config_file: &str,
    images: &ImageLoader<'_>,
) -> Result<Checked, ConfigError> {
    let set = model::parse_partition_set(config_toml, config_file)?;
    let board = model::parse_board(board_toml, board_file)?;
    check::check_all(&board, board_file, &set, config_file, images)
}

/// The `board` a partition set names, checked to be usable as a directory name.
pub fn board_of(config_toml: &str, config_file: &str) -> Result<String, ConfigError> {
    let set = model::parse_partition_set(config_toml, config_file)?;
    check::check_board_name(&set.board, config_file)?;
    Ok(set.board)
}

/// `path` as shown in messages: relative to `repo_root` when it is inside it.
pub fn shown(path: &Path, repo_root: &Path) -> String {
    if let Ok(rel) = path.strip_prefix(repo_root) {
        return rel.display().to_string();
    }
    if let (Ok(p), Ok(r)) = (path.canonicalize(), repo_root.canonicalize())
        && let Ok(rel) = p.strip_prefix(&r)
    {
        return rel.display().to_string();
    }
    path.display().to_string()
}

fn read_to_string(
    path: &Path,
    shown_as: &str,
    at: (&str, Option<&str>),
) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|error| {
        let kind = ErrorKind::Read {
            path: shown_as.to_owned(),
            error,
        };
        ConfigError::new(at.0, None, None, at.1, kind)
    })
}

/// Reads and checks the partition set at `config` and its board; returns the
/// checked configuration and every file read.
pub fn load(
    config: &Path,
    guest_dir: &Path,
    repo_root: &Path,
) -> Result<(Checked, Vec<PathBuf>), ConfigError> {
    let config_file = shown(config, repo_root);
    let config_toml = read_to_string(config, &config_file, (&config_file, None))?;
    let board_name = board_of(&config_toml, &config_file)?;
    let board_path = repo_root
        .join("boards")
        .join(&board_name)
        .join("board.toml");
    let board_file = shown(&board_path, repo_root);
    let board_toml = read_to_string(&board_path, &board_file, (&config_file, Some("board")))?;

    let config_dir = config.parent().unwrap_or(Path::new("."));
    let images_read = RefCell::new(Vec::new());
    let images = |image: &str| -> Result<Vec<u8>, ErrorKind> {
        let path = if image.contains('/') {
            config_dir.join(image)
        } else {
            guest_dir.join(image)
        };
        images_read.borrow_mut().push(path.clone());
        fs::read(&path).map_err(|error| {
            let path = shown(&path, repo_root);
            if error.kind() == io::ErrorKind::NotFound {
                ErrorKind::ImageNotFound { path }
            } else {
                ErrorKind::Read { path, error }
            }
        })
    };
    let checked = check(
        &board_toml,
        &board_file,
        &config_toml,
        &config_file,
        &images,
    )?;

    let mut files_read = vec![config.to_path_buf(), board_path];
    files_read.extend(images_read.into_inner());
    Ok((checked, files_read))
}

fn write(out_dir: &Path, name: &str, bytes: &[u8], repo_root: &Path) -> Result<(), ConfigError> {
    let path = out_dir.join(name);
    fs::write(&path, bytes).map_err(|error| {
        let shown_as = shown(&path, repo_root);
        let file = shown_as.clone();
        let kind = ErrorKind::Write {
            path: shown_as,
            error,
        };
        ConfigError::new(&file, None, None, None, kind)
    })
}

/// Writes the generated files for a checked configuration into `out_dir`:
/// [`CONFIG_RS`], [`MEMORY_LD`], and each partition's image, initrd and
/// device tree.
pub fn write_outputs(
    checked: &Checked,
    out_dir: &Path,
    repo_root: &Path,
) -> Result<(), ConfigError> {
    for p in &checked.partitions {
        write(out_dir, &p.image_file(), &p.image.bytes, repo_root)?;
        if let Some(initrd) = &p.initrd {
            write(out_dir, &p.initrd_file(), &initrd.bytes, repo_root)?;
        }
        if let Some(dt) = &p.device_tree {
            write(out_dir, &p.device_tree_file(), &dt.bytes, repo_root)?;
        }
    }
    write(
        out_dir,
        CONFIG_RS,
        codegen::config_rs(checked).as_bytes(),
        repo_root,
    )?;
    write(
        out_dir,
        MEMORY_LD,
        codegen::memory_ld(checked).as_bytes(),
        repo_root,
    )?;
    Ok(())
}

/// The build script's entry point: reads, checks, and writes the generated
/// files into `inputs.out_dir`.
pub fn build(inputs: &BuildInputs) -> Result<BuildOutputs, ConfigError> {
    let (checked, files_read) = load(inputs.config, inputs.guest_dir, inputs.repo_root)?;
    write_outputs(&checked, inputs.out_dir, inputs.repo_root)?;
    let hyp = checked.hypervisor;
    Ok(BuildOutputs {
        files_read,
        hypervisor: (hyp.base, hyp.size),
        gic_version: checked.board.gic.version(),
    })
}
