//! Getting virtual interrupts to a vCPU: its list registers, and a software
//! queue ordered by priority for whatever does not fit in them.
//!
//! Invariant: every interrupt in the queue has a priority no higher than
//! (a value no lower than) every interrupt pending in a list register. So
//! the guest always sees the highest-priority pending interrupts, and an
//! interrupt arriving with a higher priority than one already in a list
//! register pushes that one back into the queue. When the queue holds one
//! that waits for a free list register ([`waits_for_free`]) the caller
//! enables the underflow maintenance interrupt, and [`refill`] moves
//! queued interrupts into list registers as they drain.
//!
//! Nothing is dropped (the queue holds every interrupt a partition can
//! have, each at most once) and nothing is delivered twice (a pending
//! interrupt raised again merges with itself, as GIC pending state does).
//!
//! Forwarded interrupts (HW): one that merges with a pending software
//! instance of the same INTID makes it forwarded, so the guest's
//! deactivation still reaches the physical interrupt the hypervisor
//! acknowledged. A list register with HW set is never pending and active
//! at once (the architecture does not allow it), and no INTID is in two
//! list registers: what cannot join the register that holds its INTID
//! waits in the queue until that one is done (a software one joins it at
//! the next refill, see [`refill`]).

/// A virtual interrupt on its way to a vCPU. `repr(C)`: the GICv3
/// backend's IRQ_UNMASK fast path reads one from the queue. (In the order
/// Rust itself chose for it: the Rust paths' code is as before.)
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub intid: u32,
    pub priority: u8,
    /// An SGI's source CPU interface (the sending vCPU) on a GICv2, which
    /// the guest's GICC_IAR shows as the CPUID; 0 for everything else and
    /// on a GICv3.
    pub source: u8,
    /// Forwarded hardware interrupt (the same INTID physically): the guest's
    /// deactivation deactivates the physical one, with no exit.
    pub hw: bool,
}

impl Irq {
    /// Whether `other` is the same interrupt: its INTID. An SGI from a
    /// second source while one is listed or queued merges with it, so one
    /// list register at most holds an SGI number: QEMU's GICv2 takes the
    /// first of two list registers with the same SGI for both (the hostile
    /// guest then took one for ever). Listing the other sources one at a
    /// time behind the EOI maintenance interrupt, as KVM does, is left.
    #[inline(always)]
    pub const fn same(&self, other: &Irq) -> bool {
        self.intid == other.intid
    }
}

/// What one list register holds, whatever the GIC's register format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub irq: Irq,
    pub pending: bool,
    pub active: bool,
}

impl Entry {
    /// A newly pending interrupt.
    pub const fn pending(irq: Irq) -> Entry {
        Entry {
            irq,
            pending: true,
            active: false,
        }
    }
}

/// A vCPU's list registers. The GIC backend (GICv3 ICH_LR<n>_EL2, or a
/// GICv2's GICH_LR<n>) encodes and decodes; the policy here never sees a
/// register format.
pub trait ListRegisters {
    /// How many there are.
    fn count(&self) -> usize;
    /// Bit n set when list register n holds no interrupt (ICH_ELRSR_EL2,
    /// GICH_ELRSR0).
    fn empty(&self) -> u64;
    fn read(&self, n: usize) -> Entry;
    fn write(&mut self, n: usize, entry: Entry);
}

/// List register formats, pure bit layouts (host-tested).
pub mod format {
    use super::{Entry, Irq};

    /// ICH_LR<n>_EL2 (GICv3): vINTID [31:0], pINTID [41:32], priority
    /// [55:48], group [60], HW [61], state [63:62] (pending 01, active 10).
    pub mod gicv3 {
        use super::{Entry, Irq};

        const PENDING: u64 = 1 << 62;
        const ACTIVE: u64 = 1 << 63;
        const HW: u64 = 1 << 61;
        const GROUP1: u64 = 1 << 60;

        #[inline(always)]
        pub const fn encode(e: Entry) -> u64 {
            let irq = e.irq;
            let hw = if irq.hw {
                HW | ((irq.intid as u64 & 0x3ff) << 32)
            } else {
                0
            };
            let state = (if e.pending { PENDING } else { 0 }) | (if e.active { ACTIVE } else { 0 });
            state | GROUP1 | hw | ((irq.priority as u64) << 48) | irq.intid as u64
        }

        #[inline(always)]
        pub const fn decode(lr: u64) -> Entry {
            Entry {
                irq: Irq {
                    intid: lr as u32,
                    priority: (lr >> 48) as u8,
                    hw: lr & HW != 0,
                    source: 0,
                },
                pending: lr & PENDING != 0,
                active: lr & ACTIVE != 0,
            }
        }
    }

