//! The virtual GIC at run time: the model (`crate::vgic`) joined to the
//! physical GIC of each CPU.
//!
//! Rule: an interrupt enters vCPU n's list registers (or its queue) only on
//! vCPU n's own physical CPU, from EL2. Another CPU that wants to interrupt
//! vCPU n sets the interrupt's pending bit in the model and kicks n's CPU
//! with the hypervisor's SGI; that CPU then drains the pending bits.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

use bulkhead_abi::board::{CONSOLE_PL011_INTID, GUEST_GICV2_DISTRIBUTOR};
use bulkhead_abi::control;

use crate::arch::gic::{Gic, GicBackend};
use crate::arch::{self};
use crate::config::GicConfig;
use crate::mm::Ipa;
use crate::vgic::gate::{self, After, Gate, Stats};
use crate::vgic::lr::{self, Entry, Irq, ListRegisters, PendingQueue};
use crate::vgic::regs::{self, Effects, Frame, Live, Physical};
use crate::vgic::state::{DRAIN_ALL, forwarded_ppis, is_forwarded_ppi};

use super::runtime::{Partition, Runtime};

/// What a CPU keeps for the vCPU it runs: its queue of interrupts waiting
/// for a list register (overflow, or deferred by the mask flag), the
/// flag's statistics, and (GICv2) the group 1 state its physical PPI
/// enables last followed (see [`follow_group`]). Only that CPU touches it,
/// in EL2, with interrupts masked.
struct Local {
    queue: PendingQueue,
    stats: Stats,
    /// 0 before the first look, then 1 + group 1's state: zero at first,
    /// so that the slots stay in .bss (an `Option<bool>`'s `None` is 2).
    ppis_group: u8,
}

struct Locals([UnsafeCell<Local>; arch::MAX_CPUS]);

// SAFETY: slot n is only ever accessed by CPU n (see `local`), never
// concurrently: EL2 code runs with interrupts masked and does not nest.
unsafe impl Sync for Locals {}

static LOCALS: Locals = Locals(
    [const {
        UnsafeCell::new(Local {
            queue: PendingQueue::new(),
            stats: Stats::new(),
            ppis_group: 0,
        })
    }; arch::MAX_CPUS],
);

/// This CPU's slot.
///
/// # Safety
///
/// The caller must not hold the reference across another call of `local`
/// or [`queue`]: only this CPU uses its slot, from EL2 with interrupts
/// masked and without nesting, so such a call is the only way the slot
/// could be borrowed twice.
#[allow(clippy::mut_from_ref)] // one CPU, one slot: see `Locals`
unsafe fn local() -> &'static mut Local {
    // SAFETY: this CPU's slot, used by no other CPU; the caller holds no
    // other reference to it (this function's contract).
    unsafe { &mut *LOCALS.0[super::this_cpu()].get() }
}

/// CPU `cpu`'s slot, read from another CPU.
///
/// # Safety
///
/// CPU `cpu` must not be in EL2 for as long as the reference is held, and
/// its last writes to the slot must be ordered before this call (see
/// [`list_remote`]).
unsafe fn local_of(cpu: usize) -> Option<&'static Local> {
    // SAFETY: no mutable reference to the slot exists while its CPU is out
    // of EL2 (the caller's contract), and its writes happened before.
    LOCALS.0.get(cpu).map(|slot| unsafe { &*slot.get() })
}

/// This CPU's pending queue.
///
/// # Safety
///
/// As for [`local`].
unsafe fn queue() -> &'static mut PendingQueue {
    // SAFETY: the caller keeps `local`'s contract.
    unsafe { &mut local().queue }
}

/// Where this CPU's queue is (for the assembly fast paths).
pub fn queue_address() -> usize {
    // SAFETY: used for this expression only.
    unsafe { local() }.queue.address()
}

/// vCPU `v`'s bytes of its partition's control page. The page is guest
/// memory: only byte `v` of the flag word is looked at, and only bit 0 of
/// byte `v` of the pending word is changed (its other bits are the
/// guest's).
struct PageGate<'a> {
    mask: &'a AtomicU8,
    pending: &'a AtomicU8,
}

impl Gate for PageGate<'_> {
    #[inline(always)]
    fn masked(&self) -> bool {
        self.mask.load(Ordering::Relaxed) != 0
    }
    fn set_pending(&self, on: bool) {
        // A plain load and store, not an atomic read-modify-write: vCPU v,
        // the only writer the guest's protocol has, is stopped in EL2 on
        // this CPU; another vCPU of the partition that scribbles the byte
        // meanwhile only confuses its own partition, and a store cannot be
        // made to wait by it as an exclusive loop could. Relaxed: vCPU v
        // reads the byte on this CPU, after the return from this exit (as
        // the IRQ_UNMASK fast path in fast.S, which writes it the same way).
        let guest_bits = self.pending.load(Ordering::Relaxed) & !control::PENDING_DEFERRED;
        let deferred = if on { control::PENDING_DEFERRED } else { 0 };
        self.pending.store(guest_bits | deferred, Ordering::Relaxed);
    }
    fn now(&self) -> u64 {
        arch::physical_counter()
    }
}

