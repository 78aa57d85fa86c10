//! Mechanism 1: interrupt masking through the partition's shared flag word.
//!
//! vCPU n masks its interrupts by setting byte n of its control page's flag
//! word, without a trap. Everything that would put an interrupt into vCPU
//! n's list registers goes through [`inject`] or [`flush`] here, on vCPU
//! n's own CPU while vCPU n is stopped in EL2, so "check the flag, then
//! inject" cannot race the guest. While the flag is set, interrupts wait
//! in the vCPU's priority queue (the same one that holds list-register
//! overflow) and bit 0 of byte n of the pending word tells the guest to
//! ask for them with one hypercall when it unmasks; nothing is written to
//! a list register, nothing is lost, nothing is delivered twice.
//!
//! The page is guest memory: only byte n of the flag word is read, and the
//! pending byte is written, never believed. The hypervisor's own state is
//! the queue.

use super::lr::{self, Delivery, Irq, ListRegisters, PendingQueue};

/// vCPU n's bytes of its partition's control page, and the clock.
pub trait Gate {
    /// Byte n of the flag word: the guest has masked its interrupts.
    fn masked(&self) -> bool;
    /// Sets or clears the deferral bit of byte n of the pending word.
    fn set_pending(&self, on: bool);
    /// The generic counter.
    fn now(&self) -> u64;
}

/// What the flag lets the hypervisor see, per vCPU (counter ticks).
///
/// `repr(C)`, and a moment that is not there is [`Stats::NONE`] (zero)
/// rather than an `Option`: the GICv3 backend's IRQ_UNMASK fast path
/// (`fast.S`) ends a window in place, at the offsets it takes from here.
/// All zero at first, so that each CPU's slot stays in .bss.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Interrupts that arrived while masked.
    pub deferred: u64,
    /// Longest time from an interrupt's deferral until every interrupt
    /// deferred with it was back in a list register.
    pub max_wait: u64,
    /// Longest masked window that delayed an interrupt, from its first
    /// deferral to the moment the unmask was seen.
    pub max_window: u64,
    /// First deferral of the window now open, or [`Stats::NONE`].
    window_start: u64,
    /// Start of a window whose interrupts are still being moved out, or
    /// [`Stats::NONE`].
    draining_since: u64,
}

/// Where [`Stats`] keeps what the IRQ_UNMASK fast path reads and writes:
/// `max_wait` and `max_window` side by side (one pair), and
/// `window_start` and `draining_since` side by side (one pair).
pub const STATS_MAX_WAIT: usize = core::mem::offset_of!(Stats, max_wait);
pub const STATS_WINDOW_START: usize = core::mem::offset_of!(Stats, window_start);
const _: () = assert!(Stats::NONE == 0);
const _: () = assert!(core::mem::offset_of!(Stats, max_window) == STATS_MAX_WAIT + 8);
const _: () = assert!(core::mem::offset_of!(Stats, draining_since) == STATS_WINDOW_START + 8);

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// No moment. A deferral never happens at counter value 0: the
    /// system counter has run through the firmware and the hypervisor's
    /// boot before any partition runs.
    pub const NONE: u64 = 0;

    pub const fn new() -> Stats {
        Stats {
            deferred: 0,
            max_wait: 0,
            max_window: 0,
            window_start: Self::NONE,
            draining_since: Self::NONE,
        }
    }

    /// Whether an interrupt was deferred in a masked window whose unmask
    /// the hypervisor has not seen yet.
    pub fn window_open(&self) -> bool {
        self.window_start != Self::NONE
    }

    /// A deferral at `now`: the window opens if it was not open.
    fn deferral(&mut self, now: impl FnOnce() -> u64) {
        if !self.window_open() {
            self.window_start = now();
        }
    }

    fn window_ended(&mut self, now: u64) {
        let start = core::mem::replace(&mut self.window_start, Self::NONE);
        if start != Self::NONE {
            self.max_window = self.max_window.max(now.saturating_sub(start));
            self.draining_since = start;
        }
    }

    fn drained(&mut self, now: u64) {
        let start = core::mem::replace(&mut self.draining_since, Self::NONE);
        if start != Self::NONE {
            self.max_wait = self.max_wait.max(now.saturating_sub(start));
        }
    }
}

/// Result of [`inject`] and [`flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    /// The underflow maintenance interrupt must be on (the queue holds
    /// interrupts the guest may take once list registers free up).
    pub underflow: bool,
    /// The interrupt could not be kept: only with more interrupts than a
    /// partition can own. A forwarded one must then be deactivated so its
    /// source raises it again.
    pub full: bool,
}

