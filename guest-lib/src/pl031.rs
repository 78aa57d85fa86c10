//! QEMU virt's PL031 real-time clock (0x0901_0000, SPI 2 = INTID 34,
//! level-sensitive), for guests that own it (under Bulkhead: passed
//! through with `devices = ["rtc"]`). Its alarm is a device interrupt whose
//! timing QEMU derives from its clock (`-rtc clock=vm` makes it follow
//! virtual time).

/// The PL031's registers.
pub const BASE: usize = 0x0901_0000;
/// RTCDR: the current time in seconds (read only).
pub const RTCDR: usize = 0x000;
/// RTCMR: the match register; the interrupt is raised when RTCDR reaches it.
pub const RTCMR: usize = 0x004;
/// RTCIMSC: interrupt mask set/clear; bit 0 = 1 lets the interrupt out.
pub const RTCIMSC: usize = 0x010;
/// RTCRIS: raw interrupt status; bit 0 is the alarm, masked or not.
pub const RTCRIS: usize = 0x014;
/// RTCICR: interrupt clear; writing bit 0 deasserts the interrupt.
pub const RTCICR: usize = 0x01C;
/// Its interrupt.
pub const INTID: u32 = 34;

/// Reads register `offset`.
pub fn read(offset: usize) -> u32 {
    // SAFETY: a 32-bit PL031 register, in the identity map's Device range;
    // natively QEMU's, under Bulkhead the partition's passed-through one.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

/// Writes register `offset`.
pub fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

/// Clears a raised alarm and sets the next one `seconds` ahead, its
/// interrupt let out.
pub fn arm_alarm(seconds: u32) {
    write(RTCICR, 1);
    write(RTCMR, read(RTCDR).wrapping_add(seconds));
    write(RTCIMSC, 1);
}

/// Deasserts the interrupt (in its handler: a level interrupt must be
/// cleared at the device before its end of interrupt).
pub fn clear() {
    write(RTCICR, 1);
}

/// Whether the alarm has been raised and not cleared (RTCRIS), whether
/// or not its interrupt is let out.
pub fn raised() -> bool {
    read(RTCRIS) & 1 != 0
}

/// Keeps the interrupt in (no further alarm is raised).
pub fn mask() {
    write(RTCIMSC, 0);
}
