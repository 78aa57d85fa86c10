//! Run-time state of partitions and their vCPUs, shared between the physical
//! CPUs: power states (driven by the partition's PSCI calls), whether the
//! partition runs, restarts or has stopped, and why.
//!
//! All of it is lock-free: a vCPU's state is written by its own CPU, by the
//! sibling that powers it on, and by whichever CPU stops or restarts the
//! partition. Every transition is a compare-and-swap, so two CPUs can never
//! both "win" one. Only the partition's own CPUs touch it.
#![forbid(unsafe_code)]

use core::fmt;

use bulkhead_abi::board::OnFault;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Most vCPUs a partition can have (the configuration check enforces it).
pub use bulkhead_abi::limits::MAX_VCPUS;

/// A vCPU's PSCI power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Power {
    Off = 0,
    /// CPU_ON accepted; its physical CPU has not entered it yet.
    OnPending = 1,
    On = 2,
}

/// One vCPU's shared state.
#[derive(Debug)]
pub struct Vcpu {
    power: AtomicU8,
    /// Where CPU_ON asked it to start, and the context id for its x0.
    entry: AtomicU64,
    context: AtomicU64,
}

impl Vcpu {
    pub const fn new() -> Self {
        Self {
            power: AtomicU8::new(Power::Off as u8),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
        }
    }

    pub fn power(&self) -> Power {
        Self::decode(self.power.load(Ordering::Acquire))
    }

    /// A CPU_ON that has claimed the vCPU and is still writing the entry:
    /// bit 7 over OnPending, so it already counts as pending and no other
    /// CPU_ON can claim it.
    const CLAIMED: u8 = Power::OnPending as u8 | 0x80;

    /// Bit 7 marks a CPU_ON that is still writing the entry: it already counts
    /// as pending.
    fn decode(raw: u8) -> Power {
        match raw & 0x7f {
            0 => Power::Off,
            1 => Power::OnPending,
            _ => Power::On,
        }
    }

    /// CPU_ON: Off -> OnPending with the start address. Fails with the state
    /// it found if the vCPU was not off.
    pub fn request_on(&self, entry: u64, context: u64) -> Result<(), Power> {
        // Claim the vCPU first so a racing CPU_ON cannot overwrite the entry.
        self.power
            .compare_exchange(
                Power::Off as u8,
                Self::CLAIMED,
                Ordering::Acquire,
                Ordering::Acquire,
            )
            .map_err(Self::decode)?;
        self.entry.store(entry, Ordering::Relaxed);
        self.context.store(context, Ordering::Relaxed);
        // Publish: the target reads entry and context after seeing OnPending.
        self.power.store(Power::OnPending as u8, Ordering::Release);
        Ok(())
    }

    /// On the vCPU's own CPU: OnPending -> On, returning (entry, context).
    pub fn take_on_request(&self) -> Option<(u64, u64)> {
        self.power
            .compare_exchange(
                Power::OnPending as u8,
                Power::On as u8,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        Some((
            self.entry.load(Ordering::Relaxed),
            self.context.load(Ordering::Relaxed),
        ))
    }

    /// Boot vCPU 0, or the vCPU itself after CPU_OFF.
    pub fn set_power(&self, power: Power) {
        self.power.store(power as u8, Ordering::Release);
    }
}

impl Default for Vcpu {
    fn default() -> Self {
        Self::new()
    }
}

/// What a fault looked like, for the stop (or restart) report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An exception class Bulkhead does not handle (an SError, AArch32 at
    /// EL1, an unknown trap). An access with nothing behind it is not a
    /// fault of the partition: the guest takes an external abort.
    UnknownTrap,
}

/// Everything the report of a stopped partition says about the fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vcpu: usize,
    pub kind: FaultKind,
    pub esr: u64,
    pub elr: u64,
}

/// Why a partition stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// PARTITION_EXIT with this code.
    Exit {
        vcpu: usize,
        code: u64,
    },
    /// PSCI SYSTEM_OFF.
    SystemOff {
        vcpu: usize,
    },
    Fault(Fault),
}

impl StopReason {
    /// The restart that replaces this stop under the partition's
    /// `on_fault` policy: a fault restarts a partition whose policy says
    /// so; anything the guest asked for (an exit, SYSTEM_OFF) stops it.
    pub fn restart_instead(self, on_fault: OnFault) -> Option<RestartReason> {
        match (self, on_fault) {
            (StopReason::Fault(fault), OnFault::Restart) => Some(RestartReason::Fault(fault)),
            _ => None,
        }
    }
}

