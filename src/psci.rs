//! PSCI 1.1 and the SMCCC architecture calls, emulated for a partition.
//!
//! A partition sees only its own vCPUs, addressed by the virtual MPIDRs its
//! device tree gives. This module decides; the caller carries out what it
//! decides (wakes a CPU, stops the partition).
#![forbid(unsafe_code)]

use bulkhead_abi::Status;
use bulkhead_abi::psci::*;

use crate::config::MemoryRegion;
use crate::mm::Ipa;
use crate::partition::{Power, Vcpu};

/// What the caller must do after a PSCI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write this to x0 and return to the guest.
    Return(u64),
    /// CPU_ON accepted for this vCPU index: return success and wake its CPU.
    Woke(usize),
    /// The calling vCPU powers off (CPU_OFF).
    CpuOff,
    SystemOff,
    SystemReset,
}

/// The MPIDR affinity fields (Aff3, Aff2, Aff1, Aff0); bits that are not
/// affinity (U, MT, RES1) are ignored in a target.
pub const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// Handles `fid` with arguments `x1..x3`, or `None` when `fid` is not a
/// PSCI or SMCCC architecture call. `vcpus` and `vmpidrs` are the calling
/// partition's; `memory` its RAM.
pub fn handle(
    fid: u64,
    args: [u64; 3],
    vcpus: &[Vcpu],
    vmpidrs: &[u64],
    memory: &[MemoryRegion],
) -> Option<Outcome> {
    // The function id is W0, whatever the convention (SMCCC 1.1, 2.5);
    // an SMC32/HVC32 call's arguments are W1..W3: their upper halves are
    // not part of them (2.6).
    let fid = fid & 0xffff_ffff;
    let args = if fid & SMC64 == 0 {
        args.map(|a| a & 0xffff_ffff)
    } else {
        args
    };
    let status = |s: Status| Some(Outcome::Return(s.as_reg()));
    let find = |mpidr: u64| {
        vmpidrs
            .iter()
            .position(|v| v & AFFINITY_MASK == mpidr & AFFINITY_MASK)
    };
    match fid {
        PSCI_VERSION => Some(Outcome::Return(VERSION_1_1)),
        SMCCC_VERSION => Some(Outcome::Return(SMCCC_1_1)),
        MIGRATE_INFO_TYPE => Some(Outcome::Return(TOS_NOT_PRESENT)),
        PSCI_FEATURES => match args[0] & 0xffff_ffff {
            f if supported(f) => Some(Outcome::Return(0)),
            _ => status(Status::NotSupported),
        },
        CPU_ON_32 | CPU_ON_64 => {
            let (target, mut entry, mut context) = (args[0], args[1], args[2]);
            if fid == CPU_ON_32 {
                entry &= 0xffff_ffff;
                context &= 0xffff_ffff;
            }
            let Some(index) = find(target) else {
                return status(Status::InvalidParameters);
            };
            if !entry_point_ok(Ipa(entry), memory) {
                return status(Status::InvalidAddress);
            }
            // A vCPU already on, or already being started by an earlier
            // CPU_ON, answers ALREADY_ON. PSCI 1.1 also allows ON_PENDING
            // for the second case; KVM and QEMU answer ALREADY_ON, and
            // guests and test suites written against them (kvm-unit-tests'
            // concurrent CPU_ON test) take anything but SUCCESS or
            // ALREADY_ON as a failure. AFFINITY_INFO still says ON_PENDING.
            match vcpus[index].request_on(entry, context) {
                Ok(()) => Some(Outcome::Woke(index)),
                Err(_) => status(Status::AlreadyOn),
            }
        }
        CPU_OFF => Some(Outcome::CpuOff),
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            // Only level 0 (a single vCPU) is meaningful for a partition.
            if args[1] != 0 {
                return status(Status::InvalidParameters);
            }
            let Some(index) = find(args[0]) else {
                return status(Status::InvalidParameters);
            };
            Some(Outcome::Return(match vcpus[index].power() {
                Power::On => AFFINITY_ON,
                Power::Off => AFFINITY_OFF,
                Power::OnPending => AFFINITY_ON_PENDING,
            }))
        }
        SYSTEM_OFF => Some(Outcome::SystemOff),
        SYSTEM_RESET => Some(Outcome::SystemReset),
        CPU_SUSPEND_32 | CPU_SUSPEND_64 => cpu_suspend(args[0], args[1], memory),
        // SMCCC 1.1 makes ARCH_FEATURES mandatory: it answers for the two
        // architecture calls Bulkhead implements, SMCCC_VERSION and itself,
        // and NOT_SUPPORTED for the rest (no workaround to discover, no
        // SoC id, no PV time or TRNG).
        SMCCC_ARCH_FEATURES => match args[0] & 0xffff_ffff {
            f if arch_supported(f) => Some(Outcome::Return(0)),
            _ => status(Status::NotSupported),
        },
        // Every other PSCI (0x84/0xC4) and SMCCC architecture (0x80) call.
        f if f >> 24 == 0x84 || f >> 24 == 0xC4 || f >> 24 == 0x80 => status(Status::NotSupported),
        _ => None,
    }
}