/// vCPU `v` of `part` (below `MAX_VCPUS`, which the control page has a
/// byte for: `bulkhead_abi::limits`).
fn page_gate(part: &Partition, v: usize) -> PageGate<'_> {
    PageGate {
        mask: &part.control.mask[v],
        pending: &part.control.pending[v],
    }
}

fn after(part: &Partition, v: usize, irq: Option<Irq>, result: After) {
    Gic::set_underflow(result.underflow);
    // A level forwarded SPI listed while the guest masks IRQs may see its
    // line drop before the guest unmasks and acknowledges it: its next
    // acknowledge traps (`ack_trap`). One SPSR bit in the common case.
    if arch::exception::guest_irqs_masked()
        && lr::holds_pending_hw(&Gic::list_registers(), |intid| {
            level_forwarded_spi(part, intid)
        })
    {
        Gic::set_ack_trap(true);
    }
    // More interrupts than a partition can own: cannot happen with a
    // checked configuration. A forwarded one is deactivated so its
    // source raises it again, rather than lost.
    if let Some(irq) = irq.filter(|i| result.full && i.hw) {
        Gic::deactivate(irq.intid);
    }
    // SAFETY: used for this statement only; the callers' borrows ended.
    part.publish_stats(v, &unsafe { local() }.stats);
}

/// Offers `irq` to vCPU `v` of `part`, which runs on this CPU, through the
/// mask gate.
#[inline]
pub fn inject(part: &Partition, v: usize, irq: Irq) {
    // SAFETY: `l` is not used after `gate::inject`, before `after` takes
    // the slot again.
    let l = unsafe { local() };
    let gate = page_gate(part, v);
    drop_deasserted_queued(part, &mut l.queue, &gate);
    let result = gate::inject(
        &mut Gic::list_registers(),
        &mut l.queue,
        &gate,
        &mut l.stats,
        irq,
    );
    after(part, v, Some(irq), result);
}

/// Lists SGI `intid` for vCPU `t` from another CPU of its partition
/// (`GicBackend::list_remote`; always `false` on a GIC without GICH
/// aliases), when it can go straight in as the target's own EL2 would list
/// it: the partition's group 1 and the SGI enabled for `t`, nothing of
/// `t`'s waiting for its EL2 (pending bits, its CPU's queue, a deferral
/// window), and `t` not masked by its flag bit. The flag is read here on
/// the sender's CPU, so a mask set just after is the race the flag always
/// had (an interrupt listed just before the guest masked), which guest-lib's
/// vector takes lazily. Otherwise `false`: the caller queues and kicks.
pub fn list_remote(part: &Partition, t: usize, intid: u32, source: usize) -> bool {
    let Some(&cpu) = part.config.cpus.get(t) else {
        return false;
    };
    Gic::list_remote(cpu, || {
        let vgic = &part.vgic;
        let private = vgic.private.get(t)?;
        let bit = 1u32.checked_shl(intid)?;
        let enabled = private.enabled.load(Ordering::Acquire) & bit != 0;
        let waiting = private.pending.load(Ordering::Acquire) != 0;
        // SAFETY: CPU `cpu`'s slot, read while that CPU's EL2 cannot run
        // (`Gic::list_remote` holds its list registers, and it takes them
        // back before anything else on every exit): it last wrote the slot
        // before it let its guest run, which the backend's acquire orders
        // before this read.
        let idle =
            unsafe { local_of(cpu) }.is_some_and(|l| l.queue.is_empty() && !l.stats.window_open());
        (vgic.group1_enabled() && enabled && !waiting && idle && !page_gate(part, t).masked()).then(
            || Irq {
                intid,
                priority: private.priority[intid as usize].load(Ordering::Relaxed),
                hw: false,
                source: source as u8,
            },
        )
    })
}

/// The maintenance interrupt, the IRQ_UNMASK call, or a kick: move what
/// waits into the list registers unless the vCPU is masked.
pub fn flush(part: &Partition, v: usize) {
    // SAFETY: `l` is not used after `gate::flush`, before `after` takes
    // the slot again.
    let l = unsafe { local() };
    let gate = page_gate(part, v);
    drop_deasserted_queued(part, &mut l.queue, &gate);
    let result = gate::flush(
        &mut Gic::list_registers(),
        &mut l.queue,
        &gate,
        &mut l.stats,
    );
    after(part, v, None, result);
}

/// A level-triggered SPI of the partition forwarded from hardware (a
/// passthrough device's): its line can drop before the guest takes it.
fn level_forwarded_spi(part: &Partition, intid: u32) -> bool {
    intid >= 32
        && part
            .vgic
            .spi(intid)
            .is_some_and(|s| s.forwarded.load(Ordering::Relaxed) && !s.edge.load(Ordering::Relaxed))
}

