/*
 * The calls' fast path (calls.rs): an HVC of VERSION, VCPU_INFO,
 * EXIT_COUNT, PSCI_VERSION, PSCI_FEATURES, MIGRATE_INFO_TYPE,
 * SMCCC_VERSION or SMCCC_ARCH_FEATURES answered from this CPU's block,
 * counted as Rust counts it, without the rest of the trap frame. Follows
 * vectors.S in one global_asm!, before the GIC backend's exits.
 *
 * CALL_FAST \slow, in the backend's lower_sync once it has seen an HVC
 * (EC_HVC64), expanded once: entered with x0-x3 saved (SAVE_X0_X3 or
 * SAVE_LOW), x0 as the guest had it. It returns to the guest, or branches to \slow with x0
 * as the guest's, x1-x3 clobbered (the frame has them) and x4-x30
 * untouched. A function id is W0 (SMCCC 1.1, 2.5): every comparison is on
 * w registers. An answer writes the registers its call returns and
 * reloads the others it used from the frame.
 *
 * Constants (global_asm! operands): the call block's offsets
 * (CB_*); the counters' in the per-CPU block (PC_COUNTERS, CNT_HVC) and
 * how many there are (COUNTERS); the function ids as an
 * owner's base (its bits 31:16, *_HI) and a number under it (*_N,
 * BULKHEAD_N_MAX); the
 * answers (MAGIC, ABI_VERSION, PSCI_VERSION_VALUE, SMCCC_VERSION_VALUE,
 * TOS_NOT_PRESENT, NOT_SUPPORTED, INVALID_PARAMETERS) and PSCI_FEATURES'
 * masks (FEATURES_SMC32, FEATURES_SMC64).
 */

/* The vCPU's HVC counter += 1 (PerCpu::counters); x3 = &PerCpu.
 * Clobbers x1. */
.macro CALL_COUNT
    mrs     x3, tpidr_el2
    ldr     x1, [x3, #{CNT_HVC}]
    add     x1, x1, #1
    str     x1, [x3, #{CNT_HVC}]
.endm

.macro CALL_FAST slow
    movz    w1, #{BULKHEAD_BASE_HI}, lsl #16    /* Bulkhead's: 0xC600_0000 + n */
    subs    w1, w0, w1
    b.eq    .Lcall_version
    cmp     w1, #{VCPU_INFO_N}
    b.eq    .Lcall_vcpu_info
    cmp     w1, #{EXIT_COUNT_N}
    b.eq    .Lcall_exit_count
    cmp     w1, #{BULKHEAD_N_MAX}
    b.ls    \slow                               /* Bulkhead's other calls */
    movz    w1, #{PSCI_BASE_HI}, lsl #16        /* PSCI's (SMC32): 0x8400_0000 + n */
    subs    w1, w0, w1
    b.eq    .Lcall_psci_version
    cmp     w1, #{PSCI_FEATURES_N}
    b.eq    .Lcall_psci_features
    cmp     w1, #{MIGRATE_INFO_TYPE_N}
    b.eq    .Lcall_migrate_info_type
    movz    w1, #{SMCCC_BASE_HI}, lsl #16       /* SMCCC's: 0x8000_0000 + n */
    subs    w1, w0, w1
    b.eq    .Lcall_smccc_version
    cmp     w1, #{ARCH_FEATURES_N}
    b.eq    .Lcall_arch_features
    b       \slow

.Lcall_version: /* x1 = MAGIC, x2 = ABI_VERSION, x3 = the control page's IPA */
    CALL_COUNT
    ldr     x3, [x3, #{CB_CONTROL}]
    ldr     x1, .Lcall_magic
    mov     x2, #{ABI_VERSION}
    mov     x0, #0
    add     sp, sp, #{FRAME}
    ERET

.Lcall_vcpu_info: /* x1 = partition, x2 = vCPU, x3 = the partition's vCPUs */
    CALL_COUNT
    ldp     x1, x2, [x3, #{CB_INFO}]
    ldr     x3, [x3, #{CB_INFO} + 16]
    mov     x0, #0
    add     sp, sp, #{FRAME}
    ERET

.Lcall_exit_count: /* x1 = the counter x1 names, counted first; or INVALID_PARAMETERS */
    CALL_COUNT
    ldr     x1, [sp, #8]
    cmp     x1, #{COUNTERS}
    b.hs    1f
    add     x2, x3, #{PC_COUNTERS}
    ldr     x1, [x2, x1, lsl #3]
    mov     x0, #0
    b       .Lcall_return_x0_x1
1:  mov     x0, #{INVALID_PARAMETERS}
    b       .Lcall_return_x0

.Lcall_psci_version:
    CALL_COUNT
    mov     w0, #{PSCI_VERSION_VALUE}
    b       .Lcall_return_x0

.Lcall_migrate_info_type:
    CALL_COUNT
    mov     w0, #{TOS_NOT_PRESENT}
    b       .Lcall_return_x0

.Lcall_smccc_version:
    CALL_COUNT
    mov     w0, #{SMCCC_VERSION_VALUE}
    b       .Lcall_return_x0

.Lcall_psci_features: /* W1 (an SMC32 call): 0 if implemented, else NOT_SUPPORTED */
    CALL_COUNT
    ldr     w1, [sp, #8]
    mov     x0, #{NOT_SUPPORTED}
    movz    w2, #{SMCCC_BASE_HI}, lsl #16
    cmp     w1, w2
    b.eq    2f                                  /* SMCCC_VERSION */
    and     w2, w1, #0xffffffe0                 /* PSCI's, SMC32 or SMC64: */
    and     w2, w2, #0xbfffffff                 /* 0x8400_0000 | bit 30 | n < 32 */
    movz    w3, #{PSCI_BASE_HI}, lsl #16
    cmp     w2, w3
    b.ne    .Lcall_return_x0
    ldr     w2, .Lcall_features_smc32
    tbz     w1, #30, 1f
    ldr     w2, .Lcall_features_smc64
1:  lsr     w2, w2, w1                          /* by n: the shift takes w1's bits 4:0 */
    tbz     w2, #0, .Lcall_return_x0
2:  mov     x0, #0
    b       .Lcall_return_x0

.Lcall_arch_features: /* W1: 0 for SMCCC_VERSION and SMCCC_ARCH_FEATURES */
    CALL_COUNT
    ldr     w1, [sp, #8]
    mov     x0, #{NOT_SUPPORTED}
    movz    w2, #{SMCCC_BASE_HI}, lsl #16
    sub     w1, w1, w2
    cmp     w1, #{ARCH_FEATURES_N}
    b.hi    .Lcall_return_x0
    mov     x0, #0

.Lcall_return_x0: /* x0 the answer: x1-x3 as the guest had them */
    ldr     x1, [sp, #8]
.Lcall_return_x0_x1:
    ldp     x2, x3, [sp, #16]
    add     sp, sp, #{FRAME}
    ERET

.balign 8
.Lcall_magic:
    .quad   {MAGIC}
.Lcall_features_smc32:
    .word   {FEATURES_SMC32}
.Lcall_features_smc64:
    .word   {FEATURES_SMC64}
.endm
