//! The emulated PL011 (ARM DDI 0183), one per partition that has
//! `console_pl011`: what Linux's amba-pl011 driver and a bare guest use.
//!
//! Transmit: a byte written to DR leaves at once (the hypervisor takes
//! every byte into the partition's console, [`Effect::Byte`]), so the
//! transmit FIFO is always empty: FR.TXFE set, TXFF and BUSY clear.
//! Control bits do not stop it (a byte written while CR.UARTEN or TXE is
//! clear is sent all the same, as QEMU's model does).
//!
//! Receive: a FIFO of [`FIFO_DEPTH`] entries (one when LCR_H.FEN is
//! clear), filled by [`Pl011::receive`] with the console input the
//! partition has, only while CR.UARTEN and CR.RXE are set. A DR read pops
//! one entry (data in bits 7:0, OE in bit 11 for the first character
//! after an overrun); an empty read returns 0 and pops nothing. A
//! character that finds the FIFO full is lost: RSR.OE and RIS.OEIS are
//! set, as on the real part.
//!
//! Interrupts (RIS, MIS = RIS & IMSC, ICR write-one-to-clear):
//! - RXRIS: set when a received character brings the FIFO to its trigger
//!   level (IFLS.RXIFLSEL of the depth; the first character when the FIFO
//!   is off), cleared when reads take it below that level, or by ICR;
//! - RTRIS, the receive timeout: input reaches the model in bursts, so
//!   the line is idle right after each one: set whenever a character is
//!   received or a read leaves characters in the FIFO, cleared when the
//!   FIFO empties, or by ICR. A driver that reads until RXFE (Linux) sees
//!   it go with the last character; one that reads a character at a time
//!   is interrupted again while any wait;
//! - TXRIS: the transmit FIFO is always at or below its trigger level, so
//!   it is set from reset and after every DR write; ICR clears it until
//!   the next DR write (the FIFO drains through the level again);
//! - OEIS as above; the modem, framing, parity and break interrupts never
//!   happen.
//!
//! The interrupt line is high while MIS is not zero: the partition's
//! level-sensitive virtual SPI [`bulkhead_abi::board::CONSOLE_PL011_INTID`]
//! follows [`Pl011::level`]; [`Pl011::line_changed`] tells the caller when
//! to raise or lower it.
//!
//! Registers that only configure a real UART (IBRD, FBRD, LCR_H, CR,
//! IFLS, ILPR, DMACR) read back what was written, so a driver's
//! read-modify-write works; LCR_H.FEN, CR.UARTEN/RXE and IFLS.RXIFLSEL are
//! honoured. Any access naturally aligned to its size is taken at the
//! register's offset (a narrower read returns the register's low bytes);
//! unaligned, unknown or out-of-range offsets read as zero and ignore
//! writes.
#![forbid(unsafe_code)]

pub const DR: u64 = 0x000;
/// Receive status (read) / error clear (write).
pub const RSR: u64 = 0x004;
pub const FR: u64 = 0x018;
pub const ILPR: u64 = 0x020;
pub const IBRD: u64 = 0x024;
pub const FBRD: u64 = 0x028;
pub const LCR_H: u64 = 0x02c;
pub const CR: u64 = 0x030;
pub const IFLS: u64 = 0x034;
pub const IMSC: u64 = 0x038;
pub const RIS: u64 = 0x03c;
pub const MIS: u64 = 0x040;
pub const ICR: u64 = 0x044;
pub const DMACR: u64 = 0x048;
/// The register window, one page.
pub const SIZE: u64 = 0x1000;

/// Receive FIFO entries: 16, as on the PL011 revision the ID registers
/// name (r1, PeriphID2 0x14: Linux's driver reads 16 from it too) and as
/// QEMU's model has.
pub const FIFO_DEPTH: usize = 16;

/// FR bits.
pub const FR_BUSY: u32 = 1 << 3;
pub const FR_RXFE: u32 = 1 << 4;
pub const FR_TXFF: u32 = 1 << 5;
pub const FR_RXFF: u32 = 1 << 6;
pub const FR_TXFE: u32 = 1 << 7;

