//! Bulkhead: a static-partitioning hypervisor for ARMv8-A at EL2.
//!
//! Layering, from the bottom:
//! - [`arch`] (aarch64 only) is the only code that touches the hardware:
//!   system registers, the GIC, the UART, the firmware (PSCI over SMC) and
//!   all assembly. It offers named operations (`arch::exception` for the
//!   exit being handled, `arch::percpu` for the per-CPU block) and the GIC
//!   backend seam (`arch::gic::GicBackend`, GICv3 its implementation, with
//!   the EL2 vectors' exit fast paths). Everything outside `arch` and `hyp`
//!   is plain Rust that also builds and is unit-tested on the host, most of
//!   it `forbid(unsafe_code)`.
//! - [`config`] holds the types of the build-time configuration; `build.rs`
//!   generates the one instance from `boards/`. [`devicetree`] checks the
//!   boot device tree against it. The board's GIC and the address types
//!   are `bulkhead_abi::board`'s, shared with the configuration tool.
//! - [`mm`] has the address types ([`mm::PhysAddr`] for the machine's,
//!   [`mm::Ipa`] for a partition's guest-physical ones) and builds
//!   translation tables (EL2 stage 1 and per-partition stage 2).
//! - [`trap`] decodes what a guest did (ESR_EL2) into an [`trap::Exit`];
//!   [`vgic`] is the virtual GIC's model (registers, SGI routing, list
//!   registers, the mask-flag gate).
//! - [`psci`], [`hypercall`] and [`console`] answer guests: PSCI calls,
//!   Bulkhead's own calls, console output and input and the emulated PL011.
//! - [`partition`] is the run-time state of partitions and vCPUs: power
//!   states, stop and restart, and the report printed when a partition stops.
//! - `hyp` (aarch64 only) wires it together: boot, the exception handlers
//!   (`exits`), partitions built at boot (`runtime`), running a vCPU
//!   (`vcpu`), stopping or restarting one (`stop`), the board UART (`output`, `input`) and the
//!   virtual GIC joined to the physical one (`interrupts`). It touches no
//!   register itself.
#![cfg_attr(not(test), no_std)]

#[cfg(target_os = "none")]
extern crate alloc;

pub mod config;
pub mod console;
pub mod devicetree;
pub mod hypercall;
pub mod mm;
pub mod partition;
pub mod psci;
pub mod trap;
pub mod vgic;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod hyp;
