//! Reaches for addresses its partition has nothing at: a read and a write
//! of memory that belongs to another partition, and a call to an address
//! with nothing behind it. Under Bulkhead each is a synchronous external
//! abort taken at the guest's own vector, as on hardware without memory
//! there: guest-lib's `probe` records it and the guest carries on. Prints
//! `intruder: read aborted EC=0x25 DFSC=0x10 WnR=0`, `intruder: write
//! aborted EC=0x25 DFSC=0x10 WnR=1`, `intruder: fetch aborted EC=0x21
//! IFSC=0x10`, its external-abort count, then `intruder: carried on` and
//! exits with code 0. The read must never complete ("read succeeded").
//! Natively the two addresses are ordinary RAM and the reads succeed.
#![no_std]
#![no_main]

use core::arch::asm;

use guest_lib::abi::Counter;
use guest_lib::exception::probe;
use guest_lib::{hvc, println};

guest_lib::entry!(main);

/// Inside QEMU virt's RAM, outside this guest's partition (the victim's).
const TARGET: usize = 0x5400_0000;
/// Inside QEMU virt's RAM, outside every partition's IPA space.
const NOWHERE: usize = 0x7000_0000;

fn describe(esr: Option<u64>) -> (u64, u64, u64) {
    let esr = esr.unwrap_or(0);
    (esr >> 26 & 0x3f, esr & 0x3f, esr >> 6 & 1)
}

fn main() -> ! {
    println!("intruder: reading 0x{:08x}", TARGET);
    // SAFETY: an aligned u64 inside the identity map's Normal range; natively
    // it is unused RAM. Under Bulkhead there is nothing there for this
    // partition: the access takes an external abort, which `probe` catches.
    let (value, esr) = probe(|| unsafe { core::ptr::read_volatile(TARGET as *const u64) });
    if esr.is_none() {
        println!("intruder: read succeeded (0x{:x})", value);
    }
    let (ec, dfsc, wnr) = describe(esr);
    println!("intruder: read aborted EC=0x{ec:x} DFSC=0x{dfsc:x} WnR={wnr}");

    // SAFETY: as above; a write of the same word.
    let ((), esr) = probe(|| unsafe { core::ptr::write_volatile(TARGET as *mut u64, 0xbad) });
    let (ec, dfsc, wnr) = describe(esr);
    println!("intruder: write aborted EC=0x{ec:x} DFSC=0x{dfsc:x} WnR={wnr}");

    // A call into nothing: the fetch aborts and `probe` resumes at the link
    // register, as if the call had returned.
    let ((), esr) = probe(|| {
        // SAFETY: branches with link to NOWHERE; natively that is zeroed RAM
        // (an UNDEFINED instruction, which probe also catches), under
        // Bulkhead the fetch aborts. Either way control comes back to the
        // instruction after the `blr`, with x30 clobbered.
        unsafe { asm!("blr {}", in(reg) NOWHERE, out("x30") _) };
    });
    let (ec, ifsc, _) = describe(esr);
    println!("intruder: fetch aborted EC=0x{ec:x} IFSC=0x{ifsc:x}");
    println!(
        "intruder: external aborts counted {}",
        hvc::exit_count(Counter::ExternalAbort).unwrap_or(u64::MAX)
    );
    println!("intruder: carried on");
    guest_lib::exit(0)
}
