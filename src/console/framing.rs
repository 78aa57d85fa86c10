//! Sending one partition's output to the board UART, character by
//! character, framed: each visible line starts with the partition's prefix
//! (`[name] `), and lines of different senders never mix.
//!
//! The framing is decided when the bytes are sent, by one state machine
//! per partition ([`Sender`]) that knows what is on the screen:
//!
//! - a visible line starts with the partition's prefix once a whole line
//!   waits, or once the unfinished line has waited `hold` (so a line
//!   written in pieces stays whole, and a prompt without a newline shows
//!   after `hold`); from then on the line's bytes go out as they come;
//! - `\n` ends the visible line (sent as `\r\n`) and the turn passes;
//! - `\r` goes out as it is, and the next byte re-sends the prefix first:
//!   a shell redrawing its line from column 0 writes over the prefix with
//!   the same prefix, so it stays at the line start. `\r\n` is a plain
//!   line end. Every other byte (tab, backspace, escape sequences for a
//!   shell's line editing) passes through: where a guest moves its cursor
//!   within its own line is its business; nothing it writes can end
//!   another sender's line or start one without the prefix;
//! - a hypervisor line about the partition (kept whole in its ring) ends
//!   the partition's visible line first if one is open;
//! - a partition that holds the turn mid-line with nothing more to send
//!   keeps it until its turn has lasted `idle_after` counter ticks; then
//!   another sender with output takes over ([`Turn::TakenOver`]): it ends
//!   the idle line with `\r\n`, and the idle partition, finding its turn
//!   gone, re-sends its prefix when it goes on. A partition that keeps
//!   writing one line without a newline has it ended after [`LINE_MAX`]
//!   bytes when others wait. So no partition holds the UART longer than a
//!   line of [`LINE_MAX`] bytes or the idle bound, and none waits for
//!   another.

use super::arbiter::{Arbiter, Turn};
use super::ring::OutRing;

/// Bytes of one visible line (since its start or its last `\r`) after
/// which a partition's line is ended for a waiting sender. Longer than
/// any hypervisor line, which is therefore never split.
pub const LINE_MAX: usize = 256;
/// Longest prefix: `[`, a partition name of up to 16 characters, `] `.
pub const PREFIX_MAX: usize = 19;
const STAGE: usize = PREFIX_MAX + 4;

/// Where the board UART takes bytes.
pub trait Uart {
    /// Sends `byte` if the UART has room now; `false` (nothing sent) if not.
    fn try_send(&mut self, byte: u8) -> bool;
}

/// A closure that sends a byte or says it cannot.
impl<F: FnMut(u8) -> bool> Uart for F {
    fn try_send(&mut self, byte: u8) -> bool {
        self(byte)
    }
}

/// What the partition's visible line looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    /// No line of ours is open: the next byte starts one (prefix first).
    Start,
    /// Our line is open, the cursor after its text.
    Mid,
    /// Our line is open, the cursor back at its start (a `\r`).
    Cr,
}

/// What bounds one [`Sender::pump`]: the time, how long an unfinished line
/// waits before it starts to show and how long an idle line keeps the
/// turn (counter ticks), and how many bytes it may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub now: u64,
    pub hold: u64,
    pub idle_after: u64,
    pub budget: usize,
}

/// One partition's sending state.
#[derive(Debug)]
pub struct Sender {
    col: Col,
    /// Bytes of the open line since its start or its last `\r`.
    len: usize,
    /// Framing bytes (and the guest byte they go with) still to send.
    stage: [u8; STAGE],
    stage_at: usize,
    stage_len: usize,
    /// Bytes of a hypervisor line still to send from the ring.
    hyp_left: usize,
    /// The stage ends a visible line: release the turn after it.
    release_after: bool,
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}

impl Sender {
    pub const fn new() -> Self {
        Self {
            col: Col::Start,
            len: 0,
            stage: [0; STAGE],
            stage_at: 0,
            stage_len: 0,
            hyp_left: 0,
            release_after: false,
        }
    }

    /// Whether framing or a hypervisor line is half sent (more than the
    /// ring shows).
    pub fn busy(&self) -> bool {
        self.stage_at < self.stage_len || self.hyp_left > 0
    }