/// Whether the level SPI `intid`, acknowledged by this CPU for its guest,
/// is no longer pending at the distributor: its pending bit there follows
/// its line while it is active (or was set by software), so a clear one
/// means the device deasserted it. As on hardware, where the acknowledge
/// of a deasserted level interrupt finds nothing (1023), the guest must
/// not take it: it is deactivated instead, and comes again if the device
/// asserts it again. One read of the partition's own interrupt's register.
fn deasserted(part: &Partition, irq: &Irq) -> bool {
    let dropped = irq.hw && level_forwarded_spi(part, irq.intid) && !Gic::spi_state(irq.intid).0;
    if dropped {
        Gic::deactivate(irq.intid);
    }
    dropped
}

/// Before what waits in this CPU's queue (deferred behind the flag word,
/// or overflow) is listed for the unmasked vCPU: a level SPI whose line
/// dropped meanwhile leaves it, deactivated (see [`deasserted`]). Nothing
/// to do in the common case, an empty queue.
fn drop_deasserted_queued(part: &Partition, queue: &mut PendingQueue, gate: &PageGate<'_>) {
    let forwarded_spi = |irq: &Irq| irq.hw && irq.intid >= 32;
    if queue.is_empty() || queue.first_where(forwarded_spi).is_none() || gate.masked() {
        return;
    }
    queue.retain(|irq| !deasserted(part, irq));
}

/// A guest access to its CPU interface that ICH_HCR_EL2.TALL1 trapped:
/// [`after`] set it when it listed a level forwarded SPI while the guest
/// masked IRQs. What the list registers hold pending of such SPIs whose
/// line has dropped since is withdrawn (and deactivated, and what waits
/// takes the free list registers); then the trap is off and the guest
/// executes the same instruction again (ELR unchanged), answered by the
/// hardware: an acknowledge finds the next interrupt, or none (1023), as
/// on hardware for a deasserted level interrupt; never the dropped one.
/// The trap is off even if such an SPI is still listed with its line high:
/// the guest takes it now. (Should a second one stay listed behind it and
/// its line drop while the guest handles the first, the guest takes that
/// one: only the first acknowledge after the listing is checked.)
pub fn ack_trap(part: &Partition, v: usize) {
    let mut withdrawn = false;
    lr::withdraw_pending_hw(&mut Gic::list_registers(), |irq| {
        let dropped = deasserted(part, irq);
        withdrawn |= dropped;
        dropped
    });
    if withdrawn {
        flush(part, v);
    }
    Gic::set_ack_trap(false);
}

/// Where this CPU keeps its vCPU's deferral statistics (for the assembly
/// fast paths).
pub fn stats_address() -> usize {
    // SAFETY: used for this expression only.
    &raw const unsafe { local() }.stats as usize
}

/// This CPU's vCPU's deferral statistics.
pub fn stats() -> Stats {
    // SAFETY: used for this expression only.
    unsafe { local() }.stats
}

/// Moves vCPU `v`'s deliverable pending interrupts (enabled, group 1 on)
/// from the model into its list registers. On `v`'s own CPU only.
pub fn drain(part: &Partition, v: usize) {
    let vgic = &part.vgic;
    withdraw(part, v);
    follow_group(part, v);
    if !vgic.group1_enabled() {
        return;
    }
    let private = &vgic.private[v];
    let enabled = private.enabled.load(Ordering::Acquire);
    // Take exactly the enabled ones (and the full-drain request: this is
    // the full drain); disabled ones stay pending.
    let mut take = private
        .pending
        .fetch_and(!(enabled | DRAIN_ALL), Ordering::AcqRel)
        & enabled;
    while take != 0 {
        let intid = take.trailing_zeros();
        take &= take - 1;
        let priority = private.priority[intid as usize].load(Ordering::Relaxed);
        // A GICv2 SGI is pending per source CPU interface; it is listed
        // once, with its lowest source in the list register's CPUID (the
        // guest's GICC_IAR shows it): one list register per SGI number
        // (`lr::Irq::same`), the other sources taken with it. Pending
        // without a recorded source (its own ISPENDR can't set one; a
        // reset or a withdrawal raced the sender): from source 0.
        let sources = if cfg!(gic = "v2") && intid < 16 {
            private.sgi_sources[intid as usize].swap(0, Ordering::AcqRel)
        } else {
            0
        };
        let irq = Irq {
            intid,
            priority,
            hw: false,
            source: (sources.trailing_zeros() % 8) as u8,
        };
        inject(part, v, irq);
    }
    for spi in vgic.spis() {
        if usize::from(spi.target.load(Ordering::Relaxed)) == v
            && spi.enabled.load(Ordering::Relaxed)
            && spi.pending.swap(false, Ordering::AcqRel)
        {
            inject(
                part,
                v,
                Irq {
                    intid: spi.intid,
                    priority: spi.priority.load(Ordering::Relaxed),
                    hw: false,
                    source: 0,
                },
            );
        }
    }
}

