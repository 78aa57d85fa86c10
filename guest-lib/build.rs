//! Links guest-lib's examples with the guest linker script, which puts
//! `_start` at the partition's RAM base (0x4000_0000).

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo always sets CARGO_MANIFEST_DIR"),
    );
    let script = manifest_dir.join("..").join("linker").join("guest.ld");
    let script = script.canonicalize().unwrap_or(script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-examples=-T{}", script.display());
}
