//! Whether the guest runs under Bulkhead or natively, decided once by the
//! primary CPU before anything else (the console backend depends on it), and
//! where the partition's control page is.
//!
//! The control page (see [`bulkhead_abi::control`]) is found with the same
//! `VERSION` call: `x3` is its guest address, 0 if the partition has none.
//! guest-lib uses it only if it is page aligned, inside the RAM range its
//! identity map covers as Normal memory (`[1 GiB, 2 GiB)`: the hypervisor
//! maps the page Normal write-back, and the guest's attributes must match
//! for the two to see each other's stores) and carries the magic number
//! and layout version it knows; otherwise interrupt masking uses
//! guest-lib's own mask byte, as it does natively (see [`crate::irq`]).

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use bulkhead_abi::{MAGIC, call, control};

/// Where the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In a Bulkhead partition: console, exit, vCPU info and exit counters
    /// are hypercalls; the GIC distributor (and a GICv3's redistributors)
    /// are emulated.
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
/// The control page's guest address, 0 = none (natively, or not usable).
static CONTROL_PAGE: AtomicUsize = AtomicUsize::new(0);

/// Where guest-lib's identity map has Normal memory (see `mmu`).
const NORMAL_RAM: core::ops::Range<u64> = 0x4000_0000..0x8000_0000;

/// Records how the primary CPU entered and detects the mode. Called once by
/// the primary CPU before any other guest-lib code runs.
pub(crate) fn init(started_at_el2: bool) {
    STARTED_AT_EL2.store(started_at_el2, Ordering::Relaxed);
    let (mode, page) = detect_with_page();
    CONTROL_PAGE.store(checked_control_page(page), Ordering::Relaxed);
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
        _ => detect_with_page().0,
    }
}

/// The guest address of this partition's control page, if guest-lib found
/// a usable one at boot (see the module documentation): then
/// [`crate::irq::mask`] uses its flag word. `None` natively.
pub fn control_page() -> Option<usize> {
    match CONTROL_PAGE.load(Ordering::Relaxed) {
        0 => None,
        page => Some(page),
    }
}

/// `page` if it is a control page guest-lib can use, else 0.
fn checked_control_page(page: u64) -> usize {
    let size = control::SIZE as u64;
    if page == 0
        || !page.is_multiple_of(size)
        || page < NORMAL_RAM.start
        || page + size > NORMAL_RAM.end
    {
        return 0;
    }
    let words = page as *const u32;
    // SAFETY: the hypervisor advertised a control page at `page` (VERSION's
    // x3), which lies in guest-lib's Normal identity-mapped range; the
    // reads are aligned and have no side effects.
    let (magic, version) = unsafe {
        (
            words.add(control::OFFSET_MAGIC / 4).read_volatile(),
            words.add(control::OFFSET_VERSION / 4).read_volatile(),
        )
    };
    if magic == control::MAGIC && version == control::VERSION {
        page as usize
    } else {
        0
    }
}

/// `hypervisor() == Mode::Bulkhead`.
pub fn under_bulkhead() -> bool {
    hypervisor() == Mode::Bulkhead
}

/// The mode, and under Bulkhead the control page address VERSION gave.
fn detect_with_page() -> (Mode, u64) {
    // ID_AA64PFR0_EL1.EL2 (bits 11:8) = 0: no EL2, and HVC would be
    // UNDEFINED, so do not try it. If we entered at EL2 ourselves, nothing
    // is above us either.
    let el2_implemented = (crate::arch::id_aa64pfr0() >> 8) & 0xf != 0;
    if !el2_implemented || started_at_el2() {
        return (Mode::Native, 0);
    }
    let [_, x1, _, x3] = crate::hvc::hvc(call::VERSION, [0; 7]);
    if x1 == MAGIC {
        (Mode::Bulkhead, x3)
    } else {
        (Mode::Native, 0)
    }
}
