//! Each CPU's private block, whose address is in TPIDR_EL1.
//!
//! `boot.S` points TPIDR_EL1 at `BLOCKS[MPIDR.Aff0]` on every CPU before any
//! Rust runs (its reset value is UNKNOWN), and nothing changes it after. The
//! block holds what the interrupt mask fast path ([`crate::irq::mask`],
//! [`crate::irq::unmask`]) and the IRQ vector need, so that each reaches it
//! in two instructions: `mrs x, tpidr_el1` and one `ldp` of the address of
//! this vCPU's mask byte and the value that masks.
//!
//! The mask byte is this vCPU's byte of the control page's flag word under
//! Bulkhead (see [`bulkhead_abi::control`]), or, natively or without a
//! usable control page, `own_mask` in this block. Its pending byte is
//! always [`control::PENDING_FROM_MASK`] bytes after it: the control
//! page's pending byte, or `own_pending` here. Both modes run the same
//! instructions: where there is no hypervisor to defer interrupts, the IRQ
//! vector's lazy masking (see `vectors.S` and [`crate::irq`]) keeps every
//! handler out of a masked section by itself. So the choice between them
//! is made once, here, and costs the fast path nothing.
//!
//! Layout (an ABI with `vectors.S`, which uses the offsets below):
//!
//! | offset | field         | meaning                                              |
//! |--------|---------------|------------------------------------------------------|
//! | 0      | `flag`        | address of this vCPU's mask byte                     |
//! | 8      | `masked`      | [`control::MASKED`], the value `mask` stores         |
//! | 16     | `own_mask`    | the mask byte where there is no control page         |
//! | 24     | `own_pending` | its pending byte (`own_mask` + 8, as in the page)    |
//! | 32     | `lazy_mark`   | what the IRQ vector stores in the pending byte when  |
//! |        |               | it masks lazily (see `irq::PENDING_LAZY`)            |
//!
//! `flag` points at `own_mask` from the start (the block is in .data, not
//! .bss), so the vector and the mask functions always find a mask byte.
//! `flag` and `lazy_mark` are written only by their own CPU, in
//! [`init_this_cpu`] (with IRQs masked, before anything masks), and only
//! read after; `own_mask` and `own_pending` only by their own CPU.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU8, Ordering};

use bulkhead_abi::control;

use crate::arch::MAX_CPUS;

/// log2 of a block's size: one 64-byte cache line each, so that CPUs never
/// share a line.
pub(crate) const SHIFT: usize = 6;

#[repr(C, align(64))]
pub(crate) struct PerCpu {
    flag: UnsafeCell<*const AtomicU8>,
    masked: u64,
    own_mask: AtomicU8,
    _gap: [u8; control::PENDING_FROM_MASK - 1],
    own_pending: AtomicU8,
    _gap2: [u8; 7],
    lazy_mark: UnsafeCell<u32>,
}

// SAFETY: each block is only written by its own CPU (see the module
// documentation): `flag` once before any reader on that CPU, the two bytes
// atomically. Other CPUs never touch another CPU's block.
unsafe impl Sync for PerCpu {}

pub(crate) const OFFSET_FLAG: usize = offset_of!(PerCpu, flag);
pub(crate) const OFFSET_LAZY_MARK: usize = offset_of!(PerCpu, lazy_mark);
const _: () = assert!(size_of::<PerCpu>() == 1 << SHIFT);
// The `ldp` pair, and the offsets vectors.S relies on.
const _: () = assert!(OFFSET_FLAG == 0 && offset_of!(PerCpu, masked) == 8);
const _: () = assert!(
    offset_of!(PerCpu, own_pending) - offset_of!(PerCpu, own_mask) == control::PENDING_FROM_MASK
);
const _: () = assert!(OFFSET_LAZY_MARK == 32);

/// The blocks, indexed by MPIDR.Aff0. Each points at its own mask byte
/// until [`init_this_cpu`] finds a control page: a safe state from the
/// first instruction.
pub(crate) static BLOCKS: [PerCpu; MAX_CPUS] = {
    let mut i = 0;
    let mut blocks = [const {
        PerCpu {
            flag: UnsafeCell::new(core::ptr::null()),
            masked: control::MASKED as u64,
            own_mask: AtomicU8::new(0),
            _gap: [0; control::PENDING_FROM_MASK - 1],
            own_pending: AtomicU8::new(0),
            _gap2: [0; 7],
            lazy_mark: UnsafeCell::new(crate::irq::PENDING_LAZY as u32),
        }
    }; MAX_CPUS];
    while i < MAX_CPUS {
        blocks[i].flag = UnsafeCell::new(&raw const BLOCKS[i].own_mask);
        i += 1;
    }
    blocks
};

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

