//! The victim of the interference benchmark
//! (tests/configs/bench-interference.toml, `scripts/bench.sh`): one vCPU
//! that measures its virtual timer, CNTV_CVAL -> its IRQ vector, while the
//! neighbour partition (bench-aggressor.rs) runs one aggressor after
//! another. For `-icount shift=0,align=off,sleep=off` with a 1 GHz counter:
//! one tick per instruction.
//!
//! # The schedule
//!
//! Phase k runs from `START + k * PHASE` to `START + (k + 1) * PHASE` on
//! the physical counter, which both partitions read (bench-schedule/mod.rs,
//! shared with bench-aggressor.rs): the victim knows the phase from the
//! counter alone, nothing passes through the hypervisor. It sleeps (WFI,
//! its timer armed) until `MARGIN` after a phase's start, takes
//! [`SAMPLES`] samples, checks that they ended `TAIL` before the phase's
//! end (else it reports the overrun and fails), and sleeps until the next
//! phase; after the last, until its end, and only then prints.
//!
//! # A sample
//!
//! With IRQs masked: CNTV_CVAL = now + a distance of 2000 to 4047 ticks
//! (a fixed pseudo-random sequence, so that the expiries find the
//! neighbour at many points of its loop), timer on, `wfi`, `msr daifclr`
//! (the interrupt is taken there), `msr daifset`; the IRQ vector's own
//! timestamp (guest-lib reads it with the vector's third instruction) minus
//! CVAL is the guest-measured latency. Each phase samples in a function of
//! its own, `sample_<phase>` (`#[inline(never)]`, the body inlined, the
//! phase's number moved into a scratch register so that no two are alike),
//! so that QEMU's instruction trace tells the phase by where the vCPU was
//! (its WFI) when the interrupt came: bench.sh counts, per phase, the
//! instructions this CPU executes from the hypervisor's EL2 IRQ vector
//! entry to the guest's IRQ vector, which is what the hypervisor did for
//! this interrupt, whatever the neighbour does.
//!
//! The guest-measured figure is not that: under `-icount` QEMU runs all
//! vCPUs on one thread, round-robin, and virtual time counts every vCPU's
//! instructions, so the latency would include the neighbour's
//! instructions whenever QEMU ran one of its vCPUs between the expiry and
//! the vector (QEMU 10 was not seen to: 47 in every phase). It shows
//! QEMU's scheduling as much as the hypervisor's path.
//!
//! Prints `bench: boot_to_first_guest_instruction=<ticks>` (CNTPCT_EL0 as
//! its first instruction read it) and `victim: schedule start=.. phase=..
//! margin=..`, then per phase `bench:
//! interference_<phase>_guest=<min>/<median>/<max>` (ticks) and `victim:
//! <phase> samples=<n> first=<tick> last=<tick>` (when the phase's
//! sampling began and ended, physical), then
//! `bench: done`, and exits with code 0 (1 if a phase overran).
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guest_lib::{gic, irq, println, timer};

#[path = "bench-schedule/mod.rs"]
mod schedule;

use schedule::{
    CACHE, CONSOLE_HVC, CONSOLE_PL011, GIC, HVC, IDLE, MARGIN, MMIO, PHASE, PHASES, PSCI, SGI,
    START,
};

guest_lib::entry!(main);

/// The samples must end this long before the phase does.
const TAIL: u64 = 100_000;

/// Samples per phase.
const SAMPLES: usize = 256;
/// The timer is set `DISTANCE + (0..DISTANCE_SPREAD)` ticks ahead.
const DISTANCE: u64 = 2000;
const DISTANCE_SPREAD: u64 = 2048;

/// `wait_for_timer`'s "phase" in `sleep_until`.
const SLEEPING: usize = 99;

/// The virtual timer's PPI.
const TIMER_INTID: u32 = 27;

/// Written by the handler: the vector's timestamp, and that it came.
static VECTOR: AtomicU64 = AtomicU64::new(0);
static FIRED: AtomicBool = AtomicBool::new(false);

/// CNTVCT_EL0, one `mrs`.
#[inline(always)]
fn counter() -> u64 {
    let value: u64;
    // SAFETY: reading the counter has no side effects; not `nomem`, so that
    // the read stays where it is written relative to the code around it.
    unsafe { asm!("mrs {}, cntvct_el0", out(reg) value, options(nostack, preserves_flags)) };
    value
}

