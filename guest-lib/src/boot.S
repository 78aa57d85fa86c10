// Entry points of a guest-lib guest: the primary CPU's `_start` and the
// secondary CPUs' `guest_lib_secondary_start`.
//
// Included by arch.rs with `global_asm!`; the operands in braces are constants
// passed from Rust (see arch.rs for their values and reasons). No Rust runs
// before `cpu_setup` has enabled FP/SIMD (core::fmt uses NEON) and the MMU
// with caches (so exclusive loads/stores act on Normal memory).
//
// Register use before Rust: x19 = 1 if this CPU entered at EL2, x20 = the
// secondary's PSCI context id, x21 = the primary's entry timestamp, x22 =
// the OR of the registers the CPU was started with (smp::entry_registers),
// x9/x10 scratch, x30 link.

.section .text.boot, "ax"

// The primary CPU. x0 = device tree address or 0 under Bulkhead: unused.
// The first instruction reads the physical counter, for boot-time figures
// (timer::entry_timestamp): nothing of the guest runs before it.
.global _start
_start:
    mrs     x21, cntpct_el0
    // x1..x30 as the CPU was started (but x21, just overwritten), ORed.
    .irp    r, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,23,24,25,26,27,28,29,30
    orr     x22, x22, x\r
    .endr
    mov     x19, xzr
    bl      cpu_setup
    bl      set_stack

    // Zero .bss (which also holds the stacks: nothing is on ours yet).
    // The linker script aligns both ends to 16 bytes.
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
1:  cmp     x9, x10
    b.hs    2f
    stp     xzr, xzr, [x9], #16
    b       1b

2:  mov     x0, x19
    mov     x1, x21
    mov     x2, x22
    bl      guest_lib_primary_rust
    b       park

// A secondary CPU, started by PSCI CPU_ON. x0 = the context id.
.global guest_lib_secondary_start
guest_lib_secondary_start:
    // x1..x30 as the CPU was started, ORed.
    .irp    r, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,23,24,25,26,27,28,29,30
    orr     x22, x22, x\r
    .endr
    mov     x20, x0
    mov     x19, xzr
    bl      cpu_setup
    bl      set_stack
    mov     x0, x20
    mov     x1, x22
    bl      guest_lib_secondary_rust
    b       park

// A CPU with no stack slot, or one whose Rust entry returned.
park:
    msr     daifset, #0xf
    wfe
    b       park

// sp = top of this CPU's stack and TPIDR_EL1 = its per-CPU block (percpu.rs),
// both indexed by MPIDR_EL1.Aff0 (the vCPU index under Bulkhead, the CPU
// index on QEMU virt). Leaf: uses x9, x10.
set_stack:
    mrs     x9, mpidr_el1
    and     x9, x9, #0xff
    cmp     x9, #{MAX_CPUS}
    b.hs    park
    adrp    x10, {PERCPU}
    add     x10, x10, :lo12:{PERCPU}
    add     x10, x10, x9, lsl #{PERCPU_SHIFT}
    msr     tpidr_el1, x10
    add     x9, x9, #1
    adrp    x10, guest_lib_stacks
    add     x10, x10, :lo12:guest_lib_stacks
    add     x10, x10, x9, lsl #{STACK_SHIFT}
    mov     sp, x10
    ret

// Brings this CPU to EL1 with FP/SIMD, the vector table and the MMU on.
// Leaf: uses x9, x10; sets x19 = 1 if it found the CPU at EL2.
cpu_setup:
    msr     daifset, #0xf
    mrs     x9, CurrentEL
    ubfx    x9, x9, #2, #2
    cmp     x9, #2
    b.ne    3f

    // Bare metal entered at EL2 (QEMU virt,virtualization=on): nothing will
    // run at EL2, so give EL1 everything and drop to it.
    mov     x19, #1
    ldr     x9, ={HCR_EL2}
    msr     hcr_el2, x9
    mov     x9, #{CNTHCTL_EL2}
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    ldr     x9, ={CPTR_EL2}
    msr     cptr_el2, x9
    msr     hstr_el2, xzr
    // EL1 reads of MIDR/MPIDR return these; their reset values are UNKNOWN.
    mrs     x9, midr_el1
    msr     vpidr_el2, x9
    mrs     x9, mpidr_el1
    msr     vmpidr_el2, x9
    // With a GICv3 system register interface, let EL1 use it without traps.
    mrs     x9, id_aa64pfr0_el1
    ubfx    x9, x9, #24, #4
    cbz     x9, 4f
    mrs     x9, icc_sre_el2
    mov     x10, #{ICC_SRE_EL2}
    orr     x9, x9, x10
    msr     icc_sre_el2, x9
    isb
4:  ldr     x9, ={SCTLR_EL1_MMU_OFF}
    msr     sctlr_el1, x9
    mov     x9, #{SPSR_EL1H_MASKED}
    msr     spsr_el2, x9
    adr     x9, 3f
    msr     elr_el2, x9
    eret

3:  // EL1 (anything else is not supported).
    mov     x9, #{CPACR_EL1_FPEN}
    msr     cpacr_el1, x9
    isb

    adrp    x9, guest_lib_vectors
    add     x9, x9, :lo12:guest_lib_vectors
    msr     vbar_el1, x9

    ldr     x9, ={MAIR_EL1}
    msr     mair_el1, x9
    ldr     x9, ={TCR_EL1}
    msr     tcr_el1, x9
    adrp    x9, guest_lib_translation_table
    add     x9, x9, :lo12:guest_lib_translation_table
    msr     ttbr0_el1, x9
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    ldr     x9, ={SCTLR_EL1_MMU_ON}
    msr     sctlr_el1, x9
    isb
    ret

// The identity map: one level-1 table of four 1 GiB entries (T0SZ = 32).
// A table smaller than 64 bytes must still be 64-byte aligned.
.section .rodata.guest_lib_translation_table, "a"
.balign 64
guest_lib_translation_table:
    .quad   {DEVICE_BLOCK}      // [0, 1 GiB): devices (GIC, PL011, ...)
    .quad   {NORMAL_BLOCK}      // [1 GiB, 2 GiB): RAM
    .quad   0                   // [2 GiB, 4 GiB): unmapped
    .quad   0

.section .bss.guest_lib_stacks, "aw", %nobits
.balign 16
guest_lib_stacks:
    .space  {STACKS_SIZE}
