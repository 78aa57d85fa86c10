//! The exception handlers the vectors call: a guest's synchronous exits
//! (calls, MMIO, faults), physical interrupts, SErrors, and faults of the
//! hypervisor itself.
//!
//! Everything a guest put in a register is hostile input: it is decoded by
//! the pure modules (`trap`, `hypercall`, `psci`, `console`) and answered
//! with an error code or the exception hardware would give (an access to
//! an address with nothing behind it is a synchronous external abort at the
//! guest's own vector), or the partition is stopped with a report. Nothing
//! a guest does reaches a panic.

use bulkhead_abi::{ABI_VERSION, Counter, MAGIC, Status, unpack_console};

use crate::arch::gic::{Gic, GicBackend, SgiWrite};
use crate::arch::{self, TrapFrame, exception, percpu};
use crate::console::pl011;
use crate::hypercall::Hypercall;
use crate::mm::Ipa;
use crate::partition::{Fault, FaultKind, Power, RestartReason, StopReason};
use crate::psci::{self, Outcome};
use crate::trap::{DataAbort, Exit, SysRegAccess, sysreg};
use crate::vgic::regs::Frame;
use crate::vgic::sgi::SgiRequest;
use crate::vgic::state::is_forwarded_ppi;

use super::doorbell;
use super::input;
use super::interrupts;
use super::output::{self, hyp_println};
use super::runtime::Partition;

/// Data cache maintenance by set/way (DC ISW, DC CSW, DC CISW), trapped by
/// HCR_EL2.TSW: see `arch::HCR_GUEST` for why they do nothing.
const DC_ISW: u32 = sysreg(1, 0, 7, 6, 2);
const DC_CSW: u32 = sysreg(1, 0, 7, 10, 2);
const DC_CISW: u32 = sysreg(1, 0, 7, 14, 2);
/// ACTLR_EL1, trapped by HCR_EL2.TACR: reads as zero, writes ignored.
const ACTLR_EL1: u32 = sysreg(3, 0, 1, 0, 1);
/// PMUSERENR_EL0, trapped with the other performance-monitor registers
/// (MDCR_EL2.TPM): reads as zero (EL0 may not use the PMU), writes ignored.
/// The one of them that is not UNDEFINED: Linux clears it in its early
/// CPU setup whenever ID_AA64DFR0_EL1 names a PMU, which the CPU's own
/// does, before its exception vectors exist.
const PMUSERENR_EL0: u32 = sysreg(3, 3, 9, 14, 0);

/// The running vCPU of this CPU: its partition, the partition's index and
/// the vCPU's.
#[inline(always)]
fn current() -> (&'static Partition, usize, usize) {
    partition_of(percpu::this_vcpu_and_context())
}

/// [`current`], with the exit counted as `counter`.
#[inline(always)]
fn current_counting(counter: Counter) -> (&'static Partition, usize, usize) {
    partition_of(percpu::this_vcpu_and_context_counting(counter))
}

/// The running vCPU from what `percpu` keeps of it.
#[inline(always)]
fn partition_of(((p, v), context): ((usize, usize), u64)) -> (&'static Partition, usize, usize) {
    let part = context as *const Partition;
    // SAFETY: `Runtime::bind_this_cpu` stored this CPU's vCPU's partition,
    // an element of the runtime that lives in a static for good, before the
    // vCPU first ran; an exit comes only from that vCPU.
    (unsafe { &*part }, p, v)
}

fn fault(kind: FaultKind, v: usize) -> StopReason {
    StopReason::Fault(Fault {
        vcpu: v,
        kind,
        esr: exception::esr(),
        elr: exception::guest_pc(),
    })
}