/// Why a partition restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartReason {
    /// PSCI SYSTEM_RESET (or SYSTEM_RESET2).
    SystemReset { vcpu: usize },
    /// A fault, under the partition's `on_fault = "restart"`.
    Fault(Fault),
}

impl RestartReason {
    /// The vCPU that asked for it or faulted.
    pub fn vcpu(&self) -> usize {
        match *self {
            RestartReason::SystemReset { vcpu } => vcpu,
            RestartReason::Fault(fault) => fault.vcpu,
        }
    }
}

impl fmt::Display for RestartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RestartReason::SystemReset { vcpu } => {
                write!(f, "vCPU {vcpu} called PSCI SYSTEM_RESET")
            }
            RestartReason::Fault(fault) => StopReason::Fault(fault).fmt(f),
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StopReason::Exit { vcpu, code } => {
                write!(f, "vCPU {vcpu} exited with code {}", code as i64)
            }
            StopReason::SystemOff { vcpu } => write!(f, "vCPU {vcpu} called PSCI SYSTEM_OFF"),
            StopReason::Fault(fault) => {
                write!(f, "vCPU {}: ", fault.vcpu)?;
                match fault.kind {
                    FaultKind::UnknownTrap => f.write_str("unhandled trap")?,
                }
                write!(f, ", ESR {:#010x}, ELR {:#x}", fault.esr, fault.elr)
            }
        }
    }
}

/// The low `n` bits set (`n` at most [`MAX_VCPUS`]).
fn all(n: usize) -> u32 {
    ((1u64 << n) - 1) as u32
}

/// Where a partition is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Running = 0,
    /// Restarting: its vCPUs leave the guest one by one ([`PartitionState::quiesce`]);
    /// once all have, vCPU 0's CPU reloads it and starts it again.
    Restarting = 1,
    Stopped = 2,
}

/// One partition's shared run-time state.
#[derive(Debug)]
pub struct PartitionState {
    phase: AtomicU8,
    /// Bit n: vCPU n has left the guest for the restart under way.
    quiesced: AtomicU32,
    /// Restarts so far.
    restarts: AtomicU32,
    pub vcpus: [Vcpu; MAX_VCPUS],
}