    fn stage(&mut self, parts: &[&[u8]]) {
        if self.stage_at == self.stage_len {
            self.stage_at = 0;
            self.stage_len = 0;
        }
        for part in parts {
            for &b in *part {
                if self.stage_len < STAGE {
                    self.stage[self.stage_len] = b;
                    self.stage_len += 1;
                }
            }
        }
    }

    /// Stages guest byte `b` with its framing.
    fn frame(&mut self, b: u8, name: &[u8]) {
        let prefix: [&[u8]; 3] = [b"[", name, b"] "];
        match (b, self.col) {
            (b'\n', Col::Start) => {
                self.stage(&prefix);
                self.stage(&[b"\r\n"]);
            }
            (b'\n', Col::Mid) => self.stage(&[b"\r\n"]),
            (b'\n', Col::Cr) => self.stage(&[b"\n"]),
            (b'\r', Col::Mid) => {
                self.stage(&[b"\r"]);
                self.col = Col::Cr;
                return;
            }
            (b'\r', _) => return,
            (_, Col::Start | Col::Cr) => {
                self.stage(&prefix);
                self.stage(&[&[b]]);
                self.col = Col::Mid;
                self.len = 1;
                return;
            }
            (_, Col::Mid) => {
                self.stage(&[&[b]]);
                self.len += 1;
                return;
            }
        }
        // A line end.
        self.col = Col::Start;
        self.len = 0;
        self.release_after = true;
    }

