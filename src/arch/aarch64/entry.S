/*
 * Bulkhead entry points: boot, secondary CPUs, entering a vCPU (the EL2
 * exception vectors are vectors.S).
 *
 * The image starts with an arm64 Linux Image header, so QEMU's -kernel (and
 * any Linux boot loader) enters it at EL2 with x0 = the boot device tree.
 * Constants come from Rust through global_asm! operands:
 *   STACK_SIZE, MAX_CPUS.
 */

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry               /* code0 */
    .word   0                           /* code1 */
    .quad   __text_offset               /* text_offset: where loaders put us */
    .quad   __image_size                /* image_size, .bss included */
    .quad   0xa                         /* flags: little-endian, 4 KiB pages, anywhere */
    .quad   0, 0, 0                     /* res2-res4 */
    .ascii  "ARM\x64"                   /* magic */
    .word   0                           /* res5 */

primary_entry:
    mov     x19, x0                     /* the boot device tree */
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    wrong_el

    /* Clear .bss before any Rust runs. */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    mov     x0, #0                      /* boot stack slot 0 */
    bl      el2_common_setup
    mov     x0, x19
    bl      rust_primary_main
    b       el2_halt

/* Secondary CPUs arrive here from PSCI CPU_ON with x0 = their CPU index. */
.global secondary_entry
secondary_entry:
    mov     x19, x0
    cmp     x0, #{MAX_CPUS}
    b.hs    el2_halt
    add     x0, x0, #1                  /* stack slot: CPU index + 1 */
    bl      el2_common_setup
    mov     x0, x19
    bl      rust_secondary_main
    b       el2_halt

/*
 * Secondary CPUs a spin table releases arrive here, registers unknown: the
 * CPU finds its index by its MPIDR in SPIN_MPIDRS (written and cleaned to
 * the point of coherency before its release, read here with the MMU off).
 */
.global spin_table_entry
spin_table_entry:
    mrs     x1, mpidr_el1
    mov     x2, #0xffffff               /* affinity: Aff2..Aff0 ... */
    movk    x2, #0xff, lsl #32          /* ... and Aff3 */
    and     x1, x1, x2
    adrp    x3, SPIN_MPIDRS
    add     x3, x3, :lo12:SPIN_MPIDRS
    mov     x0, #0
1:  cmp     x0, #{MAX_CPUS}
    b.hs    el2_halt                    /* not one of the board's CPUs */
    ldr     x4, [x3, x0, lsl #3]
    cmp     x4, x1
    b.eq    secondary_entry
    add     x0, x0, #1
    b       1b

/* x0 = stack slot. Sets SP_EL2, VBAR_EL2; leaves FP/SIMD untrapped for guests. */
el2_common_setup:
    adrp    x1, STACKS
    add     x1, x1, :lo12:STACKS
    add     x0, x0, #1
    mov     x2, #{STACK_SIZE}
    madd    x1, x0, x2, x1              /* top of the slot */
    mov     sp, x1
    adrp    x1, el2_vectors
    add     x1, x1, :lo12:el2_vectors
    msr     vbar_el2, x1
    /* CPTR_EL2 (E2H = 0): RES1 bits 13:12 and 9:0; TFP = 0, TTA = 0. */
    mov     x1, #0x33ff
    msr     cptr_el2, x1
    isb
    ret

wrong_el:
.global el2_halt
el2_halt:
    wfe
    b       el2_halt

/*
 * Guest entry: x0 = the value for the guest's x0, x1 = the top of this CPU's
 * stack (reset so every exit starts from a fresh stack). ELR_EL2 and
 * SPSR_EL2 are already set.
 */
.global vcpu_enter
vcpu_enter:
    mov     sp, x1
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    mov     x4, xzr
    mov     x5, xzr
    mov     x6, xzr
    mov     x7, xzr
    mov     x8, xzr
    mov     x9, xzr
    mov     x10, xzr
    mov     x11, xzr
    mov     x12, xzr
    mov     x13, xzr
    mov     x14, xzr
    mov     x15, xzr
    mov     x16, xzr
    mov     x17, xzr
    mov     x18, xzr
    mov     x19, xzr
    mov     x20, xzr
    mov     x21, xzr
    mov     x22, xzr
    mov     x23, xzr
    mov     x24, xzr
    mov     x25, xzr
    mov     x26, xzr
    mov     x27, xzr
    mov     x28, xzr
    mov     x29, xzr
    mov     x30, xzr
    eret
    dsb     nsh
    isb