impl Default for PartitionState {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionState {
    pub const fn new() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Running as u8),
            quiesced: AtomicU32::new(0),
            restarts: AtomicU32::new(0),
            vcpus: [const { Vcpu::new() }; MAX_VCPUS],
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Restarting,
            _ => Phase::Stopped,
        }
    }

    /// Whether a vCPU leaving EL2 must not go back to the guest: the
    /// partition restarts or has stopped. One load, on every exit that
    /// looks.
    #[inline(always)]
    pub fn leaving(&self) -> bool {
        self.phase.load(Ordering::Acquire) != Phase::Running as u8
    }

    pub fn is_stopped(&self) -> bool {
        self.phase() == Phase::Stopped
    }

    /// Marks the partition stopped (from running or restarting). True for
    /// exactly one caller: the one that reports it and wakes the
    /// partition's other CPUs.
    pub fn stop(&self) -> bool {
        self.phase.swap(Phase::Stopped as u8, Ordering::AcqRel) != Phase::Stopped as u8
    }

    /// Running -> Restarting. True for exactly one caller, the one that
    /// reports it and wakes the partition's other CPUs; false when a
    /// restart is already under way or the partition has stopped.
    pub fn begin_restart(&self) -> bool {
        self.phase
            .compare_exchange(
                Phase::Running as u8,
                Phase::Restarting as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// vCPU `v` has left the guest for the restart (its CPU has put back
    /// what its list registers held). Returns whether all `vcpus` have.
    pub fn quiesce(&self, v: usize, vcpus: usize) -> bool {
        self.quiesced.fetch_or(1 << v, Ordering::AcqRel) | 1 << v == all(vcpus)
    }

    /// Whether all `vcpus` have left the guest for the restart.
    pub fn all_quiesced(&self, vcpus: usize) -> bool {
        self.quiesced.load(Ordering::Acquire) == all(vcpus)
    }

    /// The reloaded partition runs again: every vCPU off but vCPU 0,
    /// which is on. False when it was stopped meanwhile.
    pub fn finish_restart(&self) -> bool {
        for (n, vcpu) in self.vcpus.iter().enumerate() {
            vcpu.set_power(if n == 0 { Power::On } else { Power::Off });
        }
        self.quiesced.store(0, Ordering::Relaxed);
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.phase
            .compare_exchange(
                Phase::Restarting as u8,
                Phase::Running as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// How many times the partition has restarted.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_on_is_accepted_once_and_taken_once() {
        let v = Vcpu::new();
        assert_eq!(v.power(), Power::Off);
        assert_eq!(v.request_on(0x4000_1000, 7), Ok(()));
        assert_eq!(v.request_on(0x4000_2000, 8), Err(Power::OnPending));
        assert_eq!(v.power(), Power::OnPending);
        assert_eq!(v.take_on_request(), Some((0x4000_1000, 7)));
        assert_eq!(v.take_on_request(), None);
        assert_eq!(v.request_on(0x4000_2000, 8), Err(Power::On));
        v.set_power(Power::Off);
        assert_eq!(v.request_on(0x4000_3000, 9), Ok(()));
    }

    /// While CPU_ON writes the entry the vCPU is neither off (a second
    /// CPU_ON would claim it too and overwrite the entry) nor on.
    #[test]
    fn a_claimed_vcpu_counts_as_pending() {
        assert_eq!(Vcpu::decode(Vcpu::CLAIMED), Power::OnPending);
        let v = Vcpu::new();
        v.power.store(Vcpu::CLAIMED, Ordering::Relaxed);
        assert_eq!(v.request_on(0x4000_2000, 8), Err(Power::OnPending));
        assert_eq!(v.take_on_request(), None, "not published yet");
    }

    #[test]
    fn only_one_caller_stops_a_partition() {
        let p = PartitionState::new();
        assert!(!p.is_stopped());
        assert!(p.stop());
        assert!(!p.stop());
        assert!(p.is_stopped());
    }

    #[test]
    fn a_restart_is_begun_once_and_ends_when_every_vcpu_has_left() {
        let p = PartitionState::new();
        assert!(p.begin_restart());
        assert!(!p.begin_restart(), "one restart at a time");
        assert_eq!(p.phase(), Phase::Restarting);
        assert!(p.leaving());
        assert!(!p.quiesce(1, 3));
        assert!(!p.quiesce(1, 3), "idempotent");
        assert!(!p.all_quiesced(3));
        assert!(!p.quiesce(0, 3));
        assert!(p.quiesce(2, 3));
        assert!(p.all_quiesced(3));
        p.vcpus[2].set_power(Power::On);
        assert!(p.finish_restart());
        assert_eq!(p.phase(), Phase::Running);
        assert!(!p.leaving());
        assert_eq!(p.restarts(), 1);
        assert_eq!(p.vcpus[0].power(), Power::On);
        assert_eq!(p.vcpus[2].power(), Power::Off);
        assert!(!p.all_quiesced(3), "the next restart starts afresh");
    }

    /// A stop wins over a restart under way, and a stopped partition
    /// neither restarts nor runs again.
    #[test]
    fn a_stop_ends_a_restart() {
        let p = PartitionState::new();
        assert!(p.begin_restart());
        assert!(p.stop());
        assert!(!p.begin_restart());
        assert!(!p.finish_restart());
        assert!(p.is_stopped());
    }

    #[test]
    fn only_a_fault_restarts_and_only_under_on_fault_restart() {
        let fault = Fault {
            vcpu: 1,
            kind: FaultKind::UnknownTrap,
            esr: 0xbe00_0000,
            elr: 0x4000_12a4,
        };
        assert_eq!(
            StopReason::Fault(fault).restart_instead(OnFault::Restart),
            Some(RestartReason::Fault(fault))
        );
        assert_eq!(
            StopReason::Fault(fault).restart_instead(OnFault::Stop),
            None
        );
        assert_eq!(RestartReason::Fault(fault).vcpu(), 1);
        for asked in [
            StopReason::Exit { vcpu: 0, code: 3 },
            StopReason::SystemOff { vcpu: 1 },
        ] {
            assert_eq!(asked.restart_instead(OnFault::Restart), None);
        }
        assert_eq!(
            RestartReason::Fault(fault).to_string(),
            "vCPU 1: unhandled trap, ESR 0xbe000000, ELR 0x400012a4"
        );
        assert_eq!(
            RestartReason::SystemReset { vcpu: 0 }.to_string(),
            "vCPU 0 called PSCI SYSTEM_RESET"
        );
    }

    #[test]
    fn a_fault_report_names_vcpu_syndrome_and_pc() {
        let r = StopReason::Fault(Fault {
            vcpu: 1,
            kind: FaultKind::UnknownTrap,
            esr: 0xbe00_0000,
            elr: 0x4000_12a4,
        });
        assert_eq!(
            r.to_string(),
            "vCPU 1: unhandled trap, ESR 0xbe000000, ELR 0x400012a4"
        );
        assert_eq!(
            StopReason::Exit {
                vcpu: 0,
                code: u64::MAX
            }
            .to_string(),
            "vCPU 0 exited with code -1"
        );
    }
}
