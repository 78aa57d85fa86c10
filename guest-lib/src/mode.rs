//! Whether the guest runs under Bulkhead or natively, decided once by the
//! primary CPU before anything else (the console backend depends on it).

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use bulkhead_abi::{MAGIC, call};

/// Where the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In a Bulkhead partition: console, exit, vCPU info and exit counters
    /// are hypercalls; the GIC distributor and redistributors are emulated.
    Bulkhead,
    /// On bare hardware (or QEMU) at EL1: guest-lib drives the PL011
    /// itself and exits with PSCI SYSTEM_OFF.
    Native,
}

impl Mode {
    /// "bulkhead" or "native".
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Bulkhead => "bulkhead",
            Mode::Native => "native",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const UNKNOWN: u8 = 0;
const NATIVE: u8 = 1;
const BULKHEAD: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);
static STARTED_AT_EL2: AtomicBool = AtomicBool::new(false);

/// Records how the primary CPU entered and detects the mode. Called once by
/// the primary CPU before any other guest-lib code runs.
pub(crate) fn init(started_at_el2: bool) {
    STARTED_AT_EL2.store(started_at_el2, Ordering::Relaxed);
    let mode = detect();
    MODE.store(
        if mode == Mode::Bulkhead {
            BULKHEAD
        } else {
            NATIVE
        },
        Ordering::Relaxed,
    );
}

/// Whether the guest was entered at EL2 and dropped itself to EL1: then
/// nothing runs at EL2 and PSCI is on SMC.
pub(crate) fn started_at_el2() -> bool {
    STARTED_AT_EL2.load(Ordering::Relaxed)
}

/// Whether the guest runs under Bulkhead or natively.
pub fn hypervisor() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        BULKHEAD => Mode::Bulkhead,
        NATIVE => Mode::Native,
        _ => detect(),
    }
}

/// `hypervisor() == Mode::Bulkhead`.
pub fn under_bulkhead() -> bool {
    hypervisor() == Mode::Bulkhead
}

fn detect() -> Mode {
    // ID_AA64PFR0_EL1.EL2 (bits 11:8) = 0: no EL2, and HVC would be
    // UNDEFINED, so do not try it. If we entered at EL2 ourselves, nothing
    // is above us either.
    let el2_implemented = (crate::arch::id_aa64pfr0() >> 8) & 0xf != 0;
    if !el2_implemented || started_at_el2() {
        return Mode::Native;
    }
    let [_, x1, _, _] = crate::hvc::hvc(call::VERSION, [0; 7]);
    if x1 == MAGIC {
        Mode::Bulkhead
    } else {
        Mode::Native
    }
}
