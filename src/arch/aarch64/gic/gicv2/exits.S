/* The GICv2 backend's guest exits (src/arch/aarch64/gic/gicv2.rs), after
 * vectors.S in one global_asm! (src/arch/aarch64/vectors.rs): no fast
 * paths yet; every exit saves the whole frame and calls Rust. */

.section .text.fast, "ax"

/* ---- IRQ exit: Rust acknowledges (GICC_IAR) and handles ------------------- */
.global lower_irq
lower_irq:
    SAVE_LOW
    SAVE_HIGH
    mov     x0, sp
    bl      gicv2_lower_irq
    RESTORE_ALL_AND_ERET

/* ---- synchronous exit from the guest -------------------------------------- */
.global lower_sync
lower_sync:
    SAVE_LOW
    SAVE_HIGH
    mov     x0, sp
    bl      handle_lower_sync
    RESTORE_ALL_AND_ERET
