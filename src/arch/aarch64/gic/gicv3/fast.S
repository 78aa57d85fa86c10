/*
 * The GICv3 backend's guest exits: the IRQ and synchronous exits, with fast
 * paths for the five hottest cases (see fast.rs for the conditions) and
 * the calls' (calls.S, for an `hvc #0` other than IRQ_UNMASK). It follows
 * vectors.S and calls.S in one global_asm! and uses their macros: a fast
 * path works in the low registers and returns; anything else calls the
 * Rust handler, whose decisions are the reference.
 *
 * The frame is SAVE_LOW's, but the IRQ exit saves x0-x3 first (the
 * timer's path needs no more) and the rest only where a path needs them:
 * x4 and x5 on the kick's, x4-x7 before Rust (vectors.S's SAVE_X0_X3 and
 * SAVE_X4_X7). The synchronous exit saves x0-x7 at once (SAVE_LOW).
 *
 * Labels that jump far are named (.Lirq_to_rust, .Lsync_to_rust, ...);
 * numbered ones stay within a few lines.
 *
 * Constants (global_asm! operands): the per-CPU block's offsets (FC_*:
 * its FastBlock's fields; CNT_*: its exit counters), the pending queue's
 * (QUEUE_LEN; QUEUE_FIRST and IRQ_* for the IRQ_UNMASK path, which also
 * takes HVC0_ESR_HI, IRQ_UNMASK_*, STATS_* into vgic::gate::Stats,
 * PUBLISHED_MAX_WAIT, PENDING_FROM_MASK, NOT_DEFERRED, ICH_HCR_UIE_BIT and
 * LR_HW_BIT), the Spi offsets (SPI_*; SPI_EDGE_BIT: `Spi::edge` in the
 * word at SPI_ENABLED), SPSR_I_BIT, ICH_HCR_EN_TALL1, VTIMER,
 * KICK_DRAINED, the list-register and ICC_SGI1R_EL1 values and bits the
 * Rust definitions give (LR_*, SGI1R_*), and FAST_PATHS: 0 when the
 * `fast-paths` feature is off, and then every exit goes straight to Rust.
 */

/* The vCPU's exit counter at \offset of the per-CPU block += 1.
 * x1 = &PerCpu; clobbers x2. */
