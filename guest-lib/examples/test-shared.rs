//! Both partitions of `tests/configs/shared.toml` run this guest; the
//! partition index says which side it is. They share a page at IPA
//! 0x7000_0000, writable by the writer (partition 0) and read-only for the
//! reader (partition 1).
//!
//! The writer stores a value, then a ready flag (release), prints `shared:
//! wrote 0x5eed`, and exits. The reader waits for the flag (acquire), reads
//! the value (`shared: read 0x5eed`), then tries to write the page: under
//! Bulkhead a synchronous external abort (`shared: write aborted EC=0x25
//! DFSC=0x10 WnR=1`, caught by `probe`), after which the value is unchanged
//! (`shared: still 0x5eed`), and it exits with code 0.
#![no_std]
#![no_main]

use guest_lib::exception::probe;
use guest_lib::{hvc, println};

guest_lib::entry!(main);

/// The shared page, inside the identity map's Normal range.
const PAGE: usize = 0x7000_0000;
const VALUE: *mut u64 = PAGE as *mut u64;
const READY: *mut u64 = (PAGE + 8) as *mut u64;
const SEED: u64 = 0x5eed;

fn main() -> ! {
    let partition = hvc::vcpu_info().map_or(u64::MAX, |info| info.partition);
    match partition {
        0 => {
            // SAFETY: aligned words of the shared page, which this
            // partition maps read-write; the flag is atomic.
            unsafe {
                VALUE.write_volatile(SEED);
                (*(READY as *const core::sync::atomic::AtomicU64))
                    .store(1, core::sync::atomic::Ordering::Release);
            }
            println!("shared: wrote {SEED:#x}");
        }
        1 => {
            // SAFETY: as above, read-only here: loads only.
            let ready = unsafe { &*(READY as *const core::sync::atomic::AtomicU64) };
            let mut spins = 0u64;
            while ready.load(core::sync::atomic::Ordering::Acquire) == 0 {
                spins += 1;
                if spins == 1 << 32 {
                    println!("shared: the writer never wrote");
                    guest_lib::exit(1);
                }
                core::hint::spin_loop();
            }
            // SAFETY: an aligned word of the shared page.
            let read = || unsafe { VALUE.read_volatile() };
            println!("shared: read {:#x}", read());
            // SAFETY: as above; the page is read-only for this partition,
            // so the store takes an external abort, which `probe` catches.
            let ((), esr) = probe(|| unsafe { VALUE.write_volatile(0xbad) });
            match esr {
                None => println!("shared: write succeeded"),
                Some(esr) => println!(
                    "shared: write aborted EC={:#x} DFSC={:#x} WnR={}",
                    esr >> 26 & 0x3f,
                    esr & 0x3f,
                    esr >> 6 & 1
                ),
            }
            println!("shared: still {:#x}", read());
        }
        _ => println!("shared: not under Bulkhead"),
    }
    guest_lib::exit(0)
}
