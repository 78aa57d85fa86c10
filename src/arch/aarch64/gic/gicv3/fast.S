/*
 * The GICv3 backend's guest exits: the IRQ and synchronous exits, with fast
 * paths for the four hottest cases (see fast.rs for the conditions). It
 * follows vectors.S in one global_asm! and uses its frame macros: a fast
 * path works in x0-x7 and returns; anything else calls the Rust handler,
 * whose decisions are the reference.
 *
 * Labels that jump far are named (.Lirq_to_rust, .Lsync_to_rust, ...);
 * numbered ones stay within a few lines.
 *
 * Constants (global_asm! operands): the per-CPU block's offsets (FC_*),
 * the pending queue's (QUEUE_LEN; QUEUE_FIRST and IRQ_* for the IRQ_UNMASK
 * path, which also takes HVC0_ESR_HI, IRQ_UNMASK_*, STATS_* into
 * vgic::gate::Stats, PUBLISHED_MAX_WAIT, PENDING_FROM_MASK, NOT_DEFERRED,
 * ICH_HCR_UIE_BIT and LR_HW_BIT),
 * the PrivateIrqs and Spi offsets (PI_*, SPI_*; SPI_EDGE_BIT: `Spi::edge`
 * in the word at SPI_ENABLED), SPSR_I_BIT, ICH_HCR_EN_TALL1, the counter
 * offsets (CNT_*), VTIMER,
 * KICK_DRAINED, the list-register, DRAIN_ALL, GICD_CTLR and ICC_SGI1R_EL1
 * values and bits the Rust definitions give (LR_*, DRAIN_ALL_BIT,
 * CTLR_GRP1_BIT, SGI1R_*), and FAST_PATHS: 0 when the `fast-paths` feature
 * is off, and then every exit goes straight to Rust.
 */

