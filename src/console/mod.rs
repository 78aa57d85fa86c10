//! The partitions' consoles.
//!
//! The hypervisor owns the board UART. A partition writes through the
//! CONSOLE_WRITE hypercall or through an emulated PL011; either way its bytes
//! are collected in a [`LineBuffer`] and leave as whole lines, prefixed with
//! the partition's name, so two partitions never interleave mid-line.
//!
//! No partition waits for another's output. Each partition's finished lines
//! go into its own [`OutRing`]; only that partition's CPUs move them to the
//! UART, a bounded number of bytes at a time and only while the UART has
//! room, never polling it. Who may transmit is decided by the lock-free
//! [`Arbiter`]: one whole line at a time, the partitions with lines waiting
//! taking turns in round-robin order. A flooding partition therefore
//! delays another's output by at most one of its lines per turn, and never
//! its execution; a partition that writes faster than the UART drains loses
//! lines from its own ring, counted and reported, and nobody else's.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

pub mod pl011;

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

/// One partition's finished lines, waiting for the UART: a byte ring that
/// takes a line whole or not at all, so what leaves is always whole lines,
/// each ending in `\n`. Its buffer is given (the hypervisor's comes from
/// its heap: it is too large for an EL2 stack).
#[derive(Debug)]
pub struct OutRing {
    bytes: &'static mut [u8],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
}

