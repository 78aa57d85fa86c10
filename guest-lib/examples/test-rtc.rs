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

use guest_lib::{gic, irq, pl031, println, timer};

guest_lib::entry!(main);

const ALARM_IN: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(5);

static ALARMS: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

fn main() -> ! {
    // Only fail for INTIDs of 1020 or more.
    let _ = irq::register(pl031::INTID, on_alarm);
    pl031::arm_alarm(ALARM_IN);
    let _ = gic::enable(pl031::INTID);
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
    pl031::clear();
    pl031::mask();
    if ALARMS.fetch_add(1, Ordering::Relaxed) == 0 {
        println!("rtc: alarm interrupt {}", intid);
    }
}