/// Interrupt bits, the same in IMSC, RIS, MIS and ICR.
pub const INT_RX: u32 = 1 << 4;
pub const INT_TX: u32 = 1 << 5;
pub const INT_RT: u32 = 1 << 6;
pub const INT_OE: u32 = 1 << 10;
/// Every interrupt bit the registers have (RI, CTS, DCD, DSR, RX, TX, RT,
/// FE, PE, BE, OE).
pub const INT_ALL: u32 = 0x7ff;

/// DR's overrun bit on a read; RSR's.
pub const DR_OE: u32 = 1 << 11;
pub const RSR_OE: u32 = 1 << 3;

/// LCR_H.FEN: the FIFOs are on.
pub const LCR_H_FEN: u32 = 1 << 4;
/// CR: UART enable, transmit and receive enable.
pub const CR_UARTEN: u32 = 1 << 0;
pub const CR_TXE: u32 = 1 << 8;
pub const CR_RXE: u32 = 1 << 9;
/// CR and IFLS at reset (TRM): TXE and RXE; both trigger levels at half.
pub const CR_RESET: u32 = CR_TXE | CR_RXE;
pub const IFLS_RESET: u32 = 0x12;

/// PeriphID0-3 and PCellID0-3 (0xFE0..0xFFC): a PL011, revision r1.
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// What a guest's write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing visible outside the model.
    None,
    /// A byte for the console.
    Byte(u8),
}

/// What became of a received character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// In the FIFO.
    Taken,
    /// The FIFO was full: lost, RSR.OE and RIS.OEIS set.
    Overrun,
    /// The receiver is off (CR.UARTEN or CR.RXE clear): lost.
    Off,
}

/// One emulated PL011.
#[derive(Debug)]
pub struct Pl011 {
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    ilpr: u32,
    dmacr: u32,
    imsc: u32,
    /// The receive FIFO: `count` entries from `head`, each data and the
    /// OE flag in DR's layout.
    fifo: [u16; FIFO_DEPTH],
    head: usize,
    count: usize,
    /// RSR's error bits.
    rsr: u32,
    /// An overrun happened: the next character taken carries DR.OE.
    overrun_pending: bool,
    /// The latched interrupt states (RIS's RX, RT, TX, OE bits).
    ris: u32,
    /// The level last reported by [`Pl011::line_changed`].
    line: bool,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A PL011 out of reset.
    pub const fn new() -> Self {
        Self {
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            ilpr: 0,
            dmacr: 0,
            imsc: 0,
            fifo: [0; FIFO_DEPTH],
            head: 0,
            count: 0,
            rsr: 0,
            overrun_pending: false,
            // The transmit FIFO is empty, at or below its level.
            ris: INT_TX,
            line: false,
        }
    }

    /// Entries the receive FIFO has now: [`FIFO_DEPTH`] with LCR_H.FEN,
    /// else one (a holding register).
    pub fn depth(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// Characters waiting in the receive FIFO.
    pub fn rx_count(&self) -> usize {
        self.count
    }

    /// Room left in the receive FIFO.
    pub fn rx_room(&self) -> usize {
        self.depth() - self.count
    }

    /// Whether the receiver takes characters (CR.UARTEN and CR.RXE).
    pub fn receiving(&self) -> bool {
        self.cr & (CR_UARTEN | CR_RXE) == CR_UARTEN | CR_RXE
    }

    /// The receive interrupt's trigger level, in characters.
    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        // RXIFLSEL, bits 5:3: 1/8, 1/4, 1/2, 3/4, 7/8 of the FIFO; the
        // reserved encodings read as half.
        let eighths = match (self.ifls >> 3) & 7 {
            0 => 1,
            1 => 2,
            3 => 6,
            4 => 7,
            _ => 4,
        };
        FIFO_DEPTH * eighths / 8
    }

