//! Owns QEMU virt's PL031 real-time clock (0x0901_0000, SPI 2 = INTID 34,
//! level-sensitive): sets its alarm two seconds ahead (RTCMR = RTCDR + 2),
//! unmasks it and waits. The handler clears it and prints `rtc: alarm
//! interrupt 34` once; then the guest exits with code 0. Without an
//! interrupt within ~5 s (virtual timer) it prints `rtc: no interrupt`
//! and exits with code 1.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use guest_lib::{gic, irq, println, timer};

guest_lib::entry!(main);

/// The PL031 on QEMU virt (under Bulkhead: passed through, `devices = ["rtc"]`).
const RTC_BASE: usize = 0x0901_0000;
/// RTCDR: the current time in seconds (read only).
const RTCDR: usize = 0x000;
/// RTCMR: match register; the interrupt is raised when RTCDR reaches it.
const RTCMR: usize = 0x004;
/// RTCIMSC: interrupt mask set/clear; bit 0 = 1 lets the interrupt out.
const RTCIMSC: usize = 0x010;
/// RTCICR: interrupt clear; writing bit 0 clears the interrupt.
const RTCICR: usize = 0x01C;
const RTC_INTID: u32 = 34;
/// The alarm is this many seconds ahead.
const ALARM_IN: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(5);

static ALARMS: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

fn read(offset: usize) -> u32 {
    // SAFETY: a 32-bit PL031 register, in the identity map's Device range;
    // natively QEMU's, under Bulkhead the partition's passed-through one.
    unsafe { core::ptr::read_volatile((RTC_BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`.
    unsafe { core::ptr::write_volatile((RTC_BASE + offset) as *mut u32, value) }
}

fn main() -> ! {
    // Only fail for INTIDs of 1020 or more.
    let _ = irq::register(RTC_INTID, on_alarm);
    write(RTCICR, 1);
    write(RTCMR, read(RTCDR).wrapping_add(ALARM_IN));
    write(RTCIMSC, 1);
    let _ = gic::enable(RTC_INTID);
    println!("rtc: armed");

    timer::start_one_shot(TIMEOUT, |_| TIMED_OUT.store(true, Ordering::Relaxed));
    irq::wait_until(|| ALARMS.load(Ordering::Relaxed) > 0 || TIMED_OUT.load(Ordering::Relaxed));
    if ALARMS.load(Ordering::Relaxed) == 0 {
        println!("rtc: no interrupt");
        guest_lib::exit(1);
    }
    guest_lib::exit(0)
}

fn on_alarm(intid: u32) {
    // Level-sensitive: deassert before the end of interrupt, and mask it so
    // that it cannot come again.
    write(RTCICR, 1);
    write(RTCIMSC, 0);
    if ALARMS.fetch_add(1, Ordering::Relaxed) == 0 {
        println!("rtc: alarm interrupt {}", intid);
    }
}