/// GICv2: vCPU `v`'s forwarded PPIs' physical enables follow a change of
/// the partition's group 1 that another vCPU made. Its GICD_CTLR write
/// could not reach them (a GICv2 banks them per CPU interface:
/// `sync_physical` reaches this CPU's from this CPU only), and kicked this
/// CPU, which drains (and enters a vCPU) through here. Left enabled while
/// group 1 is off, the timer's level interrupt came back the moment
/// [`forward`] gave it back, for ever: the vCPU never ran again. Left
/// disabled once it is on again, the timer never ticked again. One load
/// and compare when nothing changed.
fn follow_group(part: &Partition, v: usize) {
    if !cfg!(gic = "v2") {
        return;
    }
    let group1 = part.vgic.group1_enabled();
    let now = 1 + u8::from(group1);
    // SAFETY: used by the next statement only; nothing below takes the slot.
    let slot = unsafe { local() };
    let followed = core::mem::replace(&mut slot.ppis_group, now);
    if followed == now {
        return;
    }
    let enabled = part.vgic.private[v].enabled.load(Ordering::Acquire);
    let cpu = part.config.cpus[v];
    for intid in forwarded_ppis() {
        Gic::private_enable(cpu, intid, group1 && enabled & (1 << intid) != 0);
    }
}

/// A physical interrupt the partition owns arrived on this CPU (one of
/// its EL1 timers or one of its SPIs): forward it with the HW bit, so the
/// guest's EOI deactivates it. If the guest has it disabled (a race with
/// the physical enable that mirrors the virtual one), deactivate it: a level
/// interrupt asserts again once enabled, an edge one is kept pending.
pub fn forward(part: &Partition, v: usize, intid: u32) {
    use core::sync::atomic::Ordering::Relaxed;
    let vgic = &part.vgic;
    let (enabled, priority, edge) = if is_forwarded_ppi(intid) {
        // The timers' PPIs are level.
        let private = &vgic.private[v];
        (
            private.enabled.load(Relaxed) & (1 << intid) != 0,
            private.priority[intid as usize].load(Relaxed),
            false,
        )
    } else if let Some(spi) = vgic.spi(intid) {
        (
            spi.enabled.load(Relaxed),
            spi.priority.load(Relaxed),
            spi.edge.load(Relaxed),
        )
    } else {
        // Not the partition's: never routed here by a checked configuration.
        Gic::deactivate(intid);
        return;
    };
    if enabled && vgic.group1_enabled() {
        inject(
            part,
            v,
            Irq {
                intid,
                priority,
                hw: true,
                source: 0,
            },
        );
        return;
    }
    // Give it back to the physical GIC, where its pending state lives:
    // disabled there too by now, an edge interrupt set pending again waits
    // at the distributor; a level one is raised again by its source.
    if edge {
        Gic::spi_set_pending(intid, true);
    }
    Gic::deactivate(intid);
}

/// A forwarded interrupt of vCPU `v` (one of its timers, a device SPI) that
/// its CPU acknowledged while the vCPU is off: its priority dropped, it goes
/// back as [`give_back`] returns what a powered-off vCPU's list registers
/// held (an edge SPI pending again, a level one deactivated so that its
/// source raises it again).
pub fn give_back_taken(part: &Partition, v: usize, intid: u32) {
    Gic::priority_drop(intid);
    let irq = Irq {
        intid,
        priority: 0,
        hw: true,
        source: 0,
    };
    give_back(part, v, irq, true, false);
}

/// Hands an interrupt that vCPU `v` will not take from its list registers
/// or queue back to where it waits: a software one to the model's pending
/// state (`pending`), a forwarded one, which the hypervisor acknowledged,
/// to the physical GIC (deactivated; an edge one still `pending` set
/// pending there first). On `v`'s own CPU.
fn give_back(part: &Partition, v: usize, irq: Irq, pending: bool, active: bool) {
    let vgic = &part.vgic;
    if irq.hw {
        let edge = irq.intid >= 32
            && vgic
                .spi(irq.intid)
                .is_some_and(|s| s.edge.load(Ordering::Relaxed));
        if pending && edge {
            Gic::spi_set_pending(irq.intid, true);
        }
        if pending || active {
            Gic::deactivate(irq.intid);
        }
    } else if pending {
        if irq.intid < 32 {
            vgic.private[v]
                .pending
                .fetch_or(1 << irq.intid, Ordering::AcqRel);
        } else if let Some(spi) = vgic.spi(irq.intid) {
            spi.pending.store(true, Ordering::Release);
        }
    }
}

