//! One partition's console output waiting for the UART: its guest's bytes
//! as written, and the hypervisor's own lines about it (a stop report, a
//! notice) in the order they came, each kept whole.
//!
//! The bytes are a ring; a hypervisor line is a run of ring bytes that a
//! small side queue of [`HypLine`] records marks, by absolute position, so
//! no byte value is reserved: a guest may write any byte. Framing (the
//! prefix, line ends) is added when the bytes are sent (`framing`), which
//! also asks whether a whole line waits ([`OutRing::line_waits`]) and since
//! when the unfinished last line has been there.

/// Most hypervisor lines one ring holds at once (a stop report of a
/// partition with eight vCPUs is 17).
pub const HYP_LINES: usize = 32;

/// Where a hypervisor line starts in the stream (bytes pushed before it)
/// and how long it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HypLine {
    at: u64,
    len: usize,
}

/// A byte ring with hypervisor lines marked in it. Its buffer is given
/// (the hypervisor's comes from its heap: it is too large for an EL2 stack).
#[derive(Debug)]
pub struct OutRing {
    bytes: &'static mut [u8],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
    /// Bytes ever pushed: the stream position after the newest byte.
    pushed: u64,
    hyp: [HypLine; HYP_LINES],
    hyp_head: usize,
    hyp_len: usize,
    /// Line ends (`\n`) among the waiting bytes.
    newlines: usize,
    /// When the first byte after the last `\n` pushed came (`None` right
    /// after a `\n`, or before any byte).
    partial_since: Option<u64>,
}

impl OutRing {
    pub const fn new(bytes: &'static mut [u8]) -> Self {
        Self {
            bytes,
            head: 0,
            len: 0,
            pushed: 0,
            hyp: [HypLine { at: 0, len: 0 }; HYP_LINES],
            hyp_head: 0,
            hyp_len: 0,
            newlines: 0,
            partial_since: None,
        }
    }

    /// Whether a whole line waits: a guest line with its `\n`, or a
    /// hypervisor line.
    pub fn line_waits(&self) -> bool {
        self.newlines > 0 || self.hyp_len > 0
    }

