//! Generates the hypervisor's configuration from `boards/`.
//!
//! For the target (`aarch64-unknown-none-softfloat`): reads the partition set
//! named by `BULKHEAD_CONFIG` (default: the QEMU virt demo), checks it with
//! the configuration tool (`scripts/config`), and writes the tables, guest
//! images, initrds, device trees and the linker script's memory fragment
//! (the hypervisor's RAM, sized for the set) into OUT_DIR. A bad configuration stops the build with a message naming the
//! file, the partition and the field.
//! Host builds (unit tests) need none of it.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BULKHEAD_CONFIG");
    println!("cargo:rerun-if-env-changed=BULKHEAD_GUEST_DIR");
    // Which GIC backend the image drives: the board's `gic.version`.
    println!("cargo::rustc-check-cfg=cfg(gic, values(\"v2\", \"v3\"))");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it"));
    let config = env::var("BULKHEAD_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("boards/qemu-virt/demo.toml"));
    let config = if config.is_absolute() {
        config
    } else {
        root.join(config)
    };
    let guest_dir = env::var("BULKHEAD_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/aarch64-unknown-none/release/examples"));

    let inputs = bulkhead_config::BuildInputs {
        config: &config,
        guest_dir: &guest_dir,
        out_dir: &out_dir,
        repo_root: &root,
    };
    match bulkhead_config::build(&inputs) {
        Ok(outputs) => {
            for file in &outputs.files_read {
                println!("cargo:rerun-if-changed={}", file.display());
            }
            println!("cargo:rustc-cfg=gic=\"v{}\"", outputs.gic_version);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    // Which build this is, for scripts that read OUT_DIR (scripts/bench.sh
    // measures its configuration's build with the fast paths on, whatever
    // else was built since: clippy and the fast-paths-off build have their
    // own OUT_DIRs).
    let features = if env::var_os("CARGO_FEATURE_FAST_PATHS").is_some() {
        "fast-paths\n"
    } else {
        ""
    };
    let marks = [
        ("features", features.to_string()),
        ("config", format!("{}\n", config.display())),
    ];
    for (name, text) in marks {
        if let Err(e) = std::fs::write(out_dir.join(name), text) {
            eprintln!("error: {}: {e}", out_dir.join(name).display());
            std::process::exit(1);
        }
    }
    let script = root.join("linker/hypervisor.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-search={}", out_dir.display());
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        Path::new(&script).display()
    );
}