/// Takes out of this CPU's list registers and queue (vCPU `v`'s) what the
/// guest withdrew: interrupts whose pending or active state a write
/// cleared, and pending ones that are disabled now (or group 1 off), which
/// go back to waiting. On `v`'s own CPU only, as the rule at the top says.
pub fn withdraw(part: &Partition, v: usize) {
    let vgic = &part.vgic;
    let private = &vgic.private[v];
    // Nothing was withdrawn or disabled since the last look (the common
    // drain): one load. The swap takes the request before the bits below
    // are read, so a write after it requests (and kicks) again.
    if !private.withdraw_requested.load(Ordering::Relaxed)
        || !private.withdraw_requested.swap(false, Ordering::AcqRel)
    {
        return;
    }
    let take = |field: &core::sync::atomic::AtomicU32| field.swap(0, Ordering::AcqRel);
    let (clear_pending, clear_active) = (
        take(&private.withdraw_pending),
        take(&private.withdraw_active),
    );
    let (spi_pending, spi_active) = (
        take(&private.withdraw_spi_pending),
        take(&private.withdraw_spi_active),
    );
    // SAFETY: nothing below takes the slot while `l` is in use (`give_back`
    // does not; `flush` comes after its last use).
    let l = unsafe { local() };
    if l.queue.is_empty() && lr::held(&Gic::list_registers()).next().is_none() {
        return;
    }
    let group1 = vgic.group1_enabled();
    let enabled_private = private.enabled.load(Ordering::Acquire);
    // (pending withdrawn, active withdrawn, still enabled) of an INTID.
    let verdict = |intid: u32| -> (bool, bool, bool) {
        if intid < 32 {
            let bit = 1 << intid;
            (
                clear_pending & bit != 0,
                clear_active & bit != 0,
                group1 && enabled_private & bit != 0,
            )
        } else {
            match vgic.spis().iter().position(|s| s.intid == intid) {
                Some(i) => (
                    spi_pending & 1 << i != 0,
                    spi_active & 1 << i != 0,
                    group1 && vgic.spis()[i].enabled.load(Ordering::Acquire),
                ),
                None => (true, true, false),
            }
        }
    };
    let mut lrs = Gic::list_registers();
    for n in 0..lrs.count() {
        let entry = lrs.read(n);
        if !entry.pending && !entry.active {
            continue;
        }
        let (cleared, deactivated, enabled) = verdict(entry.irq.intid);
        let mut kept = entry;
        if entry.pending && (cleared || !enabled) {
            kept.pending = false;
            // A cleared one is gone; a disabled one waits where it came from.
            give_back(part, v, entry.irq, !cleared, false);
            if cleared && entry.irq.hw {
                Gic::deactivate(entry.irq.intid);
            }
        }
        if entry.active && deactivated {
            kept.active = false;
            // A forwarded one's physical active state was cleared by the write.
        }
        if kept != entry {
            lrs.write(n, kept);
        }
    }
    l.queue.retain(|irq| {
        let (cleared, _, enabled) = verdict(irq.intid);
        if cleared || !enabled {
            give_back(part, v, *irq, !cleared, false);
            if cleared && irq.hw {
                Gic::deactivate(irq.intid);
            }
            return false;
        }
        true
    });
    flush(part, v);
}

/// vCPU `v` powers off (PSCI CPU_OFF) on this CPU: everything its list
/// registers and queue hold goes back where it waits (software interrupts
/// stay pending in the model for when it is on again, as a redistributor
/// keeps them; forwarded ones are deactivated, an edge one left pending at
/// the distributor), so no physical interrupt stays active for a guest that
/// will never end it; then the virtual CPU interface is reset.
pub fn power_off(part: &Partition, v: usize) {
    // SAFETY: nothing below takes the slot (`give_back` does not).
    let l = unsafe { local() };
    let mut lrs = Gic::list_registers();
    for n in 0..lrs.count() {
        let entry = lrs.read(n);
        if entry.pending || entry.active {
            give_back(part, v, entry.irq, entry.pending, entry.active);
        }
        lrs.write(
            n,
            Entry {
                pending: false,
                active: false,
                ..entry
            },
        );
    }
    while let Some(irq) = l.queue.pop() {
        give_back(part, v, irq, true, false);
    }
    Gic::reset_virtual_interface();
    Gic::set_underflow(false);
}

/// vCPU `v` of `part` leaves its guest for a restart, on its own CPU,
/// after [`power_off`]: its masking statistics start again, and the
/// partition's device SPIs are turned off at the distributor (each of its
/// CPUs does this; single-bit writes), so a level one left raised does not
/// come back to a CPU that has no guest to give it to while the partition
/// reloads.
pub fn leave_for_restart(part: &Partition, v: usize) {
    // SAFETY: used for this statement only.
    unsafe { local() }.stats = Stats::new();
    part.publish_stats(v, &Stats::new());
    for spi in part.vgic.forwarded_spis() {
        Gic::spi_enable(spi.intid, false);
    }
    // Its own forwarded PPIs' active state, which the old guest may have
    // set (ISACTIVER): on this CPU, the one whose registers they are (a
    // GICv2 banks them per CPU; see `reset` for GICv3's).
    let cpu = part.config.cpus[v];
    for intid in forwarded_ppis() {
        Gic::private_set_active(cpu, intid, false);
    }
}

