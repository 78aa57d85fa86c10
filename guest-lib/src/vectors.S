// The EL1 exception vector table (VBAR_EL1) and the trap frame save/restore.
//
// IRQ entries first apply the interrupt mask flag (see irq.rs, "Masking"):
// if this vCPU's mask byte is set, an interrupt has arrived that the
// hypervisor put into a list register just before the byte was set (or,
// natively, any interrupt: nothing else holds them back). It is not
// acknowledged (it stays pending in the list register or the GIC); the
// entry sets PSTATE.I in the interrupted context's SPSR_EL1, records that
// in the vCPU's pending byte (the lazy mark) and returns at once, so that
// it cannot fire again until `irq::unmask` clears PSTATE.I. No handler
// runs.
//
// Every entry saves the full interrupted state, integer and FP/SIMD, into a
// `TrapFrame` (exception.rs) on the current stack, calls
// `guest_lib_exception(frame, slot)` and, if it returns, restores and ERETs.
// The FP/SIMD registers are saved because Rust handlers use NEON (core::fmt)
// and the interrupted code may hold live values in any of them.
// The operands in braces are constants from exception.rs.
//
// IRQ entries also timestamp themselves: CNTVCT_EL0 is read by the third
// instruction of the entry (exactly two before it: making room on the
// stack and saving x0/x1) and kept in the frame, from where the IRQ
// dispatcher publishes it as this CPU's `irq::last_vector_timestamp()`.
// Exception entry is a context synchronization event, so the read cannot
// be taken early and needs no ISB. Under -icount with cntfrq = 1 GHz one
// tick is one instruction: the stamp is the entry's instruction count + 2.

.macro VECTOR slot
.balign 0x80
    sub     sp, sp, #{FRAME_SIZE}
    stp     x0, x1, [sp, #0]
    mov     x0, #\slot
    b       save_and_handle
.endm

.macro VECTOR_IRQ slot
.balign 0x80
    sub     sp, sp, #{FRAME_SIZE}
    stp     x0, x1, [sp, #0]
    mrs     x0, cntvct_el0
    str     x0, [sp, #{FRAME_STAMP}]
    mov     x0, #\slot
    b       irq_entry
.endm

// The sixteen entries; IRQ entries pass their slot plus \irq_offset.
.macro VECTOR_TABLE irq_offset
    // Current EL, SP_EL0 (never used: guest-lib always runs on SP_EL1).
    VECTOR 0
    VECTOR_IRQ (1 + \irq_offset)
    VECTOR 2
    VECTOR 3
    // Current EL, SP_ELx: the guest's own exceptions.
    VECTOR 4
    VECTOR_IRQ (5 + \irq_offset)
    VECTOR 6
    VECTOR 7
    // Lower EL, AArch64 and AArch32 (guest-lib runs nothing at EL0).
    VECTOR 8
    VECTOR_IRQ (9 + \irq_offset)
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR_IRQ (13 + \irq_offset)
    VECTOR 14
    VECTOR 15
.endm

.section .text.vectors, "ax"
// The table boot.S installs: IRQs are acknowledged through the GICv3's
// system registers.
.balign 2048
.global guest_lib_vectors
guest_lib_vectors:
    VECTOR_TABLE 0

// The same table for a GICv2, which gic::init_cpu installs instead on each
// CPU when the GIC is one: its IRQ entries pass their slot plus {SLOT_GICV2}
// and exception.rs dispatches those through GICC. So the choice between the
// GICs costs the GICv3 entry nothing.
.balign 2048
.global guest_lib_vectors_gicv2
guest_lib_vectors_gicv2:
    VECTOR_TABLE {SLOT_GICV2}

// An IRQ. x0 = vector slot; the original x0/x1 are already in the frame.
// Per-CPU block (percpu.rs): [0] the address of this vCPU's mask byte
// (the control page's, or the block's own), whose pending byte is
// {PENDING_FROM_MASK} bytes on; [{PERCPU_LAZY_MARK}] what to store there.
irq_entry:
    stp     x2, x3, [sp, #16]
    mrs     x2, tpidr_el1
    ldr     x1, [x2, #{PERCPU_FLAG}]
    ldrb    w3, [x1]
    cbz     w3, save_from_x4        // not masked: handle it
    // Masked: leave it pending, note that in the pending byte (one store
    // of the lazy mark, see irq.rs) and return with PSTATE.I set.
    ldr     w3, [x2, #{PERCPU_LAZY_MARK}]
    strb    w3, [x1, #{PENDING_FROM_MASK}]
    mrs     x1, spsr_el1
    orr     x1, x1, #{SPSR_I}
    msr     spsr_el1, x1
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{FRAME_SIZE}
    eret

// x0 = vector slot; the original x0/x1 are already in the frame.
save_and_handle:
    stp     x2, x3, [sp, #16]
save_from_x4:
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el1
    str     x2, [sp, #{FRAME_SPSR}]

    add     x1, sp, #{FRAME_Q}
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
    mrs     x2, fpsr
    mrs     x3, fpcr
    add     x4, x1, #512          // beyond the reach of an X-register stp
    stp     x2, x3, [x4]

    mov     x1, x0
    mov     x0, sp
    bl      guest_lib_exception

    add     x1, sp, #{FRAME_Q}
    add     x4, x1, #512
    ldp     x2, x3, [x4]
    msr     fpsr, x2
    msr     fpcr, x3
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]

    ldr     x2, [sp, #{FRAME_SPSR}]
    msr     spsr_el1, x2
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{FRAME_SIZE}
    eret
