//! Who may send bytes to the board UART now: lock-free, one visible line at
//! a time, in round-robin order among the senders that have output waiting.
//!
//! Sender `s` (a partition index, or [`Arbiter::HYPERVISOR`]) calls
//! [`want`](Arbiter::want) while it has output, [`acquire`](Arbiter::acquire)
//! before it sends, and when it stops sending either
//! [`release`](Arbiter::release) (its line ended: the next sender's turn)
//! or [`pause`](Arbiter::pause) (mid-line: it keeps the turn). Nothing here
//! waits: a sender that cannot send now tries again later (its own retry
//! timer). Only the owner touches the UART, so the UART needs no lock.
//!
//! A turn normally passes only at a line end, so lines never mix. A sender
//! that pauses mid-line because it has nothing more to send (a prompt
//! waiting for input, or a line written slowly) is *idle*; once its turn
//! has lasted the caller's bound, another sender that has output waiting
//! may take the turn ([`Turn::TakenOver`]): it must end the idle sender's
//! visible line before its own. The idle sender learns it when its next
//! `acquire` is not [`Turn::Continued`], and starts a new visible line (its
//! prefix again). So no sender keeps the UART longer than the bound by
//! never ending its line, however it dribbles its bytes.
//!
//! The owner word carries a generation, bumped by every pause and release,
//! so a takeover decided on what an earlier pause said cannot succeed
//! after a later one; and a busy bit while the owner sends, so nobody
//! takes a turn from a sender in the middle of a UART write.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How a sender got the turn from [`Arbiter::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// It had the turn already (paused mid-line): its line goes on.
    Continued,
    /// The turn was free and it was next.
    Fresh,
    /// It took the turn from an idle sender, whose visible line it must
    /// end before it sends its own.
    TakenOver,
}

#[derive(Debug)]
pub struct Arbiter {
    /// Generation (bits 63:32), and the owner (bits 31:0): [`FREE`], or
    /// the sender's index with [`BUSY`] while it sends, [`IDLE`] while it
    /// is paused with nothing to send.
    owner: AtomicU64,
    /// When the owner's turn began.
    turn_since: AtomicU64,
    /// Bit s: sender s has output waiting.
    waiting: AtomicU32,
    /// The sender whose line ended last (round robin starts after it).
    last: AtomicU32,
}

/// No line is in progress.
const FREE: u32 = u32::MAX;
/// The owner is sending (nobody may take its turn).
const BUSY: u32 = 1 << 8;
/// The owner paused mid-line with nothing more to send.
const IDLE: u32 = 1 << 9;

fn word(generation: u32, owner: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(owner)
}

fn parts(w: u64) -> (u32, u32) {
    ((w >> 32) as u32, w as u32)
}

impl Default for Arbiter {
    fn default() -> Self {
        Self::new()
    }
}

impl Arbiter {
    /// The hypervisor's own lines at boot and power-off (no partition runs).
    pub const HYPERVISOR: u32 = 31;