/// A stage-2 data abort (EC 0x24, which the vector sends here rather than
/// to [`handle_lower_sync`]): an emulated device's register (the virtual
/// GIC, the PL011), or an address with nothing behind it (an external
/// abort for the guest, see [`unbacked`]). An access to an emulated
/// register that the syndrome does not describe (ISV = 0: a load or store
/// pair, a post-indexed access, an exclusive, ...) cannot be emulated: the
/// guest takes a synchronous external abort, as from a device that rejects
/// the access, and decides for itself.
///
/// `frame` holds the one register the access names (ISS.SRT) and x0-x19
/// and x30: the vector saves x20-x29 only when the access names one of
/// them (this handler touches no other register); `esr` is ESR_EL2, which
/// the vector has read. A read of a virtual GIC register, what guests trap
/// for most (Linux polls GICD_CTLR and GICR_CTLR after every
/// configuration change and reads the GIC's registers by the thousand at
/// boot), is done here when the model's own state answers it (all but the
/// pending and active registers), without a call: nothing is saved but
/// what the vector saved. Everything else leaves by a tail call, with this
/// handler's frame gone: a write ([`gic_write`]), a read that needs the
/// live state ([`gic_read`]), the rest ([`other_abort`]); and so does the
/// console's turn, when it has one.
#[unsafe(no_mangle)]
extern "C" fn handle_lower_dabt(frame: &mut TrapFrame, esr: u64) {
    let (part, p, v) = current_counting(Counter::DataAbort);
    let syndrome = exception::syndrome();
    let abort = DataAbort::decode(esr, syndrome.far, syndrome.hpfar);
    // A permission fault's IPA is not to be trusted (see below): never
    // taken for a GIC register's.
    if !abort.valid || abort.permission_fault() {
        return other_abort(frame, esr);
    }
    let Some((gic, offset)) = interrupts::frame_of(part, v, abort.ipa) else {
        return other_abort(frame, esr);
    };
    if abort.write {
        let value = abort.store_value(frame.reg(abort.reg));
        return gic_write(part, p, v, gic, offset, abort.size, value);
    }
    let Some(value) = interrupts::mmio_read_plain(part, gic, offset, abort.size) else {
        return gic_read(frame, gic, offset, esr);
    };
    frame.set_reg(abort.reg, abort.load_value(value));
    exception::skip_instruction();
    output::pump_if_waiting(part, p);
}

/// A guest's read of a virtual GIC register that needs the live state
/// (`esr` its syndrome), or that the model refuses (it reads as zero): see
/// [`handle_lower_dabt`], which counted it, found the register and left
/// it here (the model's own registers are answered there, never here).
#[inline(never)]
fn gic_read(frame: &mut TrapFrame, gic: Frame, offset: u64, esr: u64) {
    let (part, p, v) = current();
    // The syndrome's fields only: the IPA is `offset`'s.
    let abort = DataAbort::decode(esr, 0, 0);
    // `None`: a width a register answered there refuses; zero, as refused.
    let value = interrupts::mmio_read_live(part, v, gic, offset, abort.size).unwrap_or(0);
    frame.set_reg(abort.reg, abort.load_value(value));
    exception::skip_instruction();
    output::pump_if_waiting(part, p);
}

/// A stage-2 data abort other than a virtual GIC register's (see
/// [`handle_lower_dabt`], which counted it).
#[inline(never)]
fn other_abort(frame: &mut TrapFrame, esr: u64) {
    let (part, p, v) = current();
    let syndrome = exception::syndrome();
    let abort = DataAbort::decode(esr, syndrome.far, syndrome.hpfar);
    // The register the access names; xzr reads as zero, writes to it vanish.
    let mut zr = 0;
    let rt = frame.x.get_mut(usize::from(abort.reg)).unwrap_or(&mut zr);
    // A write to a region the partition may only read: the writer takes
    // the same abort as for nothing there; whoever else maps it is
    // untouched. (The IPA shown is HPFAR_EL2's, which the architecture
    // leaves UNKNOWN for a permission fault; QEMU gives it.)
    if abort.permission_fault() {
        return read_only(part, v, abort);
    }
    // A valid access here is outside the GIC's frames (`handle_lower_dabt`
    // looked): only one the syndrome does not describe needs the look.
    if !abort.valid && interrupts::frame_of(part, v, abort.ipa).is_some() {
        exception::inject_external_abort(abort.write);
    } else {
        device_abort(rt, part, p, v, abort);
    }
    output::pump_if_waiting(part, p);
}

/// A write to a shared region the partition maps read-only: the writer's
/// external abort, as for an address with nothing behind it. Out of line:
/// the trapped register accesses pass its test only.
#[cold]
#[inline(never)]
fn read_only(part: &Partition, v: usize, abort: DataAbort) {
    let what = format_args!("write to IPA {}", abort.ipa);
    refused(part, v, what, "mapped read-only");
    exception::inject_external_abort(abort.write);
}