    /// A character from the console input.
    pub fn receive(&mut self, byte: u8) -> Received {
        if !self.receiving() {
            return Received::Off;
        }
        if self.count == self.depth() {
            self.rsr |= RSR_OE;
            self.ris |= INT_OE;
            self.overrun_pending = true;
            return Received::Overrun;
        }
        let oe = if core::mem::take(&mut self.overrun_pending) {
            DR_OE as u16
        } else {
            0
        };
        self.fifo[(self.head + self.count) % FIFO_DEPTH] = u16::from(byte) | oe;
        self.count += 1;
        if self.count == self.rx_trigger() {
            self.ris |= INT_RX;
        }
        self.ris |= INT_RT;
        Received::Taken
    }

    /// Pops the oldest received character, in DR's layout; 0 (nothing
    /// popped) when the FIFO is empty.
    fn pop(&mut self) -> u32 {
        if self.count == 0 {
            return 0;
        }
        let entry = self.fifo[self.head];
        self.head = (self.head + 1) % FIFO_DEPTH;
        self.count -= 1;
        if self.count < self.rx_trigger() {
            self.ris &= !INT_RX;
        }
        if self.count == 0 {
            self.ris &= !INT_RT;
        } else {
            // The line is idle and characters wait: the timeout again.
            self.ris |= INT_RT;
        }
        u32::from(entry)
    }

    fn flush_rx(&mut self) {
        self.head = 0;
        self.count = 0;
        self.ris &= !(INT_RX | INT_RT);
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        if self.count == 0 {
            fr |= FR_RXFE;
        }
        if self.count == self.depth() {
            fr |= FR_RXFF;
        }
        fr
    }

    /// RIS.
    pub fn raw_status(&self) -> u32 {
        self.ris
    }

    /// MIS: the interrupts that drive the line.
    pub fn masked_status(&self) -> u32 {
        self.ris & self.imsc
    }

    /// The interrupt line (UARTINTR): high while an unmasked interrupt is
    /// raised.
    pub fn level(&self) -> bool {
        self.masked_status() != 0
    }

    /// `Some(level)` when the line changed since the last call (which
    /// records it), `None` when it did not.
    pub fn line_changed(&mut self) -> Option<bool> {
        let level = self.level();
        (level != self.line).then(|| {
            self.line = level;
            level
        })
    }

    fn valid(offset: u64, size: u8) -> bool {
        offset < SIZE && offset.is_multiple_of(u64::from(size))
    }

    /// A read of `size` bytes at `offset`; a DR read pops the receive FIFO.
    pub fn read(&mut self, offset: u64, size: u8) -> u32 {
        if !Self::valid(offset, size) {
            return 0;
        }
        match offset {
            DR => self.pop(),
            RSR => self.rsr,
            FR => self.flags(),
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.raw_status(),
            MIS => self.masked_status(),
            DMACR => self.dmacr,
            0xfe0..=0xffc if offset.is_multiple_of(4) => {
                u32::from(ID[((offset - 0xfe0) / 4) as usize])
            }
            _ => 0,
        }
    }

    /// A write of `value` (`size` bytes) at `offset`.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Effect {
        if !Self::valid(offset, size) {
            return Effect::None;
        }
        let word = value as u32;
        match offset {
            DR => {
                self.ris |= INT_TX;
                return Effect::Byte(value as u8);
            }
            // Any write clears the error bits.
            RSR => self.rsr = 0,
            ILPR => self.ilpr = word,
            IBRD => self.ibrd = word,
            FBRD => self.fbrd = word,
            LCR_H => {
                // Switching the FIFOs on or off empties them (as QEMU does;
                // the TRM leaves it open): what waited was for the other depth.
                if (self.lcr_h ^ word) & LCR_H_FEN != 0 {
                    self.flush_rx();
                }
                self.lcr_h = word;
            }
            CR => self.cr = word,
            IFLS => self.ifls = word,
            IMSC => self.imsc = word & INT_ALL,
            ICR => self.ris &= !word,
            DMACR => self.dmacr = word,
            _ => {}
        }
        Effect::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PL011 as a driver leaves it: enabled, FIFOs on, RX and RT unmasked.
    fn started() -> Pl011 {
        let mut uart = Pl011::new();
        uart.write(LCR_H, 4, u64::from(LCR_H_FEN | 0x60));
        uart.write(CR, 4, u64::from(CR_UARTEN | CR_TXE | CR_RXE));
        uart.write(ICR, 4, u64::from(INT_ALL));
        uart.write(IMSC, 4, u64::from(INT_RX | INT_RT));
        assert_eq!(uart.line_changed(), None, "nothing raised yet");
        uart
    }

