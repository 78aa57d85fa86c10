//! A single-producer single-consumer ring of fixed-size messages over a
//! shared region (a partition set's `[[shared]]`, mapped read-write by both
//! sides), and the doorbell rule that goes with it.
//!
//! Layout (version [`VERSION`], little-endian; `struct bulkhead_ring` and
//! `struct bulkhead_ring_slot` in `bulkhead.h`, which a test checks):
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | `magic` ([`MAGIC`], "BKRG"), u32 | whoever attaches first |
//! | 4 | `version`, u32 | " |
//! | 8 | `slot_size` ([`SLOT_SIZE`]), u32 | " |
//! | 12 | `slots`: how many, a power of two, u32 | " |
//! | 64 | `head`: messages ever sent, u32, wrapping | the producer |
//! | 128 | `tail`: messages ever received, u32, wrapping | the consumer |
//! | 132 | `wants_doorbell`: non-zero = ring me, u32 | the consumer sets, the producer clears |
//! | 192 | the slots: slot `i % slots` holds message `i` | the producer |
//!
//! A slot is a u32 length (at most [`MESSAGE_MAX`]) and the message's bytes.
//! `head` and `tail` sit on cache lines of their own, so the two sides do
//! not contend for one line. The ring holds `slots` messages: it is empty
//! when `head == tail`, full when `head - tail == slots`.
//!
//! Ordering: the producer writes a slot, then stores `head` with release;
//! the consumer loads `head` with acquire before reading the slot, then
//! stores `tail` with release, and the producer loads `tail` with acquire
//! before reusing the slot.
//!
//! The doorbell, rung only when the consumer asked: a consumer about to
//! wait sets `wants_doorbell`, then looks at `head` once more (it may have
//! moved just before); a producer, after publishing `head`, looks at
//! `wants_doorbell` and, if set, clears it and rings. Both pairs of
//! accesses are separated by sequentially consistent fences, so at least
//! one side sees the other's store: a message never waits unseen behind a
//! sleeping consumer, and a busy consumer costs the producer no doorbell.
//!
//! The region starts zeroed (the hypervisor zeroes shared regions once at
//! boot): `head == tail == 0`. Whichever side attaches first writes the
//! geometry, which is a function of the region's size alone, so both write
//! the same values; a partition that restarts attaches again and carries on
//! from the indices in the region.

use core::sync::atomic::{AtomicU32, Ordering, fence};

/// `magic`: "BKRG", little-endian.
pub const MAGIC: u32 = u32::from_le_bytes(*b"BKRG");
/// `version` of this layout.
pub const VERSION: u32 = 1;
/// Bytes of a slot: one cache line.
pub const SLOT_SIZE: usize = 64;
/// Bytes of a message: a slot less its length word.
pub const MESSAGE_MAX: usize = SLOT_SIZE - 4;
/// Bytes before the first slot: three cache lines (the geometry, `head`,
/// `tail` and `wants_doorbell`).
pub const HEADER_SIZE: usize = 192;
/// Byte offset of `magic`.
pub const OFFSET_MAGIC: usize = 0;
/// Byte offset of `version`.
pub const OFFSET_VERSION: usize = 4;
/// Byte offset of `slot_size`.
pub const OFFSET_SLOT_SIZE: usize = 8;
/// Byte offset of `slots`.
pub const OFFSET_SLOTS: usize = 12;
/// Byte offset of `head`: its own cache line.
pub const OFFSET_HEAD: usize = 64;
/// Byte offset of `tail`: its own cache line, with `wants_doorbell`.
pub const OFFSET_TAIL: usize = 128;
/// Byte offset of `wants_doorbell`.
pub const OFFSET_WANTS_DOORBELL: usize = 132;

/// The ring's header as laid out at the start of the region.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct RingHeader {
    /// [`MAGIC`] once attached.
    pub magic: AtomicU32,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// [`SLOT_SIZE`].
    pub slot_size: AtomicU32,
    /// How many slots: a power of two.
    pub slots: AtomicU32,
    _geometry_line: [u32; 12],
    /// Messages ever sent (wrapping): written by the producer only.
    pub head: AtomicU32,
    _head_line: [u32; 15],
    /// Messages ever received (wrapping): written by the consumer only.
    pub tail: AtomicU32,
    /// Non-zero: the consumer waits for a doorbell.
    pub wants_doorbell: AtomicU32,
    _tail_line: [u32; 14],
}