/// A guest's write of a virtual GIC register (see [`handle_lower_dabt`],
/// which counted it). A GICv2 SGI, one trapped write of GICD_SGIR as
/// ICC_SGI1R_EL1's on GICv3, is counted the same (the sender's trap) and
/// delivered.
#[inline(never)]
fn gic_write(part: &Partition, p: usize, v: usize, gic: Frame, offset: u64, size: u8, value: u64) {
    if let Some(sgi) = interrupts::mmio_write(part, v, gic, offset, size, value) {
        part.count(v, Counter::SgiTrap, 1);
        deliver_sgi(part, v, sgi);
    }
    exception::skip_instruction();
    output::pump_if_waiting(part, p);
}

/// A guest's HVC (EC 0x16) that the calls' fast path did not answer (every
/// one without it), which the vector sends here: Bulkhead's calls and
/// PSCI. `frame` holds x0-x19 and x30: a call reads x0-x7 and returns
/// x0-x3 (one that does not return enters the guest afresh).
#[unsafe(no_mangle)]
extern "C" fn handle_lower_hvc(frame: &mut TrapFrame) {
    let (part, p, v) = current();
    part.count(v, Counter::Hvc, 1);
    call(frame, part, p, v);
    output::pump_if_waiting(part, p);
}

/// A guest's synchronous exit past the vector's fast paths, but a data
/// abort's (`handle_lower_dabt`) or an HVC's (`handle_lower_hvc`).
#[unsafe(no_mangle)]
extern "C" fn handle_lower_sync(frame: &mut TrapFrame) {
    let (part, p, v) = current();
    let syndrome = exception::syndrome();
    let exit = Exit::decode(syndrome.esr, syndrome.far, syndrome.hpfar);
    match exit {
        // The vector sends these to their own handlers.
        Exit::Hvc { .. } => handle_lower_hvc(frame),
        Exit::Smc { .. } => {
            part.count(v, Counter::Smc, 1);
            // A trapped SMC returns to itself; the call is done once.
            exception::skip_instruction();
            call(frame, part, p, v)
        }
        Exit::DataAbort(_) => handle_lower_dabt(frame, syndrome.esr),
        Exit::SysReg(access) => match Gic::sgi_write(&access, frame.reg(access.rt)) {
            Some(SgiWrite {
                request,
                group1: true,
            }) => {
                part.count(v, Counter::SgiTrap, 1);
                send_sgi(part, v, request);
            }
            // An SGI of a group no vCPU takes: decoded, and its targets
            // counted as refused, like SGIs to vCPUs outside the partition.
            Some(SgiWrite { request, .. }) => {
                part.count(v, Counter::SysReg, 1);
                let routing = part.affinity.route(&request, v);
                let reached = routing.vcpus.count_ones() + routing.refused;
                part.count(v, Counter::SgiRefused, u64::from(reached));
                exception::skip_instruction();
            }
            // Trapped only while a level SPI may have dropped before the
            // guest's acknowledge: re-executed once the hypervisor looked.
            None if Gic::ack_trap_access(&access) => {
                part.count(v, Counter::SysReg, 1);
                interrupts::ack_trap(part, v);
            }
            None => {
                part.count(v, Counter::SysReg, 1);
                sysreg_access(frame, access);
            }
        },
        Exit::InstructionAbort { ipa } => {
            part.count(v, Counter::Other, 1);
            unbacked(part, v, "instruction fetch from", ipa);
            exception::inject_instruction_abort();
        }
        Exit::Other { .. } => {
            part.count(v, Counter::Other, 1);
            super::runtime_of().stop(p, fault(FaultKind::UnknownTrap, v))
        }
    }
    output::pump_if_waiting(part, p);
}

/// A trapped system-register access other than an SGI: the few the
/// hypervisor emulates, UNDEFINED for the rest.
fn sysreg_access(frame: &mut TrapFrame, access: SysRegAccess) {
    match access.reg {
        DC_ISW | DC_CSW | DC_CISW if !access.read => exception::skip_instruction(),
        ACTLR_EL1 | PMUSERENR_EL0 => {
            if access.read {
                frame.set_reg(access.rt, 0);
            }
            exception::skip_instruction();
        }
        // A system register the hypervisor does not emulate (the
        // performance monitors among them) is UNDEFINED for the
        // guest, as on hardware that lacks it.
        _ => exception::inject_undefined(),
    }
}

