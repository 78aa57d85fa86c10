//! Console input: which partition the bytes typed on the board UART go to,
//! and the escape sequence that moves it.
//!
//! Input goes to one partition at a time, the one with the focus. Ctrl-]
//! (0x1d; QEMU's own escape is Ctrl-A, so the two never clash) starts a
//! command, and the next byte says which:
//!
//! | after Ctrl-] | does |
//! |---|---|
//! | `n` | the focus to the next partition that takes input |
//! | `1`..`9` | the focus to that partition (its place in the configuration) |
//! | Ctrl-] | a Ctrl-] for the partition with the focus |
//! | anything else | nothing but a line saying the above |
//!
//! Neither byte of a command reaches a partition.
//!
//! A partition's input ([`Port`]) is its emulated PL011's receive FIFO
//! and, behind it, a backlog of [`BACKLOG`] bytes that moves into the FIFO
//! as the guest reads: on a real line characters arrive one at a time, on
//! QEMU a paste arrives at once. Only when the backlog is full too does the
//! FIFO overrun (OE, as the real part) and a byte is lost; bytes for a
//! receiver that is off are lost too. Both are counted.
#![forbid(unsafe_code)]

use super::pl011::{self, Effect, Pl011, Received};

/// Input bytes one partition may have waiting beyond its PL011's FIFO.
pub const BACKLOG: usize = 256;

/// Ctrl-]: starts a console command.
pub const ESCAPE: u8 = 0x1d;

/// What a received byte means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A byte for the partition with the focus.
    Byte(u8),
    /// Move the focus.
    Focus(Focus),
    /// An unknown command: say how it works.
    Help,
    /// Nothing (the first byte of a command).
    None,
}

/// Where the focus goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The next partition that takes input, after the one that has it.
    Next,
    /// Partition `n` (0-based: the command's digit minus one).
    Index(usize),
}

/// The command decoder's state: whether Ctrl-] came last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    escaped: bool,
}

impl Keys {
    pub const fn new(escaped: bool) -> Self {
        Self { escaped }
    }

    /// Whether the next byte is a command.
    pub const fn escaped(self) -> bool {
        self.escaped
    }

    /// Decodes one received byte.
    pub fn feed(&mut self, byte: u8) -> Key {
        if !core::mem::take(&mut self.escaped) {
            if byte == ESCAPE {
                self.escaped = true;
                return Key::None;
            }
            return Key::Byte(byte);
        }
        match byte {
            ESCAPE => Key::Byte(ESCAPE),
            b'n' => Key::Focus(Focus::Next),
            b'1'..=b'9' => Key::Focus(Focus::Index(usize::from(byte - b'1'))),
            _ => Key::Help,
        }
    }
}

/// The partition the focus moves to from `current` (of `count`), among
/// those `takes_input` accepts: for [`Focus::Next`] the first after
/// `current`, wrapping around (`current` itself if it is the only one);
/// for [`Focus::Index`] that one if it accepts. `None` when no partition
/// qualifies.
pub fn target(
    focus: Focus,
    current: usize,
    count: usize,
    takes_input: impl Fn(usize) -> bool,
) -> Option<usize> {
    match focus {
        Focus::Index(n) => (n < count && takes_input(n)).then_some(n),
        Focus::Next => (1..=count)
            .map(|k| (current + k) % count)
            .find(|&p| takes_input(p)),
    }
}

/// A partition's console input and its emulated PL011.
#[derive(Debug)]
pub struct Port {
    pub uart: Pl011,
    backlog: [u8; BACKLOG],
    head: usize,
    len: usize,
    /// Bytes lost: the receiver off, or the backlog and the FIFO full.
    lost: u64,
}

impl Default for Port {
    fn default() -> Self {
        Self::new()
    }
}

impl Port {
    pub const fn new() -> Self {
        Self {
            uart: Pl011::new(),
            backlog: [0; BACKLOG],
            head: 0,
            len: 0,
            lost: 0,
        }
    }

    /// A byte of console input for this partition.
    pub fn receive(&mut self, byte: u8) {
        if !self.uart.receiving() {
            self.lost += 1;
            return;
        }
        if self.len == 0 && self.uart.rx_room() > 0 {
            self.uart.receive(byte);
        } else if self.len < BACKLOG {
            self.backlog[(self.head + self.len) % BACKLOG] = byte;
            self.len += 1;
        } else if self.uart.receive(byte) != Received::Taken {
            // The FIFO overran (or, refilled to the full, it takes it).
            self.lost += 1;
        }
    }

    /// Moves waiting bytes into the FIFO while it has room and the
    /// receiver is on.
    fn refill(&mut self) {
        while self.len > 0 && self.uart.receiving() && self.uart.rx_room() > 0 {
            self.uart.receive(self.backlog[self.head]);
            self.head = (self.head + 1) % BACKLOG;
            self.len -= 1;
        }
    }

    /// A guest's read of its PL011 (see [`Pl011::read`]); a DR read makes
    /// room for the next waiting byte.
    pub fn read(&mut self, offset: u64, size: u8) -> u32 {
        let value = self.uart.read(offset, size);
        if offset == pl011::DR {
            self.refill();
        }
        value
    }