/// One slot.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Bytes of the message, at most [`MESSAGE_MAX`].
    pub len: u32,
    /// The message, then whatever was there.
    pub data: [u8; MESSAGE_MAX],
}

const _: () = {
    assert!(core::mem::size_of::<RingHeader>() == HEADER_SIZE);
    assert!(core::mem::offset_of!(RingHeader, magic) == OFFSET_MAGIC);
    assert!(core::mem::offset_of!(RingHeader, version) == OFFSET_VERSION);
    assert!(core::mem::offset_of!(RingHeader, slot_size) == OFFSET_SLOT_SIZE);
    assert!(core::mem::offset_of!(RingHeader, slots) == OFFSET_SLOTS);
    assert!(core::mem::offset_of!(RingHeader, head) == OFFSET_HEAD);
    assert!(core::mem::offset_of!(RingHeader, tail) == OFFSET_TAIL);
    assert!(core::mem::offset_of!(RingHeader, wants_doorbell) == OFFSET_WANTS_DOORBELL);
    assert!(core::mem::size_of::<Slot>() == SLOT_SIZE);
};

/// How many slots a region of `size` bytes holds: the largest power of two
/// that fits after the header (`None`: not even one).
pub const fn slots_for(size: usize) -> Option<u32> {
    if size < HEADER_SIZE + SLOT_SIZE {
        return None;
    }
    let fit = (size - HEADER_SIZE) / SLOT_SIZE;
    let slots = 1usize << (usize::BITS - 1 - fit.leading_zeros());
    if slots > u32::MAX as usize / 2 {
        return None;
    }
    Some(slots as u32)
}

/// Why a region cannot be a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Not 64-byte aligned, or too small for the header and one slot.
    BadRegion,
    /// It holds a ring of another version or geometry, or something else.
    Mismatch,
}

/// A ring in a shared region; split it into its two ends with
/// [`Ring::producer`] and [`Ring::consumer`], one in each partition.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    header: *const RingHeader,
    slots: *mut Slot,
    count: u32,
}

// SAFETY: the ring is a view of shared memory whose every shared word is
// atomic; the slots are reached only under the head/tail protocol, which
// gives each slot one writer at a time (see the module doc).
unsafe impl Send for Ring {}

impl Ring {
    /// Attaches to the ring in the `size` bytes at `base`: writes its
    /// geometry if the region is still zeroed, else checks it.
    ///
    /// # Safety
    /// `base..base + size` is memory mapped read-write for the whole life
    /// of the ring (and its ends), which nothing but rings of this layout
    /// use, as at most one producer and one consumer.
    pub unsafe fn attach(base: *mut u8, size: usize) -> Result<Ring, RingError> {
        if !(base as usize).is_multiple_of(64) {
            return Err(RingError::BadRegion);
        }
        let count = slots_for(size).ok_or(RingError::BadRegion)?;
        let header = base as *const RingHeader;
        // SAFETY: aligned, inside the region (the caller's contract), all
        // atomics: the other side may be attaching at the same time.
        let h = unsafe { &*header };
        let geometry = [
            (&h.version, VERSION),
            (&h.slot_size, SLOT_SIZE as u32),
            (&h.slots, count),
        ];
        match h.magic.load(Ordering::Acquire) {
            0 => {
                // Both sides write the same values: no race to lose.
                for (word, value) in geometry {
                    word.store(value, Ordering::Relaxed);
                }
                h.magic.store(MAGIC, Ordering::Release);
            }
            MAGIC => {
                if geometry
                    .iter()
                    .any(|(word, value)| word.load(Ordering::Relaxed) != *value)
                {
                    return Err(RingError::Mismatch);
                }
            }
            _ => return Err(RingError::Mismatch),
        }
        Ok(Ring {
            header,
            // SAFETY: the slots follow the header inside the region
            // (`slots_for` counted them in `size`).
            slots: unsafe { base.add(HEADER_SIZE) } as *mut Slot,
            count,
        })
    }

