//! Makes an undefined hypercall, shows that the guest keeps running (three
//! heartbeats), then exits with code 0. Before that, prints what each call
//! the hypervisor answers at its exit vector returns (`calls: ...`), with
//! bad arguments too, and whether every register the call does not return
//! kept its value: the same with the fast paths on and off.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use guest_lib::abi::{Counter, bulkhead_call, call, psci};
use guest_lib::{hvc, println, timer};

guest_lib::entry!(main);

const BEATS: u64 = 3;
static FINISHED: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    let [x0, ..] = hvc::call(bulkhead_call(0x7ff), []);
    println!("badcall: returned {}", x0 as i64);
    answers();
    println!("badcall: still running");
    timer::start_periodic(Duration::from_millis(100), heartbeat);
    guest_lib::irq::enable();
    while !FINISHED.load(Ordering::Relaxed) {
        guest_lib::wfi();
    }
    guest_lib::exit(0)
}

fn heartbeat(count: u64) {
    println!("heartbeat {} t={}", count, timer::physical_now());
    if count == BEATS {
        timer::stop();
        FINISHED.store(true, Ordering::Relaxed);
    }
}

/// `hvc #0` with `x0 = id`, `x1..x3 = args` and a value of its own in each
/// of x4..x17: x0..x3 after it, and whether x4..x17 kept their values
/// (SMCCC 1.1: the callee preserves them).
fn raw_call(id: u64, args: [u64; 3]) -> ([u64; 4], bool) {
    const MARK: u64 = 0x5a5a_0000_0000;
    let mut x = [0u64; 18];
    x[0] = id;
    x[1..4].copy_from_slice(&args);
    for (n, r) in x.iter_mut().enumerate().skip(4) {
        *r = MARK + n as u64;
    }
    let sent = x;
    // SAFETY: an HVC answered by the hypervisor, which writes at most
    // x0..x17 (all inout here); no memory is passed.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") x[0], inout("x1") x[1], inout("x2") x[2], inout("x3") x[3],
            inout("x4") x[4], inout("x5") x[5], inout("x6") x[6], inout("x7") x[7],
            inout("x8") x[8], inout("x9") x[9], inout("x10") x[10], inout("x11") x[11],
            inout("x12") x[12], inout("x13") x[13], inout("x14") x[14], inout("x15") x[15],
            inout("x16") x[16], inout("x17") x[17],
            options(nostack)
        )
    };
    ([x[0], x[1], x[2], x[3]], x[4..] == sent[4..])
}

/// The answers of the calls the hypervisor answers at its exit vector, one
/// line each: `calls: NAME x0 x1 x2 x3 kept`.
fn answers() {
    const ARGS: [u64; 3] = [0x1111, 0x2222, 0x3333];
    let garbage = 0xdead_0000_0000_0000;
    let show = |name: &str, id: u64, x1: u64| {
        let ([x0, x1, x2, x3], kept) = raw_call(id, [x1, ARGS[1], ARGS[2]]);
        println!("calls: {name} {x0:#x} {x1:#x} {x2:#x} {x3:#x} {kept}");
    };
    show("version", call::VERSION, ARGS[0]);
    show("version-w0", garbage | call::VERSION, ARGS[0]);
    show("vcpu-info", call::VCPU_INFO, ARGS[0]);
    show(
        "exit-count-bad",
        call::EXIT_COUNT,
        Counter::ALL.len() as u64,
    );
    show(
        "exit-count-huge",
        call::EXIT_COUNT,
        garbage | Counter::Hvc as u64,
    );
    // A counter's value depends on the guest's history: its increase over
    // one more call, which counts itself.
    let read = || raw_call(call::EXIT_COUNT, [Counter::Hvc as u64, 0, 0]).0;
    let ([x0, before, ..], [_, after, ..]) = (read(), read());
    println!("calls: exit-count {x0:#x} +{}", after - before);
    show("psci-version", psci::PSCI_VERSION, ARGS[0]);
    show("psci-version-w0", garbage | psci::PSCI_VERSION, ARGS[0]);
    show("migrate-info-type", psci::MIGRATE_INFO_TYPE, ARGS[0]);
    show("smccc-version", psci::SMCCC_VERSION, ARGS[0]);
    for (name, f) in [
        ("cpu-on-64", psci::CPU_ON_64),
        ("cpu-on-32-w1", garbage | psci::CPU_ON_32),
        ("cpu-off-64", psci::CPU_OFF | 1 << 30),
        ("smccc-version", psci::SMCCC_VERSION),
        ("psci-31", 0x8400_001f),
        ("owner-5", 0x8500_0000),
    ] {
        let ([x0, x1, x2, x3], kept) = raw_call(psci::PSCI_FEATURES, [f, ARGS[1], ARGS[2]]);
        println!("calls: psci-features {name} {x0:#x} {x1:#x} {x2:#x} {x3:#x} {kept}");
    }
    for (name, f) in [
        ("smccc-version", psci::SMCCC_VERSION),
        ("arch-features", psci::SMCCC_ARCH_FEATURES),
        ("workaround-1", 0x8000_8000),
        ("next", 0x8000_0002),
    ] {
        let ([x0, x1, x2, x3], kept) = raw_call(psci::SMCCC_ARCH_FEATURES, [f, ARGS[1], ARGS[2]]);
        println!("calls: arch-features {name} {x0:#x} {x1:#x} {x2:#x} {x3:#x} {kept}");
    }
}
