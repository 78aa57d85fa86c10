/* The GICv2 backend's guest exits (src/arch/aarch64/gic/gicv2.rs), after
 * vectors.S and calls.S in one global_asm! (src/arch/aarch64/vectors.rs):
 * no fast paths of its own yet, only the calls' (calls.S); every other
 * exit saves the whole frame and calls Rust. Around the handler, EL2
 * takes this CPU's list registers back from other CPUs (gicv2_exit_entry)
 * and opens them again before the ERET (gicv2_guest_entry): see LR_OWNER.
 *
 * Constants (global_asm! operands): calls.S's, and FAST_PATHS (0 when the
 * `fast-paths` feature is off: every call goes to Rust). */

.section .text.fast, "ax"

/* ---- IRQ exit: Rust acknowledges (GICC_IAR) and handles ------------------- */
.global lower_irq
lower_irq:
    SAVE_LOW
    SAVE_HIGH
    CALL_HANDLER gicv2_lower_irq, gicv2_exit_entry, gicv2_guest_entry
    RESTORE_ALL_AND_ERET

/* ---- synchronous exit from the guest -------------------------------------- */
.global lower_sync
lower_sync:
    SAVE_X0_X3
    mrs     x1, esr_el2
    lsr     w2, w1, #26
    cmp     w2, #{EC_DABT_LOWER}
    b.eq    .Lsync_dabt                         /* Rust's handlers of their own */
    cmp     w2, #{EC_HVC64}
    b.ne    .Lsync_other
.if {FAST_PATHS}
    CALL_FAST .Lsync_hvc                        /* the calls' fast path (calls.S) */
.endif
.Lsync_hvc:
    SAVE_X4_X7
    HVC_TO_RUST gicv2_exit_entry, gicv2_guest_entry
.Lsync_other:
    SAVE_X4_X7
    SAVE_HIGH
    CALL_HANDLER handle_lower_sync, gicv2_exit_entry, gicv2_guest_entry
    RESTORE_ALL_AND_ERET
.Lsync_dabt:
    SAVE_X4_X7
    DABT_TO_RUST gicv2_exit_entry, gicv2_guest_entry