    /// GICH_LR<n> (GICv2, the GIC-400 of the Raspberry Pi 4): VirtualID
    /// [9:0], PhysicalID [19:10] (with HW), priority [27:23] (the top five
    /// bits of the 8-bit priority), state [29:28] (pending 01, active 10),
    /// Grp1 [30] clear: a partition's interrupts are group 0 on a virtual
    /// GICv2, the group its guest enables (`vgic::regs`'s `dist_v2`), HW
    /// [31]. A 32-bit register; values are held in a u64 so both formats
    /// share the backend trait.
    pub mod gicv2 {
        use super::{Entry, Irq};

        const PENDING: u64 = 1 << 28;
        const ACTIVE: u64 = 1 << 29;
        const HW: u64 = 1 << 31;

        /// Without HW, bits 12:10 are the CPUID: an SGI's source, which the
        /// guest's GICC_IAR reads (and its EOIR gives back).
        const CPUID_SHIFT: u64 = 10;

        #[inline(always)]
        pub const fn encode(e: Entry) -> u64 {
            let irq = e.irq;
            let hw_or_source = if irq.hw {
                HW | ((irq.intid as u64 & 0x3ff) << 10)
            } else {
                (irq.source as u64 & 0x7) << CPUID_SHIFT
            };
            let state = (if e.pending { PENDING } else { 0 }) | (if e.active { ACTIVE } else { 0 });
            state | hw_or_source | (((irq.priority >> 3) as u64) << 23) | (irq.intid as u64 & 0x3ff)
        }

        #[inline(always)]
        pub const fn decode(lr: u64) -> Entry {
            let hw = lr & HW != 0;
            Entry {
                irq: Irq {
                    intid: (lr & 0x3ff) as u32,
                    priority: (((lr >> 23) & 0x1f) as u8) << 3,
                    hw,
                    source: if hw {
                        0
                    } else {
                        ((lr >> CPUID_SHIFT) & 0x7) as u8
                    },
                },
                pending: lr & PENDING != 0,
                active: lr & ACTIVE != 0,
            }
        }
    }
}

/// Room for every interrupt one partition can have: 16 SGIs, its PPI and
/// up to `state::MAX_SPIS` SPIs.
pub const QUEUE_CAPACITY: usize = 64;

/// Pending interrupts waiting for a list register, highest priority first
/// (lowest value), first come first served among equals. `repr(C)`: the
/// hypervisor's assembly fast paths read the length ([`QUEUE_LEN`]), and
/// the IRQ_UNMASK one the first interrupt ([`QUEUE_FIRST`]).
#[repr(C)]
#[derive(Clone, Debug)]
pub struct PendingQueue {
    items: [Irq; QUEUE_CAPACITY],
    len: usize,
}

/// Where a queue keeps its length and its first (most urgent) interrupt,
/// in bytes from its start.
pub const QUEUE_LEN: usize = core::mem::offset_of!(PendingQueue, len);
pub const QUEUE_FIRST: usize = core::mem::offset_of!(PendingQueue, items);

