/*
 * The EL2 exception vectors and the exit entry every backend shares.
 *
 * A guest's exit saves x0-x7 into a TrapFrame on the EL2 stack (SAVE_LOW);
 * a fast path works in those eight registers and returns
 * (RESTORE_LOW_AND_ERET); anything else saves x8-x30 into the same frame
 * (SAVE_HIGH) and calls the Rust handler, whose decisions are the
 * reference. The IRQ and synchronous exits, with the fast paths, are the
 * GIC backend's file, which follows this one and calls.S (the calls'
 * fast path) in the same global_asm! (src/arch/aarch64/vectors.rs) and
 * uses these macros.
 *
 * Constants (global_asm! operands): FRAME, the TrapFrame's size.
 */

/* x0-x3 into a new frame; x4-x7 into the same frame. A fast path that
 * needs fewer registers saves x0-x3 first and the rest only if it must. */
.macro SAVE_X0_X3
    stp     x0, x1, [sp, #-{FRAME}]!
    stp     x2, x3, [sp, #16 * 1]
.endm
.macro SAVE_X4_X7
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
.endm
.macro SAVE_LOW
    SAVE_X0_X3
    SAVE_X4_X7
.endm

/* Back to the guest; nothing runs speculatively past the ERET. */
.macro ERET
    eret
    dsb     nsh
    isb
.endm

/* Back to the guest with x0-x3 (and x4-x7) from the frame, which is freed. */
.macro RESTORE_X0_X3_AND_ERET
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x0, x1, [sp], #{FRAME}
    ERET
.endm
.macro RESTORE_LOW_AND_ERET
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x4, x5, [sp, #16 * 2]
    RESTORE_X0_X3_AND_ERET
.endm

/* x8-x19 and x30: with x0-x7, every register a Rust function may change
 * (AAPCS64: x19-x29 it preserves; x19 comes with x18's pair), which is all
 * the frame needs when the exit's handler touches no other register. */
.macro SAVE_X8_X19_X30
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    str     x30, [sp, #16 * 15]
.endm

.macro RESTORE_X8_X19_X30_AND_ERET
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldr     x30, [sp, #16 * 15]
    RESTORE_LOW_AND_ERET
.endm

.macro SAVE_HIGH
    SAVE_X8_X19_X30
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
.endm

.macro RESTORE_ALL_AND_ERET
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    RESTORE_X8_X19_X30_AND_ERET
.endm


/* Rust's \handler with the frame, between the backend's \enter and
 * \leave calls (GICv2's list-register handovers), if it has them. */
.macro CALL_HANDLER handler, enter, leave
.ifnb \enter
    bl      \enter
.endif
    mov     x0, sp
    bl      \handler
.ifnb \leave
    bl      \leave
.endif
.endm

/* An HVC's exit to Rust (handle_lower_hvc: every call the calls' fast
 * path does not answer), x0-x7 saved: a call reads x0-x7 and writes x0-x3
 * (a call that does not return enters the guest afresh), so the frame
 * gets only what Rust may change. */
.macro HVC_TO_RUST enter=, leave=
    SAVE_X8_X19_X30
    CALL_HANDLER handle_lower_hvc, \enter, \leave
    RESTORE_X8_X19_X30_AND_ERET
.endm

/*
 * A data abort's exit (EC 0x24) to Rust (handle_lower_dabt), x0-x7 saved
 * and x1 = ESR_EL2, which the handler takes as its second argument. The
 * access names one register, ISS.SRT, the only one the handler touches in
 * the frame; Rust preserves x20-x29 (AAPCS64), so the frame gets them
 * only when SRT is one of them, and otherwise only x8-x19 and x30 beside
 * x0-x7. (Without ISS.ISV the handler touches no register: SRT is then
 * whatever it is.) The backend's \enter call keeps ESR_EL2 in x19, saved.
 */
.macro DABT_CALL enter, leave
.ifnb \enter
    mov     x19, x1
    bl      \enter
    mov     x1, x19
.endif
    mov     x0, sp
    bl      handle_lower_dabt
.ifnb \leave
    bl      \leave
.endif
.endm
.macro DABT_TO_RUST enter=, leave=
    ubfx    x2, x1, #16, #5                     /* SRT */
    sub     w2, w2, #20
    cmp     w2, #29 - 20
    b.ls    1f
    SAVE_X8_X19_X30
    DABT_CALL \enter, \leave
    RESTORE_X8_X19_X30_AND_ERET
1:  SAVE_HIGH                                   /* x20-x29: the whole frame */
    DABT_CALL \enter, \leave
    RESTORE_ALL_AND_ERET
.endm


/* A vector entry is 0x80 bytes: too small for the save and restore, so
 * each entry branches to its stub. */
.macro VECTOR stub
.balign 0x80
    b       \stub
.endm


.macro HYP_STUB name, kind
\name:
    mov     x0, #\kind
    bl      handle_hyp_exception
    b       el2_halt
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    /* Current EL with SP_EL0: never used. */
    VECTOR  hyp_sync
    VECTOR  hyp_irq
    VECTOR  hyp_fiq
    VECTOR  hyp_serror
    /* Current EL with SP_ELx: a fault in the hypervisor itself. */
    VECTOR  hyp_sync
    VECTOR  hyp_irq
    VECTOR  hyp_fiq
    VECTOR  hyp_serror
    /* Lower EL, AArch64: the guests. */
    VECTOR  lower_sync
    VECTOR  lower_irq
    VECTOR  lower_irq                   /* FIQ: group 0 is unused; treated as IRQ */
    VECTOR  lower_serror
    /* Lower EL, AArch32: guests are AArch64 only (HCR_EL2.RW = 1). */
    VECTOR  lower_aarch32
    VECTOR  lower_irq
    VECTOR  lower_irq
    VECTOR  lower_serror

/* The guest's IRQ and synchronous exits (lower_irq, lower_sync) are the
 * GIC backend's, with its fast paths (gic/gicv3/fast.S), assembled right
 * after this file. */
.balign 0x80
HYP_STUB hyp_sync, 0
HYP_STUB hyp_irq, 1
HYP_STUB hyp_fiq, 2
HYP_STUB hyp_serror, 3

.section .text.fast, "ax"

/* ---- SError, and AArch32 at EL1 (never allowed): Rust stops the partition. */
.macro LOWER_STUB name, handler
.global \name
\name:
    SAVE_LOW
    SAVE_HIGH
    mov     x0, sp
    bl      \handler
    RESTORE_ALL_AND_ERET
.endm

LOWER_STUB lower_serror, handle_lower_serror
LOWER_STUB lower_aarch32, handle_lower_aarch32
