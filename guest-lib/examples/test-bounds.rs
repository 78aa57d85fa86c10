//! Stage 2 at the edges of a partition's memory (tests/configs/bounds.toml:
//! four partitions, each with two regions, placed back to back in physical
//! memory so that one page too many in any stage-2 map would reach a
//! neighbour). Every partition reads and writes the first and last byte of
//! both its regions and prints `bounds: <n> edges ok`. Then, by its index
//! (VCPU_INFO):
//!
//! - 0 reads the first byte past its region A, 1 the first byte past its
//!   region B, 2 writes the first byte past its region A: each prints
//!   `bounds: <n> touching <address>` first and must be stopped by the
//!   hypervisor at that access (a line `bounds: <n> survived` means the
//!   byte was mapped);
//! - 3 is the witness: partition 2's write, with one page too many mapped,
//!   would land on the first bytes of 3's region A (its first instructions,
//!   physically right after 2's region A). It keeps a copy, waits until the
//!   others are done, compares and prints `bounds: 3 first bytes intact`
//!   (or what changed), then exits 0.
#![no_std]
#![no_main]

use core::time::Duration;

use guest_lib::{hvc, println, timer};

guest_lib::entry!(main);

/// The regions of every partition of bounds.toml, by guest address.
const REGION_A: (usize, usize) = (0x4000_0000, 0x0200_0000);
const REGION_B: (usize, usize) = (0x4400_0000, 0x0010_0000);

fn touch(address: usize) {
    // SAFETY: a byte of this partition's own memory (identity-mapped as
    // normal memory by guest-lib), read and written back unchanged.
    unsafe {
        let p = address as *mut u8;
        let value = core::ptr::read_volatile(p);
        core::ptr::write_volatile(p, value);
    }
}

fn main() -> ! {
    let partition = hvc::vcpu_info().map(|i| i.partition).unwrap_or(u64::MAX);
    for (base, size) in [REGION_A, REGION_B] {
        touch(base);
        touch(base + size - 1);
    }
    println!("bounds: {} edges ok", partition);
    match partition {
        0 => probe_read(REGION_A.0 + REGION_A.1),
        1 => probe_read(REGION_B.0 + REGION_B.1),
        2 => {
            timer::delay(Duration::from_millis(50));
            let past = REGION_A.0 + REGION_A.1;
            println!("bounds: 2 touching {:#x}", past);
            // SAFETY: deliberately the first byte past this partition's
            // region A: the hypervisor must stop the partition here.
            unsafe { core::ptr::write_volatile(past as *mut u64, 0xdead_dead_dead_dead) };
            println!("bounds: 2 survived");
            guest_lib::exit(1)
        }
        _ => witness(),
    }
}

fn probe_read(past: usize) -> ! {
    let partition = hvc::vcpu_info().map(|i| i.partition).unwrap_or(u64::MAX);
    println!("bounds: {} touching {:#x}", partition, past);
    // SAFETY: deliberately the first byte past one of this partition's
    // regions: the hypervisor must stop the partition here.
    let value = unsafe { core::ptr::read_volatile(past as *const u8) };
    println!("bounds: {} survived (read {:#x})", partition, value);
    guest_lib::exit(1)
}

fn first_bytes() -> u64 {
    // SAFETY: the first eight bytes of this partition's own region A.
    unsafe { core::ptr::read_volatile(REGION_A.0 as *const u64) }
}

fn witness() -> ! {
    let before = first_bytes();
    timer::delay(Duration::from_millis(300));
    let after = first_bytes();
    if after == before {
        println!("bounds: 3 first bytes intact");
    } else {
        println!(
            "bounds: 3 first bytes changed: {:#x} -> {:#x}",
            before, after
        );
    }
    guest_lib::exit(0)
}
