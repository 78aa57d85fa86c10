/*
 * bulkhead.h: the Bulkhead hypervisor's guest ABI for C guests (an RTOS,
 * a bare-metal program). The same numbers as the Rust crate bulkhead-abi
 * (guest-lib/abi/src/lib.rs); guest-lib/abi/tests/c_header.rs compiles this
 * header and checks every value and offset against the Rust side.
 *
 * Hypercalls follow the SMC Calling Convention: function id in x0,
 * arguments in x1..x7, results in x0..x3, issued with `hvc #0`.
 *
 * Interrupt masking without a trap
 * --------------------------------
 * Each partition has a control page (struct bulkhead_control_page), mapped
 * into it alone as Normal write-back memory at an address its
 * configuration fixes; BULKHEAD_CALL_VERSION returns it in x3 (0: none),
 * and a device tree node (compatible "bulkhead,control-page") describes it.
 * Map it Normal, inner shareable, in your stage 1: the mask word is updated
 * with exclusive loads/stores.
 *
 * vCPU n masks its interrupts by setting bit n of `mask` and unmasks by
 * clearing it (bulkhead_irq_mask / bulkhead_irq_unmask). Before injecting
 * anything into vCPU n, the hypervisor reads that bit; while it is set the
 * interrupt is deferred and bit n of `pending` is set. After clearing its
 * bit, the guest reads `pending` and, only if bit n is set there, makes one
 * BULKHEAD_CALL_IRQ_UNMASK hypercall: the hypervisor injects what it
 * deferred. With nothing pending, mask + unmask cost no trap.
 *
 * The one race your IRQ vector must handle: an interrupt the hypervisor
 * put into a list register just before the guest set its bit can still be
 * signalled after. To keep handlers out of masked sections, the IRQ vector
 * should first test bit n of `mask` (bulkhead_irq_is_masked) and, if it is
 * set, acknowledge nothing: set PSTATE.I (bit 7) in the interrupted
 * context's saved SPSR_EL1, note per CPU that it did ("lazily masked"), and
 * return with ERET. The interrupt stays pending in the list register and
 * cannot fire again. The outermost unmask, after bulkhead_irq_unmask(),
 * then clears PSTATE.I (`msr daifset`'s inverse, `msr daifclr, #2`) if and
 * only if that per-CPU note is set, and clears the note; the interrupt is
 * then taken, in priority order with the ones the hypercall injected.
 * guest-lib's vectors.S and irq.rs are a complete example.
 *
 * Build notes: with GCC for ARMv8.0 (no LSE atomics, e.g. Cortex-A53),
 * pass -mno-outline-atomics so that the __atomic builtins become inline
 * LDXR/STXR loops instead of calls into libgcc; with -march=armv8.1-a or
 * later they become single LSE instructions. The hypercall helpers exist
 * only when compiling for AArch64; the layout and numbers are portable
 * (host tools can include this header).
 */
#ifndef BULKHEAD_H
#define BULKHEAD_H

#include <stddef.h>
#include <stdint.h>

/* ---- Hypercalls ---------------------------------------------------------- */

/* SMCCC fast call (bit 31), SMC64 (bit 30), owner 6 = vendor specific
 * hypervisor service (bits 29:24). */
#define BULKHEAD_CALL(n) (UINT64_C(0xC6000000) | (uint64_t)(n))

/* -> x0 = 0, x1 = BULKHEAD_MAGIC, x2 = BULKHEAD_ABI_VERSION,
 *    x3 = control page guest address (0: none). */
#define BULKHEAD_CALL_VERSION BULKHEAD_CALL(0)
/* x1 = length (<= BULKHEAD_CONSOLE_WRITE_MAX), x2..x7 = bytes, packed
 * little-endian, eight a register. */