    #[test]
    fn pl011_prints_and_identifies() {
        let mut uart = Pl011::new();
        assert_eq!(uart.read(FR, 4), FR_TXFE | FR_RXFE);
        assert_eq!(uart.write(DR, 4, u64::from(b'A')), Effect::Byte(b'A'));
        assert_eq!(uart.write(DR, 1, 0x142), Effect::Byte(0x42));
        assert_eq!(uart.write(CR, 4, 0x301), Effect::None);
        assert_eq!(uart.read(CR, 4), 0x301);
        assert_eq!(uart.read(0xfe0, 4), 0x11);
        assert_eq!(uart.read(0xfe8, 4), 0x14, "revision 1: 16-entry FIFOs");
        assert_eq!(uart.read(0xffc, 4), 0xb1);
        // Unaligned, out of range or unknown: read as zero, writes ignored.
        assert_eq!(uart.read(0x19, 4), 0);
        assert_eq!(uart.read(0x2000, 4), 0);
        assert_eq!(uart.write(0x2, 2, 0x41), Effect::None);
        assert_eq!(uart.write(0x4c, 4, 0x41), Effect::None);
        assert_eq!(uart.read(0x4c, 4), 0);
        // A narrower access at a register's offset is that register.
        assert_eq!(uart.write(IBRD, 2, 0x1234), Effect::None);
        assert_eq!(uart.read(IBRD, 1), 0x1234);
    }

    #[test]
    fn reset_values_are_the_trms() {
        let mut uart = Pl011::new();
        assert_eq!(uart.read(CR, 4), 0x300);
        assert_eq!(uart.read(IFLS, 4), 0x12);
        assert_eq!(uart.read(IMSC, 4), 0);
        assert_eq!(uart.read(RIS, 4), INT_TX, "the empty transmit FIFO");
        assert_eq!(uart.read(MIS, 4), 0);
        assert!(!uart.level());
        assert_eq!(uart.depth(), 1, "FIFOs off at reset");
    }

    #[test]
    fn received_characters_come_out_in_order_and_an_empty_read_pops_nothing() {
        let mut uart = started();
        for &b in b"hi!" {
            assert_eq!(uart.receive(b), Received::Taken);
        }
        assert_eq!(uart.read(FR, 4) & (FR_RXFE | FR_RXFF), 0);
        assert_eq!(uart.read(DR, 4), u32::from(b'h'));
        assert_eq!(uart.read(DR, 1), u32::from(b'i'));
        assert_eq!(uart.read(DR, 2), u32::from(b'!'));
        assert_eq!(uart.read(FR, 4) & FR_RXFE, FR_RXFE);
        assert_eq!(uart.read(DR, 4), 0);
        assert_eq!(uart.rx_count(), 0);
        // Reads of other registers pop nothing.
        uart.receive(b'x');
        for offset in [RSR, FR, RIS, MIS, IMSC, CR] {
            uart.read(offset, 4);
        }
        assert_eq!(uart.read(DR, 4), u32::from(b'x'));
    }

