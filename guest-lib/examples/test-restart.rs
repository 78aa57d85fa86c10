//! A partition that restarts itself with PSCI SYSTEM_RESET
//! (tests/configs/restart.toml), and checks from inside that it came back
//! as from a reset. It owns QEMU virt's PL031 RTC, which a partition's
//! restart does not reset (a passthrough device keeps its state, as on a
//! board whose reset line does not reach it): its load register tells the
//! boots apart. At boot RTCDR holds the calendar time; the first boot
//! loads it with 0 before it resets, so the second finds a few seconds.
//!
//! Boot 1 leaves behind everything a restart must clear: its data and bss
//! changed, an SGI enabled, given a priority and another left pending in
//! its virtual GIC, its virtual timer armed, vCPU 1 on, and, inside the
//! RTC alarm's handler, its interrupt acknowledged and never ended (a
//! forwarded level interrupt, active in the physical GIC, its line still
//! high) with the mask flag set. Then SYSTEM_RESET, from the handler.
//!
//! Boot 2 prints what it finds: `restart: boot 2 data=0x5eed1234 bss=0x0`,
//! `vgic sgi5_priority=0xa0 sgi5_enabled=0 sgi6_pending=0`, `mask=0
//! pending=0 cntv_ctl=0x0`, `vcpu1 affinity=1 cpu_on=ok`; then it arms the
//! RTC again and must take its alarm (`alarm taken`: the restart ended the
//! interrupt the first boot left active), and exits with code 0.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::abi::psci;
use guest_lib::{gic, hvc, irq, pl031, println, smp, timer};

guest_lib::entry!(main);

const GICR: usize = 0x080A_0000;
/// One redistributor: RD_base and SGI_base, 64 KiB each.
const GICR_STRIDE: usize = 0x2_0000;
const SGI_BASE: usize = 0x1_0000;
const ISENABLER0: usize = 0x100;
const ISPENDR0: usize = 0x200;
const IPRIORITYR: usize = 0x400;
/// RTCLR: the PL031's load register.
const RTCLR: usize = 0x008;
/// RTCDR at or above this is the calendar time QEMU starts it with: the
/// first boot.
const CALENDAR: u32 = 1_000_000;

/// In .data: the image's value at every boot.
static DATA: AtomicU32 = AtomicU32::new(0x5eed_1234);
/// In .bss: zero at every boot.
static BSS: AtomicU32 = AtomicU32::new(0);
static ALARMS: AtomicU64 = AtomicU64::new(0);
static SECONDARY_UP: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

fn sgi_frame(offset: usize) -> usize {
    GICR + guest_lib::cpu_index() * GICR_STRIDE + SGI_BASE + offset
}

fn mmio_read(addr: usize) -> u32 {
    // SAFETY: a 32-bit register of the partition's own virtual GIC, Device
    // memory in guest-lib's identity map.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn mmio_write(addr: usize, value: u32) {
    // SAFETY: as for `mmio_read`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

fn cntv_ctl() -> u64 {
    let value: u64;
    // SAFETY: reads the virtual timer's control register; no side effect.
    unsafe { asm!("mrs {}, cntv_ctl_el0", out(reg) value, options(nomem, nostack)) };
    value
}

fn main() -> ! {
    let boot = if pl031::read(pl031::RTCDR) >= CALENDAR {
        1
    } else {
        2
    };
    println!(
        "restart: boot {boot} data={:#x} bss={:#x}",
        DATA.load(Ordering::Relaxed),
        BSS.load(Ordering::Relaxed)
    );
    let _ = irq::register(
        pl031::INTID,
        if boot == 1 {
            reset_in_handler
        } else {
            on_alarm
        },
    );
    if boot == 1 {
        first_boot()
    }
    second_boot()
}

fn first_boot() -> ! {
    DATA.store(0xdead, Ordering::Relaxed);
    BSS.store(0xbeef, Ordering::Relaxed);
    // SGI 5: priority 0x40, enabled; SGI 6: pending, disabled.
    mmio_write(sgi_frame(IPRIORITYR + 4), 0x40 << 8);
    mmio_write(sgi_frame(ISENABLER0), 1 << 5);
    mmio_write(sgi_frame(ISPENDR0), 1 << 6);
    timer::start_one_shot(Duration::from_secs(1000), |_| {});
    if smp::start_cpu(1, secondary).is_err() {
        println!("restart: boot 1 could not start vCPU 1");
        guest_lib::exit(1);
    }
    wait_for_secondary();
    pl031::arm_alarm(1);
    let _ = gic::enable(pl031::INTID);
    println!("restart: boot 1 armed");
    irq::wait_until(|| false);
    guest_lib::exit(1)
}

/// Boot 1's RTC handler: leaves the alarm raised and its interrupt
/// active, masks with the flag word, marks the RTC and resets.
fn reset_in_handler(_: u32) {
    pl031::write(RTCLR, 0);
    let _ = irq::mask();
    println!("restart: boot 1 resetting from the alarm handler");
    hvc::call(psci::SYSTEM_RESET, []);
    println!("restart: SYSTEM_RESET returned");
    guest_lib::exit(1);
}

/// Spins until vCPU 1 has said it is up (it sends no interrupt, so not
/// in WFI).
fn wait_for_secondary() {
    while SECONDARY_UP.load(Ordering::Acquire) == 0 {
        core::hint::spin_loop();
    }
}

fn secondary(cpu: usize) -> ! {
    println!("restart: vcpu {cpu} up");
    SECONDARY_UP.store(1, Ordering::Release);
    guest_lib::idle()
}

fn on_alarm(_: u32) {
    pl031::clear();
    pl031::mask();
    ALARMS.fetch_add(1, Ordering::Relaxed);
}

fn second_boot() -> ! {
    let priority = (mmio_read(sgi_frame(IPRIORITYR + 4)) >> 8) & 0xff;
    let enabled = mmio_read(sgi_frame(ISENABLER0)) >> 5 & 1;
    let pending = mmio_read(sgi_frame(ISPENDR0)) >> 6 & 1;
    println!(
        "restart: vgic sgi5_priority={priority:#x} sgi5_enabled={enabled} sgi6_pending={pending}"
    );
    println!(
        "restart: mask={} pending={} cntv_ctl={:#x}",
        u8::from(irq::mask_bit_set()),
        u8::from(irq::deferred_pending()),
        cntv_ctl()
    );
    let affinity = hvc::call(psci::AFFINITY_INFO_64, [1, 0])[0];
    let on = match smp::start_cpu(1, secondary) {
        Ok(()) => "ok",
        Err(_) => "refused",
    };
    println!("restart: vcpu1 affinity={affinity} cpu_on={on}");
    wait_for_secondary();
    // The alarm boot 1 left raised is cleared at the device, then armed
    // again: its interrupt must come.
    pl031::clear();
    pl031::arm_alarm(1);
    let _ = gic::enable(pl031::INTID);
    timer::start_one_shot(Duration::from_secs(5), |_| {
        TIMED_OUT.store(true, Ordering::Relaxed)
    });
    irq::wait_until(|| ALARMS.load(Ordering::Relaxed) > 0 || TIMED_OUT.load(Ordering::Relaxed));
    if ALARMS.load(Ordering::Relaxed) == 0 {
        println!("restart: no alarm on boot 2");
        guest_lib::exit(1);
    }
    println!("restart: alarm taken");
    guest_lib::exit(0)
}