/// Partition `part` restarts (on vCPU 0's CPU, every vCPU out of its guest
/// and its list registers emptied, see [`power_off`]): its virtual GIC goes
/// back to reset, and the physical side of its forwarded interrupts with
/// it: nothing pending or active that the old guest left (each vCPU's
/// CPU disabled the SPIs and cleared its own PPIs' active state,
/// `leave_for_restart`), every one disabled and its SPIs routed to vCPU 0,
/// as the reset model says.
pub fn reset(part: &Partition) {
    let _vgic = part.vgic_lock.lock();
    part.vgic.reset();
    follow_model(part);
    // Already disabled by each vCPU's CPU (`leave_for_restart`).
    for spi in part.vgic.forwarded_spis() {
        Gic::spi_set_pending(spi.intid, false);
        Gic::spi_set_active(spi.intid, false);
    }
    let vcpus = part.config.cpus.len();
    sync_physical(part, all(part.vgic.spis().len()), all(vcpus));
}

/// Boot: programs the physical side of partition `part`'s interrupts once,
/// the SPIs' triggers included (the board's; never changed after).
pub fn configure_physical_at_boot(runtime: &Runtime, part: &Partition) {
    use core::sync::atomic::Ordering::Relaxed;
    let vgic = &part.vgic;
    for spi in vgic.spis().iter().filter(|s| s.forwarded.load(Relaxed)) {
        // At reset every SPI routes to vCPU 0.
        let mpidr = runtime.mpidr_of(part.config.cpus[0]);
        let on = vgic.group1_enabled() && spi.enabled.load(Relaxed);
        Gic::configure_spi_at_boot(spi.intid, mpidr, spi.edge.load(Relaxed), on);
    }
    sync_physical(part, all(vgic.spis().len()), all(part.config.cpus.len()));
}

/// The low `n` bits set.
fn all(n: usize) -> u32 {
    (1u64 << n).wrapping_sub(1) as u32
}

/// Carries out a write's requests for the physical pending and active
/// states of the partition's forwarded interrupts: single-bit writes of
/// its own interrupts, lock-free like [`sync_physical`].
fn apply_physical(part: &Partition, physical: Physical) {
    if physical == Physical::default() {
        return;
    }
    for (i, spi) in part.vgic.spis().iter().enumerate() {
        let bit = 1 << i;
        if physical.spi_set_pending & bit != 0 {
            Gic::spi_set_pending(spi.intid, true);
        }
        if physical.spi_clear_pending & bit != 0 {
            Gic::spi_set_pending(spi.intid, false);
        }
        if physical.spi_set_active & bit != 0 {
            Gic::spi_set_active(spi.intid, true);
        }
        if physical.spi_clear_active & bit != 0 {
            Gic::spi_set_active(spi.intid, false);
        }
    }
    let Some(&cpu) = part.config.cpus.get(physical.ppi_vcpu) else {
        return;
    };
    for intid in forwarded_ppis() {
        let bit = 1 << intid;
        if physical.ppi_set_pending & bit != 0 {
            Gic::private_set_pending(cpu, intid, true);
        }
        if physical.ppi_clear_pending & bit != 0 {
            Gic::private_set_pending(cpu, intid, false);
        }
        if physical.ppi_set_active & bit != 0 {
            Gic::private_set_active(cpu, intid, true);
        }
        if physical.ppi_clear_active & bit != 0 {
            Gic::private_set_active(cpu, intid, false);
        }
    }
}

