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
 * Map it Normal write-back, inner shareable, in your stage 1, as the
 * hypervisor does.
 *
 * The page's flag word `mask` has one byte per vCPU: vCPU n masks its
 * interrupts by storing BULKHEAD_CP_MASKED (any non-zero value masks) in
 * mask[n] and unmasks by storing 0 there (bulkhead_irq_mask /
 * bulkhead_irq_unmask). Plain byte stores: vCPU n alone writes mask[n],
 * so no atomic read-modify-write is needed. Before injecting anything into
 * vCPU n, the hypervisor reads mask[n]; while it is non-zero the interrupt
 * is deferred and BULKHEAD_CP_PENDING_DEFERRED (bit 0) of pending[n] is
 * set. After clearing mask[n], the guest reads pending[n] and, only if
 * that bit is set, makes one BULKHEAD_CALL_IRQ_UNMASK hypercall: the
 * hypervisor injects what it deferred and clears the bit. With nothing
 * pending, mask + unmask cost no trap. Bits 7:1 of pending[n] are the
 * guest's own: the hypervisor never changes them.
 *
 * The one race your IRQ vector must handle: an interrupt the hypervisor
 * put into a list register just before the guest set mask[n] can still be
 * signalled after. To keep handlers out of masked sections, the IRQ vector
 * should first test mask[n] (bulkhead_irq_is_masked) and, if it is set,
 * acknowledge nothing: set PSTATE.I (bit 7) in the interrupted context's
 * saved SPSR_EL1, note that it did ("lazily masked", per CPU) and return
 * with ERET. The interrupt stays pending in the list register and cannot
 * fire again. The outermost unmask, after bulkhead_irq_unmask(), then
 * clears PSTATE.I (`msr daifclr, #2`) if and only if that note is set,
 * and clears the note; the interrupt is then taken, in priority order with
 * the ones the hypercall injected. guest-lib keeps the note in bit 1 of
 * pending[n], written by its vector as one store of 3 (the note and
 * BULKHEAD_CP_PENDING_DEFERRED: a load, OR and store could lose a deferral
 * the hypervisor noted in between), so that the unmask tests both with one
 * load; its vectors.S and irq.rs are a complete example.
 *
 * Build notes: the mask helpers use only __atomic loads and stores of
 * bytes, which are single instructions on every AArch64 (no LSE atomics
 * needed, no calls into libgcc). The hypercall helpers exist
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
/* x1 = channel number: rings that doorbell, as a write to the doorbell page. */
#define BULKHEAD_CALL_DOORBELL BULKHEAD_CALL(7)

/* x1 of VERSION: "BULKHEAD" in ASCII, little-endian. */
#define BULKHEAD_MAGIC UINT64_C(0x444145484B4C5542)
#define BULKHEAD_ABI_VERSION 2
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
#define BULKHEAD_COUNTER_DOORBELL_REFUSED 9
#define BULKHEAD_COUNTER_COUNT 10

/* ---- The control page (layout version 2) --------------------------------- */

/* "BKCP", little-endian. */
#define BULKHEAD_CP_MAGIC UINT32_C(0x50434B42)
#define BULKHEAD_CP_VERSION 2
#define BULKHEAD_CP_SIZE 4096
/* vCPUs the page has flags for: a byte each in the 64-bit flag and pending
 * words. */
#define BULKHEAD_CP_VCPUS 8

#define BULKHEAD_CP_OFFSET_MAGIC 0
#define BULKHEAD_CP_OFFSET_VERSION 4
#define BULKHEAD_CP_OFFSET_MASK 8
#define BULKHEAD_CP_OFFSET_PENDING 16
/* From vCPU n's mask byte to its pending byte. */
#define BULKHEAD_CP_PENDING_FROM_MASK (BULKHEAD_CP_OFFSET_PENDING - BULKHEAD_CP_OFFSET_MASK)
#define BULKHEAD_CP_RESERVED_WORDS (BULKHEAD_CP_SIZE / 4 - 6)

/* mask[n] when vCPU n is masked (the hypervisor takes any non-zero value). */
#define BULKHEAD_CP_MASKED 1
/* pending[n], bit 0: the hypervisor holds interrupts deferred for vCPU n
 * (the only bit it writes). */
#define BULKHEAD_CP_PENDING_DEFERRED 1

