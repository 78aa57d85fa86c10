//! The BCM2835 power manager (PM) block of the Raspberry Pi's SoCs
//! (BCM2711 on the Pi 4), for the one thing a board without PSCI firmware
//! needs of it: powering off. There is no power switch: the watchdog resets
//! the SoC, and the reset status word names partition 63, which the Pi
//! firmware takes as "halt" (it then waits, the board drawing little, until
//! power is cycled). QEMU's raspi machines model the reset, not the halt:
//! they reset, and exit under `-no-reboot`.
//!
//! The block's registers take a password in their top byte on every write.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

use crate::config::PhysAddr;

register_bitfields![u32,
    /// PM_RSTC: reset control.
    RSTC [
        /// Watchdog reset configuration: what the watchdog does at 0.
        WRCFG OFFSET(4) NUMBITS(2) [
            Clear = 0,
            FullReset = 2
        ],
        /// The write password (every PM register).
        PASSWORD OFFSET(24) NUMBITS(8) [
            Key = 0x5a
        ]
    ],
    /// PM_RSTS: reset status; the firmware reads the boot partition from it.
    RSTS [
        /// The partition to boot, in the odd bits 0, 2, 4, 6, 8, 10: 63
        /// (all six set) is the firmware's halt.
        PARTITION OFFSET(0) NUMBITS(11) [
            Halt = 0x555
        ],
        PASSWORD OFFSET(24) NUMBITS(8) [
            Key = 0x5a
        ]
    ],
    /// PM_WDOG: the watchdog's count, in ticks of 16 us.
    WDOG [
        TIME OFFSET(0) NUMBITS(20) [],
        PASSWORD OFFSET(24) NUMBITS(8) [
            Key = 0x5a
        ]
    ]
];

register_structs! {
    /// The PM registers from its base (Linux's bcm2835_wdt.c offsets).
    Pm {
        (0x00 => _reserved0),
        (0x1c => rstc: ReadWrite<u32, RSTC::Register>),
        (0x20 => rsts: ReadWrite<u32, RSTS::Register>),
        (0x24 => wdog: ReadWrite<u32, WDOG::Register>),
        (0x28 => @END),
    }
}

/// Watchdog ticks before the reset: about 160 us.
const RESET_TICKS: u32 = 10;

/// Resets the SoC into the firmware's halt partition. Returns only if the
/// reset does not come.
pub fn halt(base: PhysAddr) {
    // SAFETY: `base` is the board's PM block (`[power].bcm2835_watchdog`,
    // checked clear of RAM and the other devices), mapped as Device memory
    // by the EL2 map; only the CPU that powers off touches it.
    let pm = unsafe { &*(base.0 as *const Pm) };
    let password = 0xff << 24;
    let rsts = pm.rsts.get() & !RSTS::PARTITION.mask & !password;
    pm.rsts
        .set(rsts | (RSTS::PASSWORD::Key + RSTS::PARTITION::Halt).value);
    pm.wdog
        .write(WDOG::PASSWORD::Key + WDOG::TIME.val(RESET_TICKS));
    let rstc = pm.rstc.get() & !(RSTC::WRCFG.mask << RSTC::WRCFG.shift) & !password;
    pm.rstc
        .set(rstc | (RSTC::PASSWORD::Key + RSTC::WRCFG::FullReset).value);
}