#define BULKHEAD_CALL_CONSOLE_WRITE BULKHEAD_CALL(1)
/* -> x1 = partition index, x2 = vCPU index, x3 = vCPU count. */
#define BULKHEAD_CALL_VCPU_INFO BULKHEAD_CALL(2)
/* x1 = exit code; stops every vCPU of the partition. */
#define BULKHEAD_CALL_PARTITION_EXIT BULKHEAD_CALL(3)
/* x1 = counter (BULKHEAD_COUNTER_*) -> x1 = its count. */
#define BULKHEAD_CALL_EXIT_COUNT BULKHEAD_CALL(4)
/* Mask bit cleared, pending bit found set: inject what was deferred. */
#define BULKHEAD_CALL_IRQ_UNMASK BULKHEAD_CALL(5)
/* -> x1 = interrupts deferred, x2 = longest wait behind the mask,
 *    x3 = longest masked window that delayed one (counter ticks). */
#define BULKHEAD_CALL_DEFER_STATS BULKHEAD_CALL(6)

/* x1 of VERSION: "BULKHEAD" in ASCII, little-endian. */
#define BULKHEAD_MAGIC UINT64_C(0x444145484B4C5542)
#define BULKHEAD_ABI_VERSION 1
#define BULKHEAD_CONSOLE_WRITE_MAX 48

/* Status in x0 (SMCCC/PSCI values). */
#define BULKHEAD_SUCCESS 0
#define BULKHEAD_NOT_SUPPORTED (-1)
#define BULKHEAD_INVALID_PARAMETERS (-2)
#define BULKHEAD_DENIED (-3)
#define BULKHEAD_ALREADY_ON (-4)
#define BULKHEAD_ON_PENDING (-5)
#define BULKHEAD_INVALID_ADDRESS (-9)

/* Exit counters for BULKHEAD_CALL_EXIT_COUNT. */
#define BULKHEAD_COUNTER_IRQ 0
#define BULKHEAD_COUNTER_SGI_TRAP 1
#define BULKHEAD_COUNTER_HVC 2
#define BULKHEAD_COUNTER_SMC 3
#define BULKHEAD_COUNTER_DATA_ABORT 4
#define BULKHEAD_COUNTER_SYSREG 5
#define BULKHEAD_COUNTER_OTHER 6
#define BULKHEAD_COUNTER_SGI_REFUSED 7
#define BULKHEAD_COUNTER_EXTERNAL_ABORT 8
#define BULKHEAD_COUNTER_COUNT 9

/* ---- The control page (layout version 1) --------------------------------- */

/* "BKCP", little-endian. */
#define BULKHEAD_CP_MAGIC UINT32_C(0x50434B42)
#define BULKHEAD_CP_VERSION 1
#define BULKHEAD_CP_SIZE 4096

#define BULKHEAD_CP_OFFSET_MAGIC 0
#define BULKHEAD_CP_OFFSET_VERSION 4
#define BULKHEAD_CP_OFFSET_MASK 8
#define BULKHEAD_CP_OFFSET_PENDING 12
#define BULKHEAD_CP_RESERVED_WORDS (BULKHEAD_CP_SIZE / 4 - 4)

struct bulkhead_control_page {
	/* BULKHEAD_CP_MAGIC, written by the hypervisor. */
	uint32_t magic;
	/* BULKHEAD_CP_VERSION, written by the hypervisor. */
	uint32_t version;
	/* Bit n set: vCPU n has masked its interrupts. Written by the guest
	 * (atomically: vCPUs share the word), read by the hypervisor. */
	uint32_t mask;
	/* Bit n set: the hypervisor holds interrupts deferred for vCPU n.
	 * Set by the hypervisor, cleared by it on IRQ_UNMASK. */
	uint32_t pending;
	/* Room to grow; reads as zero in version 1. */
	uint32_t reserved[BULKHEAD_CP_RESERVED_WORDS];
};

_Static_assert(sizeof(struct bulkhead_control_page) == BULKHEAD_CP_SIZE,
	       "control page size");
_Static_assert(offsetof(struct bulkhead_control_page, magic) == BULKHEAD_CP_OFFSET_MAGIC,
	       "magic offset");
_Static_assert(offsetof(struct bulkhead_control_page, version) == BULKHEAD_CP_OFFSET_VERSION,
	       "version offset");
_Static_assert(offsetof(struct bulkhead_control_page, mask) == BULKHEAD_CP_OFFSET_MASK,
	       "mask offset");