/* counters[offset] += 1; x1 = &PerCpu; clobbers x2, x3. */
.macro COUNT offset
    ldr     x2, [x1, #{FC_COUNTERS}]
    ldr     x3, [x2, #\offset]
    add     x3, x3, #1
    str     x3, [x2, #\offset]
.endm

/*
 * Branches to \slow unless the vCPU on this CPU is unmasked (its byte of
 * the control page's flag word is zero), nothing waits in its queue and
 * every list register is free. x1 = &PerCpu; clobbers x2, x3.
 */
.macro FAST_DELIVERY_OK slow
    ldr     x2, [x1, #{FC_MASK}]
    cbz     x2, \slow
    ldrb    w2, [x2]
    cbnz    w2, \slow
    ldr     x2, [x1, #{FC_QUEUE}]
    ldr     x2, [x2, #{QUEUE_LEN}]
    cbnz    x2, \slow
    mrs     x2, ich_elrsr_el2
    ldr     x3, [x1, #{FC_LR_ALL}]
    cmp     x2, x3
    b.ne    \slow
.endm

/*
 * Moves the one deliverable SGI/PPI pending in this vCPU's model (pending
 * and enabled) into list register 0. Falls through when done or when
 * nothing is deliverable; branches to \slow (exclusive monitor cleared)
 * when the fast conditions do not hold: the vCPU masked, something queued
 * or listed, group 1 off, more than one deliverable, or DRAIN_ALL set.
 * x1 = &PerCpu; clobbers x2-x7.
 */
.macro DELIVER_ONE slow
    FAST_DELIVERY_OK \slow
    ldr     x2, [x1, #{FC_VGIC_CTLR}]
    ldr     w2, [x2]
    tbz     w2, #{CTLR_GRP1_BIT}, \slow        /* group 1 off: Rust keeps them pending */
    ldr     x2, [x1, #{FC_PRIVATE}]
    ldr     w3, [x2, #{PI_ENABLED}]
    add     x4, x2, #{PI_PENDING}
1:  ldaxr   w5, [x4]
    tbnz    w5, #{DRAIN_ALL_BIT}, 3f            /* DRAIN_ALL: SPIs may wait too */
    and     w6, w5, w3                          /* deliverable: pending and enabled */
    cbz     w6, 2f
    sub     w7, w6, #1
    tst     w6, w7
    b.ne    3f                                  /* more than one: Rust orders them */
    bic     w5, w5, w6
    stlxr   w7, w5, [x4]
    cbnz    w7, 1b
    rbit    w6, w6
    clz     w6, w6                              /* the INTID */
    add     x7, x2, #{PI_PRIORITY}
    ldrb    w7, [x7, x6]
    /* pending (62) | group 1 (60) | priority | vINTID */
    movz    x5, #{LR_PENDING_HI}, lsl #48
    orr     x5, x5, x6
    orr     x5, x5, x7, lsl #48
    msr     ich_lr0_el2, x5
    b       4f
3:  clrex
    b       \slow
2:  clrex                                       /* nothing deliverable */
4:
.endm

.section .text.fast, "ax"

/* ---- IRQ from the guest -------------------------------------------------- */
.global lower_irq
lower_irq:
    SAVE_LOW
    mrs     x0, icc_iar1_el1
.if {FAST_PATHS} == 0
    b       .Lirq_to_rust                       /* no fast paths: Rust */
.endif
    mrs     x1, tpidr_el2
    cmp     w0, #{VTIMER}
    b.ne    .Lirq_not_timer

    /* The virtual timer: forward it with the HW bit (pINTID = vINTID = 27). */
    FAST_DELIVERY_OK .Lirq_to_rust
    ldr     x2, [x1, #{FC_PRIVATE}]
    ldr     w3, [x2, #{PI_ENABLED}]
    tbz     w3, #{VTIMER}, .Lirq_to_rust
    ldrb    w3, [x2, #{PI_PRIORITY} + {VTIMER}]
    msr     icc_eoir1_el1, x0                   /* priority drop only (EOImode 1) */
    /* pending (62) | HW (61) | group 1 (60) | priority | pINTID 27 | vINTID 27 */
    movz    x2, #{VTIMER}
    movk    x2, #{VTIMER}, lsl #32
    movk    x2, #{LR_PENDING_HW_HI}, lsl #48
    orr     x2, x2, x3, lsl #48
    msr     ich_lr0_el2, x2
    COUNT   {CNT_IRQ}
    RESTORE_LOW_AND_ERET

.Lirq_not_timer:
    cbz     w0, .Lirq_kick
    /* The partition's own passthrough SPI? Forward it with the HW bit, like
     * the timer. The table of (INTID, &Spi) ends with INTID 0, which w0 is
     * not here: anything else (a PPI, a special INTID) goes to Rust. */
    add     x3, x1, #{FC_SPIS}
11: ldp     x5, x4, [x3], #16                   /* INTID, &Spi */
    cmp     w5, w0
    b.eq    12f
    cbnz    w5, 11b
    b       .Lirq_to_rust                       /* not the partition's: Rust */
12: FAST_DELIVERY_OK .Lirq_to_rust
    ldr     w2, [x4, #{SPI_ENABLED}]            /* enabled [0], edge [24] */
    tbz     w2, #0, .Lirq_to_rust               /* disabled (a race): Rust decides */
    /* A level SPI listed while the guest masks IRQs: its line may drop
     * before the guest acknowledges it, so that acknowledge traps (TALL1;
     * Rust's `interrupts::ack_trap`). Nothing else is on in ICH_HCR_EL2
     * here: no underflow with an empty queue. */
    mrs     x5, spsr_el2
    tbz     x5, #{SPSR_I_BIT}, 13f
    tbnz    w2, #{SPI_EDGE_BIT}, 13f
    mov     x5, #{ICH_HCR_EN_TALL1}
    msr     ich_hcr_el2, x5
13: ldrb    w3, [x4, #{SPI_PRIORITY}]
    msr     icc_eoir1_el1, x0                   /* priority drop only (EOImode 1) */
    /* pending (62) | HW (61) | group 1 (60) | priority | pINTID | vINTID */
    orr     x2, x0, x0, lsl #32
    movz    x5, #{LR_PENDING_HW_HI}, lsl #48
    orr     x2, x2, x5
    orr     x2, x2, x3, lsl #48
    msr     ich_lr0_el2, x2
    COUNT   {CNT_IRQ}
    RESTORE_LOW_AND_ERET

.Lirq_kick: /* The kick: another CPU left SGIs pending in this vCPU's model. */
    msr     icc_eoir1_el1, x0
    msr     icc_dir_el1, x0                     /* consumed here: deactivate */
    DELIVER_ONE .Lirq_kick_drained
    COUNT   {CNT_IRQ}
    RESTORE_LOW_AND_ERET
.Lirq_kick_drained:
    mov     x0, #{KICK_DRAINED}                 /* the kick is consumed: Rust drains */
.Lirq_to_rust: /* Rust: x0 = the acknowledged INTID (not yet dropped), or KICK_DRAINED. */
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
    /* EC 0x18 (MSR/MRS), IL, and ISS = ICC_SGI1R_EL1 written from any Rt:
     * everything but Rt (bits 9:5) must match. */
    and     w1, w0, #0xfffffc1f
    movz    w2, #{SGI1R_ESR_LO}
    movk    w2, #{SGI1R_ESR_HI}, lsl #16
    cmp     w1, w2
    b.ne    .Lsync_not_sgi
    ubfx    x1, x0, #5, #5                      /* Rt */
    cmp     x1, #8
    b.hs    1f
    ldr     x2, [sp, x1, lsl #3]                /* x0-x7: saved in the frame */
    b       .Lsgi_value
1:  adr     x3, 3f
    add     x3, x3, x1, lsl #3
    br      x3
3:  .rept 8                                     /* Rt 0-7: never taken */
    brk     #0
    brk     #0
    .endr
    .irp n, 8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    mov     x2, x\n
    b       .Lsgi_value
    .endr
    mov     x2, xzr                             /* Rt 31: xzr */
    b       .Lsgi_value
.Lsgi_value: /* x2 = the value written. Fast for IRM = 1 (every other vCPU of
     * the partition; the other fields are ignored), and for IRM = 0 with
     * Aff3 = Aff2 = Aff1 = 0, RS = 0 and targets that are all vCPUs of this
     * partition. */
    movz    x3, #{SGI1R_NOT_FAST_16}, lsl #16
    movk    x3, #{SGI1R_NOT_FAST_32}, lsl #32
    movk    x3, #{SGI1R_NOT_FAST_48}, lsl #48
    tst     x2, x3
    b.ne    .Lsgi_not_list
    mrs     x1, tpidr_el2
    ldr     x3, [x1, #{FC_MASK}]
    cbz     x3, .Lsync_to_rust
    and     x4, x2, #{SGI1R_TARGET_LIST}        /* TargetList */
    ldr     x5, [x1, #{FC_VCPUS}]
    bics    xzr, x4, x5
    b.ne    .Lsync_to_rust                      /* targets outside: Rust counts them */
    ldr     x5, [x1, #{FC_BIT}]
    and     x0, x4, x5                          /* itself among the targets */
    bic     x4, x4, x5                          /* the others */
.Lsgi_targets: /* x0: itself a target, x4: the other targets. */
    ubfx    x2, x2, #{SGI1R_INTID_SHIFT}, #4
    mov     w6, #1
    lsl     w6, w6, w2                          /* the SGI's bit */
    mov     x2, x0                              /* x2: itself a target (kept) */
    cbz     x4, 5f
4:  rbit    x5, x4
    clz     x5, x5                              /* target vCPU */
    sub     x7, x4, #1
    and     x4, x4, x7
    add     x7, x1, #{FC_SIBLING_PENDING}
    ldr     x7, [x7, x5, lsl #3]
6:  ldxr    w0, [x7]
    orr     w0, w0, w6
    stlxr   w3, w0, [x7]
    cbnz    w3, 6b
    add     x7, x1, #{FC_KICK}
    ldr     x7, [x7, x5, lsl #3]
    dsb     ish                                 /* the pending bit before the kick */
    msr     icc_sgi1r_el1, x7
    cbnz    x4, 4b
    isb
5:  mov     x0, x2
    COUNT   {CNT_SGI_TRAP}
    mrs     x3, elr_el2
    add     x3, x3, #4
    msr     elr_el2, x3
    cbz     x0, .Lsync_return
    /* A self-IPI: pending in this vCPU's model, then delivered right here. */
    ldr     x7, [x1, #{FC_PRIVATE}]
    add     x7, x7, #{PI_PENDING}
6:  ldxr    w3, [x7]
    orr     w3, w3, w6
    stxr    w2, w3, [x7]
    cbnz    w2, 6b
    DELIVER_ONE .Lsync_drain
.Lsync_return:
    RESTORE_LOW_AND_ERET
.Lsgi_not_list: /* Not a plain list: fast only for IRM = 1, every vCPU of
     * the partition but itself (the other fields are ignored). */
    tbz     x2, #{SGI1R_IRM_BIT}, .Lsync_to_rust
    mrs     x1, tpidr_el2
    ldr     x3, [x1, #{FC_MASK}]
    cbz     x3, .Lsync_to_rust
    ldr     x4, [x1, #{FC_VCPUS}]
    ldr     x5, [x1, #{FC_BIT}]
    bic     x4, x4, x5
    mov     x0, xzr
    b       .Lsgi_targets
.Lsync_drain: /* The SGI is sent and counted, ELR advanced: only the drain is left. */
    SAVE_HIGH
    mov     x0, sp
    bl      handle_local_drain
    RESTORE_ALL_AND_ERET

.Lsync_not_sgi: /* x0 = ESR_EL2. `hvc #0` with W0 = IRQ_UNMASK? */
    tbnz    w0, #31, .Lsync_to_rust             /* EC bit 5: an abort (0x20, 0x24) */
    movz    w1, #{HVC0_ESR_HI}, lsl #16
    cmp     w0, w1
    b.ne    .Lsync_to_rust
    ldr     x2, [sp]                            /* the guest's x0 */
    movz    w3, #{IRQ_UNMASK_LO}
    movk    w3, #{IRQ_UNMASK_HI}, lsl #16
    cmp     w2, w3                              /* the function id is W0 */
    b.ne    .Lsync_to_rust
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

.Lsync_to_rust:
    SAVE_HIGH
    mov     x0, sp
    bl      handle_lower_sync
    RESTORE_ALL_AND_ERET