    pub const fn new() -> Self {
        Self {
            owner: AtomicU64::new(FREE as u64),
            turn_since: AtomicU64::new(0),
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

    /// Whether a sender other than `s` has output waiting.
    pub fn others_want(&self, s: u32) -> bool {
        self.waiting.load(Ordering::Relaxed) & !(1 << s) != 0
    }

    /// Whether `s` is the first waiting sender after the one whose line
    /// ended last.
    fn next_is(&self, s: u32) -> bool {
        let waiting = self.waiting.load(Ordering::Acquire);
        // `last` < 32; `rotate_right` and the sum below are taken mod 32.
        let after = self.last.load(Ordering::Relaxed) + 1;
        let next = waiting.rotate_right(after).trailing_zeros();
        next < 32 && (next + after) % 32 == s
    }

    /// Whether `s` may send now, and how it got the turn: its own paused
    /// line, the free turn when `s` is next in round robin, or the turn of
    /// a sender paused idle mid-line whose turn began `bound` counter
    /// ticks or more before `now` (when `s` has output waiting). While `s`
    /// holds the turn nobody else gets it, until `s` calls
    /// [`pause`](Self::pause) or [`release`](Self::release).
    pub fn acquire(&self, s: u32, now: u64, bound: u64) -> Option<Turn> {
        let w = self.owner.load(Ordering::Acquire);
        let (generation, owner) = parts(w);
        let turn = if owner & !IDLE == s {
            Turn::Continued
        } else if owner == FREE {
            if !self.next_is(s) {
                return None;
            }
            Turn::Fresh
        } else if owner & IDLE != 0 {
            let since = self.turn_since.load(Ordering::Relaxed);
            if now.saturating_sub(since) < bound || !self.wants(s) {
                return None;
            }
            Turn::TakenOver
        } else {
            return None;
        };
        self.owner
            .compare_exchange(
                w,
                word(generation, s | BUSY),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        if turn != Turn::Continued {
            self.turn_since.store(now, Ordering::Relaxed);
        }
        Some(turn)
    }

    /// `s` stops sending in the middle of its line and keeps the turn;
    /// `idle` when it has nothing more to send (then, once its turn has
    /// lasted their bound, others with output may take it).
    pub fn pause(&self, s: u32, idle: bool) {
        let (generation, owner) = parts(self.owner.load(Ordering::Relaxed));
        if owner != s | BUSY {
            return;
        }
        let flag = if idle { IDLE } else { 0 };
        self.owner.store(
            word(generation.wrapping_add(1), s | flag),
            Ordering::Release,
        );
    }

    /// `s` has sent the end of its line: the next sender's turn.
    pub fn release(&self, s: u32) {
        let (generation, owner) = parts(self.owner.load(Ordering::Relaxed));
        if owner & !(BUSY | IDLE) != s {
            return;
        }
        self.last.store(s, Ordering::Relaxed);
        self.owner
            .store(word(generation.wrapping_add(1), FREE), Ordering::Release);
    }

    /// Whether `s` holds the turn (sending or paused).
    pub fn holds(&self, s: u32) -> bool {
        parts(self.owner.load(Ordering::Relaxed)).1 & !(BUSY | IDLE) == s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: u64 = 100;

    /// Senders that keep lines waiting take whole-line turns in order, and
    /// one that is not waiting never blocks the others.
    #[test]
    fn the_arbiter_gives_whole_line_turns_in_round_robin() {
        let a = Arbiter::new();
        assert_eq!(a.acquire(0, 0, IDLE), None, "nothing waiting: no turn");
        a.want(0);
        a.want(2);
        // After the hypervisor (31) comes 0.
        assert_eq!(a.acquire(2, 0, IDLE), None);
        assert_eq!(a.acquire(0, 0, IDLE), Some(Turn::Fresh));
        assert_eq!(a.acquire(2, 0, IDLE), None, "mid-line: nobody else");
        a.pause(0, false);
        assert_eq!(
            a.acquire(0, 0, IDLE),
            Some(Turn::Continued),
            "the owner keeps its line"
        );
        assert_eq!(
            a.acquire(2, 1000, IDLE),
            None,
            "a busy owner is never taken over"
        );
        a.pause(0, false);
        assert_eq!(
            a.acquire(2, 1000, IDLE),
            None,
            "paused with output: not idle"
        );
        a.acquire(0, 0, IDLE);
        a.release(0);
        // 0 still wants, but 2 is next after 0.
        assert_eq!(a.acquire(0, 0, IDLE), None);
        assert_eq!(a.acquire(2, 0, IDLE), Some(Turn::Fresh));
        a.release(2);
        assert_eq!(a.acquire(0, 0, IDLE), Some(Turn::Fresh));
        a.release(0);
        a.unwant(2);
        assert_eq!(
            a.acquire(0, 0, IDLE),
            Some(Turn::Fresh),
            "2 no longer waits: 0 again"
        );
        a.release(0);
        assert!(a.wants(0) && !a.wants(2) && !a.wants(1));
        assert!(!a.others_want(0) && a.others_want(2));
        a.release(5); // not the owner: no effect
        a.want(Arbiter::HYPERVISOR);
        assert_eq!(a.acquire(0, 0, IDLE), None);
        assert_eq!(a.acquire(Arbiter::HYPERVISOR, 0, IDLE), Some(Turn::Fresh));
        assert!(a.holds(Arbiter::HYPERVISOR) && !a.holds(0));
    }

    /// A sender idle mid-line keeps the turn until its turn has lasted the
    /// bound, then a waiting sender takes it over; the idle one finds its
    /// turn gone. Coming back from idle keeps the turn, but not the clock:
    /// a sender dribbling bytes keeps the turn no longer than the bound.
    #[test]
    fn an_idle_line_is_taken_over_after_the_bound_and_only_then() {
        let a = Arbiter::new();
        a.want(0);
        assert_eq!(a.acquire(0, 10, IDLE), Some(Turn::Fresh));
        a.unwant(0);
        a.pause(0, true);
        a.want(1);
        assert_eq!(a.acquire(1, 10 + IDLE - 1, IDLE), None, "not long enough");
        assert_eq!(a.acquire(3, 10 + IDLE, IDLE), None, "3 has nothing waiting");
        assert_eq!(a.acquire(1, 10 + IDLE, IDLE), Some(Turn::TakenOver));
        assert_eq!(a.acquire(0, 10 + IDLE, IDLE), None, "0's turn is gone");
        a.release(1);
        a.want(0);
        assert_eq!(a.acquire(0, 500, IDLE), Some(Turn::Fresh), "0 starts again");
        a.pause(0, true);
        assert_eq!(a.acquire(0, 550, IDLE), Some(Turn::Continued));
        a.pause(0, false);
        assert_eq!(
            a.acquire(1, 10_000, IDLE),
            None,
            "paused with output: not idle"
        );
        a.acquire(0, 560, IDLE);
        a.pause(0, true);
        assert_eq!(a.acquire(1, 500 + IDLE - 1, IDLE), None);
        assert_eq!(
            a.acquire(1, 500 + IDLE, IDLE),
            Some(Turn::TakenOver),
            "the bound runs from the turn's start, not the last byte"
        );
    }

    /// A takeover decided on an old idle pause fails once the owner has
    /// paused again (the generation moved on).
    #[test]
    fn a_takeover_on_a_stale_pause_fails() {
        let a = Arbiter::new();
        a.want(0);
        a.acquire(0, 0, IDLE);
        a.pause(0, true);
        let stale = a.owner.load(Ordering::Relaxed);
        a.acquire(0, 2, IDLE);
        a.pause(0, false);
        // What a late CAS on the stale word would do:
        assert!(
            a.owner
                .compare_exchange(stale, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        );
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
                        if arbiter.acquire(s, 0, IDLE).is_none() {
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
                        } else {
                            arbiter.pause(s, false);
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
    }
}