_Static_assert(offsetof(struct bulkhead_control_page, pending) == BULKHEAD_CP_OFFSET_PENDING,
	       "pending offset");

/* ---- Calls (AArch64 only) ------------------------------------------------ */

#if defined(__aarch64__)
/* One hypercall with up to three arguments; returns x0, and x1..x3 through
 * `out` (may be NULL). SMCCC 1.0 lets the callee corrupt x4..x17. */
static inline int64_t bulkhead_hvc(uint64_t id, uint64_t a1, uint64_t a2, uint64_t a3,
				   uint64_t out[3])
{
	register uint64_t x0 __asm__("x0") = id;
	register uint64_t x1 __asm__("x1") = a1;
	register uint64_t x2 __asm__("x2") = a2;
	register uint64_t x3 __asm__("x3") = a3;
	__asm__ __volatile__("hvc #0"
			     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
			     :
			     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12",
			       "x13", "x14", "x15", "x16", "x17", "memory");
	if (out) {
		out[0] = x1;
		out[1] = x2;
		out[2] = x3;
	}
	return (int64_t)x0;
}

/* The control page's address if running under Bulkhead (0 otherwise, or
 * if the partition has none). Only call it where HVC is defined: at EL1
 * with an EL2 present. */
static inline struct bulkhead_control_page *bulkhead_find_control_page(void)
{
	uint64_t out[3];
	bulkhead_hvc(BULKHEAD_CALL_VERSION, 0, 0, 0, out);
	if (out[0] != BULKHEAD_MAGIC)
		return NULL;
	return (struct bulkhead_control_page *)(uintptr_t)out[2];
}

#ifndef BULKHEAD_IRQ_UNMASK_CALL
/* The hypercall bulkhead_irq_unmask makes; define it before including this
 * header to use your own conduit (or, in host tests, a stub). */
#define BULKHEAD_IRQ_UNMASK_CALL() \
	((void)bulkhead_hvc(BULKHEAD_CALL_IRQ_UNMASK, 0, 0, 0, NULL))
#endif
#endif /* __aarch64__ */

/* ---- Masking ------------------------------------------------------------- */

/* Whether vCPU `vcpu`'s mask bit is set (for the IRQ vector's check). */
static inline int bulkhead_irq_is_masked(const struct bulkhead_control_page *page,
					 unsigned int vcpu)
{
	return (__atomic_load_n(&page->mask, __ATOMIC_RELAXED) >> vcpu) & 1;
}

/* Masks vCPU `vcpu`'s interrupts: sets its bit in the mask word. Returns
 * non-zero if it was set already (a nested mask: do not unmask for it).
 * Relaxed is enough for the hypervisor, which reads the bit on this CPU
 * after an exception; the signal fence keeps the compiler from moving
 * the critical section's accesses above the store. */
static inline uint32_t bulkhead_irq_mask(struct bulkhead_control_page *page, unsigned int vcpu)
{
	uint32_t bit = UINT32_C(1) << vcpu;
	uint32_t old = __atomic_fetch_or(&page->mask, bit, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return old & bit;
}

#ifdef BULKHEAD_IRQ_UNMASK_CALL
/* Unmasks vCPU `vcpu`'s interrupts: clears its bit (release: the critical
 * section's stores come first), then, only if the hypervisor deferred
 * something meanwhile (its pending bit), makes one IRQ_UNMASK hypercall.
 * Returns 1 if it made the call, else 0. A lazily masking IRQ vector's
 * PSTATE.I is the caller's to clear afterwards (see the top of this file). */
static inline int bulkhead_irq_unmask(struct bulkhead_control_page *page, unsigned int vcpu)
{
	uint32_t bit = UINT32_C(1) << vcpu;
	__atomic_fetch_and(&page->mask, ~bit, __ATOMIC_RELEASE);
	/* The pending word must be read after the clear. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&page->pending, __ATOMIC_RELAXED) & bit) {
		BULKHEAD_IRQ_UNMASK_CALL();
		return 1;
	}
	return 0;
}
#endif

#endif /* BULKHEAD_H */
