//! Run-time state of partitions and their vCPUs, shared between the physical
//! CPUs: power states (driven by the partition's PSCI calls), whether the
//! partition still runs, and why it stopped.
//!
//! All of it is lock-free: a vCPU's state is written by its own CPU, by the
//! sibling that powers it on, and by whichever CPU stops the partition. Every
//! transition is a compare-and-swap, so two CPUs can never both "win" one.
#![forbid(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

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

/// What a fault looked like, for the stop report.
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
    /// PSCI SYSTEM_RESET; partitions are not restarted yet, so this stops it.
    SystemReset {
        vcpu: usize,
    },
    Fault(Fault),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StopReason::Exit { vcpu, code } => {
                write!(f, "vCPU {vcpu} exited with code {}", code as i64)
            }
            StopReason::SystemOff { vcpu } => write!(f, "vCPU {vcpu} called PSCI SYSTEM_OFF"),
            StopReason::SystemReset { vcpu } => write!(
                f,
                "vCPU {vcpu} called PSCI SYSTEM_RESET (partition restart is not supported yet)"
            ),
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

/// One partition's shared run-time state.
#[derive(Debug)]
pub struct PartitionState {
    stopped: AtomicBool,
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
            stopped: AtomicBool::new(false),
            vcpus: [const { Vcpu::new() }; MAX_VCPUS],
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Marks the partition stopped. True for exactly one caller: the one
    /// that reports it and wakes the partition's other CPUs.
    pub fn stop(&self) -> bool {
        !self.stopped.swap(true, Ordering::AcqRel)
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