/// Whether a vCPU may start at `entry`: an aligned instruction in the
/// partition's memory.
fn entry_point_ok(entry: Ipa, memory: &[MemoryRegion]) -> bool {
    entry.is_aligned(4) && memory.iter().any(|r| r.contains(entry))
}

/// SMCCC: bit 30 of a function id marks the SMC64/HVC64 convention.
const SMC64: u64 = 1 << 30;
/// CPU_SUSPEND's power_state, original format (PSCI 1.1, 5.4.2): StateID
/// [15:0], StateType [16] (1: powerdown), PowerLevel [25:24]; the other
/// bits are reserved, zero.
const POWER_STATE_RESERVED: u64 = !0x0301_ffff & 0xffff_ffff;
const POWER_STATE_POWERDOWN: u64 = 1 << 16;

/// CPU_SUSPEND, which PSCI 1.x requires: every valid request is met as a
/// standby the vCPU wakes from at once, which the specification allows
/// ("the call can return as if a wakeup event were pending", 5.4.2):
/// SUCCESS, and the caller carries on after the call, powerdown requests
/// included. A partition's vCPU has its physical CPU to itself, so there
/// is no deeper state that would save anything for anyone else.
fn cpu_suspend(power_state: u64, entry: u64, memory: &[MemoryRegion]) -> Option<Outcome> {
    let status = |s: Status| Some(Outcome::Return(s.as_reg()));
    if power_state & POWER_STATE_RESERVED != 0 || power_state >> 32 != 0 {
        return status(Status::InvalidParameters);
    }
    if power_state & POWER_STATE_POWERDOWN != 0 && !entry_point_ok(Ipa(entry), memory) {
        return status(Status::InvalidAddress);
    }
    status(Status::Success)
}

/// Whether PSCI_FEATURES answers 0 (implemented, no flags) for `fid`.
pub const fn supported(fid: u64) -> bool {
    matches!(
        fid,
        PSCI_VERSION
            | CPU_SUSPEND_32
            | CPU_SUSPEND_64
            | CPU_OFF
            | CPU_ON_32
            | CPU_ON_64
            | AFFINITY_INFO_32
            | AFFINITY_INFO_64
            | MIGRATE_INFO_TYPE
            | SYSTEM_OFF
            | SYSTEM_RESET
            | PSCI_FEATURES
            | SMCCC_VERSION
    )
}

/// Whether SMCCC_ARCH_FEATURES answers 0 for `fid`: the two architecture
/// calls Bulkhead implements, SMCCC_VERSION and itself.
pub const fn arch_supported(fid: u64) -> bool {
    matches!(fid, SMCCC_VERSION | SMCCC_ARCH_FEATURES)
}