.macro COUNT offset
    ldr     x2, [x1, #\offset]
    add     x2, x2, #1
    str     x2, [x1, #\offset]
.endm

/*
 * Branches to \slow unless the vCPU on this CPU is unmasked (its byte of
 * the control page's flag word is zero; with no vCPU bound, the byte the
 * block points at is not) and nothing waits in its queue. The caller tests
 * the list registers. x1 = &PerCpu; clobbers x2, x3.
 */
.macro UNMASKED_NOTHING_QUEUED slow
    ldp     x2, x3, [x1, #{FC_MASK}]            /* &mask byte, &queue */
    ldrb    w2, [x2]
    ldr     x3, [x3, #{QUEUE_LEN}]
    orr     x2, x2, x3
    cbnz    x2, \slow
.endm

/*
 * Moves the one deliverable SGI pending in this vCPU's model into list
 * register 0, and falls through. Branches to \none when nothing is
 * pending, and to \slow when the fast conditions do not hold: the vCPU
 * masked, something queued or listed, or anything pending but exactly one
 * SGI that the block's copy of the model lets the vCPU take (`sgis`:
 * enabled, group 1 on). So more than one, a disabled one, group 1 off,
 * DRAIN_ALL (bit 31, never in `sgis`) or a copy behind the model go to
 * Rust, which reads the model. Both leave the exclusive monitor to clear
 * (clrex) to their target. x1 = &PerCpu; clobbers x0, x2-x5.
 */
.macro DELIVER_ONE slow, none
    UNMASKED_NOTHING_QUEUED \slow
    mrs     x0, ich_elrsr_el2
    ldp     x2, x4, [x1, #{FC_LR_ALL}]          /* lr_all, &priority */
    cmp     x0, x2
    b.ne    \slow                               /* a list register in use */
    ldp     x2, x3, [x1, #{FC_PENDING}]         /* &pending, sgis */
1:  ldaxr   w0, [x2]
    cbz     w0, \none                           /* nothing pending */
    /* One bit, in sgis: p & ((p - 1) | ~sgis) == 0. */
    sub     w5, w0, #1
    orn     w5, w5, w3
    tst     w0, w5
    b.ne    \slow
    stlxr   w5, wzr, [x2]                       /* taken: nothing else was pending */
    cbnz    w5, 1b
    rbit    w0, w0
    clz     w0, w0                              /* the INTID */
    ldrb    w4, [x4, x0]                        /* its priority */
    /* pending (62) | group 1 (60) | priority | vINTID */
    movz    x5, #{LR_PENDING_HI}, lsl #48
    orr     x5, x5, x0
    orr     x5, x5, x4, lsl #48
    msr     ich_lr0_el2, x5
.endm

.section .text.fast, "ax"

/* ---- IRQ from the guest -------------------------------------------------- */
.global lower_irq
lower_irq:
    SAVE_X0_X3
    mrs     x0, icc_iar1_el1
.if {FAST_PATHS} == 0
    b       .Lirq_to_rust                       /* no fast paths: Rust */
.endif
    mrs     x1, tpidr_el2
    cmp     w0, #{VTIMER}
    b.ne    .Lirq_not_timer

    /* The virtual timer: forwarded with the HW bit in the list register
     * the block keeps for it (`timer_lr`, following the model: 0 while the
     * model does not let the vCPU take it, and then Rust decides). */
    UNMASKED_NOTHING_QUEUED .Lirq_timer_to_rust
    mrs     x0, ich_elrsr_el2
    ldp     x2, x3, [x1, #{FC_TIMER_LR}]        /* its list register, lr_all */
    cmp     x0, x3
    ccmp    x2, #0, #4, eq                      /* Z: a list register in use, or none to write */
    b.eq    .Lirq_timer_to_rust
    mov     w0, #{VTIMER}
    msr     icc_eoir1_el1, x0                   /* priority drop only (EOImode 1) */
    msr     ich_lr0_el2, x2
    COUNT   {CNT_IRQ}
    RESTORE_X0_X3_AND_ERET
.Lirq_timer_to_rust:
    mov     w0, #{VTIMER}
    b       .Lirq_to_rust

.Lirq_not_timer:
    cbz     w0, .Lirq_kick
    /* The partition's own passthrough SPI? Forward it with the HW bit, like
     * the timer. The table of (INTID, &Spi) ends with INTID 0, which w0 is
     * not here: anything else (a PPI, a special INTID) goes to Rust. */
    UNMASKED_NOTHING_QUEUED .Lirq_to_rust
    mrs     x2, ich_elrsr_el2
    ldr     x3, [x1, #{FC_LR_ALL}]
    cmp     x2, x3
    b.ne    .Lirq_to_rust                       /* a list register in use */
    ldp     x2, x3, [x1, #{FC_SPIS}]            /* the first (INTID, &Spi) */
    cmp     w2, w0
    b.ne    .Lirq_spi_search
.Lirq_spi: /* x0 = INTID, x3 = &Spi */
    ldr     w2, [x3, #{SPI_ENABLED}]            /* enabled [0], edge [24] */
    tbz     w2, #0, .Lirq_to_rust               /* disabled (a race): Rust decides */
    ldrb    w3, [x3, #{SPI_PRIORITY}]
    /* A level SPI listed while the guest masks IRQs: its line may drop
     * before the guest acknowledges it, so that acknowledge traps (TALL1;
     * Rust's `interrupts::ack_trap`). Nothing else is on in ICH_HCR_EL2
     * here: no underflow with an empty queue. */
    tbnz    w2, #{SPI_EDGE_BIT}, 13f
    mrs     x2, spsr_el2
    tbz     x2, #{SPSR_I_BIT}, 13f
    mov     x2, #{ICH_HCR_EN_TALL1}
    msr     ich_hcr_el2, x2
13: msr     icc_eoir1_el1, x0                   /* priority drop only (EOImode 1) */
    /* pending (62) | HW (61) | group 1 (60) | priority | pINTID | vINTID */
    orr     x2, x0, x0, lsl #32
    orr     x2, x2, x3, lsl #48
    movz    x3, #{LR_PENDING_HW_HI}, lsl #48
    orr     x2, x2, x3
    msr     ich_lr0_el2, x2
    COUNT   {CNT_IRQ}
    RESTORE_X0_X3_AND_ERET
.Lirq_spi_search: /* Not the first SPI of the table: the others, through x1. */
    add     x1, x1, #{FC_SPIS}
11: cbz     w2, .Lirq_to_rust                   /* the end: not the partition's */
    ldp     x2, x3, [x1, #16]!
    cmp     w2, w0
    b.ne    11b
    mrs     x1, tpidr_el2
    b       .Lirq_spi

.Lirq_kick: /* The kick: another CPU left SGIs pending in this vCPU's model. */
    msr     icc_eoir1_el1, x0
    msr     icc_dir_el1, x0                     /* consumed here: deactivate */
    stp     x4, x5, [sp, #16 * 2]
    DELIVER_ONE .Lirq_kick_drained, .Lirq_kick_none
.Lirq_kick_done:
    COUNT   {CNT_IRQ}
    ldp     x4, x5, [sp, #16 * 2]
    RESTORE_X0_X3_AND_ERET
.Lirq_kick_none: /* Nothing pending (taken by an earlier kick's exit). */
    clrex
    b       .Lirq_kick_done
.Lirq_kick_drained:
    clrex
    mov     x0, #{KICK_DRAINED}                 /* the kick is consumed: Rust drains */
    b       .Lirq_to_rust_x4_saved
.Lirq_to_rust: /* Rust: x0 = the acknowledged INTID (not yet dropped), or KICK_DRAINED. */
    stp     x4, x5, [sp, #16 * 2]
.Lirq_to_rust_x4_saved:
    stp     x6, x7, [sp, #16 * 3]
    SAVE_HIGH
    mov     x1, x0
    mov     x0, sp
    bl      handle_lower_irq
    RESTORE_ALL_AND_ERET

/* ---- synchronous exit from the guest -------------------------------------- */
.global lower_sync
lower_sync:
    SAVE_LOW
.if {FAST_PATHS} == 0
    b       .Lsync_to_rust                      /* no fast paths: Rust */
.endif
    mrs     x0, esr_el2
    /* EC 0x18 (MSR/MRS), IL, and ISS = ICC_SGI1R_EL1 written from Rt:
     * ESR_EL2 minus its value for Rt = 0 is Rt << 5, and nothing else, for
     * exactly these. Rt 0-7 first: saved in the frame. */
    ldr     w2, .Lsgi1r_esr
    sub     w1, w0, w2
    tst     w1, #0xffffff1f
    b.ne    .Lsync_sgi_rt_high                  /* Rt 8-31, or not that write */
    lsr     w1, w1, #2                          /* Rt * 8 */
    ldr     x2, [sp, x1]
.Lsgi_value: /* x2 = the value written. Fast for IRM = 1 (every other vCPU of
     * the partition; the other fields are ignored), and for IRM = 0 with
     * Aff3 = Aff2 = Aff1 = 0, RS = 0 and targets that are all vCPUs of this
     * partition. */
    ldr     x3, .Lsgi1r_not_fast
    tst     x2, x3
    b.ne    .Lsgi_not_list
    mrs     x1, tpidr_el2
    and     x4, x2, #{SGI1R_TARGET_LIST}        /* TargetList */
    ldp     x5, x6, [x1, #{FC_VCPUS}]           /* vcpus, bit */
    bics    xzr, x4, x5
    b.ne    .Lsync_to_rust                      /* targets outside: Rust counts them */
    and     x0, x4, x6                          /* itself among the targets */
    bic     x4, x4, x6                          /* the others */
.Lsgi_targets: /* x0: itself a target, x4: the other targets. */
    ubfx    x2, x2, #{SGI1R_INTID_SHIFT}, #4
    mov     w6, #1
    lsl     w6, w6, w2                          /* the SGI's bit */
    cbz     x4, 5f
4:  rbit    x5, x4
    clz     x5, x5                              /* target vCPU */
    sub     x7, x4, #1
    and     x4, x4, x7
    add     x7, x1, x5, lsl #4
    ldp     x7, x5, [x7, #{FC_TARGETS}]         /* its &pending, its kick */
6:  ldxr    w2, [x7]
    orr     w2, w2, w6
    stlxr   w3, w2, [x7]
    cbnz    w3, 6b
    dsb     ish                                 /* the pending bit before the kick */
    msr     icc_sgi1r_el1, x5
    cbnz    x4, 4b
    /* No isb: the eret below synchronizes the kicks' writes. */
5:  COUNT   {CNT_SGI_TRAP}
    mrs     x3, elr_el2
    add     x3, x3, #4
    msr     elr_el2, x3
    cbz     x0, .Lsync_return
    /* A self-IPI: pending in this vCPU's model, then delivered right here. */
    ldr     x7, [x1, #{FC_PENDING}]
6:  ldxr    w3, [x7]
    orr     w3, w3, w6
    stxr    w2, w3, [x7]
    cbnz    w2, 6b
    DELIVER_ONE .Lsync_drain, .Lsync_none
.Lsync_return:
    RESTORE_LOW_AND_ERET
.Lsync_none: /* Nothing pending: not after its own bit, but as for the kick. */
    clrex
    b       .Lsync_return
.Lsgi_not_list: /* Not a plain list: fast only for IRM = 1, every vCPU of
     * the partition but itself (the other fields are ignored). */
    tbz     x2, #{SGI1R_IRM_BIT}, .Lsync_to_rust
    mrs     x1, tpidr_el2
    ldp     x4, x5, [x1, #{FC_VCPUS}]           /* vcpus, bit */
    bic     x4, x4, x5
    mov     x0, xzr
    b       .Lsgi_targets
.Lsync_drain: /* The SGI is sent and counted, ELR advanced: only the drain is left. */
    clrex
    SAVE_HIGH
    mov     x0, sp
    bl      handle_local_drain
    RESTORE_ALL_AND_ERET
.balign 8
.Lsgi1r_not_fast:
    .quad   {SGI1R_NOT_FAST}
.Lsgi1r_esr: /* ESR_EL2 of the write from x0 */
    .word   {SGI1R_ESR}
.Lsync_sgi_rt_high: /* x1 = ESR_EL2 minus the write's from x0. */
    tbnz    w0, #31, .Lsync_abort               /* EC bit 5: an abort (0x20, 0x24) */
    tst     w1, #0xfffffc1f
    b.ne    .Lsync_not_sgi
    adr     x3, 1f - 8 * 8                      /* entries from Rt 8 */
    add     x3, x3, x1, lsr #2
    br      x3
1:  .irp n, 8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    mov     x2, x\n
    b       .Lsgi_value
    .endr
    mov     x2, xzr                             /* Rt 31: xzr */
    b       .Lsgi_value

.Lsync_not_sgi: /* x0 = ESR_EL2, not an abort. `hvc #0` with W0 = IRQ_UNMASK? */
    movz    w1, #{HVC0_ESR_HI}, lsl #16
    cmp     w0, w1
    b.ne    .Lsync_to_rust
    ldr     x2, [sp]                            /* the guest's x0 */
    movz    w3, #{IRQ_UNMASK_LO}
    movk    w3, #{IRQ_UNMASK_HI}, lsl #16
    cmp     w2, w3                              /* the function id is W0 */
    b.ne    .Lsync_call
    /* IRQ_UNMASK: fast when the vCPU is unmasked, exactly one interrupt
     * waits in its queue, every list register is free, the underflow
     * interrupt is off and a masked window is open (an interrupt was
     * deferred): then Rust's flush would list that one interrupt in LR0,
     * clear the deferral bit and end the window. */
    mrs     x1, tpidr_el2
    ldr     x2, [x1, #{FC_MASK}]
    cbz     x2, .Lsync_to_rust
    ldrb    w3, [x2]
    cbnz    w3, .Lsync_to_rust                  /* masked again: Rust keeps it */
    ldr     x4, [x1, #{FC_QUEUE}]
    ldr     x3, [x4, #{QUEUE_LEN}]
    cmp     x3, #1
    b.ne    .Lsync_to_rust                      /* none, or several: Rust orders them */
    mrs     x3, ich_elrsr_el2
    ldr     x5, [x1, #{FC_LR_ALL}]
    cmp     x3, x5
    b.ne    .Lsync_to_rust                      /* a list register in use: Rust joins */
    mrs     x3, ich_hcr_el2
    tbnz    x3, #{ICH_HCR_UIE_BIT}, .Lsync_to_rust
    ldr     x6, [x1, #{FC_STATS}]
    ldr     x5, [x6, #{STATS_WINDOW_START}]
    cbz     x5, .Lsync_to_rust                  /* no window open (Stats::NONE) */
    /* The queue's one interrupt: pending (62) | group 1 (60) | priority |
     * vINTID, and for a forwarded PPI HW (61) | pINTID = vINTID. A
     * forwarded SPI goes to Rust, which looks at its line first. */
    ldr     w3, [x4, #{QUEUE_FIRST}]            /* INTID */
    movz    x7, #{LR_PENDING_HI}, lsl #48
    orr     x7, x7, x3
    ldrb    w0, [x4, #{QUEUE_FIRST} + {IRQ_PRIORITY}]
    orr     x7, x7, x0, lsl #48
    ldrb    w0, [x4, #{QUEUE_FIRST} + {IRQ_HW}]
    cbz     w0, 1f
    cmp     w3, #32
    b.hs    .Lsync_to_rust
    orr     x7, x7, x3, lsl #32
    orr     x7, x7, #(1 << {LR_HW_BIT})
1:  msr     ich_lr0_el2, x7
    str     xzr, [x4, #{QUEUE_LEN}]             /* the queue is empty */
    /* The pending byte: the deferral bit cleared, the guest's bits kept. */
    ldrb    w0, [x2, #{PENDING_FROM_MASK}]
    and     w0, w0, #{NOT_DEFERRED}
    strb    w0, [x2, #{PENDING_FROM_MASK}]
    /* The window ends and its interrupts are all listed, now: max_window
     * and max_wait both see now - start (saturating), and both moments
     * become NONE (0). */
    mrs     x0, cntpct_el0
    subs    x3, x0, x5
    csel    x3, x3, xzr, hs
    ldp     x0, x7, [x6, #{STATS_MAX_WAIT}]     /* max_wait, max_window */
    cmp     x0, x3
    csel    x0, x0, x3, hs
    cmp     x7, x3
    csel    x7, x7, x3, hs
    stp     x0, x7, [x6, #{STATS_MAX_WAIT}]
    stp     xzr, xzr, [x6, #{STATS_WINDOW_START}] /* window_start, draining_since */
    ldr     x5, [x1, #{FC_DEFER_STATS}]
    stp     x0, x7, [x5, #{PUBLISHED_MAX_WAIT}] /* published for other CPUs */
    COUNT   {CNT_HVC}
    str     xzr, [sp]                           /* x0 = SUCCESS */
    RESTORE_LOW_AND_ERET

.Lsync_abort: /* x0 = ESR_EL2, EC 0x20-0x3f: a data abort has a handler of its own. */
    lsr     w2, w0, #26
    cmp     w2, #{EC_DABT_LOWER}
    b.ne    .Lsync_to_rust
    mov     x1, x0
    DABT_TO_RUST

.Lsync_call: /* Another call: the calls' fast path (calls.S), x2 = the guest's x0. */
    mov     x0, x2
    CALL_FAST .Lsync_hvc
.Lsync_hvc: /* The rest to Rust's handler of their own. */
    HVC_TO_RUST

.Lsync_to_rust:
    SAVE_HIGH
    mov     x0, sp
    bl      handle_lower_sync
    RESTORE_ALL_AND_ERET