/// A guest access to an address its partition has nothing at (no memory,
/// no device, no emulated register): the guest takes the synchronous
/// external abort hardware gives for it, at its own vector, and decides
/// (an RTOS probing for absent hardware carries on). Counted, and reported
/// on the console the first time only: a guest cannot flood the console
/// with them.
fn unbacked(part: &Partition, v: usize, what: &str, ipa: Ipa) {
    refused(
        part,
        v,
        format_args!("{what} IPA {ipa}"),
        "with nothing behind it",
    );
}

/// An access the partition may not make (`what`, `why`), answered as
/// [`unbacked`] answers one: counted, reported once, the guest's external abort.
fn refused(part: &Partition, v: usize, what: core::fmt::Arguments, why: &str) {
    part.count(v, Counter::ExternalAbort, 1);
    if !part
        .unbacked_reported
        .swap(true, core::sync::atomic::Ordering::Relaxed)
    {
        hyp_println!(
            "partition {} vCPU {v}: {what} (PC {:#x}) {why}: \
             a synchronous external abort for the guest (reported once; all are counted \
             as external-abort)",
            part.config.name,
            exception::guest_pc()
        );
    }
}

/// A guest's SGI write (ICC_SGI1R_EL1 on GICv3): one trap, decoded,
/// routed to the sender's own vCPUs only. A target on this CPU (the sender itself) is delivered
/// now; the others are marked pending in the model and their CPUs kicked.
fn send_sgi(part: &Partition, v: usize, request: SgiRequest) {
    deliver_sgi(part, v, request);
    exception::skip_instruction();
}

/// Delivers an SGI vCPU `v` sent (a trapped ICC_SGI1R_EL1 or GICD_SGIR
/// write) to the vCPUs it routes to, counting the targets refused. On
/// GICv2 each target also records `v` as a source it is pending from.
fn deliver_sgi(part: &Partition, v: usize, request: SgiRequest) {
    let routing = part.affinity.route(&request, v);
    if routing.refused != 0 {
        part.count(v, Counter::SgiRefused, u64::from(routing.refused));
    }
    let bit = 1u32 << request.intid;
    let mut targets = routing.vcpus;
    while targets != 0 {
        let t = targets.trailing_zeros() as usize;
        targets &= targets - 1;
        // Straight into the target's list registers where the GIC lets
        // this CPU reach them: the target takes no exit.
        if Gic::CAN_LIST_REMOTE && t != v && interrupts::list_remote(part, t, request.intid, v) {
            continue;
        }
        // A GICv2 SGI is pending per source: the drain lists one each.
        if cfg!(gic = "v2") {
            part.vgic.private[t].sgi_sources[request.intid as usize & 0xf]
                .fetch_or(1 << v, core::sync::atomic::Ordering::AcqRel);
        }
        part.vgic.private[t]
            .pending
            .fetch_or(bit, core::sync::atomic::Ordering::Release);
        if t == v {
            interrupts::drain(part, v);
        } else {
            super::runtime_of().kick(part, t);
        }
    }
}