/// [`supported`] for the PSCI ids `base + n`, n < 32, as bit n: what the
/// calls' assembly fast path answers PSCI_FEATURES from (`base` is
/// 0x8400_0000, SMC32, or 0xC400_0000, SMC64; [`supported`] is false for
/// every other id but SMCCC_VERSION, which a test checks).
pub const fn supported_mask(base: u64) -> u32 {
    let mut mask = 0;
    let mut n = 0;
    while n < 32 {
        if supported(base + n) {
            mask |= 1 << n;
        }
        n += 1;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::PhysAddr;

    const MEM: [MemoryRegion; 1] = [MemoryRegion {
        ipa: Ipa(0x4000_0000),
        phys: PhysAddr(0x5000_0000),
        size: 0x0400_0000,
    }];

    fn call(fid: u64, args: [u64; 3], vcpus: &[Vcpu]) -> Option<Outcome> {
        handle(fid, args, vcpus, &[0, 1], &MEM)
    }

    /// ARCH_FEATURES answers for SMCCC_VERSION and itself, and
    /// NOT_SUPPORTED for a workaround; PSCI_FEATURES answers 0 for exactly
    /// the PSCI calls handled here, and for SMCCC_VERSION.
    #[test]
    fn the_feature_queries_answer_for_every_call_implemented() {
        let vcpus = [Vcpu::default(), Vcpu::default()];
        for f in [SMCCC_VERSION, SMCCC_ARCH_FEATURES] {
            assert_eq!(
                call(SMCCC_ARCH_FEATURES, [f, 0, 0], &vcpus),
                Some(Outcome::Return(0))
            );
        }
        assert_eq!(
            call(SMCCC_ARCH_FEATURES, [0x8000_8000, 0, 0], &vcpus),
            Some(Outcome::Return(Status::NotSupported.as_reg()))
        );
        // Every PSCI function id handled here as implemented (anything but
        // NOT_SUPPORTED) is one PSCI_FEATURES answers 0 for, and no other.
        let not_supported = Some(Outcome::Return(Status::NotSupported.as_reg()));
        for f in (0..0x20).flat_map(|n| [0x8400_0000 | n, 0xC400_0000 | n]) {
            let implemented = call(f, [PSCI_VERSION, 0, 0], &vcpus) != not_supported;
            let features = call(PSCI_FEATURES, [f, 0, 0], &vcpus);
            let expected = if implemented {
                Some(Outcome::Return(0))
            } else {
                not_supported
            };
            assert_eq!(features, expected, "{f:#x}");
        }
        assert_eq!(
            call(PSCI_FEATURES, [SMCCC_VERSION, 0, 0], &vcpus),
            Some(Outcome::Return(0))
        );
    }

    /// The masks the calls' fast path answers PSCI_FEATURES from say what
    /// `supported` says, for every id it could be asked about: SMCCC_VERSION
    /// apart, only PSCI ids below 32 are supported.
    #[test]
    fn the_fast_path_masks_agree_with_supported() {
        let (smc32, smc64) = (supported_mask(0x8400_0000), supported_mask(0xC400_0000));
        let fast = |f: u64| {
            f == SMCCC_VERSION
                || match f & !0x4000_001f {
                    0x8400_0000 if f & 0x4000_0000 == 0 => smc32 >> (f & 0x1f) & 1 == 1,
                    0x8400_0000 => smc64 >> (f & 0x1f) & 1 == 1,
                    _ => false,
                }
        };
        for owner in [0x80, 0x84, 0x86, 0xC4, 0xC6, 0x00, 0xff] {
            for n in (0..0x400).chain([0xffff, 0x1_0000, 0xff_ffff]) {
                let f = owner << 24 | n;
                assert_eq!(supported(f), fast(f), "{f:#x}");
            }
        }
        assert!(arch_supported(SMCCC_VERSION) && arch_supported(SMCCC_ARCH_FEATURES));
        assert!(!arch_supported(0x8000_0002) && !arch_supported(0x8000_8000));
    }

    #[test]
    fn cpu_on_checks_target_entry_and_state() {
        let vcpus = [Vcpu::new(), Vcpu::new()];
        let entry = 0x4000_0100;
        let r = |s: Status| Some(Outcome::Return(s.as_reg()));
        assert_eq!(
            call(CPU_ON_64, [5, entry, 0], &vcpus),
            r(Status::InvalidParameters)
        );
        assert_eq!(
            call(CPU_ON_64, [1, 0x5400_0000, 0], &vcpus),
            r(Status::InvalidAddress)
        );
        assert_eq!(
            call(CPU_ON_64, [1, entry + 2, 0], &vcpus),
            r(Status::InvalidAddress)
        );
        // Non-affinity bits of the target (here RES1 bit 31) are ignored.
        assert_eq!(
            call(CPU_ON_64, [(1 << 31) | 1, entry, 9], &vcpus),
            Some(Outcome::Woke(1))
        );
        assert_eq!(
            call(AFFINITY_INFO_64, [1, 0, 0], &vcpus),
            Some(Outcome::Return(AFFINITY_ON_PENDING))
        );
        // Being started already: ALREADY_ON, as KVM and QEMU answer.
        assert_eq!(call(CPU_ON_64, [1, entry, 9], &vcpus), r(Status::AlreadyOn));
        assert_eq!(vcpus[1].take_on_request(), Some((entry, 9)));
        assert_eq!(call(CPU_ON_64, [1, entry, 9], &vcpus), r(Status::AlreadyOn));
        assert_eq!(
            call(AFFINITY_INFO_64, [1, 0, 0], &vcpus),
            Some(Outcome::Return(AFFINITY_ON))
        );
        assert_eq!(
            call(AFFINITY_INFO_64, [0, 0, 0], &vcpus),
            Some(Outcome::Return(AFFINITY_OFF))
        );
        assert_eq!(
            call(AFFINITY_INFO_64, [0, 1, 0], &vcpus),
            r(Status::InvalidParameters)
        );
    }

    #[test]
    fn versions_features_and_unknown_calls() {
        let vcpus = [Vcpu::new(), Vcpu::new()];
        assert_eq!(
            call(PSCI_VERSION, [0; 3], &vcpus),
            Some(Outcome::Return(VERSION_1_1))
        );
        // An SMC32 id with garbage in the upper half is still PSCI_VERSION.
        assert_eq!(
            call(0xdead_0000_0000_0000 | PSCI_VERSION, [0; 3], &vcpus),
            Some(Outcome::Return(VERSION_1_1))
        );
        assert_eq!(
            call(PSCI_FEATURES, [CPU_ON_64, 0, 0], &vcpus),
            Some(Outcome::Return(0))
        );
        // CPU_SUSPEND is there (original power_state format: flags 0).
        assert_eq!(
            call(PSCI_FEATURES, [CPU_SUSPEND_64, 0, 0], &vcpus),
            Some(Outcome::Return(0))
        );
        assert_eq!(
            call(0x8400_0042, [0; 3], &vcpus),
            Some(Outcome::Return(Status::NotSupported.as_reg()))
        );
        assert_eq!(call(SYSTEM_OFF, [0; 3], &vcpus), Some(Outcome::SystemOff));
        assert_eq!(call(CPU_OFF, [0; 3], &vcpus), Some(Outcome::CpuOff));
        assert_eq!(call(bulkhead_abi::call::VERSION, [0; 3], &vcpus), None);
    }

    #[test]
    fn cpu_suspend_meets_valid_requests_at_once_and_checks_the_rest() {
        let vcpus = [Vcpu::new(), Vcpu::new()];
        let r = |s: Status| Some(Outcome::Return(s.as_reg()));
        let entry = 0x4000_0100;
        // Standby at level 0, and powerdown with a good entry point.
        assert_eq!(
            call(CPU_SUSPEND_64, [0x0, 0, 0], &vcpus),
            r(Status::Success)
        );
        assert_eq!(
            call(CPU_SUSPEND_64, [1 << 16, entry, 7], &vcpus),
            r(Status::Success)
        );
        assert_eq!(
            call(CPU_SUSPEND_32, [0x0100_0000, 0, 0], &vcpus),
            r(Status::Success)
        );
        // Reserved bits, a bad entry point for powerdown.
        assert_eq!(
            call(CPU_SUSPEND_64, [1 << 20, 0, 0], &vcpus),
            r(Status::InvalidParameters)
        );
        assert_eq!(
            call(CPU_SUSPEND_64, [1 << 40, 0, 0], &vcpus),
            r(Status::InvalidParameters)
        );
        assert_eq!(
            call(CPU_SUSPEND_64, [1 << 16, 0x5400_0000, 0], &vcpus),
            r(Status::InvalidAddress)
        );
        assert_eq!(
            call(CPU_SUSPEND_64, [1 << 16, entry + 1, 0], &vcpus),
            r(Status::InvalidAddress)
        );
        // SMC32: the upper halves of the arguments are not part of them.
        assert_eq!(
            call(
                CPU_SUSPEND_32,
                [0xffff_ffff_0000_0000 | (1 << 16), entry | 0xff << 32, 0],
                &vcpus
            ),
            r(Status::Success)
        );
    }

    /// The edges of the partition's memory: the last instruction is a valid
    /// entry point, the first address past it and the one before it are not.
    #[test]
    fn entry_points_at_the_edges_of_memory() {
        let start = MEM[0].ipa.0;
        let end = start + MEM[0].size;
        let r = |s: Status| Some(Outcome::Return(s.as_reg()));
        for (entry, ok) in [
            (start, true),
            (end - 4, true),
            (end, false),
            (start - 4, false),
        ] {
            let vcpus = [Vcpu::new(), Vcpu::new()];
            let expected = if ok {
                Some(Outcome::Woke(1))
            } else {
                r(Status::InvalidAddress)
            };
            assert_eq!(
                call(CPU_ON_64, [1, entry, 0], &vcpus),
                expected,
                "{entry:#x}"
            );
            let suspend = if ok {
                r(Status::Success)
            } else {
                r(Status::InvalidAddress)
            };
            assert_eq!(
                call(CPU_SUSPEND_64, [1 << 16, entry, 0], &vcpus),
                suspend,
                "{entry:#x}"
            );
        }
    }

    #[test]
    fn smc32_calls_ignore_the_upper_halves_of_their_arguments() {
        let vcpus = [Vcpu::new(), Vcpu::new()];
        let entry = 0x4000_0100;
        assert_eq!(
            call(CPU_ON_32, [1 | 1 << 32, entry, 0], &vcpus),
            Some(Outcome::Woke(1))
        );
        assert_eq!(
            call(AFFINITY_INFO_32, [1 | 7 << 40, 1 << 32, 0], &vcpus),
            Some(Outcome::Return(AFFINITY_ON_PENDING))
        );
        // SMC64 keeps them: Aff3 lives in bits 39:32.
        assert_eq!(
            call(AFFINITY_INFO_64, [1 | 7 << 32, 0, 0], &vcpus),
            Some(Outcome::Return(Status::InvalidParameters.as_reg()))
        );
        // The function id is W0 for every convention.
        assert_eq!(
            call(0xffff_0000_0000_0000 | CPU_OFF, [0; 3], &vcpus),
            Some(Outcome::CpuOff)
        );
    }
}
