//! The neighbour of the interference benchmark
//! (tests/configs/bench-interference.toml, `scripts/bench.sh`): two vCPUs
//! that, phase after phase, do one of the things a busy or hostile
//! partition may do to the hypervisor, while the victim beside it
//! (bench-victim.rs) measures its virtual timer. Under `-icount
//! shift=0,align=off,sleep=off` with a 1 GHz counter.
//!
//! The schedule is the victim's (bench-schedule/mod.rs): one phase after
//! another on the physical counter. The victim samples from `MARGIN` after
//! a phase's start, so what this guest started at the end of the previous
//! phase has finished by then. Neither vCPU starts an operation in the
//! last [`GAP`] ticks of a phase (each sleeps to the next): an operation
//! that waits for the partition's console lock while the other vCPU,
//! already in the next phase, keeps taking it on its turns of QEMU's
//! round robin, ran into the next phase by up to 316,000 ticks.
//!
//! The phases, each operation repeated until [`GAP`] before the phase
//! ends:
//!
//! 0. `idle`: both vCPUs in WFI; vCPU 0's timer is armed only for the
//!    phase's end (the victim has finished sampling by then), and it then
//!    wakes vCPU 1 with an SGI. Nothing of this partition runs meanwhile.
//! 1. `console_hvc`: both vCPUs write 160-character lines with
//!    CONSOLE_WRITE, 48 bytes a call (the partition has one console: the
//!    two vCPUs' bytes mix in its lines).
//! 2. `console_pl011`: both vCPUs write the same lines byte by byte to the
//!    emulated PL011 (a trapped UARTFR read and a trapped UARTDR write per
//!    byte), 48 bytes an operation.
//! 3. `gic`: vCPU 0 enables and disables SGI 7 in its redistributor
//!    (IGROUPR0 read and write, ISENABLER0, ICENABLER0); vCPU 1 enables,
//!    prioritises and disables its passthrough SPI (the PL061's, INTID 39,
//!    never asserted: its GPIOIE stays 0) in the distributor (IGROUPR1,
//!    IROUTER39, ISENABLER1, IPRIORITYR, ICENABLER1), which reach the
//!    physical GIC the victim's interrupts also go through.
//! 4. `sgi`: each vCPU sends an SGI to the other (3 to vCPU 1, 4 to vCPU
//!    0), as fast as it can, and takes the other's.
//! 5. `hvc`: both vCPUs alternate the VERSION and EXIT_COUNT hypercalls.
//! 6. `psci`: vCPU 1 powers itself off (CPU_OFF); vCPU 0 starts it (CPU_ON)
//!    into a life that powers off again at once, waits with AFFINITY_INFO
//!    until it is off, and again. After the phase it starts vCPU 1 for good.
//! 7. `mmio`: data aborts the hypervisor emulates: vCPU 0 reads the
//!    emulated PL011's UARTFR, vCPU 1 the virtual GICD_TYPER, in a loop.
//! 8. `cache`: vCPU 0 cleans and invalidates by set/way (`dc cisw`, 64 a
//!    round, each trapped: HCR_EL2.TSW), vCPU 1 invalidates the TLBs and
//!    the instruction caches of the inner shareable domain (`tlbi
//!    vmalle1is`, `ic ialluis`, with their barriers; not trapped, QEMU
//!    performs them on every CPU).
//!
//! Then vCPU 0 prints, per phase, `aggressor: <phase> ops=<n> late=<ticks>`
//! (operations of both vCPUs, and how long after the phase's end the last
//! one ended: bench.sh checks it is below the margin) and
//! `aggressor: done`, and the partition exits. vCPU 1 tells vCPU 0 it has
//! finished with an SGI: no vCPU spins once the schedule is over.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use guest_lib::abi::{CONSOLE_WRITE_MAX, Counter, call, psci};
use guest_lib::gic::{self, SgiTargets};
use guest_lib::{hvc, irq, println, smp, timer};

#[path = "bench-schedule/mod.rs"]
mod schedule;

use schedule::{
    CACHE, CONSOLE_HVC, CONSOLE_PL011, GIC, HVC, IDLE, MMIO, PHASE, PHASES, PSCI, SGI, START,
};

guest_lib::entry!(main);

/// vCPU 0 to vCPU 1: the idle phase is over; vCPU 1 to vCPU 0: it has
/// finished the schedule.
const SGI_WAKE: u32 = 2;
/// The SGI storm: vCPU 0 to vCPU 1, and vCPU 1 to vCPU 0.
const SGI_TO_1: u32 = 3;
const SGI_TO_0: u32 = 4;
/// The SGI the redistributor storm enables and disables.
const SGI_TOGGLED: u32 = 7;
/// The PL061's interrupt (SPI 7), this partition's passthrough device.
const GPIO_INTID: u32 = 39;

/// The emulated PL011's UARTFR, and the virtual GICD_TYPER.
const UARTFR: usize = 0x0900_0018;
const GICD_TYPER: usize = 0x0800_0004;

