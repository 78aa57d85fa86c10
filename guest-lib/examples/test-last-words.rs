//! Partitions that stop with their output still waiting
//! (tests/configs/last-words.toml). Partition 0 writes [`LINES`] numbered
//! lines, far more than the UART takes in one go, and exits at once;
//! every other partition waits [`LATE`] (its virtual timer) while
//! partition 0's lines are still leaving, writes one line and exits. The
//! last one to stop powers the machine off, and every line of both must
//! still come out: `words: <partition> line <i> of <n>`.
#![no_std]
#![no_main]

use core::time::Duration;

use guest_lib::{hvc, println, timer};

guest_lib::entry!(main);

/// Partition 0's lines: about 6 KiB, which leaves the hypervisor at one
/// pump's budget (256 bytes) per millisecond once its CPU has parked.
const LINES: u64 = 64;
/// The others stop this long after they start: well before partition 0's
/// lines are out.
const LATE: Duration = Duration::from_millis(5);

fn main() -> ! {
    let partition = hvc::vcpu_info().map_or(0, |info| info.partition);
    if partition == 0 {
        for i in 0..LINES {
            println!(
                "words: {partition} line {i} of {LINES} ......................................"
            );
        }
    } else {
        timer::delay(LATE);
        println!("words: {partition} line 0 of 1");
    }
    guest_lib::exit(0)
}
