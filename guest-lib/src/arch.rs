//! The CPU: boot assembly, per-CPU identity, interrupt masking, MMIO.
//!
//! Everything here is a thin, documented wrapper over one instruction or one
//! register; policy lives in the modules that use it.

use core::arch::{asm, global_asm};

use crate::{exception, mmu, percpu};

/// Most CPUs (vCPUs) a guest can use: one stack each, indexed by MPIDR.Aff0
/// (a partition's vCPU limit).
pub const MAX_CPUS: usize = bulkhead_abi::limits::MAX_VCPUS;
/// log2 of each CPU's stack size (16 KiB: the largest frame is a trap frame
/// of 800 bytes plus core::fmt, far below this).
const STACK_SHIFT: usize = 14;

/// HCR_EL2.RW: EL1 is AArch64. Nothing else: no traps, no stage 2.
const HCR_EL2_RW: u64 = 1 << 31;
/// CNTHCTL_EL2.EL1PCTEN | EL1PCEN: EL1 may read the physical counter and use
/// the physical timer (the virtual ones are always allowed).
const CNTHCTL_EL2_EL1_ACCESS: u64 = 0b11;
/// CPTR_EL2 with its RES1 bits (13:12, 9:0) and TFP clear: FP/SIMD untrapped.
const CPTR_EL2_NO_TRAPS: u64 = 0x33ff;
/// ICC_SRE_EL2.SRE | .Enable: system register GIC interface, usable at EL1.
const ICC_SRE_EL2_SRE_ENABLE: u64 = 0b1001;
/// SPSR for the drop: EL1h with D, A, I, F masked.
const SPSR_EL1H_MASKED: u64 = 0b1111 << 6 | 0b0101;
/// PSTATE.I (as in SPSR and DAIF): IRQs masked.
pub(crate) const SPSR_I: u64 = 1 << 7;
/// CPACR_EL1.FPEN = 0b11: FP/SIMD not trapped at EL1/EL0.
const CPACR_EL1_FPEN: u64 = 0b11 << 20;

global_asm!(
    include_str!("boot.S"),
    MAX_CPUS = const MAX_CPUS,
    STACK_SHIFT = const STACK_SHIFT,
    STACKS_SIZE = const MAX_CPUS << STACK_SHIFT,
    HCR_EL2 = const HCR_EL2_RW,
    CNTHCTL_EL2 = const CNTHCTL_EL2_EL1_ACCESS,
    CPTR_EL2 = const CPTR_EL2_NO_TRAPS,
    ICC_SRE_EL2 = const ICC_SRE_EL2_SRE_ENABLE,
    SCTLR_EL1_MMU_OFF = const mmu::SCTLR_EL1_MMU_OFF,
    SCTLR_EL1_MMU_ON = const mmu::SCTLR_EL1_MMU_ON,
    SPSR_EL1H_MASKED = const SPSR_EL1H_MASKED,
    CPACR_EL1_FPEN = const CPACR_EL1_FPEN,
    MAIR_EL1 = const mmu::MAIR_EL1,
    TCR_EL1 = const mmu::TCR_EL1,
    DEVICE_BLOCK = const mmu::DEVICE_BLOCK,
    NORMAL_BLOCK = const mmu::NORMAL_BLOCK,
    PERCPU = sym percpu::BLOCKS,
    PERCPU_SHIFT = const percpu::SHIFT,
);

global_asm!(
    include_str!("vectors.S"),
    FRAME_SIZE = const exception::FRAME_SIZE,
    FRAME_SPSR = const exception::FRAME_SPSR,
    FRAME_Q = const exception::FRAME_Q,
    FRAME_STAMP = const exception::FRAME_STAMP,
    PERCPU_FLAG = const percpu::OFFSET_FLAG,
    PENDING_FROM_MASK = const bulkhead_abi::control::PENDING_FROM_MASK,
    PERCPU_LAZY_MARK = const percpu::OFFSET_LAZY_MARK,
    SPSR_I = const SPSR_I,
    SLOT_GICV2 = const exception::SLOT_GICV2,
);

unsafe extern "C" {
    /// Where a secondary CPU starts (boot.S); x0 = the PSCI context id.
    pub(crate) fn guest_lib_secondary_start();
    /// The vector table for a GICv2 (vectors.S).
    static guest_lib_vectors_gicv2: u8;
}

/// Installs the GICv2 vector table on this CPU (VBAR_EL1): the same as
/// boot.S's but for the IRQ entries' slot numbers (see vectors.S).
pub(crate) fn use_gicv2_vectors() {
    let table = &raw const guest_lib_vectors_gicv2;
    // SAFETY: a complete vector table, 2 KiB aligned, whose entries save
    // and restore the state exactly as boot.S's table does; the ISB makes
    // the next exception use it.
    unsafe { asm!("msr vbar_el1, {}", "isb", in(reg) table, options(nostack, preserves_flags)) };
}

