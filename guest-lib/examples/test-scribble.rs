//! A guest that writes garbage into its own control page: the magic, the
//! version, every byte of the flag word (every vCPU masked), the pending
//! word (`0xdeadbeef_ffffffff`: every vCPU's deferral bit and guest bits
//! set) and some reserved words.
//! The page is the guest's to write (the hypervisor must read it as
//! untrusted); what this checks is that the hypervisor neither repairs nor
//! otherwise rewrites it, and (in its partition set, beside a heartbeat
//! partition) that nothing else suffers. With nothing enabled, it re-reads
//! the whole page every 100 ms for a second, by the counter, and prints
//! `scribble: page unchanged` or the first word that differs:
//! `scribble: page changed word=<index> value=<v>`. Then exits with 0.
//! Natively there is no control page: `scribble: no control page`.
#![no_std]
#![no_main]

use core::time::Duration;

use guest_lib::abi::control;
use guest_lib::{irq, mode, println, timer};

guest_lib::entry!(main);

const WORDS: usize = control::SIZE / 4;
const CHECKS: u32 = 10;
const INTERVAL: Duration = Duration::from_millis(100);

/// The garbage: (32-bit word index, value). Word 0 magic, 1 version, 2
/// and 3 the flag word, 4 and 5 the pending word, then reserved words at
/// the start, middle and end.
const GARBAGE: [(usize, u32); 9] = [
    (control::OFFSET_MAGIC / 4, 0x0bad_f00d),
    (control::OFFSET_VERSION / 4, 0xffff_fffe),
    (control::OFFSET_MASK / 4, 0xffff_ffff),
    (control::OFFSET_MASK / 4 + 1, 0xffff_ffff),
    (control::OFFSET_PENDING / 4, 0xffff_ffff),
    (control::OFFSET_PENDING / 4 + 1, 0xdead_beef),
    (6, 0x1234_5678),
    (WORDS / 2, 0x8000_0001),
    (WORDS - 1, 0xcafe_babe),
];

fn main() -> ! {
    let Some(page) = mode::control_page() else {
        println!("scribble: no control page");
        guest_lib::exit(0)
    };
    let words = page as *mut u32;
    // Masked through the flag first, as a guest in a critical section
    // would be; never unmasked (the garbage makes the page meaningless).
    let _masked = irq::mask();
    let mut expected = [0u32; WORDS];
    for (i, slot) in expected.iter_mut().enumerate() {
        // SAFETY: `page` is this partition's control page, 4 KiB of Normal
        // memory mapped for the guest's whole life; `i` is below WORDS.
        *slot = unsafe { words.add(i).read_volatile() };
    }
    for &(i, value) in &GARBAGE {
        expected[i] = value;
        // SAFETY: as above; the guest may write its own control page.
        unsafe { words.add(i).write_volatile(value) };
    }

    let mut next = timer::now();
    for _ in 0..CHECKS {
        next += timer::ticks(INTERVAL);
        while timer::now() < next {
            core::hint::spin_loop();
        }
        for (i, &want) in expected.iter().enumerate() {
            // SAFETY: as above.
            let value = unsafe { words.add(i).read_volatile() };
            if value != want {
                println!("scribble: page changed word={} value=0x{:x}", i, value);
                guest_lib::exit(0)
            }
        }
    }
    println!("scribble: page unchanged");
    guest_lib::exit(0)
}