impl OutRing {
    pub const fn new(bytes: &'static mut [u8]) -> Self {
        Self {
            bytes,
            head: 0,
            len: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends `[prefix] text\r\n` if it fits whole; `false` (nothing
    /// appended) if it does not.
    pub fn push_line(&mut self, prefix: &str, text: &[u8]) -> bool {
        let n = self.bytes.len();
        let need = prefix.len() + text.len() + 5;
        if n - self.len < need {
            return false;
        }
        for part in [b"[".as_slice(), prefix.as_bytes(), b"] ", text, b"\r\n"] {
            for &b in part {
                self.bytes[(self.head + self.len) % n] = b;
                self.len += 1;
            }
        }
        true
    }

    /// The oldest byte, left in place.
    pub fn peek(&self) -> Option<u8> {
        (self.len > 0).then(|| self.bytes[self.head])
    }

    /// The oldest byte, removed.
    pub fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let b = self.bytes[self.head];
        self.head = (self.head + 1) % self.bytes.len();
        self.len -= 1;
        Some(b)
    }
}

/// Who may send bytes to the board UART now: lock-free, a whole line at a
/// time, in round-robin order among the senders that have lines waiting.
///
/// Sender `s` (a partition index, or [`Arbiter::HYPERVISOR`]) calls
/// [`want`](Self::want) while it has output, [`acquire`](Self::acquire)
/// before each byte it sends, and [`release`](Self::release) after the
/// `\n` that ends a line. Nothing here waits: a sender that cannot send
/// now tries again later (its own retry timer). Only the owner touches the
/// UART, so the UART needs no lock of its own.
#[derive(Debug)]
pub struct Arbiter {
    /// The sender in the middle of a line, or [`Arbiter::FREE`].
    owner: AtomicU32,
    /// Bit s: sender s has output waiting.
    waiting: AtomicU32,
    /// The sender that finished the last line (round robin starts after it).
    last: AtomicU32,
}

impl Default for Arbiter {
    fn default() -> Self {
        Self::new()
    }
}

impl Arbiter {
    /// No line is in progress.
    pub const FREE: u32 = u32::MAX;
    /// The hypervisor's own lines at boot and power-off (no partition runs).
    pub const HYPERVISOR: u32 = 31;

    pub const fn new() -> Self {
        Self {
            owner: AtomicU32::new(Self::FREE),
            waiting: AtomicU32::new(0),
            last: AtomicU32::new(Self::HYPERVISOR),
        }
    }

    /// Sender `s` has output waiting.
    pub fn want(&self, s: u32) {
        self.waiting.fetch_or(1 << s, Ordering::AcqRel);
    }

    /// Whether sender `s` has output waiting.
    pub fn wants(&self, s: u32) -> bool {
        self.waiting.load(Ordering::Relaxed) & (1 << s) != 0
    }

    /// Sender `s` has nothing waiting any more.
    pub fn unwant(&self, s: u32) {
        self.waiting.fetch_and(!(1 << s), Ordering::AcqRel);
    }

    /// Whether `s` may send now: it is in the middle of its line, or no
    /// line is in progress and `s` is the first waiting sender after the
    /// one that sent last.
    pub fn acquire(&self, s: u32) -> bool {
        match self.owner.load(Ordering::Acquire) {
            o if o == s => return true,
            Self::FREE => {}
            _ => return false,
        }
        let waiting = self.waiting.load(Ordering::Acquire);
        // `last` < 32; `rotate_right` and the sum below are taken mod 32.
        let after = self.last.load(Ordering::Relaxed) + 1;
        let next = waiting.rotate_right(after).trailing_zeros();
        if next >= 32 || (next + after) % 32 != s {
            return false;
        }
        self.owner
            .compare_exchange(Self::FREE, s, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `s` has sent the end of its line: the next sender's turn.
    pub fn release(&self, s: u32) {
        if self.owner.load(Ordering::Relaxed) == s {
            self.last.store(s, Ordering::Relaxed);
            self.owner.store(Self::FREE, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_takes_lines_whole_or_not_at_all_and_wraps() {
        let mut ring = OutRing::new(Box::leak(vec![0; 32].into_boxed_slice()));
        assert!(ring.push_line("p", b"0123456789"));
        assert_eq!(ring.len(), 16);
        assert!(
            !ring.push_line("p", b"0123456789abcdefgh"),
            "does not fit: dropped whole"
        );
        assert_eq!(ring.len(), 16);
        let first: Vec<u8> = core::iter::from_fn(|| ring.pop()).take(16).collect();
        assert_eq!(first, b"[p] 0123456789\r\n");
        // Wraps around the end of the buffer.
        assert!(ring.push_line("q", b"abcdefghijklmnopqrstuvw"));
        let second: Vec<u8> = core::iter::from_fn(|| ring.pop()).collect();
        assert_eq!(second, b"[q] abcdefghijklmnopqrstuvw\r\n");
        assert!(ring.is_empty());
    }

    /// A line that needs exactly the room left goes in; one byte more does
    /// not. `peek` shows the oldest byte without taking it.
    #[test]
    fn the_ring_fills_to_the_last_byte_and_peeks_without_taking() {
        let mut ring = OutRing::new(Box::leak(vec![0; 32].into_boxed_slice()));
        assert!(ring.is_empty());
        assert_eq!(ring.peek(), None);
        assert_eq!(ring.pop(), None);
        // "[p] " + 10 + "\r\n" = 16 bytes; then 16 left.
        assert!(ring.push_line("p", b"0123456789"));
        assert!(!ring.is_empty());
        assert!(!ring.push_line("q", b"0123456789a"), "17 bytes into 16");
        assert!(ring.push_line("q", b"abcdefghij"), "16 bytes into 16");
        assert_eq!(ring.len(), 32);
        assert!(!ring.push_line("", b""), "full: not even an empty line");
        assert_eq!(ring.peek(), Some(b'['));
        assert_eq!(ring.peek(), Some(b'['), "peek leaves it");
        assert_eq!(ring.pop(), Some(b'['));
        assert_eq!(ring.peek(), Some(b'p'));
        assert_eq!(ring.len(), 31);
        let rest: Vec<u8> = core::iter::from_fn(|| ring.pop()).collect();
        assert_eq!(rest, b"p] 0123456789\r\n[q] abcdefghij\r\n");
        assert_eq!(ring.peek(), None);
    }

    /// Senders that keep lines waiting take whole-line turns in order, and
    /// one that is not waiting never blocks the others.
    #[test]
    fn the_arbiter_gives_whole_line_turns_in_round_robin() {
        let a = Arbiter::new();
        assert!(!a.acquire(0), "nothing waiting: no turn");
        a.want(0);
        a.want(2);
        // After the hypervisor (31) comes 0.
        assert!(!a.acquire(2));
        assert!(a.acquire(0));
        assert!(a.acquire(0), "the owner keeps its line");
        assert!(!a.acquire(2), "mid-line: nobody else");
        a.release(0);
        // 0 still wants, but 2 is next after 0.
        assert!(!a.acquire(0));
        assert!(a.acquire(2));
        a.release(2);
        assert!(a.acquire(0));
        a.release(0);
        a.unwant(2);
        assert!(a.acquire(0), "2 no longer waits: 0 again");
        a.release(0);
        assert!(a.wants(0) && !a.wants(2) && !a.wants(1));
        a.want(1);
        assert!(a.wants(1) && !a.wants(3));
        a.unwant(1);
        assert!(!a.wants(1) && a.wants(0));
        a.release(5); // not the owner: no effect
        a.want(Arbiter::HYPERVISOR);
        assert!(!a.acquire(0));
        assert!(a.acquire(Arbiter::HYPERVISOR));
    }

    /// Many senders on threads, each sending lines byte by byte whenever
    /// the arbiter lets it: lines never interleave and turns are fair.
    #[test]
    fn lines_never_interleave_between_concurrent_senders() {
        use std::sync::Mutex;
        let arbiter = Arbiter::new();
        let uart = Mutex::new(Vec::<u8>::new());
        const LINES: usize = 200;
        std::thread::scope(|scope| {
            for s in 0..4u32 {
                let (arbiter, uart) = (&arbiter, &uart);
                scope.spawn(move || {
                    let line: Vec<u8> = format!("sender {s} says hello\n").into_bytes();
                    let mut sent = 0;
                    let mut at = 0;
                    arbiter.want(s);
                    // A broken arbiter fails the test rather than hang it.
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    while sent < LINES {
                        if !arbiter.acquire(s) {
                            assert!(
                                std::time::Instant::now() < deadline,
                                "sender {s} got no turn for 10 s after {sent} lines"
                            );
                            std::thread::yield_now();
                            continue;
                        }
                        uart.lock().unwrap().push(line[at]);
                        at += 1;
                        if at == line.len() {
                            at = 0;
                            sent += 1;
                            if sent == LINES {
                                arbiter.unwant(s);
                            }
                            arbiter.release(s);
                        }
                    }
                });
            }
        });
        let text = String::from_utf8(uart.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4 * LINES);
        for s in 0..4 {
            let own = format!("sender {s} says hello");
            assert_eq!(lines.iter().filter(|l| **l == own).count(), LINES, "{text}");
        }
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("sender ") && l.ends_with(" says hello"))
        );
    }

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
}