/// MPIDR_EL1: this CPU's affinity (under Bulkhead, the virtual MPIDR).
pub fn mpidr() -> u64 {
    let value: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// This CPU's index: MPIDR_EL1.Aff0, the vCPU index under Bulkhead and the
/// CPU number on QEMU virt. Always below [`MAX_CPUS`] (boot.S parks others).
pub fn cpu_index() -> usize {
    (mpidr() & 0xff) as usize
}

/// ID_AA64PFR0_EL1 (processor features).
pub(crate) fn id_aa64pfr0() -> u64 {
    let value: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        asm!("mrs {}, id_aa64pfr0_el1", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// The interrupt mask bits (DAIF) as saved by [`irq_save_and_disable`].
#[derive(Clone, Copy)]
pub(crate) struct Daif(u64);

/// Masks IRQs on this CPU and returns the previous mask state.
#[inline(always)]
pub(crate) fn irq_save_and_disable() -> Daif {
    let daif: u64;
    // SAFETY: reads DAIF and sets PSTATE.I; no memory is touched, and the asm
    // is a compiler barrier (no `nomem`) so critical sections stay inside.
    unsafe {
        asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nostack, preserves_flags))
    };
    Daif(daif)
}

/// Restores the mask state saved by [`irq_save_and_disable`].
pub(crate) fn irq_restore(saved: Daif) {
    // SAFETY: writes back a DAIF value this CPU read earlier; a compiler
    // barrier so accesses inside the critical section are not moved out.
    unsafe { asm!("msr daif, {}", in(reg) saved.0, options(nostack, preserves_flags)) };
}

/// Unmasks IRQs on this CPU.
#[inline(always)]
pub(crate) fn irq_enable() {
    // SAFETY: clears PSTATE.I; handlers are installed by boot.S before Rust.
    unsafe { asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
}

/// Masks IRQs on this CPU.
pub(crate) fn irq_disable() {
    // SAFETY: sets PSTATE.I; a compiler barrier.
    unsafe { asm!("msr daifset, #2", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt (returns at once if one is pending, even masked).
pub fn wfi() {
    // SAFETY: WFI only suspends execution until an event.
    unsafe { asm!("wfi", options(nostack, preserves_flags)) };
}

/// The address of a memory-mapped register.
#[derive(Clone, Copy)]
pub(crate) struct Mmio(usize);

impl Mmio {
    /// # Safety
    /// `addr` must be a device register that is mapped (the identity map
    /// covers `[0, 1 GiB)` as Device memory), that the running partition's
    /// stage 2 maps or emulates if under Bulkhead, and that accepts accesses
    /// of the width of the methods it is used with.
    pub(crate) const unsafe fn new(addr: usize) -> Mmio {
        Mmio(addr)
    }

    /// The register `offset` bytes further on.
    ///
    /// # Safety
    /// As for [`Mmio::new`], for the resulting address.
    pub(crate) const unsafe fn offset(self, offset: usize) -> Mmio {
        Mmio(self.0 + offset)
    }

    // Every access is one plain `ldr`/`str` with a base register and no
    // writeback, as Linux's readl/writel are: when a hypervisor traps it,
    // the syndrome describes it (ESR.ISV = 1) and it can be emulated. The
    // compiler's own volatile accesses may use pre-index writeback, which
    // carries no syndrome.

    pub(crate) fn read32(self) -> u32 {
        let value: u32;
        // SAFETY: `new`'s contract: a mapped, aligned device register.
        unsafe {
            asm!("ldr {v:w}, [{a}]", v = out(reg) value, a = in(reg) self.0, options(nostack, preserves_flags))
        };
        value
    }

    pub(crate) fn write32(self, value: u32) {
        // SAFETY: `new`'s contract: a mapped, aligned device register.
        unsafe {
            asm!("str {v:w}, [{a}]", v = in(reg) value, a = in(reg) self.0, options(nostack, preserves_flags))
        };
    }

    pub(crate) fn read64(self) -> u64 {
        let value: u64;
        // SAFETY: `new`'s contract; the caller uses this only on 64-bit registers.
        unsafe {
            asm!("ldr {v}, [{a}]", v = out(reg) value, a = in(reg) self.0, options(nostack, preserves_flags))
        };
        value
    }

    pub(crate) fn write64(self, value: u64) {
        // SAFETY: `new`'s contract; the caller uses this only on 64-bit registers.
        unsafe {
            asm!("str {v}, [{a}]", v = in(reg) value, a = in(reg) self.0, options(nostack, preserves_flags))
        };
    }

    pub(crate) fn write8(self, value: u8) {
        // SAFETY: `new`'s contract; used on byte-accessible registers
        // (GIC priority registers).
        unsafe {
            asm!("strb {v:w}, [{a}]", v = in(reg) u32::from(value), a = in(reg) self.0, options(nostack, preserves_flags))
        };
    }
}
