//! Bulkhead's own hypercalls (see `bulkhead_abi::call`), decoded and checked.
//! Every argument comes from a guest register and is treated as hostile.
#![forbid(unsafe_code)]

use bulkhead_abi::{CONSOLE_WRITE_MAX, Counter, Status, call};

/// A checked hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    Version,
    /// `len` bytes (at most [`CONSOLE_WRITE_MAX`]) packed in `regs`.
    ConsoleWrite {
        len: usize,
        regs: [u64; 6],
    },
    VcpuInfo,
    Exit {
        code: u64,
    },
    ExitCount {
        counter: Counter,
    },
    IrqUnmask,
    DeferStats,
    /// Ring doorbell `channel` (checked against the configuration when
    /// rung).
    Doorbell {
        channel: u64,
    },
}

impl Hypercall {
    /// Decodes the call in `x[0]` with its arguments in `x[1..8]`. `None`
    /// when `x0` is not one of Bulkhead's function ids (the caller then tries
    /// PSCI); `Some(Err(..))` when it is but an argument is bad.
    pub fn decode(x: &[u64; 8]) -> Option<Result<Hypercall, Status>> {
        // The function id is W0: the upper half of x0 is not part of it
        // (SMCCC 1.1, 2.5).
        Some(Ok(match x[0] & 0xffff_ffff {
            call::VERSION => Hypercall::Version,
            call::CONSOLE_WRITE => {
                let len = x[1];
                if len > CONSOLE_WRITE_MAX as u64 {
                    return Some(Err(Status::InvalidParameters));
                }
                let mut regs = [0; 6];
                regs.copy_from_slice(&x[2..8]);
                Hypercall::ConsoleWrite {
                    len: len as usize,
                    regs,
                }
            }
            call::VCPU_INFO => Hypercall::VcpuInfo,
            call::PARTITION_EXIT => Hypercall::Exit { code: x[1] },
            call::IRQ_UNMASK => Hypercall::IrqUnmask,
            call::DEFER_STATS => Hypercall::DeferStats,
            call::DOORBELL => Hypercall::Doorbell { channel: x[1] },
            call::EXIT_COUNT => match Counter::from_index(x[1]) {
                Some(counter) => Hypercall::ExitCount { counter },
                None => return Some(Err(Status::InvalidParameters)),
            },
            // Anything else in Bulkhead's range is an undefined call: the
            // guest gets NOT_SUPPORTED and carries on.
            id if id >> 24 == 0xC6 || id >> 24 == 0x86 => return Some(Err(Status::NotSupported)),
            _ => return None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(x0: u64, x1: u64) -> [u64; 8] {
        [x0, x1, 1, 2, 3, 4, 5, 6]
    }

    #[test]
    fn console_write_length_is_checked() {
        assert_eq!(
            Hypercall::decode(&regs(call::CONSOLE_WRITE, 48)),
            Some(Ok(Hypercall::ConsoleWrite {
                len: 48,
                regs: [1, 2, 3, 4, 5, 6]
            }))
        );
        assert_eq!(
            Hypercall::decode(&regs(call::CONSOLE_WRITE, 49)),
            Some(Err(Status::InvalidParameters))
        );
        assert_eq!(
            Hypercall::decode(&regs(call::CONSOLE_WRITE, u64::MAX)),
            Some(Err(Status::InvalidParameters))
        );
    }

    /// DOORBELL passes its channel through whole (a value past 32 bits
    /// included): the ring checks it against the configuration.
    #[test]
    fn doorbell_carries_its_channel() {
        for channel in [0, 7, 1 << 32] {
            assert_eq!(
                Hypercall::decode(&regs(call::DOORBELL, channel)),
                Some(Ok(Hypercall::Doorbell { channel }))
            );
        }
    }

    #[test]
    fn undefined_calls_in_our_range_are_not_supported_and_others_pass() {
        assert_eq!(
            Hypercall::decode(&regs(bulkhead_abi::bulkhead_call(0x7ff), 0)),
            Some(Err(Status::NotSupported))
        );
        assert_eq!(Hypercall::decode(&regs(0x8400_0000, 0)), None);
        assert_eq!(
            Hypercall::decode(&regs(call::EXIT_COUNT, 1)),
            Some(Ok(Hypercall::ExitCount {
                counter: Counter::SgiTrap
            }))
        );
        assert_eq!(
            Hypercall::decode(&regs(call::EXIT_COUNT, 99)),
            Some(Err(Status::InvalidParameters))
        );
        assert_eq!(
            Hypercall::decode(&regs(call::PARTITION_EXIT, 3)),
            Some(Ok(Hypercall::Exit { code: 3 }))
        );
    }
}
