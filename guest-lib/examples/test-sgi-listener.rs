//! The other side of `test-sgi-sender`: enables every SGI and SPIs 32..64
//! on its one vCPU, counts whatever arrives for 2 s (asleep in WFI; its
//! virtual timer ends the wait and is not counted), prints the counts and
//! exits with code 0. Beside other partitions nothing may arrive:
//! `listener: received=0 by_intid=none`.
#![no_std]
#![no_main]

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::gic::{self, SGI_COUNT};
use guest_lib::{irq, println, timer};

guest_lib::entry!(main);

const LISTEN: Duration = Duration::from_secs(2);
/// The INTIDs listened to are all below this.
const LIMIT: u32 = 64;

static COUNTS: [AtomicU64; LIMIT as usize] = [const { AtomicU64::new(0) }; LIMIT as usize];
static DONE: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    let intids = (0..SGI_COUNT).chain(32..LIMIT);
    for intid in intids {
        // Both only fail for INTIDs of 1020 or more.
        let _ = irq::register(intid, on_interrupt);
        let _ = gic::enable(intid);
    }
    println!("listener: listening");
    timer::start_one_shot(LISTEN, |_| DONE.store(true, Ordering::Relaxed));
    irq::wait_until(|| DONE.load(Ordering::Relaxed));
    irq::disable();

    let counts = COUNTS.each_ref().map(|c| c.load(Ordering::Relaxed));
    println!(
        "listener: received={} by_intid={}",
        counts.iter().sum::<u64>(),
        ByIntid(&counts)
    );
    guest_lib::exit(0)
}

fn on_interrupt(intid: u32) {
    if let Some(count) = COUNTS.get(intid as usize) {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// `intid:count` for every INTID that arrived, comma-separated, or "none".
struct ByIntid<'a>(&'a [u64]);

impl fmt::Display for ByIntid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (intid, &count) in self.0.iter().enumerate().filter(|(_, c)| **c > 0) {
            if any {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", intid, count)?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}