    /// Sends what `ring` holds for sender `me` (prefix `[name] `) as far as
    /// the arbiter and the UART allow: at most `limits.budget` UART bytes,
    /// never waiting. Returns whether output is left (the caller tries
    /// again later).
    pub fn pump(
        &mut self,
        ring: &mut OutRing,
        (arbiter, me, name): (&Arbiter, u32, &str),
        limits: Limits,
        uart: &mut impl Uart,
    ) -> bool {
        let mut budget = limits.budget;
        let name = &name.as_bytes()[..name.len().min(PREFIX_MAX - 3)];
        let mut holding = false;
        loop {
            if !self.busy() && ring.is_empty() {
                arbiter.unwant(me);
                if holding {
                    if self.col == Col::Start {
                        arbiter.release(me);
                    } else {
                        // Mid-line with nothing to add: idle.
                        arbiter.pause(me, true);
                    }
                }
                return false;
            }
            if !holding {
                // No line of ours on the screen and only the start of one
                // waiting, younger than `hold`: its end may come at once.
                let young = ring
                    .partial_since()
                    .is_some_and(|since| limits.now.saturating_sub(since) < limits.hold);
                if young && !self.busy() && !ring.line_waits() && !arbiter.holds(me) {
                    arbiter.unwant(me);
                    return true;
                }
                arbiter.want(me);
                match arbiter.acquire(me, limits.now, limits.idle_after) {
                    None => return true,
                    Some(turn) => {
                        holding = true;
                        if turn != Turn::Continued {
                            // Whatever line of ours was open, someone has
                            // ended it since (or we did, for a waiting sender).
                            self.col = Col::Start;
                            self.len = 0;
                        }
                        if turn == Turn::TakenOver {
                            // End the line of the sender that was idle.
                            self.stage(&[b"\r\n"]);
                        }
                    }
                }
            }
            if budget == 0 {
                arbiter.pause(me, false);
                return true;
            }
            if self.stage_at < self.stage_len {
                if !uart.try_send(self.stage[self.stage_at]) {
                    arbiter.pause(me, false);
                    return true;
                }
                self.stage_at += 1;
                budget -= 1;
                if self.stage_at == self.stage_len && core::mem::take(&mut self.release_after) {
                    arbiter.release(me);
                    holding = false;
                }
                continue;
            }
            if self.hyp_left > 0 {
                // Pushed whole: its bytes are there.
                let b = ring.peek().unwrap_or(b'?');
                if !uart.try_send(b) {
                    arbiter.pause(me, false);
                    return true;
                }
                ring.pop();
                budget -= 1;
                self.hyp_left -= 1;
                if self.hyp_left == 0 {
                    self.stage(&[b"\r\n"]);
                    self.release_after = true;
                }
                continue;
            }
            if let Some(len) = ring.take_hyp_line() {
                if self.col != Col::Start {
                    self.stage(&[b"\r\n"]);
                }
                self.col = Col::Start;
                self.len = 0;
                self.hyp_left = len;
                if len == 0 {
                    self.stage(&[b"\r\n"]);
                    self.release_after = true;
                }
                continue;
            }
            let Some(b) = ring.peek() else {
                continue;
            };
            if self.col != Col::Start
                && self.len >= LINE_MAX
                && b != b'\n'
                && arbiter.others_want(me)
            {
                // A long line while others wait: end it here; it goes on
                // in a new visible line at our next turn.
                self.stage(&[b"\r\n"]);
                self.col = Col::Start;
                self.len = 0;
                self.release_after = true;
                continue;
            }
            ring.pop();
            self.frame(b, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: u64 = 1000;

    /// A UART that takes `room` bytes into `out`, then is full.
    fn fifo(out: &mut Vec<u8>, mut room: usize) -> impl FnMut(u8) -> bool + '_ {
        move |byte| {
            if room == 0 {
                return false;
            }
            room -= 1;
            out.push(byte);
            true
        }
    }

    /// Two partitions, p and q, the arbiter and the UART's output.
    fn two() -> (Arbiter, Part, Part, Vec<u8>) {
        (
            Arbiter::new(),
            Part::new(0, "p"),
            Part::new(1, "q"),
            Vec::new(),
        )
    }

    /// A partition: its ring, its sender, its name.
    struct Part {
        ring: OutRing,
        sender: Sender,
        name: &'static str,
        me: u32,
    }

    impl Part {
        fn new(me: u32, name: &'static str) -> Part {
            Part {
                ring: OutRing::new(Box::leak(vec![0; 4096].into_boxed_slice())),
                sender: Sender::new(),
                name,
                me,
            }
        }

        fn write(&mut self, bytes: &[u8]) {
            self.write_at(bytes, 0);
        }

        fn write_at(&mut self, bytes: &[u8], now: u64) {
            for &b in bytes {
                assert!(self.ring.push(b, now));
            }
        }

        fn hyp(&mut self, text: &str) {
            assert!(self.ring.push_hyp_line(&[b"[bulkhead] ", text.as_bytes()]));
        }

        fn pump(&mut self, a: &Arbiter, now: u64, out: &mut Vec<u8>) -> bool {
            self.pump_holding(a, now, 0, out)
        }

        /// A pump with unfinished lines held back for `hold`.
        fn pump_holding(&mut self, a: &Arbiter, now: u64, hold: u64, out: &mut Vec<u8>) -> bool {
            let mut uart = fifo(out, 1 << 20);
            let limits = Limits {
                hold,
                ..limits(now, 1 << 20)
            };
            self.sender
                .pump(&mut self.ring, (a, self.me, self.name), limits, &mut uart)
        }
    }

    /// Limits with no hold: unfinished lines show at once.
    fn limits(now: u64, budget: usize) -> Limits {
        Limits {
            now,
            hold: 0,
            idle_after: IDLE,
            budget,
        }
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn lines_get_their_prefix_and_a_prompt_goes_out_at_once() {
        let a = Arbiter::new();
        let mut p = Part::new(0, "alpha");
        let mut out = Vec::new();
        p.write(b"hello\n\n$ ");
        assert!(!p.pump(&a, 0, &mut out));
        assert_eq!(text(&out), "[alpha] hello\r\n[alpha] \r\n[alpha] $ ");
        assert!(a.holds(0), "mid-line: the turn stays");
        p.write(b"ls\r\n");
        assert!(!p.pump(&a, 1, &mut out));
        assert_eq!(text(&out), "[alpha] hello\r\n[alpha] \r\n[alpha] $ ls\r\n");
        assert!(!a.holds(0), "line ended: the turn is free");
    }

    /// A carriage return re-sends the prefix before the line goes on, so a
    /// shell's redraw keeps it; control characters pass through.
    #[test]
    fn a_redrawn_line_keeps_its_prefix_and_control_characters_pass() {
        let a = Arbiter::new();
        let mut p = Part::new(0, "p");
        let mut out = Vec::new();
        p.write(b"\rab\x08\x1b[K\tc\rxy\r\r\n");
        p.pump(&a, 0, &mut out);
        assert_eq!(text(&out), "[p] ab\x08\x1b[K\tc\r[p] xy\r\n");
    }

    /// Two partitions with lines waiting: each line whole, in turns; the
    /// second waits while the first is mid-line and goes at its line end.
    #[test]
    fn lines_of_two_partitions_never_mix() {
        let (a, mut p, mut q, mut out) = two();
        p.write(b"one ");
        p.pump(&a, 0, &mut out);
        q.write(b"two\nthree\n");
        assert!(q.pump(&a, 10, &mut out), "p holds the turn: q waits");
        p.write(b"more\nand ");
        assert!(p.pump(&a, 20, &mut out), "after its line q is next");
        assert!(q.pump(&a, 30, &mut out), "after q's line p is next");
        p.pump(&a, 40, &mut out);
        assert!(q.pump(&a, 50, &mut out), "p is mid-line again");
        assert_eq!(text(&out), "[p] one more\r\n[q] two\r\n[p] and ");
        assert!(!q.pump(&a, 40 + IDLE, &mut out));
        p.write(b"end\n");
        p.pump(&a, 60 + IDLE, &mut out);
        assert_eq!(
            text(&out),
            "[p] one more\r\n[q] two\r\n[p] and \r\n[q] three\r\n[p] end\r\n"
        );
    }

    /// A partition idle mid-line keeps the turn for the bound; then a
    /// waiting one ends that line and prints; the first re-sends its
    /// prefix when it goes on.
    #[test]
    fn an_idle_prompt_is_ended_after_the_bound_and_resumed_with_its_prefix() {
        let (a, mut p, mut q, mut out) = two();
        p.write(b"$ ");
        p.pump(&a, 0, &mut out);
        q.write(b"news\n");
        assert!(q.pump(&a, IDLE - 1, &mut out), "not yet");
        assert_eq!(text(&out), "[p] $ ");
        assert!(!q.pump(&a, IDLE, &mut out));
        assert_eq!(text(&out), "[p] $ \r\n[q] news\r\n");
        p.write(b"ls\n");
        assert!(!p.pump(&a, IDLE + 1, &mut out));
        assert_eq!(text(&out), "[p] $ \r\n[q] news\r\n[p] ls\r\n");
    }

    /// A line finished before its turn has lasted the bound stays whole.
    #[test]
    fn a_prompt_answered_in_time_keeps_its_line() {
        let (a, mut p, mut q, mut out) = two();
        p.write(b"$ ");
        p.pump(&a, 0, &mut out);
        q.write(b"news\n");
        q.pump(&a, 10, &mut out);
        p.write(b"l");
        p.pump(&a, 20, &mut out);
        assert!(q.pump(&a, IDLE - 1, &mut out));
        p.write(b"s\n");
        p.pump(&a, IDLE - 1, &mut out);
        q.pump(&a, IDLE, &mut out);
        assert_eq!(text(&out), "[p] $ ls\r\n[q] news\r\n");
    }

    /// A line longer than LINE_MAX is ended for a waiting sender and goes on
    /// with its prefix; nobody waiting, it is not.
    #[test]
    fn an_endless_line_yields_to_waiting_senders() {
        let (a, mut p, mut q, mut out) = two();
        p.write(&[b'x'; LINE_MAX + 10]);
        p.pump(&a, 0, &mut out);
        assert_eq!(out.len(), 4 + LINE_MAX + 10, "alone: one line");
        p.write(&[b'y'; LINE_MAX]);
        q.write(b"q\n");
        q.pump(&a, 1, &mut out);
        p.pump(&a, 2, &mut out);
        q.pump(&a, 3, &mut out);
        p.write(b"\n");
        p.pump(&a, 4, &mut out);
        let s = text(&out);
        let lines: Vec<&str> = s.split("\r\n").collect();
        assert_eq!(lines.len(), 4, "{s:?}");
        assert_eq!(lines[0], format!("[p] {}", "x".repeat(LINE_MAX + 10)));
        assert_eq!(lines[1], "[q] q");
        assert_eq!(lines[2], format!("[p] {}", "y".repeat(LINE_MAX)));
        assert_eq!(lines[3], "");
    }

    /// A hypervisor line ends the partition's open line first, goes out
    /// whole, and the guest's line goes on with its prefix.
    #[test]
    fn a_hypervisor_line_ends_an_open_line_and_keeps_its_own_prefix() {
        let a = Arbiter::new();
        let mut p = Part::new(0, "p");
        let mut out = Vec::new();
        p.write(b"$ ");
        p.hyp("console input: p");
        p.write(b"ls\n");
        p.hyp("done");
        p.pump(&a, 0, &mut out);
        assert_eq!(
            text(&out),
            "[p] $ \r\n[bulkhead] console input: p\r\n[p] ls\r\n[bulkhead] done\r\n"
        );
        assert!(!a.holds(0));
    }

    /// The UART full half way through a prefix: the rest follows later,
    /// and nobody takes the turn meanwhile (the sender is not idle).
    #[test]
    fn framing_resumes_where_the_uart_stopped_it() {
        let a = Arbiter::new();
        let (mut p, mut q) = (Part::new(0, "partition"), Part::new(1, "q"));
        let mut out = Vec::new();
        p.write(b"ab\ncd\n");
        for room in [3, 0, 5, 2, 1, 100] {
            p.sender.pump(
                &mut p.ring,
                (&a, 0, p.name),
                limits(0, 1 << 20),
                &mut fifo(&mut out, room),
            );
            q.write(b"x\n");
            q.pump(&a, 10 * IDLE, &mut out);
        }
        p.pump(&a, 20 * IDLE, &mut out);
        q.pump(&a, 20 * IDLE, &mut out);
        let s = text(&out);
        assert!(s.starts_with("[partition] ab\r\n"), "{s:?}");
        assert!(s.contains("[partition] cd\r\n"), "{s:?}");
        assert_eq!(s.matches("[q] x\r\n").count(), 6, "{s:?}");
    }

    /// An unfinished line waits `hold` before it starts to show (its end
    /// may be on its way: a line written in pieces stays whole), unless a
    /// whole line is there or the partition's line is on the screen.
    #[test]
    fn an_unfinished_line_shows_after_the_hold_and_a_whole_one_at_once() {
        const HOLD: u64 = 100;
        let (a, mut p, mut q, mut out) = two();
        p.write_at(b"pie", 10);
        assert!(p.pump_holding(&a, 10 + HOLD - 1, HOLD, &mut out), "held");
        assert!(out.is_empty());
        q.write_at(b"whole\n", 50);
        assert!(!q.pump_holding(&a, 60, HOLD, &mut out), "not blocked by p");
        p.write_at(b"ces\n", 70);
        assert!(!p.pump_holding(&a, 80, HOLD, &mut out), "whole now");
        assert_eq!(text(&out), "[q] whole\r\n[p] pieces\r\n");
        p.write_at(b"$ ", 200);
        assert!(p.pump_holding(&a, 200, HOLD, &mut out));
        assert!(
            !p.pump_holding(&a, 200 + HOLD, HOLD, &mut out),
            "a prompt shows"
        );
        p.write_at(b"l", 5000);
        p.pump_holding(&a, 5000, HOLD, &mut out);
        assert_eq!(
            text(&out),
            "[q] whole\r\n[p] pieces\r\n[p] $ l",
            "its line on the screen: at once"
        );
    }

    #[test]
    fn the_budget_bounds_each_pump() {
        let a = Arbiter::new();
        let mut p = Part::new(0, "p");
        let mut out = Vec::new();
        p.write(&[b'z'; 100]);
        let left = p.sender.pump(
            &mut p.ring,
            (&a, 0, "p"),
            limits(0, 10),
            &mut fifo(&mut out, 1000),
        );
        assert!(left);
        assert_eq!(out.len(), 10);
    }
}
