//! Doorbells between partitions (`[[doorbell]]` in the partition set): a
//! partition rings channel n with one write of n to its doorbell page
//! (`bulkhead_abi::doorbell`), trapped as a data abort on an address stage
//! 2 leaves unmapped, or with the DOORBELL call; the hypervisor checks the
//! channel against the configuration and makes the target's virtual SPI
//! pending, as an edge on its line.
//!
//! The ring crosses partitions, so it takes no lock and waits on nothing:
//! one atomic swap of the target SPI's pending flag in the target's model
//! and, only when that flag was clear, one kick SGI to the CPU the target
//! routes the SPI to. The target's CPU takes the kick as an exit of its
//! own and drains the SPI (`interrupts::drain`) under its own vGIC lock,
//! through the gate: deferred while its vCPU's flag word masks it, left
//! pending while its guest has it disabled. Rings while the SPI is
//! pending coalesce, as edges on a GIC line do, so a ringer costs the
//! target at most one exit per drain whatever its rate; a channel the
//! configuration does not name is refused and counted
//! (`Counter::DoorbellRefused`), and the target sees nothing.

use core::sync::atomic::Ordering;

use bulkhead_abi::{Counter, Status, doorbell};

use super::runtime::{Partition, Runtime};
use crate::config::DoorbellConfig;
use crate::mm::Ipa;
use crate::vgic::state::AFFINITY;

/// Where `ipa` falls in partition `part`'s doorbell page, if it does.
pub fn page_offset(part: &Partition, ipa: Ipa) -> Option<u64> {
    let page = part.config.doorbell_page?;
    let offset = ipa.0.wrapping_sub(page.0);
    (offset < doorbell::SIZE as u64).then_some(offset)
}

/// The doorbells partition `from` may ring, channel n the nth.
fn outgoing(runtime: &Runtime, from: usize) -> impl Iterator<Item = &'static DoorbellConfig> {
    runtime.doorbells.iter().filter(move |d| d.from == from)
}

/// How many channels partition `from` may ring (its doorbell page's
/// `CHANNELS` register).
pub fn channels(runtime: &Runtime, from: usize) -> u32 {
    outgoing(runtime, from).count() as u32
}

/// vCPU `v` of partition `p` rings `channel`. Bounded: a scan of the
/// configuration's doorbells and one of the target's SPIs (both fixed at
/// build), an atomic swap and at most one SGI.
pub fn ring(runtime: &Runtime, p: usize, v: usize, channel: u64) -> Result<(), Status> {
    let Some(d) = outgoing(runtime, p).find(|d| u64::from(d.channel) == channel) else {
        runtime.partitions[p].count(v, Counter::DoorbellRefused, 1);
        return Err(Status::InvalidParameters);
    };
    let target = &runtime.partitions[d.to];
    // Registered as one of the target's SPIs when it was built.
    let Some(spi) = target.vgic.spi(d.intid) else {
        return Err(Status::InvalidParameters);
    };
    // Sequentially consistent, against the target's routing: either this
    // load sees a new route its guest wrote, or that write's own drain of
    // the new target comes after this store and takes the SPI.
    if spi.pending.swap(true, Ordering::SeqCst) || target.state.is_stopped() {
        return Ok(()); // pending already: its kick is under way or done
    }
    let t = usize::from(spi.target.load(Ordering::SeqCst));
    if t < target.config.cpus.len() {
        runtime.kick(target, t);
    }
    Ok(())
}

/// Partition `part`'s incoming doorbells at build and after each reset:
/// each SPI is edge-triggered (an edge on its line per ring) and routed
/// to the vCPU the configuration names (the guest may route it elsewhere).
pub fn route_incoming(doorbells: &[DoorbellConfig], p: usize, part: &Partition) {
    for d in doorbells.iter().filter(|d| d.to == p) {
        if let Some(spi) = part.vgic.spi(d.intid) {
            spi.edge.store(true, Ordering::Relaxed);
            spi.router
                .store(part.config.vmpidrs[d.vcpu] & AFFINITY, Ordering::Relaxed);
            spi.target.store(d.vcpu as u8, Ordering::Relaxed);
        }
    }
}