    #[test]
    fn a_full_fifo_overruns_flags_the_next_character_and_keeps_its_contents() {
        let mut uart = started();
        for i in 0..FIFO_DEPTH as u8 {
            assert_eq!(uart.receive(b'a' + i), Received::Taken);
        }
        assert_eq!(uart.read(FR, 4) & FR_RXFF, FR_RXFF);
        assert_eq!(uart.rx_room(), 0);
        assert_eq!(uart.receive(b'!'), Received::Overrun);
        assert_eq!(uart.read(RSR, 4), RSR_OE);
        assert_eq!(uart.read(RIS, 4) & INT_OE, INT_OE);
        // The FIFO is intact; the first character after the overrun is flagged.
        assert_eq!(uart.read(DR, 4), u32::from(b'a'));
        assert_eq!(uart.receive(b'z'), Received::Taken);
        let rest: Vec<u32> = (0..FIFO_DEPTH).map(|_| uart.read(DR, 4)).collect();
        assert_eq!(
            rest[..FIFO_DEPTH - 1],
            (1..FIFO_DEPTH as u32)
                .map(|i| u32::from(b'a') + i)
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(rest[FIFO_DEPTH - 1], u32::from(b'z') | DR_OE);
        // An error-clear write clears RSR; ICR clears the interrupt.
        uart.write(RSR, 4, 0);
        assert_eq!(uart.read(RSR, 4), 0);
        uart.write(ICR, 2, u64::from(INT_OE));
        assert_eq!(uart.read(RIS, 4) & INT_OE, 0);
    }

    #[test]
    fn without_the_fifo_one_character_is_held_and_the_next_overruns() {
        let mut uart = started();
        uart.write(LCR_H, 4, 0x60);
        assert_eq!(uart.depth(), 1);
        assert_eq!(uart.receive(b'a'), Received::Taken);
        assert_eq!(
            uart.read(RIS, 4) & INT_RX,
            INT_RX,
            "one character is the level"
        );
        assert_eq!(uart.receive(b'b'), Received::Overrun);
        assert_eq!(uart.read(DR, 4), u32::from(b'a'));
        assert_eq!(uart.read(RIS, 4) & (INT_RX | INT_RT), 0);
    }

    #[test]
    fn a_receiver_that_is_off_takes_nothing() {
        let mut uart = Pl011::new();
        assert!(!uart.receiving(), "UARTEN is clear at reset");
        assert_eq!(uart.receive(b'a'), Received::Off);
        uart.write(CR, 4, u64::from(CR_UARTEN | CR_TXE));
        assert_eq!(uart.receive(b'a'), Received::Off);
        uart.write(CR, 4, u64::from(CR_UARTEN | CR_RXE));
        assert_eq!(uart.receive(b'a'), Received::Taken);
        assert_eq!(uart.rx_count(), 1);
    }

    /// RXRIS rises when the FIFO reaches its trigger level and falls when
    /// reads take it below; RTRIS stands while anything waits.
    #[test]
    fn the_receive_interrupt_follows_the_trigger_level_and_the_timeout_the_fifo() {
        let mut uart = started();
        // Reset IFLS: RX at half, 8 of 16.
        for i in 0..7 {
            uart.receive(b'0' + i);
            assert_eq!(uart.read(RIS, 4) & (INT_RX | INT_RT), INT_RT, "{i}");
        }
        uart.receive(b'7');
        assert_eq!(uart.read(RIS, 4) & INT_RX, INT_RX);
        uart.read(DR, 4);
        assert_eq!(uart.read(RIS, 4) & INT_RX, 0, "below the level again");
        assert_eq!(uart.read(RIS, 4) & INT_RT, INT_RT);
        for _ in 0..7 {
            uart.read(DR, 4);
        }
        assert_eq!(uart.read(RIS, 4) & (INT_RX | INT_RT), 0, "empty");
        // 1/8: two characters.
        uart.write(IFLS, 4, 0);
        uart.receive(b'a');
        assert_eq!(uart.read(RIS, 4) & INT_RX, 0);
        uart.receive(b'b');
        assert_eq!(uart.read(RIS, 4) & INT_RX, INT_RX);
        // 7/8: fourteen.
        uart.write(ICR, 4, u64::from(INT_ALL));
        while uart.read(DR, 4) != 0 {}
        uart.write(IFLS, 4, 4 << 3);
        for i in 0..14 {
            assert_eq!(uart.read(RIS, 4) & INT_RX, 0, "{i}");
            uart.receive(b'x');
        }
        assert_eq!(uart.read(RIS, 4) & INT_RX, INT_RX);
    }

    /// ICR clears a receive timeout until more input, or a read that
    /// leaves some, raises it again.
    #[test]
    fn a_cleared_timeout_comes_back_only_with_new_input_or_a_read() {
        let mut uart = started();
        uart.receive(b'a');
        uart.receive(b'b');
        uart.receive(b'c');
        uart.write(ICR, 4, u64::from(INT_RT));
        assert_eq!(uart.read(MIS, 4), 0);
        assert!(!uart.level());
        uart.read(DR, 4);
        assert_eq!(uart.read(MIS, 4), INT_RT);
        uart.write(ICR, 4, u64::from(INT_RT));
        uart.receive(b'd');
        assert_eq!(uart.read(MIS, 4), INT_RT);
    }

    #[test]
    fn the_transmit_interrupt_is_ready_until_cleared_and_again_after_a_write() {
        let mut uart = started();
        assert_eq!(uart.read(RIS, 4) & INT_TX, 0, "cleared by the driver");
        uart.write(DR, 4, u64::from(b'x'));
        assert_eq!(uart.read(RIS, 4) & INT_TX, INT_TX);
        assert!(!uart.level(), "masked");
        uart.write(IMSC, 4, u64::from(INT_RX | INT_RT | INT_TX));
        assert_eq!(uart.read(MIS, 4), INT_TX);
        assert!(uart.level());
        uart.write(ICR, 4, u64::from(INT_TX));
        assert!(!uart.level());
        uart.write(DR, 4, u64::from(b'y'));
        assert!(uart.level());
        // Masking takes the line down and leaves RIS.
        uart.write(IMSC, 4, u64::from(INT_RX | INT_RT));
        assert!(!uart.level());
        assert_eq!(uart.read(RIS, 4) & INT_TX, INT_TX);
    }

    /// The line is high exactly while RIS & IMSC is not zero; each change
    /// is reported once.
    #[test]
    fn the_line_follows_ris_and_imsc_and_each_change_is_reported_once() {
        let mut uart = started();
        assert_eq!(uart.line_changed(), None);
        uart.receive(b'a');
        assert_eq!(uart.line_changed(), Some(true));
        assert_eq!(uart.line_changed(), None);
        uart.receive(b'b');
        assert_eq!(uart.line_changed(), None, "still high");
        uart.write(IMSC, 4, 0);
        assert_eq!(uart.line_changed(), Some(false), "masked");
        uart.write(IMSC, 4, u64::from(INT_RT));
        assert_eq!(uart.line_changed(), Some(true), "unmasked while raised");
        uart.write(ICR, 4, u64::from(INT_RT | INT_RX));
        assert_eq!(uart.line_changed(), Some(false), "cleared");
        uart.read(DR, 4);
        assert_eq!(
            uart.line_changed(),
            Some(true),
            "a read leaves one: timeout"
        );
        uart.read(DR, 4);
        assert_eq!(uart.line_changed(), Some(false), "empty");
        assert_eq!(uart.read(DR, 4), 0);
        assert_eq!(uart.line_changed(), None);
    }

    #[test]
    fn switching_the_fifo_empties_it() {
        let mut uart = started();
        uart.receive(b'a');
        uart.write(LCR_H, 4, u64::from(LCR_H_FEN | 0x70));
        assert_eq!(uart.rx_count(), 1, "FEN unchanged");
        uart.write(LCR_H, 4, 0x60);
        assert_eq!(uart.rx_count(), 0);
        assert_eq!(uart.read(RIS, 4) & (INT_RX | INT_RT), 0);
    }
}
