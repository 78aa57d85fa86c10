//! Makes an undefined hypercall, shows that the guest keeps running (three
//! heartbeats), then exits with code 0. Before that, prints what each call
//! the hypervisor answers at its exit vector returns (`calls: ...`), with
//! bad arguments too, and whether every register the call does not return
//! kept its value: the same with the fast paths on and off. And it loads a
//! virtual GIC register into each register x0..x30 and xzr in turn, and
//! stores one from each, every other register holding a value of its own
//! (`registers: ...`): the hypervisor saves only some of a guest's
//! registers for an emulated access, by the register it names.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use guest_lib::abi::{Counter, bulkhead_call, call, psci};
use guest_lib::gic::{self, Version};
use guest_lib::{hvc, println, timer};

guest_lib::entry!(main);

const BEATS: u64 = 3;
static FINISHED: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    let [x0, ..] = hvc::call(bulkhead_call(0x7ff), []);
    println!("badcall: returned {}", x0 as i64);
    answers();
    registers();
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

// probe_{load,store}_<n>(address, out): with every register but x<n> and
// the base (x9, or x10 for n = 9) set to MARK + its number, and x<n> to
// stored(n) for a store, `ldr w<n>, [base]` or `str w<n>, [base]` (n = 31:
// wzr); then x0..x30 as they are after it go to out[0..31]. Keeps x18..x30
// (and `out`) on the stack meanwhile.
global_asm!(
    r#"
.macro PROBE kind, insn, n, reg, base
.global probe_\kind\()_\n
probe_\kind\()_\n:
    sub     sp, sp, #8 * 48
    str     x1, [sp, #8 * 31]
    .irp r, 18,19,20,21,22,23,24,25,26,27,28,29,30
    str     x\r, [sp, #8 * (32 + \r - 18)]
    .endr
    mov     x\base, x0
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    .if \r != \base
    movz    x\r, #0x5a00 + \r
    .endif
    .endr
    .ifc \kind, store
    .if \n < 31
    movz    w\n, #((\n + 1) * 8 & 0xf8) * 0x0101
    movk    w\n, #((\n + 1) * 8 & 0xf8) * 0x0101, lsl #16
    .endif
    .endif
    \insn  \reg, [x\base]
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    str     x\r, [sp, #8 * \r]
    .endr
    ldr     x1, [sp, #8 * 31]
    mov     x2, #0
1:  ldr     x3, [sp, x2, lsl #3]
    str     x3, [x1, x2, lsl #3]
    add     x2, x2, #1
    cmp     x2, #31
    b.ne    1b
    .irp r, 18,19,20,21,22,23,24,25,26,27,28,29,30
    ldr     x\r, [sp, #8 * (32 + \r - 18)]
    .endr
    add     sp, sp, #8 * 48
    ret
.endm

.irp n, 0,1,2,3,4,5,6,7,8,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
PROBE load, ldr, \n, w\n, 9
PROBE store, str, \n, w\n, 9
.endr
PROBE load, ldr, 9, w9, 10
PROBE store, str, 9, w9, 10
PROBE load, ldr, 31, wzr, 9
PROBE store, str, 31, wzr, 9

.section .rodata
.balign 8
.global probes
probes:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad   probe_load_\n, probe_store_\n
    .endr
.text
"#
);

unsafe extern "C" {
    /// probe_load_<n>, probe_store_<n> for n = 0..=31 (see the assembly).
    static probes: [[unsafe extern "C" fn(u64, *mut [u64; 31]); 2]; 32];
}

/// What `probe_store_<n>` stores: a priority byte of its own in each byte.
fn stored(n: u64) -> u64 {
    (((n + 1) * 8) & 0xf8) * 0x0101_0101
}

/// A word load of a constant register (GICD_IIDR, 0x43b under Bulkhead)
/// into each register, and a word store from each to IPRIORITYR0 (SGIs
/// 0..3, this vCPU's: GICR's on GICv3, the banked GICD one on GICv2), read
/// back: `registers: loads N ok, stores N ok` when every one left the
/// value in the register it names, and every other register as it was.
fn registers() {
    const MARK: u64 = 0x5a00;
    const GICD_IIDR: u64 = 0x0800_0008;
    let priorities = match gic::version() {
        Version::V3 => 0x080a_0000 + 0x1_0000 + 0x400,
        Version::V2 => 0x0800_0000 + 0x400,
    };
    let base = |n: usize| if n == 9 { 10 } else { 9 };
    let (mut loads, mut stores) = (0, 0);
    // SAFETY: a table the assembly above fills, never written.
    for (n, pair) in unsafe { &probes }.iter().enumerate() {
        for (store, address) in [(false, GICD_IIDR), (true, priorities)] {
            let mut out = [0u64; 31];
            // SAFETY: the probe saves what the calling convention asks it to
            // keep, writes `out` (31 words) and accesses one word of a
            // virtual GIC register, read-only (IIDR) or this vCPU's own
            // priorities of SGIs 0..3.
            unsafe { pair[usize::from(store)](address, &mut out) };
            let expected = |r: usize| match r {
                r if r == base(n) => address,
                r if r == n && store => stored(n as u64),
                r if r == n => 0x43b,
                r => MARK + r as u64,
            };
            let kept = (0..31).all(|r| out[r] == expected(r));
            if store {
                // SAFETY: the word just stored, read back.
                let back = unsafe { core::ptr::read_volatile(priorities as *const u32) };
                let value = if n == 31 { 0 } else { stored(n as u64) };
                stores += usize::from(kept && u64::from(back) == value);
            } else {
                loads += usize::from(kept);
            }
        }
    }
    println!("registers: loads {loads} ok, stores {stores} ok");
}
