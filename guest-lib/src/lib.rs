//! guest-lib: the runtime of Rust guests for the Bulkhead hypervisor.
//!
//! A guest is a `#![no_std]`, `#![no_main]` binary linked at 0x4000_0000
//! with `linker/guest.ld` that names its `main` with [`entry!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! guest_lib::entry!(main);
//!
//! fn main() -> ! {
//!     guest_lib::println!("hello from {}", guest_lib::hypervisor());
//!     guest_lib::exit(0)
//! }
//! ```
//!
//! The same image runs in a Bulkhead partition and natively on QEMU virt,
//! with a GICv3 or a GICv2, at EL1 either way; [`hypervisor()`] tells
//! which mode, [`gic::version`] which GIC.
//!
//! # Layering
//!
//! - `boot.S`, `vectors.S` (through `arch`): the only assembly. The entry
//!   drops from EL2 to EL1 if started there, enables FP/SIMD, the vector
//!   table and the identity-mapped MMU (constants in `mmu`), picks the
//!   stack by MPIDR.Aff0 and clears .bss; the vectors save the full state.
//! - `arch`: one wrapper per instruction or register (MPIDR, DAIF, WFI,
//!   MMIO accessors). No policy.
//! - [`hvc`], [`psci`]: the call conventions, on [`bulkhead_abi`]'s numbers.
//!   [`mod@mode`] decides once, at boot, whether Bulkhead is there.
//! - [`gic`], [`timer`], [`console`]: the devices. The GIC and the timer
//!   are programmed the same way in both modes (a partition has a virtual
//!   GIC at QEMU virt's addresses); the GIC's version is detected once, at
//!   boot; the console picks its path by mode.
//! - [`channel`]: rings over shared regions to other partitions, and
//!   their doorbells.
//! - [`irq`], [`exception`], [`smp`]: what a guest uses: handlers by INTID,
//!   interrupt masking (the control page's flag word under Bulkhead, see
//!   [`irq`]), fault reports, secondary CPUs. `percpu`: each CPU's block,
//!   in TPIDR_EL1. `critical`: the `critical-section` implementation.
//! - This file: the entry macro, [`exit`], [`idle`] and the panic handler.
//!
//! Nothing here allocates; all state is in statics, per CPU where needed
//! (up to [`MAX_CPUS`]).
#![no_std]
#![warn(missing_docs)]

mod arch;
pub mod channel;
pub mod console;
#[cfg(feature = "critical-section-impl")]
mod critical;
pub mod exception;
pub mod gic;
pub mod hvc;
pub mod irq;
mod mmu;
pub mod mode;
mod percpu;
pub mod pl031;
pub mod psci;
pub mod smp;
pub mod timer;

pub use arch::{MAX_CPUS, cpu_index, mpidr, wfi};
pub use bulkhead_abi as abi;
pub use console::raw_pl011_write;
/// The `critical-section` crate, which guest-lib implements (feature
/// `critical-section-impl`): `critical_section::with` masks this CPU and
/// excludes the guest's other CPUs.
#[cfg(feature = "critical-section-impl")]
pub use critical_section;
pub use hvc::vcpu_info;
pub use mode::{Mode, hypervisor, under_bulkhead};

/// Exit code after a panic.
pub const EXIT_PANIC: u64 = 101;
/// Exit code after an unexpected exception (data abort, undefined
/// instruction, ...), reported by [`exception`].
pub const EXIT_EXCEPTION: u64 = 102;

/// Names the guest's main function: `guest_lib::entry!(main);` with
/// `fn main() -> !`. It runs on CPU 0 with IRQs masked.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(export_name = "__guest_lib_main")]
        extern "Rust" fn __guest_lib_main() -> ! {
            let main: fn() -> ! = $main;
            main()
        }
    };
}

unsafe extern "Rust" {
    /// Defined by [`entry!`] in the guest binary.
    fn __guest_lib_main() -> !;
}

/// Rust entry of the primary CPU, from boot.S: MMU on, stack set, .bss zero.
/// `entry_timestamp` is CNTPCT_EL0 as read by `_start`'s first instruction;
/// `entry_registers`: see [`smp::entry_registers`].
#[unsafe(no_mangle)]
extern "C" fn guest_lib_primary_rust(
    started_at_el2: u64,
    entry_timestamp: u64,
    entry_registers: u64,
) -> ! {
    timer::set_entry_timestamp(entry_timestamp);
    smp::set_entry_registers(entry_registers);
    mode::init(started_at_el2 != 0);
    percpu::init_this_cpu();
    gic::init_distributor();
    gic::init_cpu();
    // SAFETY: `entry!` defines the symbol with exactly this signature, and a
    // guest binary that lacks it does not link.
    unsafe { __guest_lib_main() }
}

/// Stops the guest with `code`. Under Bulkhead: `PARTITION_EXIT`, which
/// stops every vCPU of the partition and reports the code. Natively: PSCI
/// `SYSTEM_OFF` (QEMU exits; the code is lost).
pub fn exit(code: u64) -> ! {
    irq::disable();
    if under_bulkhead() {
        hvc::partition_exit(code);
    } else {
        psci::system_off();
    }
    // Refused, or no PSCI: at least stop this CPU.
    loop {
        wfi();
    }
}

/// Unmasks IRQs and waits for interrupts forever: the idle loop of a guest
/// whose work happens in handlers.
pub fn idle() -> ! {
    irq::enable();
    loop {
        wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(at) => println!(
            "panic: {} at {}:{}:{}",
            info.message(),
            at.file(),
            at.line(),
            at.column()
        ),
        None => println!("panic: {}", info.message()),
    }
    exit(EXIT_PANIC)
}