/// The timer's interrupt: keep the vector's stamp, turn the timer off
/// (it is level-triggered: deasserted before the end of interrupt).
fn on_timer(_intid: u32) {
    VECTOR.store(irq::last_vector_timestamp(), Ordering::Relaxed);
    // SAFETY: disables this CPU's own virtual timer.
    unsafe {
        asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
    FIRED.store(true, Ordering::Release);
}

/// Arms the timer `distance` ahead and waits for it (see the module
/// documentation); returns (CVAL, the vector's timestamp). Inlined into
/// each sampler, and into `sleep_until`.
#[inline(always)]
fn wait_for_timer<const PHASE: usize>(distance: u64) -> (u64, u64) {
    // SAFETY: writes a scratch register only. The phase's number in the
    // code makes each sampler's body its own: identical ones would be
    // merged into one function, and the trace could not tell them apart.
    unsafe {
        asm!("mov {scratch}, #{phase}", scratch = out(reg) _, phase = const PHASE,
             options(nomem, nostack, preserves_flags))
    };
    FIRED.store(false, Ordering::Relaxed);
    irq::disable();
    let cval = counter() + distance;
    // SAFETY: programs and enables this CPU's own virtual timer; its
    // handler is registered and its PPI enabled.
    unsafe {
        asm!(
            "msr cntv_cval_el0, {cval}",
            "msr cntv_ctl_el0, {on}",
            "isb",
            cval = in(reg) cval,
            on = in(reg) 1u64,
            options(nostack, preserves_flags)
        )
    };
    while !FIRED.load(Ordering::Acquire) {
        // SAFETY: waits for an interrupt with IRQs masked, lets it be taken
        // (the vector preserves every register) and masks again. Not
        // `nomem`: the handler writes FIRED and VECTOR.
        unsafe {
            asm!(
                "wfi",
                "msr daifclr, #2",
                "msr daifset, #2",
                options(nostack, preserves_flags)
            )
        };
    }
    irq::enable();
    (cval, VECTOR.load(Ordering::Relaxed))
}

/// One sampler per phase, each a function of its own (see the module
/// documentation): `sample_<phase>(distance)` returns CVAL -> vector.
macro_rules! samplers {
    ($($name:ident = $phase:ident),* $(,)?) => {
        $(
            #[inline(never)]
            fn $name(distance: u64) -> u64 {
                let (cval, vector) = wait_for_timer::<$phase>(distance);
                vector.wrapping_sub(cval)
            }
        )*
        const SAMPLERS: [fn(u64) -> u64; PHASES.len()] = [$($name),*];
    };
}

samplers! {
    sample_idle = IDLE,
    sample_console_hvc = CONSOLE_HVC,
    sample_console_pl011 = CONSOLE_PL011,
    sample_gic = GIC,
    sample_sgi = SGI,
    sample_hvc = HVC,
    sample_psci = PSCI,
    sample_mmio = MMIO,
    sample_cache = CACHE,
}

/// Sleeps until the physical count reaches `deadline` (the virtual timer
/// runs with the physical counter: CNTVCT read after CNTPCT). A function
/// of its own, like the samplers: the trace must see where the vCPU waited
/// also when it was not sampling.
#[inline(never)]
fn sleep_until(deadline: u64) {
    loop {
        let now = timer::physical_now();
        if now >= deadline {
            return;
        }
        wait_for_timer::<SLEEPING>(deadline - now);
    }
}

/// A pseudo-random sequence (a 64-bit LCG, Knuth's MMIX constants): the
/// same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn main() -> ! {
    // Power-on to this guest's first instruction (read by boot.S): the
    // growth rows' boot figure.
    println!(
        "bench: boot_to_first_guest_instruction={}",
        timer::entry_timestamp()
    );
    schedule::print("victim");
    let _ = irq::register(TIMER_INTID, on_timer);
    let _ = gic::enable(TIMER_INTID);
    irq::enable();
    if timer::physical_now() >= START {
        println!("victim: booted after the schedule's start: raise START");
        guest_lib::exit(1);
    }
    let mut random = Lcg(1);
    let mut figures = [(0u64, 0u64, 0u64); PHASES.len()];
    let mut spans = [(0u64, 0u64); PHASES.len()];
    let mut overran = false;
    for (index, sampler) in SAMPLERS.iter().enumerate() {
        let begin = START + index as u64 * PHASE;
        sleep_until(begin + MARGIN);
        let first = timer::physical_now();
        let mut latencies = [0u64; SAMPLES];
        for latency in latencies.iter_mut() {
            *latency = sampler(DISTANCE + random.next() % DISTANCE_SPREAD);
        }
        let last = timer::physical_now();
        overran |= last > begin + PHASE - TAIL;
        latencies.sort_unstable();
        figures[index] = (latencies[0], latencies[SAMPLES / 2], latencies[SAMPLES - 1]);
        spans[index] = (first, last);
    }
    // Print (hypercalls) only once the neighbour's schedule is over.
    sleep_until(START + PHASES.len() as u64 * PHASE);
    for (index, name) in PHASES.iter().enumerate() {
        let (min, median, max) = figures[index];
        println!(
            "bench: interference_{}_guest={}/{}/{}",
            name, min, median, max
        );
        let (first, last) = spans[index];
        println!(
            "victim: {} samples={} first={} last={}",
            name, SAMPLES, first, last
        );
    }
    if overran {
        println!("victim: the samples overran a phase (see first/last): lengthen PHASE");
        guest_lib::exit(1);
    }
    println!("bench: done");
    guest_lib::exit(0)
}
