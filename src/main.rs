//! The Bulkhead image: everything lives in the library; this binary only
//! links it for the target (entry, vectors and handlers come with it).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use bulkhead as _;

/// On the host there is nothing to run: the binary exists for the target.
#[cfg(not(target_os = "none"))]
fn main() {}
