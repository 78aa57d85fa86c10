//! guest-lib's implementation of the `critical-section` crate (feature
//! `critical-section-impl`, on by default), so that crates built on it
//! (`critical_section::Mutex`, heapless, embassy's sync, ...) work in a guest.
//!
//! The crate requires mutual exclusion across all cores, not only against
//! this CPU's handlers. `acquire` therefore [`irq::mask`]s this CPU and then
//! takes one spin lock shared by the guest's CPUs; a nested `acquire` on the
//! CPU that holds the lock does not take it again. The restore state (a
//! `u32`) is the mask state plus one bit saying whether this `acquire` took
//! the lock; `release` frees the lock only then, and unmasks as the mask
//! state says. Masking comes first, so no handler on this CPU can try to
//! take the lock its own CPU holds.

use core::hint::spin_loop;
use core::sync::atomic::{AtomicU32, Ordering};

use critical_section::RawRestoreState;

use crate::arch;
use crate::irq::{self, MaskState};

/// Who holds the lock: 0 = nobody, else CPU index + 1.
static OWNER: AtomicU32 = AtomicU32::new(0);
/// Restore state bit: this `acquire` took the lock (never set in a
/// `MaskState`'s raw value).
const TOOK_LOCK: u32 = 1 << 30;

struct GuestLibCriticalSection;
critical_section::set_impl!(GuestLibCriticalSection);

// SAFETY: `acquire` masks this CPU's interrupts and, unless this CPU holds
// the lock already, takes a lock shared by all CPUs of the guest, so code
// between `acquire` and `release` runs on one CPU at a time with no handler
// interleaved; nested calls are balanced by the restore state.
unsafe impl critical_section::Impl for GuestLibCriticalSection {
    unsafe fn acquire() -> RawRestoreState {
        let state = irq::mask().into_raw();
        let me = arch::cpu_index() as u32 + 1;
        // Only this CPU ever stores `me`: if it reads it, it holds the lock.
        if OWNER.load(Ordering::Relaxed) == me {
            return state;
        }
        loop {
            if OWNER
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return state | TOOK_LOCK;
            }
            while OWNER.load(Ordering::Relaxed) != 0 {
                spin_loop();
            }
        }
    }

    unsafe fn release(state: RawRestoreState) {
        if state & TOOK_LOCK != 0 {
            OWNER.store(0, Ordering::Release);
        }
        irq::unmask(MaskState::from_raw(state & !TOOK_LOCK));
    }
}
