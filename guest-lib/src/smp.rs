//! Secondary CPUs (vCPUs), started through PSCI CPU_ON.

use core::sync::atomic::{AtomicU64, Ordering, fence};

use bulkhead_abi::Status;

pub use crate::arch::cpu_index;
use crate::arch::{self, MAX_CPUS};

/// What a secondary CPU runs; it gets its CPU index.
pub type SecondaryEntry = fn(usize) -> !;

/// Per CPU index: what [`entry_registers`] returns, written by that CPU.
static ENTRY_REGISTERS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// The registers x1..x30 this CPU was started with, ORed together (by
/// boot.S, before anything else touches them; on the primary CPU but for
/// x21, into which its first instruction reads the counter). Zero: the CPU
/// started clean, with nothing of the hypervisor's and nothing of an
/// earlier life of the vCPU in its registers, as Bulkhead starts every vCPU
/// (at boot and at each PSCI CPU_ON, where x0 is the context id).
pub fn entry_registers() -> u64 {
    ENTRY_REGISTERS[cpu_index()].load(Ordering::Relaxed)
}

/// Records [`entry_registers`] for this CPU; from the Rust entries.
pub(crate) fn set_entry_registers(value: u64) {
    ENTRY_REGISTERS[cpu_index()].store(value, Ordering::Relaxed);
}

/// Starts CPU `index` (its MPIDR Aff0: the vCPU index under Bulkhead, the
/// CPU number on QEMU virt) running `entry(index)` on its own stack, with
/// the MMU, vectors and GIC CPU interface set up as on the primary and IRQs
/// masked. Errors are PSCI's: `AlreadyOn`, `InvalidParameters` (no such
/// CPU, or `index` not below [`MAX_CPUS`]), `Denied`.
pub fn start_cpu(index: usize, entry: SecondaryEntry) -> Result<(), Status> {
    if index >= MAX_CPUS {
        return Err(Status::InvalidParameters);
    }
    // Everything this CPU wrote so far is visible to the new one.
    fence(Ordering::SeqCst);
    // SAFETY: guest_lib_secondary_start is guest-lib's secondary entry and
    // it takes the context as the `SecondaryEntry` to run, which this is.
    unsafe {
        crate::psci::cpu_on(
            index as u64,
            arch::guest_lib_secondary_start as *const () as usize,
            entry as usize as u64,
        )
    }
}

/// Rust entry of a secondary CPU, from boot.S: MMU and stack are set up.
/// `entry_registers`: see [`entry_registers`].
#[unsafe(no_mangle)]
extern "C" fn guest_lib_secondary_rust(context: usize, entry_registers: u64) -> ! {
    set_entry_registers(entry_registers);
    crate::percpu::init_this_cpu();
    crate::gic::init_cpu();
    // SAFETY: the only caller of CPU_ON with this entry point is
    // `start_cpu`, whose context is a `SecondaryEntry` (`psci::cpu_on`
    // is unsafe and requires the same of any other caller).
    let entry = unsafe { core::mem::transmute::<usize, SecondaryEntry>(context) };
    entry(cpu_index())
}