impl PerCpu {
    /// This vCPU's mask byte.
    #[inline(always)]
    pub(crate) fn flag(&self) -> &'static AtomicU8 {
        // SAFETY: `flag` is written only by this CPU, before any reader on
        // it (`init_this_cpu`), and always points at a mask byte that lives
        // as long as the guest: `own_mask` or the control page's.
        unsafe { &**self.flag.get() }
    }
}

/// For mask: sets this vCPU's mask byte; returns it and its old value.
/// Exactly `mrs` + `ldp` + `ldrb` + `strb`.
#[inline(always)]
pub(crate) fn set_flag() -> (&'static AtomicU8, u32) {
    let (flag, old): (*const AtomicU8, u32);
    // SAFETY: TPIDR_EL1 points at this CPU's block (boot.S), whose first
    // two words are `flag` and `masked`, written only by this CPU before
    // any use; `flag` points at a mask byte (the control page's or the
    // block's own), written only by this CPU. A plain store is atomic for
    // a byte. Not `nomem`: a compiler barrier, so the critical section's
    // accesses stay after it. Not `pure`: stays in program order with
    // other asm (the benchmarks' counter reads).
    unsafe {
        asm!(
            "mrs {block}, tpidr_el1",
            "ldp {flag}, {masked}, [{block}]",
            "ldrb {old:w}, [{flag}]",
            "strb {masked:w}, [{flag}]",
            block = out(reg) _,
            flag = out(reg) flag,
            masked = out(reg) _,
            old = out(reg) old,
            options(nostack, preserves_flags)
        )
    };
    // SAFETY: as above, a mask byte that lives as long as the guest.
    (unsafe { &*flag }, old)
}

/// The pending byte that goes with the mask byte at `flag`.
#[inline(always)]
pub(crate) fn pending_of(flag: &'static AtomicU8) -> &'static AtomicU8 {
    // SAFETY: every mask byte `flag` can point at has its pending byte
    // PENDING_FROM_MASK bytes on, in the same object (the control page, or
    // the block: see the assertions above).
    unsafe { &*(flag as *const AtomicU8).add(control::PENDING_FROM_MASK) }
}

/// Points this CPU's block at its mask byte: the control page's (if the
/// guest has one, see [`crate::mode::control_page`]) or its own. Called
/// once by each CPU for itself, with IRQs masked by DAIF and before
/// anything masks with the flag: the primary right after the mode is
/// known, a secondary at its start. The vCPU starts unmasked: its mask
/// byte is cleared, the pending byte's guest bits too, and interrupts the
/// hypervisor may have deferred for an earlier life of this vCPU are asked
/// for.
pub(crate) fn init_this_cpu() {
    let block = this_cpu();
    let page = crate::mode::control_page();
    let (flag, lazy_mark) = match page {
        // In range: a vCPU index is below MAX_CPUS = MAX_VCPUS, which the
        // page has a byte for (bulkhead_abi::limits).
        Some(page) => (
            (page + control::OFFSET_MASK + crate::arch::cpu_index()) as *const AtomicU8,
            crate::irq::PENDING_LAZY | control::PENDING_DEFERRED,
        ),
        None => (&raw const block.own_mask, crate::irq::PENDING_LAZY),
    };
    // SAFETY: this CPU's own block, not yet read by anything (IRQs are
    // masked and the mask functions are not in use on this CPU yet);
    // `flag` is a mask byte for the guest's whole life (the control page
    // is mapped for it, see `mode`).
    unsafe {
        *block.flag.get() = flag;
        *block.lazy_mark.get() = u32::from(lazy_mark);
    }
    let flag = block.flag();
    let pending = pending_of(flag);
    flag.store(0, Ordering::Release);
    // Only the hypervisor's bit survives (none natively).
    let deferred = pending.load(Ordering::Relaxed) & control::PENDING_DEFERRED;
    pending.store(if page.is_some() { deferred } else { 0 }, Ordering::Relaxed);
    if deferred != 0 && page.is_some() {
        let _ = crate::hvc::irq_unmask();
    }
}