impl Default for PendingQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingQueue {
    pub const fn new() -> Self {
        Self {
            items: [Irq {
                intid: 0,
                priority: 0,
                hw: false,
                source: 0,
            }; QUEUE_CAPACITY],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the queue is, for the hypervisor's assembly fast paths (which
    /// read it at [`QUEUE_LEN`] and [`QUEUE_FIRST`]).
    pub fn address(&self) -> usize {
        core::ptr::addr_of!(*self) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether an interrupt with `intid` (from any source) is queued.
    pub fn contains(&self, intid: u32) -> bool {
        self.items[..self.len].iter().any(|i| i.intid == intid)
    }

    /// Queues `irq` in priority order; one already queued merges (and
    /// becomes forwarded if `irq` is). False only if the queue is full,
    /// which a configuration within the partition limits cannot cause.
    pub fn push(&mut self, irq: Irq) -> bool {
        if let Some(queued) = self.items[..self.len].iter_mut().find(|i| i.same(&irq)) {
            queued.hw |= irq.hw;
            return true;
        }
        if self.len == QUEUE_CAPACITY {
            return false;
        }
        let at = self.items[..self.len]
            .iter()
            .position(|i| i.priority > irq.priority)
            .unwrap_or(self.len);
        self.items.copy_within(at..self.len, at + 1);
        self.items[at] = irq;
        self.len += 1;
        true
    }

    /// The highest-priority interrupt, taken out.
    pub fn pop(&mut self) -> Option<Irq> {
        if self.len == 0 {
            return None;
        }
        let first = self.items[0];
        self.items.copy_within(1..self.len, 0);
        self.len -= 1;
        Some(first)
    }

    /// The most urgent queued interrupt that `ready` accepts, and its place.
    pub fn first_where(&self, ready: impl Fn(&Irq) -> bool) -> Option<(usize, Irq)> {
        self.items[..self.len]
            .iter()
            .enumerate()
            .find(|(_, i)| ready(i))
            .map(|(at, i)| (at, *i))
    }

    /// Takes out the interrupt at place `at` (from [`Self::first_where`]).
    pub fn take(&mut self, at: usize) -> Irq {
        let irq = self.items[at];
        // The last one (the common case: the only one) moves nothing: no
        // call to move zero bytes.
        if at + 1 < self.len {
            self.items.copy_within(at + 1..self.len, at);
        }
        self.len -= 1;
        irq
    }

    /// Keeps only the interrupts `keep` accepts, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Irq) -> bool) {
        let mut kept = 0;
        for at in 0..self.len {
            let irq = self.items[at];
            if keep(&irq) {
                self.items[kept] = irq;
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Takes `intid` out, from every source, if queued (its pending state
    /// was cleared).
    pub fn remove(&mut self, intid: u32) -> bool {
        let before = self.len;
        self.retain(|i| i.intid != intid);
        self.len != before
    }

    /// Bitmask of queued INTIDs below 32 (SGIs and PPIs), for register reads.
    pub fn private_mask(&self) -> u32 {
        self.items[..self.len]
            .iter()
            .filter(|i| i.intid < 32)
            .fold(0, |m, i| m | 1 << i.intid)
    }
}

/// What happened to an interrupt handed to [`deliver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Written to this list register.
    Listed(usize),
    /// Already pending in a list register or the queue: merged.
    Merged,
    /// Waiting in the queue (every list register holds something more urgent).
    Queued,
    /// The queue was full: only possible with more interrupts than a
    /// partition can own. The caller reports it; the interrupt stays
    /// pending in the vGIC state.
    Full,
}

/// Delivers `irq` to the vCPU whose list registers are `lrs`. Afterwards,
/// when `queue` is not empty, the caller must have the underflow
/// maintenance interrupt enabled.
#[inline]
pub fn deliver(lrs: &mut impl ListRegisters, queue: &mut PendingQueue, irq: Irq) -> Delivery {
    // Already waiting in the queue: its pending state is there (a list
    // register may hold it active meanwhile); it merges there.
    if queue.contains(irq.intid) {
        queue.push(irq); // merges, forwarded if either is
        return Delivery::Merged;
    }
    let all = (1u64 << lrs.count()) - 1;
    let empty = lrs.empty() & all;
    // Already held? A pending one merges; an active one (not forwarded) also
    // becomes pending, as the GIC keeps "active and pending".
    let mut used = all & !empty;
    let mut victim: Option<(usize, u8)> = None;
    while used != 0 {
        let n = used.trailing_zeros() as usize;
        used &= used - 1;
        let entry = lrs.read(n);
        let held = entry.irq;
        if held.same(&irq) {
            return merge(lrs, queue, n, entry, irq, true);
        }
        // The least urgent pending-only entry is the one to push back.
        if !entry.active && victim.is_none_or(|(_, p)| held.priority > p) {
            victim = Some((n, held.priority));
        }
    }
    if empty != 0 {
        let n = empty.trailing_zeros() as usize;
        lrs.write(n, Entry::pending(irq));
        return Delivery::Listed(n);
    }
    match victim {
        Some((n, priority)) if priority > irq.priority => {
            let evicted = lrs.read(n).irq;
            if !queue.push(evicted) {
                return Delivery::Full;
            }
            lrs.write(n, Entry::pending(irq));
            Delivery::Listed(n)
        }
        _ if queue.push(irq) => Delivery::Queued,
        _ => Delivery::Full,
    }
}

/// `irq` offered while a list register holds its INTID: merged there, or
/// queued behind it (never a second list register). With `may_list`
/// false (the vCPU is masked) no pending state is added to a list
/// register. `None` if no list register holds the INTID.
pub fn offer_held(
    lrs: &mut impl ListRegisters,
    queue: &mut PendingQueue,
    irq: Irq,
    may_list: bool,
) -> Option<Delivery> {
    let (n, entry) = held_indexed(lrs).find(|(_, e)| e.irq.same(&irq))?;
    Some(merge(lrs, queue, n, entry, irq, may_list))
}

/// `irq` raised while list register `n` holds `entry`, the same INTID.
fn merge(
    lrs: &mut impl ListRegisters,
    queue: &mut PendingQueue,
    n: usize,
    entry: Entry,
    irq: Irq,
    may_list: bool,
) -> Delivery {
    let queued = |queue: &mut PendingQueue| {
        if queue.push(irq) {
            Delivery::Queued
        } else {
            Delivery::Full
        }
    };
    match (entry.pending, entry.active) {
        // Pending is one bit: a forwarded raise makes the entry forwarded.
        (true, false) => {
            if irq.hw && !entry.irq.hw {
                let hw = Irq {
                    hw: true,
                    ..entry.irq
                };
                lrs.write(n, Entry::pending(hw));
            }
            Delivery::Merged
        }
        // Active and pending in software: a forwarded raise cannot join a
        // forwarded entry's pending state there; the pending instance
        // waits in the queue, forwarded, until the active one is done.
        (true, true) if irq.hw => {
            lrs.write(
                n,
                Entry {
                    pending: false,
                    ..entry
                },
            );
            queued(queue)
        }
        (true, true) => Delivery::Merged,
        // Active only: software becomes active and pending, as the GIC
        // keeps both; a forwarded entry, or a forwarded raise, may not be
        // both, so it waits.
        _ if !entry.irq.hw && !irq.hw && may_list => {
            lrs.write(
                n,
                Entry {
                    pending: true,
                    ..entry
                },
            );
            Delivery::Merged
        }
        _ => queued(queue),
    }
}

/// Moves queued interrupts into list registers, most urgent first: into
/// free ones, and in place of a pending (not active) entry that is less
/// urgent, which goes back to the queue. One whose INTID a list register
/// still holds joins that entry when both are software (the entry becomes
/// pending too, active and pending if the guest is handling it, as a GIC
/// keeps both and as [`deliver`] would have made it had it not waited:
/// behind the mask flag, say); a forwarded one waits for it (see
/// [`waits_for_free`]). Afterwards the invariant holds again. Returns
/// whether the queue still holds some that wait for a free list register
/// (keep underflow enabled).
#[inline]
pub fn refill(lrs: &mut impl ListRegisters, queue: &mut PendingQueue) -> bool {
    join_held(lrs, queue);
    let all = (1u64 << lrs.count()) - 1;
    while let Some((at, best)) = queue.first_where(|irq| !held(lrs).any(|e| e.irq.same(irq))) {
        let empty = lrs.empty() & all;
        if empty != 0 {
            queue.take(at);
            lrs.write(empty.trailing_zeros() as usize, Entry::pending(best));
            continue;
        }
        // Every register is busy: replace the least urgent pending-only one
        // if the queue's best beats it.
        let worst = held_indexed(lrs)
            .filter(|(_, e)| e.pending && !e.active)
            .max_by_key(|(n, e)| (e.irq.priority, *n));
        match worst {
            Some((n, e)) if e.irq.priority > best.priority => {
                queue.take(at);
                lrs.write(n, Entry::pending(best));
                // Cannot fail: one out, one in.
                queue.push(e.irq);
            }
            _ => break,
        }
    }
    waits_for_free(lrs, queue)
}

/// Whether `queue` holds an interrupt that only a free list register lets
/// in: one whose INTID no list register holds. The underflow maintenance
/// interrupt (at most one list register in use) is for those alone. One
/// that waits for its INTID's entry (a forwarded interrupt behind its own
/// active instance) must not ask for it: while that entry is the only one
/// in use the interrupt would fire again and again, the guest never run
/// to end the entry (a guest that acknowledged an interrupt and masked
/// itself kept its CPU in EL2 for good that way). It goes in at the next
/// flush or delivery after the entry is gone.
pub fn waits_for_free(lrs: &impl ListRegisters, queue: &PendingQueue) -> bool {
    !queue.is_empty()
        && queue
            .first_where(|irq| !held(lrs).any(|e| e.irq.same(irq)))
            .is_some()
}

/// Queued software interrupts that a software list register entry holds
/// (the same INTID and source) join it: the entry becomes pending (the queued one's pending
/// state is one bit, already there or now there), active or not.
fn join_held(lrs: &mut impl ListRegisters, queue: &mut PendingQueue) {
    if queue.is_empty() {
        return;
    }
    for n in Used::of(lrs) {
        let entry = lrs.read(n);
        if entry.irq.hw {
            continue;
        }
        if let Some((at, _)) = queue.first_where(|irq| irq.same(&entry.irq) && !irq.hw) {
            queue.take(at);
            lrs.write(
                n,
                Entry {
                    pending: true,
                    ..entry
                },
            );
        }
    }
}

fn held_indexed(lrs: &impl ListRegisters) -> impl Iterator<Item = (usize, Entry)> + '_ {
    Used::of(lrs).map(|n| (n, lrs.read(n)))
}

/// The list registers in use, by number, as they were when made: the
/// caller may write them meanwhile.
struct Used(u64);

impl Used {
    fn of(lrs: &impl ListRegisters) -> Used {
        let all = (1u64 << lrs.count()) - 1;
        Used(all & !lrs.empty())
    }
}

impl Iterator for Used {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let n = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(n)
    }
}

/// The interrupts the list registers hold.
pub fn held(lrs: &impl ListRegisters) -> impl Iterator<Item = Entry> + '_ {
    held_indexed(lrs).map(|(_, e)| e)
}

/// Pending and active bits of the SGIs and PPIs held in the list registers.
pub fn private_state(lrs: &impl ListRegisters) -> (u32, u32) {
    held(lrs)
        .filter(|e| e.irq.intid < 32)
        .fold((0, 0), |(p, a), e| {
            let bit = 1 << e.irq.intid;
            (
                p | if e.pending { bit } else { 0 },
                a | if e.active { bit } else { 0 },
            )
        })
}

/// Whether a list register holds a forwarded interrupt that `watched`
/// names, pending and not yet acknowledged by the guest.
pub fn holds_pending_hw(lrs: &impl ListRegisters, mut watched: impl FnMut(u32) -> bool) -> bool {
    held(lrs).any(|e| e.pending && !e.active && e.irq.hw && watched(e.irq.intid))
}

/// Takes out of the list registers every forwarded interrupt pending and
/// not yet acknowledged by the guest that `dropped` says is no longer
/// pending at its source (the caller deactivates it physically); its list
/// register is free again. An active one stays: the guest has taken it.
pub fn withdraw_pending_hw(lrs: &mut impl ListRegisters, mut dropped: impl FnMut(&Irq) -> bool) {
    for n in Used::of(lrs) {
        let entry = lrs.read(n);
        if entry.pending && !entry.active && entry.irq.hw && dropped(&entry.irq) {
            lrs.write(
                n,
                Entry {
                    pending: false,
                    ..entry
                },
            );
        }
    }
}

/// A fake list-register bank for host tests of the policies built on it.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Entry, ListRegisters, format};

    /// Four list registers like QEMU's GICv3, stored in the GICv3 format so
    /// the tests also run the encoding.
    #[derive(Default)]
    pub(crate) struct FakeLrs(pub(crate) [u64; 4]);

    impl ListRegisters for FakeLrs {
        fn count(&self) -> usize {
            4
        }
        fn empty(&self) -> u64 {
            (0..4)
                .filter(|&n| {
                    let e = self.read(n);
                    !e.pending && !e.active
                })
                .fold(0, |m, n| m | 1 << n)
        }
        fn read(&self, n: usize) -> Entry {
            format::gicv3::decode(self.0[n])
        }
        fn write(&mut self, n: usize, entry: Entry) {
            self.0[n] = format::gicv3::encode(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Four list registers, like QEMU's GICv3, with a guest that can
    /// acknowledge (highest priority pending becomes active) and end
    /// (the active one is dropped) as a virtual CPU interface would.
    use super::testing::FakeLrs;

    impl FakeLrs {
        /// The guest acknowledges and completes the most urgent pending
        /// interrupt; returns its INTID.
        fn guest_takes_one(&mut self) -> Option<u32> {
            let n = (0..4)
                .filter(|&n| self.read(n).pending)
                .min_by_key(|&n| (self.read(n).irq.priority, n))?;
            let intid = self.read(n).irq.intid;
            // Acknowledge and EOI: the entry is invalid again.
            let done = Entry {
                pending: false,
                active: false,
                ..self.read(n)
            };
            self.write(n, done);
            Some(intid)
        }
    }

    fn sgi(intid: u32, priority: u8) -> Irq {
        Irq {
            intid,
            priority,
            hw: false,
            source: 0,
        }
    }

    #[test]
    fn gicv3_list_register_values_have_the_architected_layout() {
        use format::gicv3::{decode, encode};
        let timer = Entry::pending(Irq {
            intid: 27,
            priority: 0xa0,
            hw: true,
            source: 0,
        });
        let v = encode(timer);
        assert_eq!(
            v,
            (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (27 << 32) | 27
        );
        assert_eq!(decode(v), timer);
        let both = Entry {
            pending: true,
            active: true,
            irq: sgi(3, 0x80),
        };
        assert_eq!(encode(both) >> 61, 0b110, "pending+active, no HW");
        assert_eq!(decode(encode(both)), both);
    }

    #[test]
    fn gicv2_list_register_values_have_the_architected_layout() {
        use format::gicv2::{decode, encode};
        // The virtual timer forwarded with HW, priority 0xa0 (5 bits kept).
        let timer = Entry::pending(Irq {
            intid: 27,
            priority: 0xa0,
            hw: true,
            source: 0,
        });
        let v = encode(timer);
        assert_eq!(v, (1 << 31) | (1 << 28) | (0x14 << 23) | (27 << 10) | 27);
        assert!(v <= u64::from(u32::MAX), "a 32-bit register");
        assert_eq!(decode(v), timer);
        // Priorities keep their top five bits, as the GIC-400 implements.
        let sgi = Entry {
            pending: true,
            active: true,
            irq: sgi(3, 0x87),
        };
        assert_eq!(decode(encode(sgi)).irq.priority, 0x80);
        assert_eq!(
            encode(sgi) >> 28,
            0b0011,
            "group 0, active and pending, no HW"
        );
        // An SGI's source is the CPUID, bits 12:10, kept both ways.
        let from_5 = Entry::pending(Irq {
            intid: 3,
            priority: 0x80,
            hw: false,
            source: 5,
        });
        assert_eq!(encode(from_5) & 0x1fff, 5 << 10 | 3);
        assert_eq!(decode(encode(from_5)), from_5);
    }

    /// On a GICv2 an SGI from two sources is two interrupts: each has its
    /// own list register (or place in the queue); the same source again
    /// merges with itself.
    /// Four list registers in the GICv2 format (which keeps an SGI's
    /// source; the GICv3 one has none).
    #[derive(Default)]
    struct FakeLrsV2([u64; 4]);

    impl ListRegisters for FakeLrsV2 {
        fn count(&self) -> usize {
            4
        }
        fn empty(&self) -> u64 {
            (0..4)
                .filter(|&n| self.0[n] & (0b11 << 28) == 0)
                .fold(0, |m, n| m | 1 << n)
        }
        fn read(&self, n: usize) -> Entry {
            format::gicv2::decode(self.0[n])
        }
        fn write(&mut self, n: usize, entry: Entry) {
            self.0[n] = format::gicv2::encode(entry);
        }
    }

    /// An SGI carries its source into its list register; a second source
    /// of the same SGI merges with the instance listed (never a second
    /// list register for one SGI number), as in the queue.
    #[test]
    fn an_sgi_is_in_one_list_register_whatever_its_sources() {
        let (mut lrs, mut q) = (FakeLrsV2::default(), PendingQueue::new());
        let from = |source| Irq {
            source,
            ..sgi(3, 0x80)
        };
        assert_eq!(deliver(&mut lrs, &mut q, from(1)), Delivery::Listed(0));
        assert_eq!(lrs.read(0).irq.source, 1, "the CPUID the guest reads");
        assert_eq!(deliver(&mut lrs, &mut q, from(2)), Delivery::Merged);
        assert_eq!(lrs.empty(), 0b1110, "one list register");
        for n in 1..4 {
            assert_eq!(
                deliver(&mut lrs, &mut q, sgi(n as u32 + 3, 0x80)),
                Delivery::Listed(n)
            );
        }
        assert_eq!(deliver(&mut lrs, &mut q, sgi(9, 0x80)), Delivery::Queued);
        assert_eq!(
            deliver(
                &mut lrs,
                &mut q,
                Irq {
                    source: 2,
                    ..sgi(9, 0x80)
                }
            ),
            Delivery::Merged
        );
        assert!(q.contains(9) && q.len() == 1);
        // Withdrawing an SGI takes it out of the queue.
        assert!(q.remove(9));
        assert!(q.is_empty());
    }

    #[test]
    fn free_registers_first_then_the_queue_in_priority_order() {
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        for i in 0..4 {
            assert_eq!(
                deliver(&mut lrs, &mut q, sgi(i, 0x80)),
                Delivery::Listed(i as usize)
            );
        }
        assert_eq!(deliver(&mut lrs, &mut q, sgi(4, 0x90)), Delivery::Queued);
        assert_eq!(deliver(&mut lrs, &mut q, sgi(5, 0x88)), Delivery::Queued);
        assert_eq!(q.len(), 2);
        // The same interrupt again merges wherever it is.
        assert_eq!(deliver(&mut lrs, &mut q, sgi(2, 0x80)), Delivery::Merged);
        assert_eq!(deliver(&mut lrs, &mut q, sgi(4, 0x90)), Delivery::Merged);
        // The guest handles one; refill brings the most urgent queued (5).
        lrs.guest_takes_one();
        assert!(refill(&mut lrs, &mut q));
        assert!(held(&lrs).any(|e| e.irq.intid == 5));
        assert_eq!(q.pop().map(|i| i.intid), Some(4));
    }

    #[test]
    fn a_more_urgent_interrupt_pushes_the_least_urgent_back() {
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        for (i, p) in [(0, 0x80), (1, 0xc0), (2, 0x90), (3, 0xa0)] {
            deliver(&mut lrs, &mut q, sgi(i, p));
        }
        assert_eq!(deliver(&mut lrs, &mut q, sgi(9, 0x10)), Delivery::Listed(1));
        assert_eq!(q.pop(), Some(sgi(1, 0xc0)));
    }

    /// Only a more urgent interrupt pushes a listed one back: one of equal
    /// priority waits in the queue. Of several equally least urgent, the
    /// first listed goes back.
    #[test]
    fn an_equally_urgent_interrupt_waits_and_the_first_least_urgent_goes_back() {
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        for (i, p) in [(0, 0x80), (1, 0xc0), (2, 0xc0), (3, 0xa0)] {
            deliver(&mut lrs, &mut q, sgi(i, p));
        }
        assert_eq!(deliver(&mut lrs, &mut q, sgi(9, 0xc0)), Delivery::Queued);
        assert_eq!(q.pop(), Some(sgi(9, 0xc0)));
        assert_eq!(deliver(&mut lrs, &mut q, sgi(8, 0xb0)), Delivery::Listed(1));
        assert_eq!(q.pop(), Some(sgi(1, 0xc0)));
    }

    /// The register reads see the private interrupts the list registers
    /// hold, pending and active apart, and no SPI.
    #[test]
    fn private_state_reads_sgis_and_ppis_only() {
        let mut lrs = FakeLrs::default();
        let entry = |intid, pending, active| Entry {
            pending,
            active,
            irq: sgi(intid, 0x80),
        };
        lrs.write(0, entry(3, false, true));
        lrs.write(1, entry(32, true, true));
        lrs.write(2, entry(31, true, false));
        lrs.write(3, entry(5, true, true));
        assert_eq!(
            private_state(&lrs),
            ((1 << 31) | (1 << 5), (1 << 3) | (1 << 5))
        );
    }

    #[test]
    fn the_queue_retains_in_order_and_its_private_mask_stops_at_32() {
        let mut q = PendingQueue::new();
        for (i, p) in [(3, 0x10), (32, 0x20), (31, 0x30), (4, 0x40), (0, 0x50)] {
            assert!(q.push(sgi(i, p)));
        }
        assert_eq!(q.private_mask(), (1 << 0) | (1 << 3) | (1 << 4) | (1 << 31));
        q.retain(|i| i.intid != 4 && i.intid != 3);
        assert_eq!(q.len(), 3);
        let order: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|i| i.intid).collect();
        assert_eq!(order, [32, 31, 0]);
    }

    #[test]
    fn an_active_interrupt_raised_again_becomes_active_and_pending() {
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        deliver(&mut lrs, &mut q, sgi(1, 0x80));
        let acked = Entry {
            pending: false,
            active: true,
            ..lrs.read(0)
        };
        lrs.write(0, acked);
        assert_eq!(deliver(&mut lrs, &mut q, sgi(1, 0x80)), Delivery::Merged);
        assert_eq!(
            lrs.read(0),
            Entry {
                pending: true,
                active: true,
                irq: sgi(1, 0x80)
            }
        );
        assert_eq!(private_state(&lrs), (1 << 1, 1 << 1));
    }

    #[test]
    fn sixteen_sgis_reach_the_guest_in_priority_order_once_each() {
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        for n in 0..16 {
            deliver(&mut lrs, &mut q, sgi(n, (((n * 7) % 16) * 8) as u8));
        }
        let mut order = Vec::new();
        while let Some(intid) = lrs.guest_takes_one() {
            order.push(intid);
            refill(&mut lrs, &mut q);
        }
        let mut expected: Vec<u32> = (0..16).collect();
        expected.sort_by_key(|n| (n * 7) % 16);
        assert_eq!(order, expected);
        assert!(q.is_empty());
    }

    proptest! {
        /// Any interleaving of arrivals and guest handling: every interrupt
        /// raised is handled exactly once per raising that was not merged
        /// into a still-pending one, and whenever the guest takes one it is
        /// the most urgent of all that are pending anywhere.
        #[test]
        fn nothing_lost_nothing_twice_always_most_urgent_first(
            steps in proptest::collection::vec((any::<bool>(), 0u32..20, 0u8..8), 1..200)
        ) {
            let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
            let priority = |intid: u32| ((intid * 5 % 8) as u8) << 4;
            let mut pending = std::collections::BTreeSet::new();
            for (arrive, intid, _) in steps {
                if arrive {
                    deliver(&mut lrs, &mut q, sgi(intid, priority(intid)));
                    pending.insert(intid);
                } else if let Some(taken) = lrs.guest_takes_one() {
                    let best = pending.iter().map(|&i| priority(i)).min().unwrap();
                    prop_assert_eq!(priority(taken), best);
                    prop_assert!(pending.remove(&taken));
                    refill(&mut lrs, &mut q);
                } else {
                    prop_assert!(pending.is_empty() && q.is_empty());
                }
            }
            while let Some(taken) = lrs.guest_takes_one() {
                prop_assert!(pending.remove(&taken));
                refill(&mut lrs, &mut q);
            }
            prop_assert!(pending.is_empty());
        }
    }

    /// The assembly fast paths read the length and the first interrupt at
    /// these offsets from the queue's address (checked without
    /// dereferencing it, so the module stays free of unsafe code).
    #[test]
    fn the_fast_paths_find_the_length_and_the_first_interrupt() {
        let mut q = PendingQueue::new();
        q.push(Irq {
            intid: 3,
            priority: 0x80,
            hw: false,
            source: 0,
        });
        assert_eq!((q.len, q.len()), (1, 1));
        let at = |field: usize| field - q.address();
        assert_eq!(at(core::ptr::addr_of!(q.len) as usize), QUEUE_LEN);
        assert_eq!(at(core::ptr::addr_of!(q.items[0]) as usize), QUEUE_FIRST);
    }

    #[test]
    fn the_queue_keeps_order_removes_and_reports_its_private_bits() {
        let mut q = PendingQueue::new();
        for (i, p) in [(40, 0x80), (3, 0x40), (27, 0x80), (5, 0xf0)] {
            assert!(q.push(sgi(i, p)));
        }
        assert_eq!(q.private_mask(), (1 << 3) | (1 << 27) | (1 << 5));
        assert!(q.remove(27));
        assert!(!q.remove(27));
        let order: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|i| i.intid).collect();
        assert_eq!(order, [3, 40, 5]);
        for i in 0..QUEUE_CAPACITY as u32 {
            assert!(q.push(sgi(i, 0)));
        }
        assert!(!q.push(sgi(1000, 0)));
    }

    /// A level forwarded SPI whose line dropped before the guest took it
    /// leaves its list register (the caller deactivates it); one whose
    /// line is still high, one the guest already took (active), a software
    /// one and another INTID stay.
    #[test]
    fn pending_forwarded_interrupts_whose_source_dropped_are_withdrawn() {
        let hw = |intid| Irq {
            intid,
            priority: 0x80,
            hw: true,
            source: 0,
        };
        let mut lrs = FakeLrs::default();
        lrs.write(0, Entry::pending(hw(34)));
        lrs.write(1, Entry::pending(hw(35)));
        lrs.write(
            2,
            Entry {
                irq: hw(36),
                pending: false,
                active: true,
            },
        );
        lrs.write(3, Entry::pending(sgi(34 + 3, 0x80)));
        let level = |intid: u32| (34..=37).contains(&intid);
        assert!(holds_pending_hw(&lrs, level));
        assert!(!holds_pending_hw(&lrs, |intid| intid == 36));
        let line_low = [34, 36, 37];
        let mut asked = Vec::new();
        withdraw_pending_hw(&mut lrs, |irq| {
            asked.push(irq.intid);
            line_low.contains(&irq.intid)
        });
        assert_eq!(asked, [34, 35], "only pending forwarded entries are asked");
        assert_eq!(lrs.empty(), 0b0001);
        assert_eq!(lrs.read(1), Entry::pending(hw(35)));
        assert!(lrs.read(2).active && lrs.read(3).pending);
        assert!(holds_pending_hw(&lrs, level));
        withdraw_pending_hw(&mut lrs, |_| true);
        assert!(!holds_pending_hw(&lrs, level));
        assert_eq!(lrs.empty(), 0b0011);
    }

    /// A software interrupt that waited in the queue (behind the mask flag)
    /// while the guest handled an earlier instance (its entry active) joins
    /// that entry as active and pending: taken again after the guest ends
    /// it, and no underflow asked for meanwhile.
    #[test]
    fn a_queued_interrupt_behind_its_own_active_entry_joins_it() {
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        lrs.write(
            0,
            Entry {
                irq: sgi(6, 0x80),
                pending: false,
                active: true,
            },
        );
        assert!(q.push(sgi(6, 0x80)));
        assert!(!refill(&mut lrs, &mut q), "nothing waits for a free one");
        assert!(q.is_empty());
        assert_eq!(
            lrs.read(0),
            Entry {
                irq: sgi(6, 0x80),
                pending: true,
                active: true,
            }
        );
        assert_eq!(lrs.empty(), 0b1110, "no second entry for it");
    }

    /// A forwarded interrupt behind its own active entry waits for it
    /// without the underflow interrupt, which would fire for as long as
    /// that entry is the only one in use. Another one in the queue still
    /// asks for a free register, and so does the first once the guest
    /// ended its entry.
    #[test]
    fn a_forwarded_interrupt_behind_its_active_entry_asks_for_no_underflow() {
        let hw = |intid| Irq {
            intid,
            priority: 0x80,
            hw: true,
            source: 0,
        };
        let (mut lrs, mut q) = (FakeLrs::default(), PendingQueue::new());
        let active = Entry {
            irq: hw(27),
            pending: false,
            active: true,
        };
        lrs.write(0, active);
        assert!(q.push(hw(27)));
        assert!(!refill(&mut lrs, &mut q));
        assert!(!waits_for_free(&lrs, &q));
        assert_eq!((q.len(), lrs.read(0)), (1, active));
        // Every other register busy and more urgent: 5 waits for a free one.
        for n in 1..4 {
            lrs.write(n, Entry::pending(sgi(n as u32, 0x10)));
        }
        assert!(q.push(sgi(5, 0x40)));
        assert!(refill(&mut lrs, &mut q));
        // The guest ends 27: the more urgent 5 takes its register, and 27
        // now waits for a free one like any other.
        lrs.write(
            0,
            Entry {
                active: false,
                ..active
            },
        );
        assert!(refill(&mut lrs, &mut q));
        assert_eq!(lrs.read(0), Entry::pending(sgi(5, 0x40)));
        assert_eq!(q.pop().map(|i| i.intid), Some(27));
    }
}