/// Brings the physical GIC in line with partition `part`'s virtual one for
/// the SPIs in `spis` (bits index `vgic.spis()`) and the forwarded PPIs
/// (the EL1 timers) of the vCPUs in `ppis`: each enabled only while the
/// guest could take it, each SPI routed to the CPU of the vCPU its IROUTER
/// names.
///
/// Partition-local and lock-free: every write is one register that names
/// only this partition's own interrupts (a bit of ISENABLER/ICENABLER, one
/// IROUTER, a bit of its own CPUs' GICR_ISENABLER0/ICENABLER0), so no other
/// partition's GIC traffic can make it wait, nor it theirs. Callers hold the
/// partition's `vgic_lock`, so two of its vCPUs' writes reach the GIC in the
/// order the model took them.
fn sync_physical(part: &Partition, spis: u32, ppis: u32) {
    let runtime = super::runtime_of();
    use core::sync::atomic::Ordering::Relaxed;
    let vgic = &part.vgic;
    let group1 = vgic.group1_enabled();
    for (v, &cpu) in part.config.cpus.iter().enumerate() {
        if ppis & 1 << v == 0 {
            continue;
        }
        let enabled = vgic.private[v].enabled.load(Relaxed);
        for intid in forwarded_ppis() {
            Gic::private_enable(cpu, intid, group1 && enabled & (1 << intid) != 0);
        }
    }
    for (i, spi) in vgic.spis().iter().enumerate() {
        // A purely virtual SPI (the emulated PL011's) has no physical side:
        // its INTID in the machine is not the partition's.
        if spis & 1 << i == 0 || !spi.forwarded.load(Relaxed) {
            continue;
        }
        // Routed to no vCPU (IROUTER names none): disabled physically, so
        // it waits pending at the distributor until it is routed.
        let target = part.config.cpus.get(usize::from(spi.target.load(Relaxed)));
        let on = group1 && spi.enabled.load(Relaxed) && target.is_some();
        if !on {
            Gic::spi_enable(spi.intid, false);
        }
        if let Some(&cpu) = target {
            Gic::spi_route(spi.intid, runtime.mpidr_of(cpu));
        }
        if on {
            Gic::spi_enable(spi.intid, true);
        }
    }
}

/// What the model cannot see: the physical state of forwarded interrupts,
/// and this CPU's list registers and queue.
///
/// A forwarded interrupt's pending and active states are the physical
/// GIC's (of the redistributor of the vCPU's CPU for a PPI, of the
/// distributor for an SPI): a level interrupt's pending bit there follows
/// its line, even while it is active or disabled. One that this CPU holds
/// for its guest (listed or queued) was acknowledged here: the physical
/// active state is then the hypervisor's acknowledgement, and the guest's
/// is what the list register says. Plain register reads: nothing waits.
/// (What another vCPU's CPU holds is not seen: a forwarded SPI that waits
/// pending in another vCPU's list register reads as active too.)
struct LocalView<'a> {
    part: &'a Partition,
    vcpu: usize,
}

impl Live for LocalView<'_> {
    fn private(&self, vcpu: usize) -> (u32, u32) {
        let forwarded = self.part.vgic.private[vcpu]
            .forwarded
            .load(Ordering::Relaxed);
        let (mut pending, mut active) = if forwarded != 0 {
            let (p, a) = Gic::private_state(self.part.config.cpus[vcpu]);
            (p & forwarded, a & forwarded)
        } else {
            (0, 0)
        };
        if vcpu == self.vcpu {
            let (listed, listed_active) = lr::private_state(&Gic::list_registers());
            // SAFETY: used for this expression only.
            let queued = unsafe { queue() }.private_mask();
            active &= !(listed | listed_active | queued);
            pending |= listed | queued;
            active |= listed_active;
        }
        (pending, active)
    }

    fn spi(&self, intid: u32) -> (bool, bool) {
        let Some(spi) = self.part.vgic.spi(intid) else {
            return (false, false);
        };
        let (pending, active) = if spi.forwarded.load(Ordering::Relaxed) {
            Gic::spi_state(intid)
        } else {
            (false, false)
        };
        // SAFETY: used for this expression only.
        let queued = unsafe { queue() }.contains(intid);
        let listed = lr::held(&Gic::list_registers()).find(|e| e.irq.intid == intid);
        match listed {
            Some(e) => (pending || queued || e.pending, e.active),
            None if queued => (true, false),
            None => (pending, active),
        }
    }
}

/// Which virtual GIC frame, if any, a guest address falls in.
pub fn frame_of(part: &Partition, v: usize, ipa: Ipa) -> Option<(Frame, u64)> {
    // On a GICv3 a partition sees the GIC at the board's addresses; on a
    // GICv2 at QEMU virt's, whatever the board (`GUEST_GICV2_*`).
    let ipa = ipa.0;
    match super::CONFIG.board.gic {
        GicConfig::V3 {
            distributor,
            redistributor,
            ..
        } => {
            const GICD_SIZE: u64 = 0x1_0000;
            const GICR_STRIDE: u64 = 0x2_0000;
            // An address below a frame's base wraps to beyond its end.
            let offset = ipa.wrapping_sub(distributor.0);
            if offset < GICD_SIZE {
                return Some((Frame::Distributor, offset));
            }
            let frames = part.config.cpus.len() as u64 * GICR_STRIDE;
            let offset = ipa.wrapping_sub(redistributor.0);
            if offset < frames {
                let vcpu = (offset / GICR_STRIDE) as usize;
                return Some((Frame::Redistributor { vcpu }, offset % GICR_STRIDE));
            }
            None
        }
        // The distributor only: the guest's CPU interface is the GICV frame,
        // mapped by stage 2.
        GicConfig::V2 { .. } => {
            const GICD_SIZE: u64 = 0x1000;
            let offset = ipa.wrapping_sub(GUEST_GICV2_DISTRIBUTOR.0);
            (offset < GICD_SIZE).then_some((Frame::DistributorV2 { vcpu: v }, offset))
        }
    }
}