/// Offers `irq` to vCPU n, whose list registers are `lrs` and queue `queue`.
#[inline]
pub fn inject(
    lrs: &mut impl ListRegisters,
    queue: &mut PendingQueue,
    gate: &impl Gate,
    stats: &mut Stats,
    irq: Irq,
) -> After {
    // One decision per offer: the flag word is guest memory, and a sibling
    // vCPU may flip it meanwhile.
    let masked = gate.masked();
    if masked {
        stats.deferred += 1;
        // Already pending in a list register: it merges there; anything
        // else waits in the queue (nothing new becomes pending in a list
        // register while masked).
        let kept = match lr::offer_held(lrs, queue, irq, false) {
            Some(delivery) => delivery != Delivery::Full,
            None => queue.push(irq),
        };
        if !kept {
            return After {
                underflow: false,
                full: true,
            };
        }
        stats.deferral(|| gate.now());
        gate.set_pending(true);
        // Nothing moves while masked: the underflow interrupt would only
        // fire again and again.
        return After {
            underflow: false,
            full: false,
        };
    }
    // Unmasked (the guest may have unmasked without asking: it found its
    // pending bit clear, or did not look). What waits goes first.
    let full = if stats.window_open() || !queue.is_empty() {
        let after = flush_unmasked(lrs, queue, gate, stats);
        let delivery = lr::deliver(lrs, queue, irq);
        return After {
            underflow: after.underflow || lr::waits_for_free(lrs, queue),
            full: delivery == Delivery::Full,
        };
    } else {
        lr::deliver(lrs, queue, irq) == Delivery::Full
    };
    After {
        underflow: lr::waits_for_free(lrs, queue),
        full,
    }
}

/// The guest's IRQ_UNMASK call, the underflow maintenance interrupt, or a
/// kick: move what waits into the list registers, if the guest is not masked.
#[inline]
pub fn flush(
    lrs: &mut impl ListRegisters,
    queue: &mut PendingQueue,
    gate: &impl Gate,
    stats: &mut Stats,
) -> After {
    if gate.masked() {
        if !queue.is_empty() {
            // Overflow that was waiting is now waiting behind the mask too.
            stats.deferral(|| gate.now());
            gate.set_pending(true);
        }
        return After {
            underflow: false,
            full: false,
        };
    }
    flush_unmasked(lrs, queue, gate, stats)
}

