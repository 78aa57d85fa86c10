//! The victim of the interference test (tests/configs/interference.toml):
//! one vCPU with a 20 ms timer that, in each phase of its neighbour
//! (test-aggressor.rs, phases of the same length timed on the same
//! physical counter), counts its timer ticks and times its own console
//! writes (one CONSOLE_WRITE hypercall of a short line, every 10 ms) and its
//! own GIC writes (enabling and disabling an SGI in its own redistributor:
//! three trapped accesses, every millisecond). A quarter second at each
//! phase's edges is left out, for the two partitions' slightly different
//! starts. A call that takes over 100 µs is `slow`: it waited for
//! something. It prints, per phase, `victim: <phase> ticks=<n>
//! console_n=.. console_slow=.. console_median_ns=.. console_max_ns=..` and
//! `victim: <phase> gic_n=.. gic_slow=.. gic_median_ns=.. gic_max_ns=..
//! null_slow=.. null_max_ns=..` (null: the VERSION hypercall, timed every
//! millisecond too), then `victim: done`.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::{gic, hvc, irq, println, timer};

guest_lib::entry!(main);

/// The neighbour's phase length (test-aggressor.rs).
const PHASE_MS: u64 = 1500;
const PHASES: [&str; 3] = ["quiet", "console", "gic"];
const MARGIN_MS: u64 = 250;

static TICKS: AtomicU64 = AtomicU64::new(0);

fn tick(_count: u64) {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Most samples a series keeps (a phase has about 1000 GIC samples).
const SAMPLES: usize = 2048;

/// A series of durations, in ticks: its median (robust to the host
/// descheduling QEMU's vCPU threads now and then) and its max.
struct Series {
    samples: [u64; SAMPLES],
    n: usize,
    max: u64,
}

impl Series {
    const fn new() -> Self {
        Self {
            samples: [0; SAMPLES],
            n: 0,
            max: 0,
        }
    }
    fn add(&mut self, ticks: u64) {
        if self.n < SAMPLES {
            self.samples[self.n] = ticks;
            self.n += 1;
        }
        self.max = self.max.max(ticks);
    }
    /// How many took longer than `ticks`.
    fn above(&self, ticks: u64) -> usize {
        self.samples[..self.n]
            .iter()
            .filter(|&&t| t > ticks)
            .count()
    }

    /// The `percent` percentile (the median at 50).
    fn percentile(&mut self, percent: usize) -> u64 {
        let samples = &mut self.samples[..self.n];
        samples.sort_unstable();
        samples
            .get((self.n * percent / 100).min(self.n.saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }
}

static mut CONSOLE: Series = Series::new();
static mut GIC: Series = Series::new();
static mut NULL: Series = Series::new();

fn ns(ticks: u64) -> u64 {
    ticks * 1_000_000_000 / timer::frequency()
}

fn timed(f: impl FnOnce()) -> u64 {
    let before = timer::physical_now();
    f();
    timer::physical_now() - before
}

fn main() -> ! {
    let start = timer::physical_now();
    let phase = timer::ticks(Duration::from_millis(PHASE_MS));
    let margin = timer::ticks(Duration::from_millis(MARGIN_MS));
    let ms = timer::ticks(Duration::from_millis(1));
    // A call that takes longer than this waited for something.
    let slow = timer::ticks(Duration::from_micros(100));
    timer::start_periodic(Duration::from_millis(20), tick);
    irq::enable();
    for (index, name) in PHASES.iter().enumerate() {
        let from = start + index as u64 * phase + margin;
        let to = start + (index as u64 + 1) * phase - margin;
        while timer::physical_now() < from {
            core::hint::spin_loop();
        }
        let ticks_before = TICKS.load(Ordering::Relaxed);
        // SAFETY: one vCPU, and only `main` touches these, one phase at a time.
        let (console, gic_writes, null) = unsafe {
            (
                &mut *core::ptr::addr_of_mut!(CONSOLE),
                &mut *core::ptr::addr_of_mut!(GIC),
                &mut *core::ptr::addr_of_mut!(NULL),
            )
        };
        *console = Series::new();
        *gic_writes = Series::new();
        *null = Series::new();
        let mut next_print = from;
        let mut n = 0u64;
        while timer::physical_now() < to {
            gic_writes.add(timed(|| {
                let _ = gic::enable(5);
                let _ = gic::disable(5);
            }));
            null.add(timed(|| {
                hvc::call(guest_lib::abi::call::VERSION, []);
            }));
            if timer::physical_now() >= next_print {
                n += 1;
                let mut line = *b"victim sample 0000\n";
                for (i, digit) in line[14..18].iter_mut().rev().enumerate() {
                    *digit = b'0' + (n / 10u64.pow(i as u32) % 10) as u8;
                }
                console.add(timed(|| {
                    let _ = hvc::console_write(&line);
                }));
                next_print += 10 * ms;
            }
            let wait_until = timer::physical_now() + ms;
            while timer::physical_now() < wait_until {
                core::hint::spin_loop();
            }
        }
        let ticks = TICKS.load(Ordering::Relaxed) - ticks_before;
        let (console_median, gic_median) = (console.percentile(50), gic_writes.percentile(50));
        // Two lines: one console line holds at most 160 characters.
        println!(
            "victim: {} ticks={} console_n={} console_slow={} console_median_ns={} console_max_ns={}",
            name,
            ticks,
            console.n,
            console.above(slow),
            ns(console_median),
            ns(console.max)
        );
        println!(
            "victim: {} gic_n={} gic_slow={} gic_median_ns={} gic_max_ns={} null_slow={} null_max_ns={}",
            name,
            gic_writes.n,
            gic_writes.above(slow),
            ns(gic_median),
            ns(gic_writes.max),
            null.above(slow),
            ns(null.max)
        );
    }
    println!("victim: done");
    guest_lib::exit(0)
}