    /// Since when the guest's unfinished last line has been coming (`None`
    /// if its last byte was a `\n`).
    pub fn partial_since(&self) -> Option<u64> {
        self.partial_since
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Room left, in bytes.
    pub fn room(&self) -> usize {
        self.bytes.len() - self.len
    }

    /// The stream position of the oldest byte.
    fn popped(&self) -> u64 {
        self.pushed - self.len as u64
    }

    fn put(&mut self, byte: u8) {
        let n = self.bytes.len();
        self.bytes[(self.head + self.len) % n] = byte;
        self.len += 1;
        self.pushed += 1;
    }

    /// Appends a guest byte that came at time `now`; `false` (nothing
    /// appended) when the ring is full.
    pub fn push(&mut self, byte: u8, now: u64) -> bool {
        if self.room() == 0 {
            return false;
        }
        self.put(byte);
        if byte == b'\n' {
            self.newlines += 1;
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
        true
    }

    /// Appends a hypervisor line (its text, with its own prefix and no line
    /// end) if it fits whole; `false` (nothing appended) if it does not, or
    /// if [`HYP_LINES`] are waiting already.
    pub fn push_hyp_line(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.room() < len || self.hyp_len == HYP_LINES {
            return false;
        }
        self.hyp[(self.hyp_head + self.hyp_len) % HYP_LINES] = HypLine {
            at: self.pushed,
            len,
        };
        self.hyp_len += 1;
        for part in parts {
            for &b in *part {
                self.put(b);
            }
        }
        true
    }

    /// If the oldest byte starts a hypervisor line, that line's length
    /// (taken out of the side queue: the caller sends it now; it holds no
    /// `\n`).
    pub fn take_hyp_line(&mut self) -> Option<usize> {
        let first = self.hyp[self.hyp_head];
        if self.hyp_len == 0 || first.at != self.popped() {
            return None;
        }
        self.hyp_head = (self.hyp_head + 1) % HYP_LINES;
        self.hyp_len -= 1;
        Some(first.len)
    }

    /// The oldest byte, left in place.
    pub fn peek(&self) -> Option<u8> {
        (self.len > 0).then(|| self.bytes[self.head])
    }

    /// The oldest byte, removed.
    pub fn pop(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.head = (self.head + 1) % self.bytes.len();
        self.len -= 1;
        if b == b'\n' && self.newlines > 0 {
            self.newlines -= 1;
        }
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> OutRing {
        OutRing::new(Box::leak(vec![0; n].into_boxed_slice()))
    }

    fn drain(r: &mut OutRing) -> Vec<u8> {
        core::iter::from_fn(|| r.pop()).collect()
    }

    #[test]
    fn bytes_leave_in_order_and_a_full_ring_refuses_more() {
        let mut r = ring(8);
        assert!(r.is_empty());
        assert_eq!(r.peek(), None);
        for b in b"abcdefgh" {
            assert!(r.push(*b, 0));
        }
        assert_eq!(r.room(), 0);
        assert!(!r.push(b'i', 0));
        assert_eq!(r.peek(), Some(b'a'));
        assert_eq!(r.pop(), Some(b'a'));
        assert!(r.push(b'i', 0), "wraps around");
        assert_eq!(drain(&mut r), b"bcdefghi");
        assert_eq!(r.len(), 0);
    }

    /// A hypervisor line goes in whole or not at all, and is found again
    /// exactly where it starts, whatever bytes the guest wrote around it.
    #[test]
    fn a_hypervisor_line_is_kept_whole_and_marked_where_it_starts() {
        let mut r = ring(16);
        assert!(r.push(b'[', 0));
        assert!(r.push_hyp_line(&[b"[b] ", b"stop"]));
        assert!(r.push(b'x', 0));
        assert!(
            !r.push_hyp_line(&[b"0123456789"]),
            "does not fit: dropped whole"
        );
        assert_eq!(r.len(), 10);
        assert_eq!(r.take_hyp_line(), None, "a guest byte first");
        assert_eq!(r.pop(), Some(b'['));
        assert_eq!(r.take_hyp_line(), Some(8));
        assert_eq!(r.take_hyp_line(), None, "taken once");
        let text: Vec<u8> = (0..8).filter_map(|_| r.pop()).collect();
        assert_eq!(text, b"[b] stop");
        assert_eq!(r.take_hyp_line(), None);
        assert_eq!(r.pop(), Some(b'x'));
    }

    #[test]
    fn at_most_hyp_lines_wait() {
        let mut r = ring(1024);
        for _ in 0..HYP_LINES {
            assert!(r.push_hyp_line(&[b"n"]));
        }
        assert!(!r.push_hyp_line(&[b"n"]));
        assert_eq!(r.take_hyp_line(), Some(1));
        r.pop();
        assert!(r.push_hyp_line(&[b"m"]));
    }

    /// A whole line waits while a `\n` or a hypervisor line is in the
    /// ring; the unfinished last line's start is kept until its `\n`.
    #[test]
    fn the_ring_knows_whether_a_whole_line_waits_and_since_when_a_part() {
        let mut r = ring(64);
        assert!(!r.line_waits());
        assert_eq!(r.partial_since(), None);
        r.push(b'$', 5);
        r.push(b' ', 9);
        assert!(!r.line_waits());
        assert_eq!(r.partial_since(), Some(5));
        r.pop();
        r.pop();
        assert_eq!(r.partial_since(), Some(5), "sent, but still unfinished");
        r.push(b'\n', 20);
        assert!(r.line_waits());
        assert_eq!(r.partial_since(), None);
        r.push(b'x', 30);
        assert_eq!(r.partial_since(), Some(30));
        r.pop();
        assert!(!r.line_waits(), "the line end has left");
        r.push_hyp_line(&[b"h"]);
        assert!(r.line_waits());
    }
}
