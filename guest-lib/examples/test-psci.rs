//! PSCI as a partition sees it, on two vCPUs, then an undefined system
//! register access.
//!
//! vCPU 0 starts vCPU 1 twice with PSCI CPU_ON: each time vCPU 1 reports
//! its life and the registers it started with (`psci: vcpu <n> [life <n>]
//! entry registers <x1|..|x30>`, zero when they all were), then powers
//! itself off with CPU_OFF, every other register all ones; vCPU 0 waits for AFFINITY_INFO to say OFF before starting it
//! again, and checks that CPU_ON of a vCPU that is on, or of one the
//! partition does not have, is refused. Prints
//! `psci: vcpu 1 life <n>` (twice), `psci: affinity off after life <n>`,
//! `psci: cpu_on refused already_on=-4 absent=-2` (ALREADY_ON whether vCPU
//! 1 runs already or is still being started, as KVM and QEMU answer),
//! the PSCI version, and what the feature queries answer (`psci: features
//! cpu_on=0 system_reset=0 smccc_version=0 arch_features=0
//! workaround_1=-1`).
//!
//! Last, vCPU 0 reads CPUACTLR_EL1 (S3_1_C15_C2_0), an implementation
//! defined register: Bulkhead traps those (HCR_EL2.TIDCP) so a guest cannot
//! reach CPU tuning shared with the hypervisor, and does not emulate them,
//! so the guest must take an UNDEFINED exception, as on a core without the
//! register; guest-lib's exception handler reports `exception: synchronous
//! ... (EC=0x0)` and exits (code 102). The partition is not stopped by the
//! hypervisor. (Natively QEMU's cortex-a72 lets EL1 read it.)
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guest_lib::abi::psci;
use guest_lib::{hvc, println, smp, timer};

guest_lib::entry!(main);

static LIVES: AtomicU64 = AtomicU64::new(0);
/// Set by vCPU 0 once it has tried CPU_ON on vCPU 1 while that is on: vCPU
/// 1's first life does not power off before (it may run its whole life
/// before vCPU 0's next instruction, as when an emulator runs the woken
/// CPU first).
static RELEASED: AtomicBool = AtomicBool::new(false);

fn affinity_info(vcpu: u64) -> u64 {
    hvc::call(psci::AFFINITY_INFO_64, [vcpu, 0])[0]
}

fn second(cpu: usize) -> ! {
    let registers = smp::entry_registers();
    let life = LIVES.fetch_add(1, Ordering::SeqCst) + 1;
    println!("psci: vcpu {} life {}", cpu, life);
    println!(
        "psci: vcpu {} life {} entry registers {:#x}",
        cpu, life, registers
    );
    while !RELEASED.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    power_off_dirty()
}

/// CPU_OFF with every register but x0 (the function id) all ones: the
/// next life must start without them.
fn power_off_dirty() -> ! {
    // SAFETY: does not return (CPU_OFF succeeds, or this CPU waits for
    // ever), so the registers it overwrites are nobody's any more.
    unsafe {
        asm!(
            "movz x0, #{hi}, lsl #16",
            "movk x0, #{lo}",
            ".irp r, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30",
            "mov x\\r, #-1",
            ".endr",
            "hvc #0",
            "1: wfe",
            "b 1b",
            hi = const psci::CPU_OFF >> 16,
            lo = const psci::CPU_OFF & 0xffff,
            options(noreturn),
        )
    }
}

fn wait_for(life: u64) {
    let deadline = timer::now() + timer::ticks(core::time::Duration::from_secs(5));
    while (LIVES.load(Ordering::SeqCst) < life || affinity_info(1) != psci::AFFINITY_OFF)
        && timer::now() < deadline
    {
        core::hint::spin_loop();
    }
    if affinity_info(1) == psci::AFFINITY_OFF && LIVES.load(Ordering::SeqCst) == life {
        println!("psci: affinity off after life {}", life);
    } else {
        println!("psci: vcpu 1 did not power off after life {}", life);
    }
}

fn main() -> ! {
    println!("psci: vcpu 0 entry registers {:#x}", smp::entry_registers());
    println!("psci: version={:#x}", hvc::call(psci::PSCI_VERSION, [])[0]);
    // The feature queries: PSCI_FEATURES for calls it implements, and
    // SMCCC_ARCH_FEATURES (mandatory with SMCCC 1.1) for itself and for a
    // workaround it does not have.
    let psci_features = |f: u64| hvc::call(psci::PSCI_FEATURES, [f])[0] as i64;
    let arch_features = |f: u64| hvc::call(psci::SMCCC_ARCH_FEATURES, [f])[0] as i64;
    println!(
        "psci: features cpu_on={} system_reset={} smccc_version={} arch_features={} workaround_1={}",
        psci_features(psci::CPU_ON_64),
        psci_features(psci::SYSTEM_RESET),
        psci_features(psci::SMCCC_VERSION),
        arch_features(psci::SMCCC_ARCH_FEATURES),
        arch_features(0x8000_8000),
    );
    for life in 1..=2 {
        if let Err(e) = smp::start_cpu(1, second) {
            println!("psci: cpu_on failed: {:?}", e);
            guest_lib::exit(1);
        }
        if life == 1 {
            // While it is on (or on its way): refused. Then a vCPU the
            // partition does not have.
            let already_on = smp::start_cpu(1, second).err().map_or(0, |s| s as i64);
            let absent = smp::start_cpu(5, second).err().map_or(0, |s| s as i64);
            println!(
                "psci: cpu_on refused already_on={} absent={}",
                already_on, absent
            );
        }
        RELEASED.store(true, Ordering::SeqCst);
        wait_for(life);
    }
    println!("psci: reading an implementation defined register");
    let value: u64;
    // SAFETY: a system register read without side effects; under Bulkhead
    // it is UNDEFINED, which is what is tested: the exception handler
    // reports it and exits.
    unsafe { asm!("mrs {}, s3_1_c15_c2_0", out(reg) value, options(nomem, nostack)) };
    println!("psci: the read returned {:#x} (must not happen)", value);
    guest_lib::exit(1)
}