/// [`flush`] once the flag was read clear.
fn flush_unmasked(
    lrs: &mut impl ListRegisters,
    queue: &mut PendingQueue,
    gate: &impl Gate,
    stats: &mut Stats,
) -> After {
    gate.set_pending(false);
    let now = gate.now();
    stats.window_ended(now);
    let more = lr::refill(lrs, queue);
    if !more {
        stats.drained(now);
    }
    After {
        underflow: more,
        full: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vgic::lr::Entry;
    use crate::vgic::lr::testing::FakeLrs;
    use core::cell::Cell;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The control page bytes of one vCPU, and a clock.
    #[derive(Default)]
    struct Page {
        masked: Cell<bool>,
        pending: Cell<bool>,
        now: Cell<u64>,
    }

    impl Gate for Page {
        fn masked(&self) -> bool {
            self.masked.get()
        }
        fn set_pending(&self, on: bool) {
            self.pending.set(on);
        }
        fn now(&self) -> u64 {
            self.now.get()
        }
    }

    fn priority(intid: u32) -> u8 {
        ((intid * 5 % 8) as u8) << 4
    }

    fn irq(intid: u32) -> Irq {
        Irq {
            intid,
            priority: priority(intid),
            hw: false,
            source: 0,
        }
    }

    /// A vCPU and its guest: the guest takes the most urgent pending list
    /// register when it is not masked, and unmasks with the protocol
    /// (clear the bit, then one hypercall only if the pending bit is set).
    #[derive(Default)]
    struct World {
        lrs: FakeLrs,
        queue: PendingQueue,
        page: Page,
        stats: Stats,
        underflow: bool,
        /// Raised and not yet handled (a raise of one already here merges).
        outstanding: BTreeSet<u32>,
        hypercalls: u32,
    }

    impl World {
        fn arrive(&mut self, intid: u32) {
            let before = self.lrs.0;
            let after = inject(
                &mut self.lrs,
                &mut self.queue,
                &self.page,
                &mut self.stats,
                irq(intid),
            );
            assert!(!after.full);
            if self.page.masked() {
                assert_eq!(before, self.lrs.0, "a list register changed while masked");
            }
            self.underflow = after.underflow;
            self.outstanding.insert(intid);
        }

        fn unmask(&mut self) {
            self.page.masked.set(false);
            if self.page.pending.get() {
                self.hypercalls += 1;
                self.underflow =
                    flush(&mut self.lrs, &mut self.queue, &self.page, &mut self.stats).underflow;
            }
        }

        /// The guest takes one interrupt (acknowledge and EOI), if it may.
        fn take(&mut self) -> Option<u32> {
            if self.page.masked() {
                return None;
            }
            let n = (0..4)
                .filter(|&n| self.lrs.read(n).pending)
                .min_by_key(|&n| (self.lrs.read(n).irq.priority, n))?;
            let taken = self.lrs.read(n).irq.intid;
            let best = self.outstanding.iter().map(|&i| priority(i)).min().unwrap();
            assert_eq!(
                priority(taken),
                best,
                "took {taken}, something more urgent waits"
            );
            assert!(self.outstanding.remove(&taken), "{taken} delivered twice");
            self.lrs.write(
                n,
                Entry {
                    pending: false,
                    active: false,
                    ..self.lrs.read(n)
                },
            );
            // The underflow maintenance interrupt, when at most one is listed.
            if self.underflow && (0..4).filter(|&n| self.lrs.read(n).pending).count() <= 1 {
                self.underflow =
                    flush(&mut self.lrs, &mut self.queue, &self.page, &mut self.stats).underflow;
            }
            Some(taken)
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        Arrive(u32),
        Mask,
        Unmask,
        Take,
        Tick,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u32..24).prop_map(Step::Arrive),
            1 => Just(Step::Mask),
            1 => Just(Step::Unmask),
            3 => Just(Step::Take),
            1 => Just(Step::Tick),
        ]
    }

    proptest! {
        /// Random interleavings of mask, unmask (with the hypercall when the
        /// pending bit says so), arrivals on many sources and the guest taking
        /// interrupts: none lost, none delivered while masked, none twice,
        /// always the most urgent first.
        #[test]
        fn the_gate_loses_nothing_and_delivers_nothing_while_masked(
            steps in proptest::collection::vec(step(), 1..300)
        ) {
            let mut w = World::default();
            for s in steps {
                match s {
                    Step::Arrive(i) => w.arrive(i),
                    Step::Mask => w.page.masked.set(true),
                    Step::Unmask => w.unmask(),
                    Step::Take => {
                        w.take();
                    }
                    Step::Tick => w.page.now.set(w.page.now.get() + 10),
                }
            }
            w.unmask();
            while w.take().is_some() {}
            prop_assert!(w.outstanding.is_empty(), "lost: {:?}", w.outstanding);
            prop_assert!(w.queue.is_empty());
            prop_assert!(!w.page.pending.get());
        }
    }

    #[test]
    fn masking_with_nothing_arriving_costs_no_hypercall() {
        let mut w = World::default();
        for _ in 0..1000 {
            w.page.masked.set(true);
            w.unmask();
        }
        assert_eq!(w.hypercalls, 0);
        w.page.masked.set(true);
        w.arrive(3);
        w.unmask();
        assert_eq!(w.hypercalls, 1);
        assert_eq!(w.take(), Some(3));
    }

    #[test]
    fn an_interrupt_listed_before_the_mask_merges_instead_of_doubling() {
        let mut w = World::default();
        w.arrive(5);
        w.page.masked.set(true);
        w.arrive(5);
        w.unmask();
        assert_eq!(w.take(), Some(5));
        assert_eq!(w.take(), None);
    }

    /// The guest acknowledged an interrupt without ending it yet (its
    /// list register active, the only one in use), masked, and the same
    /// interrupt came again (queued behind the mask). At unmask it joins
    /// the active entry (active and pending) and asks for no underflow
    /// interrupt, which would have fired again and again without the
    /// guest ever running to end the entry: its CPU stayed in EL2.
    #[test]
    fn an_interrupt_deferred_behind_its_own_active_entry_joins_it_at_unmask() {
        let mut w = World::default();
        w.arrive(5);
        let entry = w.lrs.read(0);
        w.lrs.write(
            0,
            Entry {
                pending: false,
                active: true,
                ..entry
            },
        );
        w.page.masked.set(true);
        w.arrive(5);
        assert_eq!(w.queue.len(), 1);
        w.unmask();
        assert!(!w.underflow);
        assert!(w.queue.is_empty());
        assert_eq!(
            w.lrs.read(0),
            Entry {
                pending: true,
                active: true,
                ..entry
            }
        );
    }

    #[test]
    fn statistics_count_deferrals_and_measure_the_window() {
        let mut w = World::default();
        w.page.now.set(100);
        w.page.masked.set(true);
        w.page.now.set(150);
        w.arrive(1);
        w.page.now.set(170);
        w.arrive(2);
        w.page.now.set(400);
        w.unmask();
        assert_eq!(w.stats.deferred, 2);
        assert_eq!(
            w.stats.max_window, 250,
            "first deferral (150) to unmask (400)"
        );
        assert_eq!(w.stats.max_wait, 250);
        // A shorter window later does not lower the maxima.
        w.take();
        w.take();
        w.page.masked.set(true);
        w.page.now.set(500);
        w.arrive(3);
        w.page.now.set(510);
        w.unmask();
        assert_eq!((w.stats.deferred, w.stats.max_window), (3, 250));
    }

    #[test]
    fn garbage_in_the_page_only_holds_the_guests_own_interrupts() {
        // A guest that masks forever: its interrupts wait, nothing else happens.
        let mut w = World::default();
        w.page.masked.set(true);
        for i in 0..20 {
            w.arrive(i);
        }
        assert_eq!(w.take(), None);
        assert!(w.page.pending.get());
        assert_eq!(w.lrs.0, [0; 4]);
        assert_eq!(w.stats.deferred, 20);
    }
}