struct bulkhead_control_page {
	/* BULKHEAD_CP_MAGIC, written by the hypervisor. */
	uint32_t magic;
	/* BULKHEAD_CP_VERSION, written by the hypervisor. */
	uint32_t version;
	/* The flag word: mask[n] non-zero = vCPU n has masked its
	 * interrupts. Written by vCPU n only, read by the hypervisor. */
	uint8_t mask[BULKHEAD_CP_VCPUS];
	/* pending[n]: bit 0 (BULKHEAD_CP_PENDING_DEFERRED) set by the
	 * hypervisor while it holds interrupts deferred for vCPU n, cleared
	 * by it on IRQ_UNMASK; bits 7:1 vCPU n's own. */
	uint8_t pending[BULKHEAD_CP_VCPUS];
	/* Room to grow; reads as zero in version 2. */
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

/* ---- Channels between partitions ----------------------------------------- */

/* The doorbell page (device tree: compatible "bulkhead,doorbell"): a 32-bit
 * write of a channel number at BULKHEAD_DOORBELL_RING rings that doorbell.
 * Channel n is entry n of the node's channel-names. */
#define BULKHEAD_DOORBELL_SIZE 4096
#define BULKHEAD_DOORBELL_RING 0
/* Read-only: how many channels the partition may ring. */
#define BULKHEAD_DOORBELL_CHANNELS 4

/* A single-producer single-consumer ring of BULKHEAD_RING_SLOT_SIZE-byte
 * slots over a shared region (compatible "bulkhead,shared-memory", mapped
 * read-write by both sides), as guest-lib's channel API (bulkhead-abi's
 * `ring`) lays it out. The region starts zeroed; whoever attaches first
 * writes magic, version, slot_size and slots (slots: the largest power of
 * two that fits after the header; magic last, with release).
 * The producer fills slot head % slots, then stores head + 1 (release),
 * then, after a full fence, if wants_doorbell is set, clears it and rings
 * the doorbell. The consumer loads head (acquire), copies slot
 * tail % slots, stores tail + 1 (release). Before it waits, it sets
 * wants_doorbell, fences, and looks at head again. head and tail count
 * messages ever sent and received, wrapping at 2^32: empty when equal,
 * full when head - tail == slots. */
#define BULKHEAD_RING_MAGIC UINT32_C(0x47524B42) /* "BKRG" */
#define BULKHEAD_RING_VERSION 1
#define BULKHEAD_RING_SLOT_SIZE 64
#define BULKHEAD_RING_MESSAGE_MAX (BULKHEAD_RING_SLOT_SIZE - 4)
#define BULKHEAD_RING_HEADER_SIZE 192
#define BULKHEAD_RING_OFFSET_MAGIC 0
#define BULKHEAD_RING_OFFSET_VERSION 4
#define BULKHEAD_RING_OFFSET_SLOT_SIZE 8
#define BULKHEAD_RING_OFFSET_SLOTS 12
#define BULKHEAD_RING_OFFSET_HEAD 64
#define BULKHEAD_RING_OFFSET_TAIL 128
#define BULKHEAD_RING_OFFSET_WANTS_DOORBELL 132

struct bulkhead_ring {
	uint32_t magic;
	uint32_t version;
	uint32_t slot_size;
	uint32_t slots;
	uint32_t reserved0[12];
	/* Messages ever sent: the producer's, on a cache line of its own. */
	uint32_t head;
	uint32_t reserved1[15];
	/* Messages ever received: the consumer's. */
	uint32_t tail;
	/* Non-zero: the consumer waits for a doorbell. */
	uint32_t wants_doorbell;
	uint32_t reserved2[14];
};

struct bulkhead_ring_slot {
	/* Bytes of the message, at most BULKHEAD_RING_MESSAGE_MAX. */
	uint32_t len;
	uint8_t data[BULKHEAD_RING_MESSAGE_MAX];
};

_Static_assert(sizeof(struct bulkhead_ring) == BULKHEAD_RING_HEADER_SIZE, "ring header size");
_Static_assert(offsetof(struct bulkhead_ring, head) == BULKHEAD_RING_OFFSET_HEAD, "head offset");
_Static_assert(offsetof(struct bulkhead_ring, tail) == BULKHEAD_RING_OFFSET_TAIL, "tail offset");
_Static_assert(offsetof(struct bulkhead_ring, wants_doorbell) == BULKHEAD_RING_OFFSET_WANTS_DOORBELL,
	       "wants_doorbell offset");
_Static_assert(sizeof(struct bulkhead_ring_slot) == BULKHEAD_RING_SLOT_SIZE, "slot size");

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

/* Whether vCPU `vcpu`'s mask byte is set (for the IRQ vector's check). */
static inline int bulkhead_irq_is_masked(const struct bulkhead_control_page *page,
					 unsigned int vcpu)
{
	return __atomic_load_n(&page->mask[vcpu], __ATOMIC_RELAXED) != 0;
}

/* Masks vCPU `vcpu`'s interrupts: sets its mask byte. Returns non-zero if
 * it was set already (a nested mask: do not unmask for it). Plain byte
 * accesses: only vCPU `vcpu` writes the byte. Relaxed is enough for the
 * hypervisor, which reads the byte on this CPU after an exception; the
 * signal fence keeps the compiler from moving the critical section's
 * accesses above the store. */
static inline uint32_t bulkhead_irq_mask(struct bulkhead_control_page *page, unsigned int vcpu)
{
	uint8_t old = __atomic_load_n(&page->mask[vcpu], __ATOMIC_RELAXED);
	__atomic_store_n(&page->mask[vcpu], (uint8_t)BULKHEAD_CP_MASKED, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return old;
}

#ifdef BULKHEAD_IRQ_UNMASK_CALL
/* Unmasks vCPU `vcpu`'s interrupts: clears its mask byte (release: the
 * critical section's stores come first), then, only if the hypervisor
 * deferred something meanwhile (BULKHEAD_CP_PENDING_DEFERRED in its
 * pending byte), makes one IRQ_UNMASK hypercall. Returns 1 if it made the
 * call, else 0. A lazily masking IRQ vector's PSTATE.I is the caller's to
 * clear afterwards (see the top of this file). */
static inline int bulkhead_irq_unmask(struct bulkhead_control_page *page, unsigned int vcpu)
{
	__atomic_store_n(&page->mask[vcpu], (uint8_t)0, __ATOMIC_RELEASE);
	/* The pending byte must be read after the store. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&page->pending[vcpu], __ATOMIC_RELAXED) & BULKHEAD_CP_PENDING_DEFERRED) {
		BULKHEAD_IRQ_UNMASK_CALL();
		return 1;
	}
	return 0;
}
#endif

#endif /* BULKHEAD_H */
