//! The partitions' consoles.
//!
//! The hypervisor owns the board UART. A partition writes through the
//! CONSOLE_WRITE hypercall or through an emulated PL011; either way its bytes
//! are collected in a [`LineBuffer`] and leave as whole lines, prefixed with
//! the partition's name, so two partitions never interleave mid-line.

/// Longest line a partition can write before it is broken up.
pub const LINE_MAX: usize = 160;

/// One partition's partial line.
#[derive(Debug)]
pub struct LineBuffer {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    pub const fn new() -> Self {
        Self {
            bytes: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Adds one byte. Returns a complete line (without its newline) when the
    /// byte ends one or the buffer is full. Carriage returns are dropped and
    /// other control characters are shown as '.', so a guest cannot move the
    /// cursor over another partition's output.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        match byte {
            b'\n' => {
                let n = core::mem::take(&mut self.len);
                return Some(&self.bytes[..n]);
            }
            b'\r' => return None,
            b'\t' | 0x20..=0x7e => self.bytes[self.len] = byte,
            _ => self.bytes[self.len] = b'.',
        }
        self.len += 1;
        if self.len == LINE_MAX {
            self.len = 0;
            return Some(&self.bytes[..LINE_MAX]);
        }
        None
    }

    /// Whatever is pending, e.g. when the partition stops mid-line.
    pub fn take(&mut self) -> Option<&[u8]> {
        let n = core::mem::take(&mut self.len);
        (n > 0).then(|| &self.bytes[..n])
    }
}

/// The emulated PL011 (ARM DDI 0183): enough for a guest to print by polling
/// the flag register and writing the data register, and for Linux's amba
/// bus to identify it. Receive is not emulated (RXFE is always set).
pub mod pl011 {
    pub const DR: u64 = 0x000;
    pub const FR: u64 = 0x018;
    /// Flag register: transmit FIFO empty, receive FIFO empty; never busy or full.
    pub const FR_IDLE: u32 = (1 << 7) | (1 << 4);
    /// The register window, one page.
    pub const SIZE: u64 = 0x1000;

    /// PeriphID0-3 and PCellID0-3 (0xFE0..0xFFC): a PL011 r1p5.
    const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

    /// What a guest's access did.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Effect {
        /// Nothing visible.
        None,
        /// A byte for the console.
        Byte(u8),
    }

    /// Control registers that read back what was written (CR, LCR_H, IBRD,
    /// FBRD, IFLS, IMSC), so a driver's read-modify-write works.
    #[derive(Debug, Default)]
    pub struct Pl011 {
        regs: [u32; 6],
    }

    fn slot(offset: u64) -> Option<usize> {
        match offset {
            0x024 => Some(0), // IBRD
            0x028 => Some(1), // FBRD
            0x02c => Some(2), // LCR_H
            0x030 => Some(3), // CR
            0x034 => Some(4), // IFLS
            0x038 => Some(5), // IMSC
            _ => None,
        }
    }

    impl Pl011 {
        pub const fn new() -> Self {
            Self { regs: [0; 6] }
        }

        /// A read of `size` bytes at `offset`. Unaligned or unknown offsets
        /// read as zero.
        pub fn read(&self, offset: u64, size: u8) -> u32 {
            if offset >= SIZE || !offset.is_multiple_of(u64::from(size)) {
                return 0;
            }
            match offset {
                FR => FR_IDLE,
                0xfe0..=0xffc if offset.is_multiple_of(4) => {
                    u32::from(ID[((offset - 0xfe0) / 4) as usize])
                }
                _ => slot(offset).map_or(0, |i| self.regs[i]),
            }
        }

        /// A write of `value` (`size` bytes) at `offset`. Unaligned or unknown
        /// offsets are ignored.
        pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Effect {
            if offset >= SIZE || !offset.is_multiple_of(u64::from(size)) {
                return Effect::None;
            }
            if offset == DR {
                return Effect::Byte(value as u8);
            }
            if let Some(i) = slot(offset) {
                self.regs[i] = value as u32;
            }
            Effect::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pl011::{Effect, FR, FR_IDLE, Pl011};
    use super::*;

    fn feed(buf: &mut LineBuffer, s: &[u8]) -> Vec<Vec<u8>> {
        s.iter()
            .filter_map(|b| buf.push(*b).map(<[u8]>::to_vec))
            .collect()
    }

    #[test]
    fn lines_leave_whole_and_sanitised() {
        let mut buf = LineBuffer::new();
        assert_eq!(
            feed(&mut buf, b"one\r\ntw\x1bo\nthr"),
            vec![b"one".to_vec(), b"tw.o".to_vec()]
        );
        assert_eq!(buf.take(), Some(&b"thr"[..]));
        assert_eq!(buf.take(), None);
    }

    #[test]
    fn a_long_line_is_broken_not_lost() {
        let mut buf = LineBuffer::new();
        let long = vec![b'x'; LINE_MAX + 3];
        let lines = feed(&mut buf, &long);
        assert_eq!(lines, vec![vec![b'x'; LINE_MAX]]);
        assert_eq!(buf.take(), Some(&b"xxx"[..]));
    }

    #[test]
    fn pl011_prints_polls_and_identifies() {
        let mut uart = Pl011::new();
        assert_eq!(uart.read(FR, 4), FR_IDLE);
        assert_eq!(uart.write(0, 4, u64::from(b'A')), Effect::Byte(b'A'));
        assert_eq!(uart.write(0, 1, 0x142), Effect::Byte(0x42));
        assert_eq!(uart.write(0x30, 4, 0x301), Effect::None);
        assert_eq!(uart.read(0x30, 4), 0x301);
        assert_eq!(uart.read(0xfe0, 4), 0x11);
        assert_eq!(uart.read(0xffc, 4), 0xb1);
        // Unaligned, out of range or unknown: read as zero, writes ignored.
        assert_eq!(uart.read(0x19, 4), 0);
        assert_eq!(uart.read(0x2000, 4), 0);
        assert_eq!(uart.write(0x2, 2, 0x41), Effect::None);
        assert_eq!(uart.write(0x44, 4, 0x41), Effect::None);
        assert_eq!(uart.read(0x44, 4), 0);
    }
}
