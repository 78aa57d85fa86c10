//! Who may touch a CPU's list registers, when another CPU can reach them
//! (the GIC-400's GICH aliases): the protocol behind one-exit IPIs, kept
//! here, apart from the registers, so that it is tested on the host.
//!
//! A CPU's list registers belong to its own EL2 from its guest's exit to
//! the next entry (and whenever it runs no guest): [`LrOwner::claim`] on
//! every exit, [`LrOwner::open`] as the last thing before ERET. While its
//! guest runs, one other CPU at a time may take them with
//! [`LrOwner::try_remote`], a compare-and-swap that fails rather than
//! waits: the sender then falls back to queueing and kicking, as on a GIC
//! without aliases. The owner's exit waits only for such a listing to end:
//! a few register accesses by a vCPU of its own partition (SGIs never
//! cross partitions), so no partition can make another's EL2 wait, and the
//! sender never waits at all.

use core::sync::atomic::{AtomicU32, Ordering};

/// Its own EL2 holds the list registers.
const EL2: u32 = 0;
/// Its guest runs: another CPU may take them.
const GUEST: u32 = 1;
/// Another CPU is listing an interrupt there.
const REMOTE: u32 = 2;

/// One CPU's list registers' owner.
#[derive(Debug)]
pub struct LrOwner(AtomicU32);

impl Default for LrOwner {
    fn default() -> Self {
        Self::new()
    }
}

impl LrOwner {
    /// Held by its own EL2 (boot: no guest runs yet).
    pub const fn new() -> Self {
        Self(AtomicU32::new(EL2))
    }

    /// Its CPU's exit: takes the list registers back, after the listing in
    /// progress, if any. What that listing wrote is visible once this
    /// returns (acquire; the backend completes its device accesses too).
    /// Returns whether it had to wait.
    pub fn claim(&self) -> bool {
        let mut waited = false;
        loop {
            match self
                .0
                .compare_exchange(GUEST, EL2, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return waited,
                Err(EL2) => return waited,
                Err(_) => {
                    waited = true;
                    core::hint::spin_loop();
                }
            }
        }
    }

    /// Its CPU's entry into its guest: the list registers are open to one
    /// other CPU at a time until the next [`LrOwner::claim`]. Everything
    /// this CPU wrote before is visible to that CPU (release).
    pub fn open(&self) {
        self.0.store(GUEST, Ordering::Release);
    }

    /// From another CPU: runs `list` with the list registers, if their
    /// guest runs and nobody else has them, and gives its result; `None`
    /// without running it otherwise. Never waits.
    pub fn try_remote<T>(&self, list: impl FnOnce() -> T) -> Option<T> {
        self.0
            .compare_exchange(GUEST, REMOTE, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let result = list();
        self.0.store(GUEST, Ordering::Release);
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn only_a_running_guests_registers_can_be_taken() {
        let owner = LrOwner::new();
        assert_eq!(owner.try_remote(|| 1), None, "EL2 holds them at boot");
        owner.open();
        assert_eq!(owner.try_remote(|| 2), Some(2));
        assert_eq!(
            owner.try_remote(|| 3),
            Some(3),
            "given back after each listing"
        );
        assert!(!owner.claim(), "nothing in progress: no wait");
        assert_eq!(owner.try_remote(|| 4), None, "EL2 holds them again");
        assert!(!owner.claim(), "claiming twice is harmless");
    }

    /// A target CPU that exits and enters again and again, consuming what
    /// was listed for it, against senders that list through the owner or
    /// else queue (the kick path): every interrupt arrives exactly once,
    /// and nobody touches the registers while another does.
    #[test]
    fn every_interrupt_is_listed_or_queued_once_and_never_under_two_hands() {
        const SENDERS: u64 = 3;
        const EACH: u64 = 100_000;
        struct Cpu {
            owner: LrOwner,
            /// The "list registers": a bitmap of interrupts listed.
            lrs: AtomicU64,
            /// Hands on the registers now: must never exceed one.
            hands: AtomicU32,
            /// The queue-and-kick path's tally.
            queued: AtomicU64,
        }
        let cpu = Arc::new(Cpu {
            owner: LrOwner::new(),
            lrs: AtomicU64::new(0),
            hands: AtomicU32::new(0),
            queued: AtomicU64::new(0),
        });
        let touch = |cpu: &Cpu| {
            assert_eq!(cpu.hands.fetch_add(1, Ordering::SeqCst), 0, "two hands");
            for _ in 0..8 {
                std::hint::spin_loop();
            }
            cpu.hands.fetch_sub(1, Ordering::SeqCst);
        };
        let senders_done = Arc::new(AtomicU32::new(0));
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let cpu = Arc::clone(&cpu);
                let senders_done = Arc::clone(&senders_done);
                std::thread::spawn(move || {
                    let mut listed = 0u64;
                    for _ in 0..EACH {
                        let bit = 1u64 << s;
                        let done = cpu.owner.try_remote(|| {
                            touch(&cpu);
                            // Listed only where no entry of it waits.
                            let lrs = cpu.lrs.load(Ordering::Relaxed);
                            if lrs & bit == 0 {
                                cpu.lrs.store(lrs | bit, Ordering::Relaxed);
                                true
                            } else {
                                false
                            }
                        });
                        if done == Some(true) {
                            listed += 1;
                        } else {
                            cpu.queued.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    senders_done.fetch_add(1, Ordering::SeqCst);
                    listed
                })
            })
            .collect();
        let target = {
            let cpu = Arc::clone(&cpu);
            let senders_done = Arc::clone(&senders_done);
            std::thread::spawn(move || {
                let mut taken = 0u64;
                loop {
                    // Read before the round: a round that starts after the
                    // last sender finished is the last one.
                    let last = senders_done.load(Ordering::SeqCst) == SENDERS as u32;
                    cpu.owner.open();
                    std::thread::yield_now();
                    cpu.owner.claim();
                    touch(&cpu);
                    // The guest took what was listed (plain accesses: the
                    // owner's ordering alone makes them safe).
                    let lrs = cpu.lrs.load(Ordering::Relaxed);
                    taken += u64::from(lrs.count_ones());
                    cpu.lrs.store(0, Ordering::Relaxed);
                    if last {
                        return taken;
                    }
                }
            })
        };
        let listed: u64 = senders.into_iter().map(|t| t.join().unwrap()).sum();
        let taken = target.join().unwrap();
        let queued = cpu.queued.load(Ordering::SeqCst);
        assert_eq!(listed + queued, SENDERS * EACH, "each sent once, one way");
        assert_eq!(taken, listed, "each listed one taken once");
        assert!(listed > 0, "the remote path ran ({queued} queued)");
    }
}