/// Answers an HVC or SMC: Bulkhead's calls, then PSCI, else NOT_SUPPORTED.
fn call(frame: &mut TrapFrame, part: &Partition, p: usize, v: usize) {
    let x: [u64; 8] = core::array::from_fn(|i| frame.x[i]);
    if let Some(decoded) = Hypercall::decode(&x) {
        frame.x[0] = match decoded {
            Err(status) => status.as_reg(),
            Ok(Hypercall::Version) => {
                frame.x[1] = MAGIC;
                frame.x[2] = ABI_VERSION;
                frame.x[3] = part.config.control_page.0;
                0
            }
            Ok(Hypercall::IrqUnmask) => {
                interrupts::flush(part, v);
                0
            }
            Ok(Hypercall::DeferStats) => {
                let stats = interrupts::stats();
                frame.x[1] = stats.deferred;
                frame.x[2] = stats.max_wait;
                frame.x[3] = stats.max_window;
                0
            }
            Ok(Hypercall::ConsoleWrite { len, regs }) => {
                output::partition_write(part, p, output::Via::Call, unpack_console(&regs, len));
                0
            }
            Ok(Hypercall::VcpuInfo) => {
                frame.x[1] = p as u64;
                frame.x[2] = v as u64;
                frame.x[3] = part.config.cpus.len() as u64;
                0
            }
            Ok(Hypercall::Exit { code }) => {
                super::runtime_of().stop(p, StopReason::Exit { vcpu: v, code })
            }
            Ok(Hypercall::ExitCount { counter }) => {
                frame.x[1] = part.counter(v, counter);
                0
            }
            Ok(Hypercall::Doorbell { channel }) => {
                match doorbell::ring(super::runtime_of(), p, v, channel) {
                    Ok(()) => 0,
                    Err(status) => status.as_reg(),
                }
            }
        };
        return;
    }
    let vcpus = &part.state.vcpus[..part.config.cpus.len()];
    let outcome = psci::handle(
        x[0],
        [x[1], x[2], x[3]],
        vcpus,
        part.config.vmpidrs,
        part.config.memory,
    );
    frame.x[0] = match outcome {
        None => Status::NotSupported.as_reg(),
        Some(Outcome::Return(value)) => value,
        Some(Outcome::Woke(t)) => {
            // Its CPU sleeps in WFI (`wait_for_cpu_on`): the kick wakes it.
            super::runtime_of().kick(part, t);
            0
        }
        Some(Outcome::CpuOff) => {
            part.state.vcpus[v].set_power(Power::Off);
            // Its timer stops (its interrupt deasserts) before what the
            // list registers hold goes back: nothing is lost, nothing stays
            // active physically for a vCPU that will never end it.
            exception::stop_guest_timer();
            interrupts::power_off(part, v);
            super::runtime_of().wait_for_cpu_on(p, v)
        }
        Some(Outcome::SystemOff) => super::runtime_of().stop(p, StopReason::SystemOff { vcpu: v }),
        Some(Outcome::SystemReset) => {
            super::runtime_of().restart(p, v, RestartReason::SystemReset { vcpu: v })
        }
    };
}

/// A data abort outside the virtual GIC's frames: the emulated PL011's
/// register (`rt` the register the access names), or nothing.
#[inline(never)]
fn device_abort(rt: &mut u64, part: &Partition, p: usize, v: usize, abort: DataAbort) {
    if let Some(offset) = doorbell::page_offset(part, abort.ipa) {
        return doorbell_access(rt, p, v, abort, offset);
    }
    let uart = part
        .config
        .console_pl011
        .filter(|&base| abort.ipa >= base && abort.ipa.0 - base.0 < pl011::SIZE);
    let Some(base) = uart else {
        let what = if abort.write { "write to" } else { "read of" };
        unbacked(part, v, what, abort.ipa);
        return exception::inject_external_abort(abort.write);
    };
    if !abort.valid {
        return exception::inject_external_abort(abort.write);
    }
    let offset = abort.ipa.0 - base.0;
    let value = if abort.write {
        abort.store_value(*rt)
    } else {
        0
    };
    let (effect, raw) = {
        let mut port = part.pl011.lock();
        let done = if abort.write {
            (port.write(offset, abort.size, value), 0)
        } else {
            (pl011::Effect::None, port.read(offset, abort.size))
        };
        // Its interrupt line follows the model (under the model's lock).
        let (change, level) = (port.uart.line_changed(), port.uart.level());
        interrupts::pl011_line(part, v, change, level);
        done
    };
    if abort.write {
        if let pl011::Effect::Byte(byte) = effect {
            output::partition_write(part, p, output::Via::Pl011, core::iter::once(byte));
        }
    } else {
        *rt = abort.load_value(u64::from(raw));
    }
    exception::skip_instruction();
}