/// 160 characters and a newline: the longest line the hypervisor keeps whole.
const LINE: &[u8; 161] = b"flood flood flood flood flood flood flood flood flood flood \
flood flood flood flood flood flood flood flood flood flood flood flood flood flood flood \
flood floo\n";

/// The end of each phase in which no operation starts (see the module
/// documentation): a tenth of the phase, long after the victim's samples
/// have ended.
const GAP: u64 = PHASE / 10;

static OPS: [AtomicU64; PHASES.len()] = [const { AtomicU64::new(0) }; PHASES.len()];
/// Ticks past each phase's end at which its last operation ended.
static LATE: [AtomicU64; PHASES.len()] = [const { AtomicU64::new(0) }; PHASES.len()];
static WOKEN: AtomicBool = AtomicBool::new(false);
static LIVES: AtomicU64 = AtomicU64::new(0);
static SGIS_TAKEN: AtomicU64 = AtomicU64::new(0);
/// Set by vCPU 1 when it has run the whole schedule.
static FINISHED: AtomicBool = AtomicBool::new(false);
/// The next chunk of LINE each vCPU writes in the console phases.
static CHUNK: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];

/// The phase at physical count `now` (0 before the start).
fn phase_at(now: u64) -> usize {
    (now.saturating_sub(START) / PHASE) as usize
}

fn phase() -> usize {
    phase_at(timer::physical_now())
}

fn phase_end(phase: usize) -> u64 {
    START + (phase as u64 + 1) * PHASE
}

/// Sleeps (WFI, IRQs taken) until the physical count reaches `deadline`,
/// with this vCPU's virtual timer armed for it and nothing else.
fn sleep_until(deadline: u64) {
    let now = timer::physical_now();
    if now >= deadline {
        return;
    }
    // CNTVCT runs with CNTPCT; read after it, so the deadline is not early.
    timer::start_one_shot_at(timer::now() + (deadline - now), |_| {});
    irq::wait_until(|| timer::physical_now() >= deadline);
    timer::stop();
}

fn main() -> ! {
    schedule::print("aggressor");
    let _ = irq::register(SGI_WAKE, |_| {});
    let _ = irq::register(SGI_TO_1, taken);
    let _ = irq::register(SGI_TO_0, taken);
    let _ = gic::enable(SGI_TO_0);
    let _ = gic::enable(SGI_WAKE);
    if let Err(error) = smp::start_cpu(1, second) {
        println!("aggressor: could not start vcpu 1: {:?}", error);
        guest_lib::exit(1);
    }
    if timer::physical_now() >= START {
        println!("aggressor: booted after the schedule's start: raise START");
        guest_lib::exit(1);
    }
    // Idle: the one interrupt is the timer at the phase's end.
    sleep_until(phase_end(IDLE));
    WOKEN.store(true, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 1), SGI_WAKE);
    run(0);
    // In WFI, not spinning: QEMU's round-robin would give the spin long
    // slices once the victim's timer no longer bounds them.
    irq::wait_until(|| FINISHED.load(Ordering::Acquire));
    // Ends the console flood's last line, which the two vCPUs' bytes may
    // have left open.
    println!();
    for (index, name) in PHASES.iter().enumerate() {
        println!(
            "aggressor: {} ops={} late={}",
            name,
            OPS[index].load(Ordering::Relaxed),
            LATE[index].load(Ordering::Relaxed)
        );
    }
    println!(
        "aggressor: sgis_taken={}",
        SGIS_TAKEN.load(Ordering::Relaxed)
    );
    println!("aggressor: done");
    guest_lib::exit(0)
}

fn taken(_intid: u32) {
    SGIS_TAKEN.fetch_add(1, Ordering::Relaxed);
}

/// vCPU 1, at boot and again after the PSCI phase.
fn second(cpu: usize) -> ! {
    let _ = gic::enable(SGI_WAKE);
    let _ = gic::enable(SGI_TO_1);
    // At boot: sleep through the idle phase until vCPU 0 wakes it.
    irq::wait_until(|| WOKEN.load(Ordering::Acquire));
    run(cpu);
    FINISHED.store(true, Ordering::Release);
    let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_WAKE);
    guest_lib::idle()
}

/// The schedule from the console phases on, on either vCPU.
fn run(cpu: usize) {
    irq::enable();
    let mut restarted = false;
    loop {
        let current = phase();
        if current >= PHASES.len() {
            break;
        }
        if timer::physical_now() >= phase_end(current) - GAP {
            sleep_until(phase_end(current));
            continue;
        }
        match current {
            CONSOLE_HVC => console(cpu, true),
            CONSOLE_PL011 => console(cpu, false),
            GIC => gic_storm(cpu),
            SGI => sgi_storm(cpu),
            HVC => hvc_storm(),
            PSCI if cpu == 0 => psci_cycle(),
            PSCI => power_off(),
            MMIO | CACHE if cpu == 0 && !restarted => {
                // vCPU 1 is off since the PSCI phase: start it for good.
                wait_off();
                if let Err(error) = smp::start_cpu(1, second) {
                    println!("aggressor: could not restart vcpu 1: {:?}", error);
                    guest_lib::exit(1);
                }
                restarted = true;
                continue;
            }
            MMIO => mmio(cpu),
            CACHE => cache(cpu),
            _ => {}
        }
        OPS[current].fetch_add(1, Ordering::Relaxed);
        let late = timer::physical_now().saturating_sub(phase_end(current));
        LATE[current].fetch_max(late, Ordering::Relaxed);
    }
}

