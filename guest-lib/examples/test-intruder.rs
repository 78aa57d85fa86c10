//! Reads memory that belongs to another partition. Under Bulkhead the read
//! must not complete ("read succeeded" never appears); natively it is
//! ordinary RAM and succeeds, and the guest exits with code 1.
#![no_std]
#![no_main]

use guest_lib::println;

guest_lib::entry!(main);

/// Inside QEMU virt's RAM, outside this guest's partition.
const TARGET: usize = 0x5400_0000;

fn main() -> ! {
    println!("intruder: reading 0x{:08x}", TARGET);
    // SAFETY: an aligned u64 inside the identity map's Normal range; natively
    // it is unused RAM. Under Bulkhead stage 2 stops the access, which is the
    // point of this test.
    let value = unsafe { core::ptr::read_volatile(TARGET as *const u64) };
    println!("intruder: read succeeded (0x{:x})", value);
    guest_lib::exit(1)
}
