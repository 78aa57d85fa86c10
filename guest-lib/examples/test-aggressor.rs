//! The neighbour of the interference test (tests/configs/interference.toml):
//! two vCPUs that, phase after phase of [`PHASE_MS`] each (timed on the
//! physical counter, which every partition shares), do what a hostile or
//! merely busy partition may do to its hypervisor, while the victim beside
//! it measures its own timer and its own calls:
//!
//! 0. `quiet`: both vCPUs spin without an exit (the same host load as the
//!    other phases, none of the hypervisor's time);
//! 1. `console`: full 160-character lines as fast as possible, vCPU 0
//!    through CONSOLE_WRITE, vCPU 1 through the emulated PL011;
//! 2. `gic`: both vCPUs enable and disable an SGI in their own
//!    redistributor (GICR_ISENABLER0/ICENABLER0) in a loop;
//!
//! Then vCPU 0 prints `aggressor: console_lines=<n> gic_writes=<n>` (what
//! both vCPUs did) and the partition exits.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::{gic, hvc, println, smp, timer};

guest_lib::entry!(main);

/// Length of each phase, the victim's too (test-victim.rs).
const PHASE_MS: u64 = 1500;

/// 160 characters and a newline: the longest line the hypervisor keeps whole.
const LINE: &[u8; 161] = b"flood flood flood flood flood flood flood flood flood flood \
flood flood flood flood flood flood flood flood flood flood flood flood flood flood flood \
flood floo\n";

fn phase(start: u64) -> u64 {
    (timer::physical_now() - start) / timer::ticks(Duration::from_millis(PHASE_MS))
}

static LINES: AtomicU64 = AtomicU64::new(0);
static GIC_WRITES: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);

fn run(cpu: usize, start: u64) {
    loop {
        match phase(start) {
            0 => core::hint::spin_loop(),
            1 if cpu == 0 => {
                for chunk in LINE.chunks(48) {
                    let _ = hvc::console_write(chunk);
                }
                LINES.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                // ASCII, so always UTF-8.
                guest_lib::raw_pl011_write(core::str::from_utf8(LINE).unwrap_or(""));
                LINES.fetch_add(1, Ordering::Relaxed);
            }
            2 => {
                let _ = gic::enable(7);
                let _ = gic::disable(7);
                GIC_WRITES.fetch_add(1, Ordering::Relaxed);
            }
            _ => break,
        }
    }
    DONE.fetch_add(1, Ordering::AcqRel);
}

static START: AtomicU64 = AtomicU64::new(0);

fn second(cpu: usize) -> ! {
    run(cpu, START.load(Ordering::Acquire));
    loop {
        guest_lib::wfi();
    }
}

fn main() -> ! {
    let start = timer::physical_now();
    START.store(start, Ordering::Release);
    let vcpus = if smp::start_cpu(1, second).is_ok() {
        2
    } else {
        1
    };
    run(0, start);
    while DONE.load(Ordering::Acquire) < vcpus {
        core::hint::spin_loop();
    }
    println!(
        "aggressor: console_lines={} gic_writes={}",
        LINES.load(Ordering::Relaxed),
        GIC_WRITES.load(Ordering::Relaxed)
    );
    guest_lib::exit(0)
}