    /// A guest's write of its PL011 (see [`Pl011::write`]); turning the
    /// receiver or the FIFO on lets waiting bytes in.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Effect {
        let effect = self.uart.write(offset, size, value);
        self.refill();
        effect
    }

    /// The partition restarts: its PL011 is back at reset (FIFOs empty,
    /// disabled, as the guest finds it after a reset); what was typed for
    /// it and waits behind the FIFO stays for the restarted guest, and
    /// the count of lost bytes goes on.
    pub fn reset(&mut self) {
        self.uart = Pl011::new();
    }

    /// Bytes waiting behind the FIFO.
    pub fn waiting(&self) -> usize {
        self.len
    }

    /// Bytes lost so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut k = Keys::default();
        bytes.iter().map(|&b| k.feed(b)).collect()
    }

    #[test]
    fn plain_bytes_pass_and_commands_are_taken_out() {
        assert_eq!(
            keys(b"a\x1dnb\x1d2\x1d\x1d\x1dx\r"),
            [
                Key::Byte(b'a'),
                Key::None,
                Key::Focus(Focus::Next),
                Key::Byte(b'b'),
                Key::None,
                Key::Focus(Focus::Index(1)),
                Key::None,
                Key::Byte(ESCAPE),
                Key::None,
                Key::Help,
                Key::Byte(b'\r'),
            ]
        );
        assert_eq!(
            keys(b"\x1d0"),
            [Key::None, Key::Help],
            "partitions count from 1"
        );
        let mut k = Keys::default();
        k.feed(ESCAPE);
        assert!(k.escaped());
        assert_eq!(Keys::new(true).feed(b'9'), Key::Focus(Focus::Index(8)));
    }

    #[test]
    fn the_focus_moves_to_partitions_that_take_input_only() {
        let takes = |p: usize| p != 1 && p != 2;
        assert_eq!(target(Focus::Next, 0, 4, takes), Some(3));
        assert_eq!(target(Focus::Next, 3, 4, takes), Some(0), "wraps");
        assert_eq!(target(Focus::Next, 0, 1, |_| true), Some(0), "the only one");
        assert_eq!(target(Focus::Next, 0, 4, |_| false), None);
        assert_eq!(target(Focus::Index(3), 0, 4, takes), Some(3));
        assert_eq!(target(Focus::Index(1), 0, 4, takes), None);
        assert_eq!(target(Focus::Index(4), 0, 4, takes), None, "no fifth");
    }

    fn enabled() -> Port {
        let mut port = Port::new();
        port.write(pl011::LCR_H, 4, u64::from(pl011::LCR_H_FEN));
        port.write(pl011::CR, 4, u64::from(pl011::CR_RESET | pl011::CR_UARTEN));
        port
    }

    fn read_all(port: &mut Port) -> Vec<u8> {
        let mut got = Vec::new();
        while port.read(pl011::FR, 4) & pl011::FR_RXFE == 0 {
            got.push(port.read(pl011::DR, 4) as u8);
        }
        got
    }

    /// A paste longer than the FIFO waits behind it and reaches the guest
    /// whole, in order, as it reads.
    #[test]
    fn a_paste_waits_behind_the_fifo_and_arrives_whole() {
        let mut port = enabled();
        let text: Vec<u8> = (0..100).map(|i| b'a' + (i % 26) as u8).collect();
        for &b in &text {
            port.receive(b);
        }
        assert_eq!(port.uart.rx_count(), pl011::FIFO_DEPTH);
        assert_eq!(port.waiting(), 100 - pl011::FIFO_DEPTH);
        assert_eq!(read_all(&mut port), text);
        assert_eq!(port.lost(), 0);
        assert_eq!(port.uart.read(pl011::RSR, 4), 0, "no overrun");
    }

    /// With the backlog full too the FIFO overruns: the byte is lost and
    /// counted, OE marks where.
    #[test]
    fn beyond_the_backlog_the_fifo_overruns() {
        let mut port = enabled();
        for _ in 0..pl011::FIFO_DEPTH + BACKLOG {
            port.receive(b'x');
        }
        assert_eq!(port.lost(), 0);
        port.receive(b'!');
        assert_eq!(port.lost(), 1);
        assert_eq!(port.uart.read(pl011::RSR, 4), pl011::RSR_OE);
        let got = read_all(&mut port);
        assert_eq!(got.len(), pl011::FIFO_DEPTH + BACKLOG);
        assert!(got.iter().all(|&b| b == b'x'));
    }

    /// Input for a receiver that is off is lost; what waited goes in once
    /// the guest turns it on.
    #[test]
    fn a_receiver_off_loses_new_input_and_keeps_what_waits() {
        let mut port = Port::new();
        port.receive(b'a');
        assert_eq!(port.lost(), 1);
        let mut port = enabled();
        for &b in b"0123456789abcdefXY" {
            port.receive(b);
        }
        port.write(pl011::CR, 4, u64::from(pl011::CR_RESET));
        port.receive(b'z');
        assert_eq!(port.lost(), 1, "off: z is lost");
        assert_eq!(port.read(pl011::DR, 4), u32::from(b'0'));
        assert_eq!(
            port.uart.rx_count(),
            pl011::FIFO_DEPTH - 1,
            "off: nothing moves in"
        );
        port.write(pl011::CR, 4, u64::from(pl011::CR_RESET | pl011::CR_UARTEN));
        assert_eq!(read_all(&mut port), b"123456789abcdefXY");
    }
}