/// A guest's read of a virtual GIC register that the model's own state
/// answers (`regs::read_plain`), without a call; `None` for the others
/// (pending and active registers, bad accesses), which are
/// [`mmio_read_live`]'s. Inlined into the data abort's exit.
#[inline(always)]
pub fn mmio_read_plain(part: &Partition, frame: Frame, offset: u64, size: u8) -> Option<u64> {
    regs::read_plain(&part.vgic, frame, offset, size)
}

/// A guest's read of a virtual GIC register that [`mmio_read_plain`] does
/// not answer (`regs::read_live`): a pending or active register, or a bad
/// access (width, alignment), which reads as zero. `None` for the others,
/// and for a width that a register of [`mmio_read_plain`]'s refuses: the
/// caller reads that as zero too.
pub fn mmio_read_live(
    part: &Partition,
    v: usize,
    frame: Frame,
    offset: u64,
    size: u8,
) -> Option<u64> {
    let live = LocalView { part, vcpu: v };
    let read = regs::read_live(&part.vgic, frame, offset, size, &live)?;
    Some(read.unwrap_or(0))
}

/// A guest's write of a virtual GIC register, and what follows from it. A
/// bad access is ignored. Gives the SGI a GICv2 GICD_SGIR write sends, for
/// the caller to route.
pub fn mmio_write(
    part: &Partition,
    v: usize,
    frame: Frame,
    offset: u64,
    size: u8,
    value: u64,
) -> Option<crate::vgic::sgi::SgiRequest> {
    let effects = {
        // The partition's own lock: only its vCPUs take it, for bounded work.
        let _model = part.vgic_lock.lock();
        let effects = regs::write(&part.vgic, frame, offset, size, value).unwrap_or_default();
        // Before the physical side: a timer that the physical enable lets
        // through finds the copy up to date.
        follow_model(part);
        if effects.spis_changed | effects.ppis_changed != 0 {
            sync_physical(part, effects.spis_changed, effects.ppis_changed);
        }
        apply_physical(part, effects.physical);
        effects
    };
    apply(part, v, effects);
    // The board UART's interrupt follows the emulated PL011's routing.
    if effects.spis_changed != 0 && part.config.console_pl011.is_some() {
        super::input::follow_route(part, crate::arch::percpu::this_vcpu().0);
    }
    effects.sgi
}

/// The emulated PL011's interrupt line, from vCPU `v`'s CPU after its
/// model changed or was read: `change` is the new level if it changed,
/// `level` the level now. A rise makes the interrupt pending for its
/// target, a fall withdraws it (`vgic::regs::set_line`). A line that stays
/// high is raised again when `v` is its target, so an instance the guest is
/// handling (active) becomes active and pending, as a GIC keeps a level
/// interrupt whose line has not dropped: the guest takes it again after
/// its end of interrupt. (The end of interrupt itself does not trap: a
/// guest that ends it without touching its PL011, the line still high,
/// takes it again at its next PL011 access or input, not at once.) The
/// caller holds the partition's `pl011` lock, so two CPUs' changes reach
/// the vGIC in the order the model took them.
pub fn pl011_line(part: &Partition, v: usize, change: Option<bool>, level: bool) {
    if change.is_none() && !level {
        return; // low, as it was
    }
    let Some(spi) = part.vgic.spi(CONSOLE_PL011_INTID) else {
        return;
    };
    let high = match change {
        Some(high) => high,
        None if level && usize::from(spi.target.load(Ordering::Relaxed)) == v => true,
        None => return,
    };
    let effects = {
        let _model = part.vgic_lock.lock();
        regs::set_line(&part.vgic, CONSOLE_PL011_INTID, high)
    };
    apply(part, v, effects);
}

/// The GIC backend's fast paths follow the partition's model (the copy
/// `GicBackend::follow_model` describes), for every vCPU: after each
/// register write (whichever vCPU's registers it reached), at reset and
/// when a vCPU is bound to its CPU. The caller holds the vGIC lock, so the
/// copies are stored in the order the model changed.
pub fn follow_model(part: &Partition) {
    let group1 = part.vgic.group1_enabled();
    for (private, &cpu) in part.vgic.private.iter().zip(part.config.cpus) {
        Gic::follow_model(cpu, private, group1);
    }
}

fn apply(part: &Partition, v: usize, effects: Effects) {
    // A drain takes withdrawals first (see `drain`).
    let mut drain = (effects.drain | effects.withdraw) & ((1u32 << part.config.cpus.len()) - 1);
    while drain != 0 {
        let t = drain.trailing_zeros() as usize;
        drain &= drain - 1;
        if t == v {
            self::drain(part, v);
        } else {
            super::runtime_of().kick(part, t);
        }
    }
}