/// An access to the partition's doorbell page (`bulkhead_abi::doorbell`):
/// a 32-bit write of a channel number to `RING` rings it (an undeclared
/// channel is refused and counted, as the DOORBELL call refuses it); a
/// 32-bit read of `CHANNELS` gives how many channels the partition may
/// ring. Everything else reads as zero and ignores writes; an access the
/// syndrome does not describe is the guest's external abort, as on the
/// virtual GIC.
#[inline(never)]
fn doorbell_access(rt: &mut u64, p: usize, v: usize, abort: DataAbort, offset: u64) {
    if !abort.valid {
        return exception::inject_external_abort(abort.write);
    }
    let runtime = super::runtime_of();
    let word = abort.size == 4;
    if abort.write {
        if word && offset == bulkhead_abi::doorbell::RING as u64 {
            // Refused channels are counted there; the write is done either way.
            let _ = doorbell::ring(runtime, p, v, abort.store_value(*rt));
        }
    } else {
        let value = if word && offset == bulkhead_abi::doorbell::CHANNELS as u64 {
            doorbell::channels(runtime, p)
        } else {
            0
        };
        *rt = abort.load_value(u64::from(value));
    }
    exception::skip_instruction();
}

/// A self-IPI that `fast.S` sent (pending bit set, trap counted, ELR
/// advanced) but could not deliver on its fast path: drain here.
#[unsafe(no_mangle)]
extern "C" fn handle_local_drain(_frame: &mut TrapFrame) {
    let (part, _, v) = current();
    interrupts::drain(part, v);
}

/// The guest's IRQ exit, past the fast paths of `fast.S`: `first` is the
/// INTID `lower_irq` acknowledged (its priority not yet dropped), or
/// `GicBackend::KICK_DRAINED` when it consumed a kick and left the draining here.
#[unsafe(no_mangle)]
extern "C" fn handle_lower_irq(_frame: &mut TrapFrame, first: u32) {
    let (part, p, v) = current();
    part.count(v, Counter::Irq, 1);
    let maintenance = super::maintenance_intid();
    let mut intid = first;
    loop {
        if intid == Gic::KICK_DRAINED {
            interrupts::drain(part, v);
        } else if intid >= Gic::SPURIOUS {
            // Nothing (more) pending.
        } else {
            Gic::priority_drop(intid);
            if is_forwarded_ppi(intid) || (intid >= 32 && !input::is_uart(intid)) {
                // Forwarded with the HW bit: the guest's EOI deactivates it.
                interrupts::forward(part, v, intid);
            } else if intid >= 32 {
                // The board UART's: console input, taken here (this CPU
                // receives it only for a partition with the focus).
                input::interrupt(part, p, v);
                Gic::deactivate(intid);
            } else {
                Gic::deactivate(intid);
                if intid == Gic::KICK_SGI {
                    interrupts::drain(part, v);
                } else if intid == maintenance {
                    interrupts::flush(part, v);
                } else if intid == arch::HYP_TIMER_INTID {
                    // The partition's console output waits for the UART,
                    // or its console input for another turn.
                    arch::hyp_timer_disarm();
                    output::pump(part, p);
                    input::retry(part, p);
                }
            }
        }
        intid = Gic::acknowledge();
        if intid >= Gic::SPURIOUS {
            break;
        }
    }
    // The partition stops or restarts: a sibling kicked this CPU for it.
    if part.state.leaving() {
        super::runtime_of().leave_guest(p, v);
    }
    output::pump_if_waiting(part, p);
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_serror(_frame: &mut TrapFrame) {
    Gic::exit_entry();
    let (_, p, v) = current();
    super::runtime_of().stop(p, fault(FaultKind::UnknownTrap, v))
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_aarch32(_frame: &mut TrapFrame) {
    Gic::exit_entry();
    let (_, p, v) = current();
    super::runtime_of().stop(p, fault(FaultKind::UnknownTrap, v))
}

/// An exception taken from EL2 itself: a hypervisor bug. Report and power off.
#[unsafe(no_mangle)]
extern "C" fn handle_hyp_exception(kind: u64) -> ! {
    let syndrome = exception::syndrome();
    output::emergency(format_args!(
        "hypervisor exception (kind {kind}) on CPU {}: ESR {:#x} ELR {:#x} FAR {:#x}",
        super::this_cpu(),
        syndrome.esr,
        exception::guest_pc(),
        syndrome.far
    ));
    arch::system_off(super::CONFIG.board.power)
}