    /// How many messages the ring holds.
    pub fn capacity(&self) -> u32 {
        self.count
    }

    fn header(&self) -> &RingHeader {
        // SAFETY: `attach`'s contract keeps the region mapped.
        unsafe { &*self.header }
    }

    /// The sending end. Only one may exist, in one partition.
    pub fn producer(self) -> Producer {
        Producer { ring: self }
    }

    /// The receiving end. Only one may exist, in one partition.
    pub fn consumer(self) -> Consumer {
        Consumer { ring: self }
    }
}

/// What a send asks of its caller.
#[must_use = "a consumer that asked for a doorbell waits for it"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The consumer is not waiting: nothing more to do.
    Quietly,
    /// The consumer asked for a doorbell: ring it (once; the request is
    /// cleared).
    RingDoorbell,
}

/// Why a send did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Every slot holds a message the consumer has not taken.
    Full,
    /// Longer than [`MESSAGE_MAX`].
    TooLong,
}

/// The producer's end of a [`Ring`].
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
}

impl Producer {
    /// Enqueues `message` if there is room; says whether to ring the
    /// consumer's doorbell.
    pub fn try_send(&mut self, message: &[u8]) -> Result<Sent, SendError> {
        if message.len() > MESSAGE_MAX {
            return Err(SendError::TooLong);
        }
        let h = self.ring.header();
        // Only this end writes `head`.
        let head = h.head.load(Ordering::Relaxed);
        let tail = h.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) >= self.ring.count {
            return Err(SendError::Full);
        }
        let index = (head & (self.ring.count - 1)) as usize;
        // SAFETY: slot `index` is inside the region, and the consumer is
        // done with it (its tail, loaded with acquire, is past it) and will
        // not read it before `head` moves past it below.
        unsafe {
            let slot = self.ring.slots.add(index);
            let data = core::ptr::addr_of_mut!((*slot).data) as *mut u8;
            core::ptr::copy_nonoverlapping(message.as_ptr(), data, message.len());
            core::ptr::addr_of_mut!((*slot).len).write_volatile(message.len() as u32);
        }
        h.head.store(head.wrapping_add(1), Ordering::Release);
        // Against the consumer's store of `wants_doorbell` and load of `head`.
        fence(Ordering::SeqCst);
        if h.wants_doorbell.load(Ordering::Relaxed) != 0
            && h.wants_doorbell.swap(0, Ordering::Relaxed) != 0
        {
            return Ok(Sent::RingDoorbell);
        }
        Ok(Sent::Quietly)
    }
}

/// The consumer's end of a [`Ring`].
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
}

impl Consumer {
    /// Dequeues the oldest message into `buffer`: its length, or `None`
    /// when the ring is empty.
    pub fn try_recv(&mut self, buffer: &mut [u8; MESSAGE_MAX]) -> Option<usize> {
        let h = self.ring.header();
        // Only this end writes `tail`.
        let tail = h.tail.load(Ordering::Relaxed);
        let head = h.head.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let index = (tail & (self.ring.count - 1)) as usize;
        // SAFETY: slot `index` is inside the region and published (the
        // producer's head, loaded with acquire, is past it); the producer
        // will not rewrite it before `tail` moves past it below. A length
        // beyond a slot (a corrupt producer) is clamped.
        let len = unsafe {
            let slot = self.ring.slots.add(index);
            let len = (core::ptr::addr_of!((*slot).len).read_volatile() as usize).min(MESSAGE_MAX);
            let data = core::ptr::addr_of!((*slot).data) as *const u8;
            core::ptr::copy_nonoverlapping(data, buffer.as_mut_ptr(), len);
            len
        };
        h.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(len)
    }

    /// Asks for a doorbell at the next send, before waiting for one: true
    /// if the ring is still empty (wait), false if a message came in
    /// meanwhile (the request is withdrawn: receive it instead).
    pub fn request_doorbell(&mut self) -> bool {
        let h = self.ring.header();
        h.wants_doorbell.store(1, Ordering::Relaxed);
        // Against the producer's store of `head` and load of `wants_doorbell`.
        fence(Ordering::SeqCst);
        let empty = h.head.load(Ordering::Acquire) == h.tail.load(Ordering::Relaxed);
        if !empty {
            h.wants_doorbell.store(0, Ordering::Relaxed);
        }
        empty
    }

