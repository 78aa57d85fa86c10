//! Each CPU's private block, whose address is in TPIDR_EL1.
//!
//! `boot.S` points TPIDR_EL1 at `BLOCKS[MPIDR.Aff0]` on every CPU before any
//! Rust runs (its reset value is UNKNOWN), and nothing changes it after. The
//! block holds what the interrupt mask fast path ([`crate::irq::mask`],
//! [`crate::irq::unmask`]) and the IRQ vector need, so that each reaches it
//! in two instructions: `mrs x, tpidr_el1` and one `ldp` of the mask word's
//! address and this vCPU's bit (for mask) or its complement (for unmask,
//! which clears with `and` and tests the pending word with `bics`).
//!
//! Layout (an ABI with `vectors.S`, which uses the offsets below):
//!
//! | offset | field       | meaning                                                 |
//! |--------|-------------|---------------------------------------------------------|
//! | 0      | `mask_word` | address of the control page's mask word; 0 = use DAIF   |
//! | 8      | `bit`       | `1 << vCPU index`, this vCPU's bit in mask and pending  |
//! | 16     | `mask_word2`| the same address again, paired with ...                 |
//! | 24     | `not_bit`   | `!bit` (32 bits, zero-extended)                         |
//! | 32     | `lazy`      | non-zero: the IRQ vector found the mask bit set and     |
//! |        |             | masked the interrupted context with PSTATE.I instead    |
//!
//! All but `lazy` are written only by their own CPU, once, in
//! [`init_this_cpu`] (with IRQs masked, before anything masks), and only read
//! after. `lazy` is written by the IRQ vector and by `unmask`, both on their
//! own CPU.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::{self, MAX_CPUS};

/// log2 of a block's size: one 64-byte cache line each, so that CPUs never
/// share a line.
pub(crate) const SHIFT: usize = 6;

#[repr(C, align(64))]
pub(crate) struct PerCpu {
    mask_word: UnsafeCell<usize>,
    bit: UnsafeCell<u64>,
    mask_word2: UnsafeCell<usize>,
    not_bit: UnsafeCell<u64>,
    /// Written by `vectors.S` as a 32-bit word.
    pub(crate) lazy: AtomicU32,
}

// SAFETY: each block is only written by its own CPU (see the module
// documentation): all but `lazy` once before any reader on that CPU, `lazy`
// atomically. Other CPUs never touch another CPU's block.
unsafe impl Sync for PerCpu {}

pub(crate) const OFFSET_MASK_WORD: usize = offset_of!(PerCpu, mask_word);
pub(crate) const OFFSET_LAZY: usize = offset_of!(PerCpu, lazy);
const _: () = assert!(size_of::<PerCpu>() == 1 << SHIFT);
// The `ldp` pairs, and the offsets vectors.S relies on.
const _: () = assert!(OFFSET_MASK_WORD == 0 && offset_of!(PerCpu, bit) == 8);
const _: () = assert!(offset_of!(PerCpu, mask_word2) == 16 && offset_of!(PerCpu, not_bit) == 24);
const _: () = assert!(OFFSET_LAZY == 32);

/// The blocks, indexed by MPIDR.Aff0 (in .bss: zero until `init_this_cpu`,
/// which means "no control page" and is therefore a safe state).
pub(crate) static BLOCKS: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        mask_word: UnsafeCell::new(0),
        bit: UnsafeCell::new(0),
        mask_word2: UnsafeCell::new(0),
        not_bit: UnsafeCell::new(0),
        lazy: AtomicU32::new(0),
    }
}; MAX_CPUS];

/// This CPU's block, from TPIDR_EL1.
#[inline(always)]
pub(crate) fn this_cpu() -> &'static PerCpu {
    let block: usize;
    // SAFETY: reads TPIDR_EL1, no side effects. Not `pure`: the read stays
    // in program order with other asm (the benchmarks' counter reads).
    unsafe { asm!("mrs {}, tpidr_el1", out(reg) block, options(nomem, nostack, preserves_flags)) };
    // SAFETY: boot.S set TPIDR_EL1 to this CPU's element of BLOCKS before
    // any Rust ran, and nothing else writes it.
    unsafe { &*(block as *const PerCpu) }
}

/// For mask: the control page's mask word (0: none, mask with DAIF) and
/// this vCPU's bit. Exactly `mrs` + `ldp`.
#[inline(always)]
pub(crate) fn mask_word_and_bit() -> (usize, u32) {
    let (word, bit): (usize, u64);
    // SAFETY: TPIDR_EL1 points at this CPU's block (boot.S), whose first
    // two words are `mask_word` and `bit`, written only by this CPU before
    // any use. Not `pure`: stays in program order with other asm.
    unsafe {
        asm!(
            "mrs {block}, tpidr_el1",
            "ldp {word}, {bit}, [{block}]",
            block = out(reg) _,
            word = out(reg) word,
            bit = out(reg) bit,
            options(readonly, nostack, preserves_flags)
        )
    };
    (word, bit as u32)
}

/// For unmask: this CPU's block, the mask word and `!bit`. Exactly `mrs` +
/// `ldp`. Only meaningful where there is a mask word.
#[inline(always)]
pub(crate) fn block_word_and_not_bit() -> (&'static PerCpu, usize, u32) {
    let (block, word, not_bit): (usize, usize, u64);
    // SAFETY: as in `mask_word_and_bit`, for the fields at 16 and 24.
    unsafe {
        asm!(
            "mrs {block}, tpidr_el1",
            "ldp {word}, {not_bit}, [{block}, #16]",
            block = out(reg) block,
            word = out(reg) word,
            not_bit = out(reg) not_bit,
            options(readonly, nostack, preserves_flags)
        )
    };
    // SAFETY: TPIDR_EL1 holds this CPU's element of BLOCKS (boot.S).
    (unsafe { &*(block as *const PerCpu) }, word, not_bit as u32)
}

/// Fills in this CPU's block: the control page (if the guest has one, see
/// [`crate::mode::control_page`]) and this vCPU's bit. Called once by each
/// CPU for itself, with IRQs masked by DAIF and before anything masks with
/// the flag: the primary right after the mode is known, a secondary at its
/// start. The vCPU starts unmasked: its bit is cleared, and interrupts the
/// hypervisor may have deferred for an earlier life of this vCPU are asked
/// for.
pub(crate) fn init_this_cpu() {
    let block = this_cpu();
    let bit = 1u32 << arch::cpu_index();
    let words = crate::mode::control_words();
    let word = words.map_or(0, |(mask, _)| mask as *const AtomicU32 as usize);
    // SAFETY: this CPU's own block, not yet read by anything (IRQs are
    // masked and the mask functions are not in use on this CPU yet).
    unsafe {
        *block.bit.get() = u64::from(bit);
        *block.not_bit.get() = u64::from(!bit);
        *block.mask_word.get() = word;
        *block.mask_word2.get() = word;
    }
    block.lazy.store(0, Ordering::Relaxed);
    if let Some((mask, pending)) = words {
        mask.fetch_and(!bit, Ordering::Release);
        if pending.load(Ordering::Relaxed) & bit != 0 {
            let _ = crate::hvc::irq_unmask();
        }
    }
}
