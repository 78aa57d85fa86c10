//! The architecture seam: everything that runs instructions generic code
//! cannot. Only AArch64 exists; any other target fails to build here.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(not(target_arch = "aarch64"))]
compile_error!("Bulkhead runs on AArch64 only");