    /// Whether a doorbell request is still standing (no send has rung it).
    pub fn doorbell_requested(&self) -> bool {
        self.ring.header().wants_doorbell.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(64))]
    struct Aligned([u8; 4096]);

    /// Attaches to the first `size` bytes of `memory`, from `skip` on.
    fn attach(memory: &mut Aligned, skip: usize, size: usize) -> Result<Ring, RingError> {
        assert!(skip + size <= memory.0.len());
        // SAFETY: the test's own page, which outlives every use of the
        // ring in the test; the range is inside it.
        unsafe { Ring::attach(memory.0.as_mut_ptr().add(skip), size) }
    }

    fn ends(memory: &mut Aligned) -> (Producer, Consumer) {
        let ring = attach(memory, 0, 4096).unwrap();
        (ring.producer(), ring.consumer())
    }

    #[test]
    fn a_page_holds_32_slots_and_the_geometry_is_checked() {
        assert_eq!(slots_for(4096), Some(32));
        assert_eq!(slots_for(HEADER_SIZE + SLOT_SIZE), Some(1));
        assert_eq!(slots_for(HEADER_SIZE + SLOT_SIZE - 1), None);
        assert_eq!(slots_for(0x10_0000), Some(8192));
        let mut page = Aligned([0; 4096]);
        attach(&mut page, 0, 4096).expect("first attach writes the geometry");
        assert_eq!(&page.0[..4], b"BKRG");
        assert_eq!(page.0[OFFSET_SLOTS], 32);
        attach(&mut page, 0, 4096).expect("the same geometry again");
        assert_eq!(
            attach(&mut page, 0, 2048).unwrap_err(),
            RingError::Mismatch,
            "another size is another geometry"
        );
        assert_eq!(
            attach(&mut page, 8, 1024).unwrap_err(),
            RingError::BadRegion
        );
        assert_eq!(
            attach(&mut page, 64, 128).unwrap_err(),
            RingError::BadRegion
        );
        let mut other = Aligned([0; 4096]);
        other.0[0] = 1; // something that is no ring
        assert_eq!(
            attach(&mut other, 0, 4096).unwrap_err(),
            RingError::Mismatch
        );
    }

    #[test]
    fn empty_full_and_wrap_around() {
        let mut page = Aligned([0; 4096]);
        let (mut tx, mut rx) = ends(&mut page);
        let mut buffer = [0; MESSAGE_MAX];
        assert_eq!(rx.try_recv(&mut buffer), None, "empty at first");
        // Three laps of the 32 slots, filling each time.
        for lap in 0..3u8 {
            for i in 0..32u8 {
                assert_eq!(tx.try_send(&[lap, i, 0xee]), Ok(Sent::Quietly));
            }
            assert_eq!(tx.try_send(b"one too many"), Err(SendError::Full));
            for i in 0..32u8 {
                assert_eq!(rx.try_recv(&mut buffer), Some(3));
                assert_eq!(buffer[..3], [lap, i, 0xee]);
            }
            assert_eq!(rx.try_recv(&mut buffer), None);
        }
        assert_eq!(tx.try_send(&[0; MESSAGE_MAX + 1]), Err(SendError::TooLong));
        assert_eq!(tx.try_send(&[7; MESSAGE_MAX]), Ok(Sent::Quietly));
        assert_eq!(tx.try_send(&[]), Ok(Sent::Quietly));
        assert_eq!(rx.try_recv(&mut buffer), Some(MESSAGE_MAX));
        assert_eq!(buffer, [7; MESSAGE_MAX]);
        assert_eq!(rx.try_recv(&mut buffer), Some(0));
    }

    #[test]
    fn the_indices_wrap_at_32_bits() {
        let mut page = Aligned([0; 4096]);
        // A ring that has carried nearly 2^32 messages.
        let start = u32::MAX - 5;
        page.0[OFFSET_HEAD..OFFSET_HEAD + 4].copy_from_slice(&start.to_le_bytes());
        page.0[OFFSET_TAIL..OFFSET_TAIL + 4].copy_from_slice(&start.to_le_bytes());
        let (mut tx, mut rx) = ends(&mut page);
        let mut buffer = [0; MESSAGE_MAX];
        for i in 0..32u8 {
            assert_eq!(tx.try_send(&[i]), Ok(Sent::Quietly));
        }
        assert_eq!(tx.try_send(&[99]), Err(SendError::Full));
        for i in 0..32u8 {
            assert_eq!(rx.try_recv(&mut buffer), Some(1));
            assert_eq!(buffer[0], i);
        }
        assert_eq!(rx.try_recv(&mut buffer), None);
        assert_eq!(page.0[OFFSET_HEAD..OFFSET_HEAD + 4], 26u32.to_le_bytes());
    }

    #[test]
    fn the_doorbell_rings_once_and_only_when_asked() {
        let mut page = Aligned([0; 4096]);
        let (mut tx, mut rx) = ends(&mut page);
        let mut buffer = [0; MESSAGE_MAX];
        assert_eq!(tx.try_send(b"a"), Ok(Sent::Quietly), "nobody asked");
        assert!(!rx.request_doorbell(), "not empty: no waiting");
        assert!(!rx.doorbell_requested(), "the request is withdrawn");
        assert_eq!(rx.try_recv(&mut buffer), Some(1));
        assert!(rx.request_doorbell(), "empty: wait");
        assert!(rx.doorbell_requested());
        assert_eq!(tx.try_send(b"b"), Ok(Sent::RingDoorbell));
        assert!(!rx.doorbell_requested(), "the send took the request");
        assert_eq!(
            tx.try_send(b"c"),
            Ok(Sent::Quietly),
            "one doorbell per request"
        );
        assert!(!rx.request_doorbell());
    }

    /// A million messages through a 32-slot ring between two threads, the
    /// consumer waiting on its doorbell (here a flag) whenever the ring is
    /// empty: none lost, reordered or duplicated, no wait left unrung (it
    /// would hang), and no doorbell rung that was not asked for. (A request
    /// withdrawn as a message arrives may still be rung once: a spurious
    /// doorbell, which a consumer takes as "look again".)
    #[test]
    fn a_million_messages_between_two_threads() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;

        const MESSAGES: u64 = 1_000_000;
        let mut page = Box::new(Aligned([0; 4096]));
        let (mut tx, mut rx) = ends(&mut page);
        let doorbell = Arc::new(AtomicBool::new(false));
        let rung = doorbell.clone();
        let producer = std::thread::spawn(move || {
            let mut rings = 0u64;
            for n in 0..MESSAGES {
                // A varying length: the sequence number, then its low byte.
                let len = 8 + (n % 50) as usize;
                let mut message = [(n & 0xff) as u8; MESSAGE_MAX];
                message[..8].copy_from_slice(&n.to_le_bytes());
                loop {
                    match tx.try_send(&message[..len]) {
                        Ok(sent) => {
                            if sent == Sent::RingDoorbell {
                                rings += 1;
                                rung.store(true, Ordering::Release);
                            }
                            break;
                        }
                        Err(SendError::Full) => std::hint::spin_loop(),
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            rings
        });
        let mut buffer = [0; MESSAGE_MAX];
        let (mut waits, mut requests) = (0u64, 0u64);
        for n in 0..MESSAGES {
            let len = loop {
                if let Some(len) = rx.try_recv(&mut buffer) {
                    break len;
                }
                requests += 1;
                if rx.request_doorbell() {
                    waits += 1;
                    // Sleep until the doorbell: a lost one hangs here.
                    while !doorbell.swap(false, Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                }
            };
            assert_eq!(len, 8 + (n % 50) as usize);
            assert_eq!(u64::from_le_bytes(buffer[..8].try_into().unwrap()), n);
            assert!(buffer[8..len].iter().all(|&b| b == (n & 0xff) as u8));
        }
        let rings = producer.join().unwrap();
        assert_eq!(rx.try_recv(&mut buffer), None, "nothing more");
        assert!(waits <= rings, "{waits} waits, {rings} doorbells");
        assert!(rings <= requests, "{rings} doorbells, {requests} requests");
        assert!(
            waits > 0,
            "the consumer never waited: the test proves nothing"
        );
    }
}
