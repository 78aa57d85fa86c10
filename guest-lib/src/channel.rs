//! Channels between partitions: a message ring over a shared region
//! ([`bulkhead_abi::ring`], whose module doc gives the layout and the
//! protocol) and the doorbell that wakes its consumer.
//!
//! Both partitions map the region read-write (a partition set's
//! `[[shared]]`); the producer's partition rings a `[[doorbell]]` to the
//! consumer's. A [`Sender`] rings it on a send only when the [`Receiver`]
//! asked ([`Receiver::request_doorbell`], before it waits): a consumer that
//! keeps up costs the producer no exit at all.
//!
//! ```ignore
//! // Producer (alpha): the ring at 0x7000_0000, channel 0 of its doorbell page.
//! let mut tx = unsafe { Sender::attach(0x7000_0000, 0x1000, 0x0a00_0000, 0) }?;
//! tx.try_send(b"hello")?;
//! // Consumer (beta), in its doorbell interrupt's handler or a loop:
//! let mut rx = unsafe { Receiver::attach(0x7000_0000, 0x1000) }?;
//! let mut message = [0; MESSAGE_MAX];
//! while let Some(len) = rx.try_recv(&mut message) { /* ... */ }
//! if rx.request_doorbell() { guest_lib::wfi(); }
//! ```

pub use bulkhead_abi::ring::{Consumer, MESSAGE_MAX, Producer, Ring, RingError, SendError, Sent};
use bulkhead_abi::{Status, call, doorbell};

/// Rings doorbell `channel` with one write to the partition's doorbell page
/// at `page` (its `doorbell_page`, the device tree's `bulkhead,doorbell`
/// node): the write traps, and the hypervisor interrupts the doorbell's
/// target.
pub fn doorbell_ring(page: usize, channel: u32) {
    // SAFETY: a 32-bit store to the partition's doorbell page, in the
    // identity map's Device range (below 1 GiB): emulated by the
    // hypervisor, it changes no memory of the guest's.
    unsafe { core::ptr::write_volatile((page + doorbell::RING) as *mut u32, channel) }
}

/// Rings doorbell `channel` with the DOORBELL hypercall instead of the
/// page: for a guest without the page mapped. `Status::NotSupported` where
/// the hypervisor does not answer it.
pub fn doorbell_ring_call(channel: u32) -> Status {
    let [x0, ..] = crate::hvc::call(call::DOORBELL, [u64::from(channel)]);
    Status::from_reg(x0).unwrap_or(Status::NotSupported)
}

/// The producer's end of a channel: a ring and the doorbell of its consumer.
#[derive(Debug)]
pub struct Sender {
    producer: Producer,
    page: usize,
    channel: u32,
}

impl Sender {
    /// Attaches to the ring in the `size` bytes at guest address `region`,
    /// ringing `channel` of the doorbell page at `page` when the consumer
    /// asks.
    ///
    /// # Safety
    /// The region is a shared region mapped read-write, holding only this
    /// ring, and this is its only producer.
    pub unsafe fn attach(
        region: usize,
        size: usize,
        page: usize,
        channel: u32,
    ) -> Result<Sender, RingError> {
        // SAFETY: the caller's contract.
        let ring = unsafe { Ring::attach(region as *mut u8, size) }?;
        Ok(Sender {
            producer: ring.producer(),
            page,
            channel,
        })
    }

    /// Sends `message` if the ring has room, ringing the doorbell if the
    /// consumer waits for one.
    pub fn try_send(&mut self, message: &[u8]) -> Result<(), SendError> {
        if self.producer.try_send(message)? == Sent::RingDoorbell {
            doorbell_ring(self.page, self.channel);
        }
        Ok(())
    }
}

/// The consumer's end of a channel.
#[derive(Debug)]
pub struct Receiver {
    consumer: Consumer,
}

impl Receiver {
    /// Attaches to the ring in the `size` bytes at guest address `region`.
    ///
    /// # Safety
    /// The region is a shared region mapped read-write, holding only this
    /// ring, and this is its only consumer.
    pub unsafe fn attach(region: usize, size: usize) -> Result<Receiver, RingError> {
        // SAFETY: the caller's contract.
        let ring = unsafe { Ring::attach(region as *mut u8, size) }?;
        Ok(Receiver {
            consumer: ring.consumer(),
        })
    }

    /// The oldest message, copied into `buffer`: its length, or `None`.
    pub fn try_recv(&mut self, buffer: &mut [u8; MESSAGE_MAX]) -> Option<usize> {
        self.consumer.try_recv(buffer)
    }

    /// Asks for the doorbell at the next send: true if the ring is still
    /// empty (wait for the doorbell's interrupt), false if a message came
    /// in meanwhile (receive it; the request is withdrawn).
    pub fn request_doorbell(&mut self) -> bool {
        self.consumer.request_doorbell()
    }
}
