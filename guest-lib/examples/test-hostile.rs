//! A hostile guest: tens of thousands of pseudo-random writes and reads of
//! its virtual GIC's registers (every offset of its distributor and
//! redistributor frames, every access width), ICC_SGI1R_EL1 writes with
//! random fields, Bulkhead hypercalls and PSCI calls with random arguments,
//! and garbage in its control page's mask word. Everything stays inside what
//! the partition may touch (its own frames, aligned accesses) and avoids the
//! calls that would end it on purpose (exit, SYSTEM_OFF/RESET, CPU_OFF), so
//! the only way it stops early is the hypervisor refusing something. It
//! prints `hostile: survived <n> operations` and exits with code 0.
//!
//! Beside it a partition keeps its heartbeat: neither the hypervisor nor a
//! neighbour may notice.
#![no_std]
#![no_main]

use core::arch::asm;

use guest_lib::abi::{bulkhead_call, call, psci};
use guest_lib::{hvc, irq, println};

guest_lib::entry!(main);

const OPERATIONS: u32 = 20_000;
const GICD: u64 = 0x0800_0000;
const GICD_SIZE: u64 = 0x1_0000;
/// This partition has one vCPU: one redistributor frame pair.
const GICR: u64 = 0x080A_0000;
const GICR_SIZE: u64 = 0x2_0000;

/// xorshift64: deterministic, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One aligned access of `size` bytes at `addr`, as a plain `str`/`ldr`
/// (so a trap carries a syndrome the hypervisor can decode).
fn access(addr: u64, size: u64, write: bool, value: u64) {
    // SAFETY: `addr` is inside this partition's own virtual GIC frames
    // (Device memory in guest-lib's map) and aligned to `size`; any value
    // is acceptable to a GIC register model, which is what is being tested.
    unsafe {
        match (size, write) {
            (1, true) => asm!("strb {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (2, true) => asm!("strh {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (4, true) => asm!("str {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (_, true) => asm!("str {v}, [{a}]", v = in(reg) value, a = in(reg) addr),
            (1, false) => asm!("ldrb {v:w}, [{a}]", v = out(reg) _, a = in(reg) addr),
            (2, false) => asm!("ldrh {v:w}, [{a}]", v = out(reg) _, a = in(reg) addr),
            (4, false) => asm!("ldr {v:w}, [{a}]", v = out(reg) _, a = in(reg) addr),
            (_, false) => asm!("ldr {v}, [{a}]", v = out(reg) _, a = in(reg) addr),
        }
    }
}

fn gic_access(rng: &mut Rng, write: bool) {
    let (base, size) = if rng.below(2) == 0 {
        (GICD, GICD_SIZE)
    } else {
        (GICR, GICR_SIZE)
    };
    let width = 1u64 << rng.below(4);
    // Mostly the register blocks guests use, sometimes anywhere.
    let span = if rng.below(4) == 0 { size } else { 0x1000 };
    let window = if base == GICR && rng.below(2) == 0 {
        0x1_0000 // the SGI frame
    } else {
        0
    };
    let offset = (window + rng.below(span)) & !(width - 1);
    access(base + offset.min(size - width), width, write, rng.next());
}

/// Calls that do not end the partition on purpose, with random arguments.
fn random_call(rng: &mut Rng) {
    const IDS: [u64; 14] = [
        call::VERSION,
        call::VCPU_INFO,
        call::EXIT_COUNT,
        call::IRQ_UNMASK,
        call::DEFER_STATS,
        call::CONSOLE_WRITE, // only with a length over 48: refused
        psci::PSCI_VERSION,
        psci::PSCI_FEATURES,
        psci::AFFINITY_INFO_64,
        psci::CPU_ON_64,
        psci::MIGRATE_INFO_TYPE,
        psci::SMCCC_VERSION,
        psci::SMCCC_ARCH_FEATURES,
        psci::CPU_SUSPEND_64,
    ];
    let id = match rng.below(IDS.len() as u64 + 2) {
        n if (n as usize) < IDS.len() => IDS[n as usize],
        // Undefined ids in Bulkhead's range and anywhere at all, but never
        // the ones that stop the partition.
        n if n == IDS.len() as u64 => bulkhead_call(0x10 + rng.below(0xff00) as u16),
        _ => rng.next() & !(0xff << 24) | (0x42 << 24),
    };
    let mut args = [rng.next(), rng.next(), rng.next()];
    if id == call::CONSOLE_WRITE {
        args[0] = 49 + rng.below(1 << 20);
    }
    if id == psci::CPU_ON_64 && rng.below(2) == 0 {
        args[0] = 0; // itself: already on
    }
    hvc::call(id, args);
}

fn main() -> ! {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Interrupts stay masked (PSTATE.I) while the registers are churned;
    // whatever the random SGIs and enables leave pending arrives at the end.
    irq::disable();
    for _ in 0..OPERATIONS {
        match rng.below(10) {
            0..=3 => gic_access(&mut rng, true),
            4..=5 => gic_access(&mut rng, false),
            6..=7 => guest_lib::gic::send_sgi_raw(rng.next()),
            8 => random_call(&mut rng),
            _ => {
                if let Some(page) = guest_lib::mode::control_page() {
                    // SAFETY: the control page's mask word (offset 8),
                    // mapped for this guest's whole life; garbage is allowed.
                    unsafe { core::ptr::write_volatile((page + 8) as *mut u32, rng.next() as u32) };
                }
            }
        }
    }
    if let Some(page) = guest_lib::mode::control_page() {
        // SAFETY: as above; unmasked again so the console path is normal.
        unsafe { core::ptr::write_volatile((page + 8) as *mut u32, 0) };
    }
    irq::enable();
    println!("hostile: survived {} operations", OPERATIONS);
    guest_lib::exit(0)
}