/// One chunk of LINE (48 bytes, the last 17), the next after this vCPU's
/// previous one, with CONSOLE_WRITE (`hvc`) or byte by byte to the
/// emulated PL011: short operations, so that the phase ends on time.
fn console(cpu: usize, with_hvc: bool) {
    let chunks = LINE.len().div_ceil(CONSOLE_WRITE_MAX);
    let index = CHUNK[cpu].load(Ordering::Relaxed);
    CHUNK[cpu].store((index + 1) % chunks, Ordering::Relaxed);
    let chunk = &LINE[index * CONSOLE_WRITE_MAX..LINE.len().min((index + 1) * CONSOLE_WRITE_MAX)];
    if with_hvc {
        let _ = hvc::console_write(chunk);
    } else {
        // ASCII, so always UTF-8.
        guest_lib::raw_pl011_write(core::str::from_utf8(chunk).unwrap_or(""));
    }
}

fn gic_storm(cpu: usize) {
    if cpu == 0 {
        let _ = gic::enable(SGI_TOGGLED);
        let _ = gic::disable(SGI_TOGGLED);
    } else {
        let _ = gic::enable(GPIO_INTID);
        let _ = gic::set_priority(GPIO_INTID, 0xa0);
        let _ = gic::disable(GPIO_INTID);
    }
}

fn sgi_storm(cpu: usize) {
    if cpu == 0 {
        let _ = gic::send_sgi(SgiTargets::List(1 << 1), SGI_TO_1);
    } else {
        let _ = gic::send_sgi(SgiTargets::List(1 << 0), SGI_TO_0);
    }
}

fn hvc_storm() {
    hvc::call(call::VERSION, []);
    let _ = hvc::exit_count(Counter::Hvc);
}

fn affinity_info(vcpu: u64) -> u64 {
    hvc::call(psci::AFFINITY_INFO_64, [vcpu, 0])[0]
}

/// Polls AFFINITY_INFO (a hypercall each) until vCPU 1 is off.
fn wait_off() {
    while affinity_info(1) != psci::AFFINITY_OFF {
        core::hint::spin_loop();
    }
}

/// One CPU_ON / CPU_OFF cycle of vCPU 1, driven by vCPU 0.
fn psci_cycle() {
    wait_off();
    let lives = LIVES.load(Ordering::Acquire);
    if let Err(error) = smp::start_cpu(1, one_life) {
        println!("aggressor: cpu_on failed: {:?}", error);
        guest_lib::exit(1);
    }
    while LIVES.load(Ordering::Acquire) == lives {
        core::hint::spin_loop();
    }
    wait_off();
}

/// vCPU 1's short life in the PSCI phase.
fn one_life(_cpu: usize) -> ! {
    LIVES.fetch_add(1, Ordering::AcqRel);
    power_off()
}

fn power_off() -> ! {
    hvc::call(psci::CPU_OFF, []);
    println!("aggressor: CPU_OFF returned");
    guest_lib::exit(1)
}

/// A 32-bit load from an emulated register: one plain `ldr`, which the
/// hypervisor's data abort handler decodes.
fn read32(address: usize) -> u32 {
    let value: u32;
    // SAFETY: `address` is the emulated PL011's UARTFR or the virtual
    // GICD_TYPER, read-only registers without side effects, in the
    // identity map's Device range.
    unsafe {
        asm!("ldr {v:w}, [{a}]", v = out(reg) value, a = in(reg) address, options(nostack, preserves_flags))
    };
    value
}

fn mmio(cpu: usize) {
    let _ = read32(if cpu == 0 { UARTFR } else { GICD_TYPER });
}

fn cache(cpu: usize) {
    if cpu == 0 {
        // Level 1 (field 0), sets 0..16 (bits 6 up, 64-byte lines), ways
        // 0..4 (bits 30..32, a four-way cache).
        for way in 0..4u64 {
            for set in 0..16u64 {
                let operand = (way << 30) | (set << 6);
                // SAFETY: clean and invalidate by set/way: trapped to the
                // hypervisor (HCR_EL2.TSW), which does nothing; on a core
                // it would only write back and drop cache lines.
                unsafe { asm!("dc cisw, {}", in(reg) operand, options(nostack, preserves_flags)) };
            }
        }
    } else {
        // SAFETY: invalidates TLB entries of this partition's translation
        // regime and the instruction caches, then waits for both: nothing
        // is lost, the page tables and the code are unchanged.
        unsafe {
            asm!(
                "tlbi vmalle1is",
                "dsb ish",
                "ic ialluis",
                "dsb ish",
                "isb",
                options(nostack, preserves_flags)
            )
        };
    }
}
