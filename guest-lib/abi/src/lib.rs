//! The ABI between the Bulkhead hypervisor and its guests.
//!
//! Both sides depend on this crate and nothing else of each other: the
//! hypervisor never links guest-lib, and a guest needs only these numbers
//! (or `guest-lib/include/bulkhead.h`, which mirrors them for C guests).
//!
//! Calls follow the SMC Calling Convention (Arm DEN 0028): the function id in
//! `x0`, arguments in `x1..x7`, results in `x0..x3`, issued with `hvc #0`.
//! Bulkhead's own calls live in the "vendor specific hypervisor service"
//! range (owner 6), so they can never collide with PSCI or the Arm
//! architecture calls, which the hypervisor also answers.
//!
//! [`ring`] is the layout of a channel between partitions (a ring over a
//! shared region) and [`doorbell`] the register that rings its consumer.
//!
//! Beside the ABI, [`board`] holds the board description types the
//! configuration tool (bulkhead-config) and the hypervisor share, and
//! [`limits`] the limits every side sizes itself by.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod board;
pub mod ring;

/// Builds a Bulkhead function id: SMCCC fast call (bit 31), SMC64 (bit 30),
/// owning entity 6 = vendor specific hypervisor service (bits 29:24).
pub const fn bulkhead_call(number: u16) -> u64 {
    0xC600_0000 | number as u64
}

/// Bulkhead's hypercalls.
pub mod call {
    use super::bulkhead_call;

    /// Identify the hypervisor. Returns `x0 = 0`, `x1 = MAGIC`,
    /// `x2 = ABI_VERSION`, `x3` = the guest address of the partition's
    /// control page (see [`super::control`]). A guest uses it to tell
    /// whether it runs under Bulkhead or on bare hardware, and to find the
    /// control page without a device tree.
    pub const VERSION: u64 = bulkhead_call(0);
    /// Write bytes to the partition's console. `x1` = number of bytes
    /// (at most [`super::CONSOLE_WRITE_MAX`]), `x2..x7` = the bytes, packed
    /// little-endian, eight a register. Returns `x0 = 0` or an error.
    pub const CONSOLE_WRITE: u64 = bulkhead_call(1);
    /// Describe the calling vCPU. Returns `x0 = 0`, `x1` = partition index,
    /// `x2` = vCPU index within the partition, `x3` = the partition's vCPU count.
    pub const VCPU_INFO: u64 = bulkhead_call(2);
    /// Stop the calling partition (all its vCPUs). `x1` = exit code, which the
    /// hypervisor reports on its console. Does not return.
    pub const PARTITION_EXIT: u64 = bulkhead_call(3);
    /// Read one of the calling vCPU's exit counters. `x1` = the counter (an
    /// [`super::Counter`] value). Returns `x0 = 0`, `x1` = its count since
    /// the vCPU started; `x0 = INVALID_PARAMETERS` for an unknown counter.
    pub const EXIT_COUNT: u64 = bulkhead_call(4);
    /// The calling vCPU has cleared its mask byte and found
    /// [`super::control::PENDING_DEFERRED`] set in its pending byte: inject
    /// the interrupts deferred while it was masked (highest priority first)
    /// and clear that bit. Returns `x0 = 0`.
    pub const IRQ_UNMASK: u64 = bulkhead_call(5);
    /// The calling vCPU's deferral statistics, in generic counter ticks:
    /// `x1` = interrupts deferred by its mask byte, `x2` = the longest an
    /// interrupt waited behind the mask (its arrival to its injection),
    /// `x3` = the longest masked window that delayed one (from the first
    /// deferral in a window to the unmask that ended it).
    pub const DEFER_STATS: u64 = bulkhead_call(6);
    /// Ring a doorbell: `x1` = the channel number, as a write of it to the
    /// partition's doorbell page does (see [`super::doorbell`]). Returns
    /// `x0 = 0`, or `INVALID_PARAMETERS` for a channel the partition does
    /// not have.
    pub const DOORBELL: u64 = bulkhead_call(7);
}

/// The doorbell page: one 4 KiB page at the partition's `doorbell_page`
/// (its device tree's `bulkhead,doorbell` node), emulated by the
/// hypervisor. A 32-bit write of a channel number to [`RING`](doorbell::RING)
/// rings that doorbell: the interrupt its configuration names is made
/// pending in the target partition's vCPU. Channel n is the nth doorbell
/// the partition rings, in the partition set's order (the node's
/// `channel-names`).
pub mod doorbell {
    /// Size of the page.
    pub const SIZE: usize = 4096;
    /// Byte offset of the register a channel number is written to (32-bit,
    /// write-only: reads as zero). A channel the partition does not have
    /// is refused and counted ([`Counter::DoorbellRefused`](super::Counter)).
    pub const RING: usize = 0;
    /// Byte offset of the number of channels the partition may ring
    /// (32-bit, read-only). Every other offset reads as zero and ignores
    /// writes.
    pub const CHANNELS: usize = 4;
}

/// The control page: one 4 KiB page per partition, owned by the hypervisor
/// and mapped into that partition only (normal memory, write-back, inner
/// shareable). Its guest address is in the partition's device tree
/// (`compatible = "bulkhead,control-page"`) and in `x3` of
/// [`call::VERSION`]. Layout version 2; `guest-lib/include/bulkhead.h` is
/// the same for C guests, and a test checks that the two agree.
///
/// Interrupt masking without a trap. The page holds the partition's flag
/// word, 64 bits at [`OFFSET_MASK`](control::OFFSET_MASK): byte n is vCPU
/// n's mask flag ([`ControlPage::mask`](control::ControlPage::mask)\[n\]),
/// written only by vCPU n with plain byte stores (no exclusive loop: no
/// other vCPU shares the byte), non-zero = masked. The hypervisor reads
/// vCPU n's byte before it injects anything into vCPU n; if it is
/// non-zero, the interrupt is deferred and bit 0 ([`PENDING_DEFERRED`]) of
/// vCPU n's pending byte
/// ([`ControlPage::pending`](control::ControlPage::pending)\[n\], in the
/// word after the flag word) is set. After clearing its mask byte, a vCPU
/// reads its pending byte and only if [`PENDING_DEFERRED`] is set makes one
/// [`call::IRQ_UNMASK`]. The pending byte's other bits are the guest's own:
/// the hypervisor never changes them (guest-lib keeps its "lazily masked"
/// note there, so that its unmask tests both with one load).
///
/// [`PENDING_DEFERRED`]: control::PENDING_DEFERRED
pub mod control {
    use core::sync::atomic::AtomicU8;

    /// [`ControlPage::magic`]: "BKCP", little-endian.
    pub const MAGIC: u32 = u32::from_le_bytes(*b"BKCP");
    /// [`ControlPage::version`] of this layout. Version 1 had a 32-bit
    /// mask word and pending word with one bit per vCPU, set and cleared
    /// with atomic read-modify-writes.
    pub const VERSION: u32 = 2;
    /// Size of the control page in bytes (one 4 KiB page, also its
    /// alignment): what the hypervisor maps and a guest checks.
    pub const SIZE: usize = 4096;
    /// vCPUs the page has flags for: one byte each in the 64-bit flag
    /// word and in the pending word. A partition has at most
    /// [`super::limits::MAX_VCPUS`], which is no more.
    pub const VCPUS: usize = 8;

    /// Byte offset of [`ControlPage::magic`] in the page, for C and assembly.
    pub const OFFSET_MAGIC: usize = 0;
    /// Byte offset of [`ControlPage::version`] in the page.
    pub const OFFSET_VERSION: usize = 4;
    /// Byte offset of [`ControlPage::mask`], the flag word (vCPU n's byte
    /// at `OFFSET_MASK + n`), which the guest's and the hypervisor's fast
    /// paths reach without the struct.
    pub const OFFSET_MASK: usize = 8;
    /// Byte offset of [`ControlPage::pending`]: the word after the flag word.
    pub const OFFSET_PENDING: usize = 16;
    /// From vCPU n's mask byte to its pending byte: one immediate offset
    /// for every vCPU, so an unmask reaches both from one address.
    pub const PENDING_FROM_MASK: usize = OFFSET_PENDING - OFFSET_MASK;

    /// What guest-lib and `bulkhead.h` store in a mask byte to mask (the
    /// hypervisor takes any non-zero value as masked).
    pub const MASKED: u8 = 1;
    /// Bit 0 of a pending byte: the hypervisor holds interrupts deferred
    /// for the vCPU. The only bit the hypervisor writes: it sets it at a
    /// deferral and clears it when it has injected them, on
    /// [`super::call::IRQ_UNMASK`] or at its next decision for the vCPU
    /// after the mask byte was cleared.
    pub const PENDING_DEFERRED: u8 = 1 << 0;

    /// The control page as laid out in memory (layout [`VERSION`]):
    /// little-endian, at the `OFFSET_*` byte offsets, [`SIZE`] bytes, page
    /// aligned; `struct bulkhead_control_page` in `bulkhead.h`.
    #[repr(C, align(4096))]
    #[derive(Debug)]
    pub struct ControlPage {
        /// [`MAGIC`], written by the hypervisor.
        pub magic: u32,
        /// [`VERSION`], written by the hypervisor.
        pub version: u32,
        /// The flag word: byte n non-zero = vCPU n has its interrupts
        /// masked. Byte n is written by vCPU n only, read by the hypervisor.
        pub mask: [AtomicU8; VCPUS],
        /// Byte n: vCPU n's pending byte. Bit 0 ([`PENDING_DEFERRED`]) is
        /// the hypervisor's; bits 7:1 are vCPU n's own, which the
        /// hypervisor leaves as they are.
        pub pending: [AtomicU8; VCPUS],
        /// Room to grow; reads as zero in version 2.
        pub reserved: [u32; SIZE / 4 - 6],
    }

    const _: () = {
        assert!(core::mem::size_of::<ControlPage>() == SIZE);
        assert!(core::mem::offset_of!(ControlPage, magic) == OFFSET_MAGIC);
        assert!(core::mem::offset_of!(ControlPage, version) == OFFSET_VERSION);
        assert!(core::mem::offset_of!(ControlPage, mask) == OFFSET_MASK);
        assert!(core::mem::offset_of!(ControlPage, pending) == OFFSET_PENDING);
        // The flag word is one naturally aligned 64-bit word.
        assert!(OFFSET_MASK.is_multiple_of(8) && VCPUS == 8);
        assert!(super::limits::MAX_VCPUS <= VCPUS);
    };
}

/// The per-vCPU counters [`call::EXIT_COUNT`] reads: exits to the
/// hypervisor by cause, and SGI targets refused. The hypervisor prints them
/// all when the partition stops.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Physical interrupts taken while the vCPU ran (its devices, its
    /// timer, kicks from other CPUs, maintenance).
    Irq = 0,
    /// Trapped writes of ICC_SGI1R_EL1 (or ICC_ASGI1R/SGI0R): one per SGI sent.
    SgiTrap = 1,
    /// HVC calls (Bulkhead's and PSCI).
    Hvc = 2,
    /// Trapped SMC calls (PSCI over SMC).
    Smc = 3,
    /// Stage-2 data aborts: emulated device accesses (virtual GIC, PL011).
    DataAbort = 4,
    /// Other trapped system-register accesses.
    SysReg = 5,
    /// Anything else.
    Other = 6,
    /// SGI targets outside the sender's partition, refused (not an exit).
    SgiRefused = 7,
    /// Accesses to guest addresses with nothing behind them, data or
    /// instruction fetch, answered with a synchronous external abort as
    /// hardware would (not an exit of its own: the abort is counted as a
    /// data abort or as other).
    ExternalAbort = 8,
    /// Doorbell rings of a channel the partition does not have, refused
    /// (through its doorbell page or the DOORBELL call; not an exit).
    DoorbellRefused = 9,
}

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 10] = [
        Counter::Irq,
        Counter::SgiTrap,
        Counter::Hvc,
        Counter::Smc,
        Counter::DataAbort,
        Counter::SysReg,
        Counter::Other,
        Counter::SgiRefused,
        Counter::ExternalAbort,
        Counter::DoorbellRefused,
    ];

    /// The counter with index `n`, if there is one.
    pub const fn from_index(n: u64) -> Option<Counter> {
        if n < Self::ALL.len() as u64 {
            Some(Self::ALL[n as usize])
        } else {
            None
        }
    }

    /// Short name, as the stop report prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Irq => "irq",
            Counter::SgiTrap => "sgi-trap",
            Counter::Hvc => "hvc",
            Counter::Smc => "smc",
            Counter::DataAbort => "data-abort",
            Counter::SysReg => "sysreg",
            Counter::Other => "other",
            Counter::SgiRefused => "sgi-refused",
            Counter::ExternalAbort => "external-abort",
            Counter::DoorbellRefused => "doorbell-refused",
        }
    }
}

/// `x1` of a successful [`call::VERSION`]: "BULKHEAD" in ASCII, little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"BULKHEAD");
/// `x2` of a successful [`call::VERSION`]: bumped on any incompatible change
/// (2: the control page's layout version 2, a byte per vCPU).
pub const ABI_VERSION: u64 = 2;
/// Most bytes one [`call::CONSOLE_WRITE`] carries (six registers of eight).
pub const CONSOLE_WRITE_MAX: usize = 48;

/// The limits every side of Bulkhead sizes itself by, in one place: the
/// hypervisor's tables and stacks, guest-lib's per-CPU stacks, and the
/// configuration tool (bulkhead-config), which rejects a board or
/// partition set beyond them with an error naming the file, partition and
/// field. The generated configuration asserts them again at compile time.
pub mod limits {
    /// Most physical CPUs a board may have: the hypervisor keeps an EL2
    /// stack and a per-CPU block for each.
    pub const MAX_CPUS: usize = 8;
    /// Most vCPUs one partition may have: one byte each in the control
    /// page's 64-bit flag and pending words ([`super::control::VCPUS`]),
    /// one stack each in guest-lib.
    pub const MAX_VCPUS: usize = 8;
    /// Most SPIs one partition may own (its virtual GIC's SPI table).
    pub const MAX_PARTITION_SPIS: usize = 32;

    const _: () = assert!(MAX_VCPUS <= super::control::VCPUS && MAX_VCPUS <= MAX_CPUS);
}

/// Status returned in `x0`. Zero is success; the negative values are those
/// SMCCC and PSCI use, so one decoder serves every call.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The call did what was asked.
    Success = 0,
    /// No such call (SMCCC `NOT_SUPPORTED`).
    NotSupported = -1,
    /// An argument was out of range.
    InvalidParameters = -2,
    /// The caller may not do this.
    Denied = -3,
    /// PSCI: the target vCPU is already on.
    AlreadyOn = -4,
    /// PSCI: a CPU_ON for the target vCPU is still being carried out.
    OnPending = -5,
    /// PSCI: CPU_ON's entry point is not in the partition's memory.
    InvalidAddress = -9,
}

impl Status {
    /// The value as a guest reads it from `x0`.
    pub const fn as_reg(self) -> u64 {
        self as i64 as u64
    }

    /// Decodes `x0` after a call; `None` for a value no call returns.
    pub const fn from_reg(x0: u64) -> Option<Status> {
        match x0 as i64 {
            0 => Some(Status::Success),
            -1 => Some(Status::NotSupported),
            -2 => Some(Status::InvalidParameters),
            -3 => Some(Status::Denied),
            -4 => Some(Status::AlreadyOn),
            -5 => Some(Status::OnPending),
            -9 => Some(Status::InvalidAddress),
            _ => None,
        }
    }
}

/// Function ids of the PSCI 1.1 calls (Arm DEN 0022) that Bulkhead emulates
/// for its partitions, and the SMCCC calls beside them.
///
/// Ids with bit 30 clear use the SMC32/HVC32 convention (arguments in
/// `w1..w3`), the `_64` ids SMC64/HVC64 (`x1..x3`). Errors come back as
/// [`Status`] values in `x0`.
pub mod psci {
    /// `PSCI_VERSION`: returns the implemented PSCI version, major in bits
    /// 31:16 and minor in 15:0 ([`VERSION_1_1`] from Bulkhead).
    pub const PSCI_VERSION: u64 = 0x8400_0000;
    /// `CPU_SUSPEND`, SMC32: `x1` = power_state, `x2` = entry point (used
    /// for a powerdown state), `x3` = context id. Bulkhead meets every
    /// valid request as a standby that wakes at once and returns `SUCCESS`.
    pub const CPU_SUSPEND_32: u64 = 0x8400_0001;
    /// `CPU_SUSPEND`, SMC64: as [`CPU_SUSPEND_32`] with 64-bit arguments.
    pub const CPU_SUSPEND_64: u64 = 0xC400_0001;
    /// `CPU_OFF`: powers the calling (v)CPU off. It does not return: a
    /// later `CPU_ON` starts it afresh at that call's entry point.
    pub const CPU_OFF: u64 = 0x8400_0002;
    /// `CPU_ON`, SMC32: `x1` = target MPIDR (affinity fields), `x2` =
    /// entry point, `x3` = context id, which the target finds in `x0`.
    /// Fails with `INVALID_PARAMETERS` for a vCPU not in the partition,
    /// `INVALID_ADDRESS` for an entry outside its memory, and `ALREADY_ON`
    /// for a vCPU that is on or already being started (as KVM and QEMU
    /// answer; `AFFINITY_INFO` tells the two apart).
    pub const CPU_ON_32: u64 = 0x8400_0003;
    /// `CPU_ON`, SMC64: as [`CPU_ON_32`] with 64-bit arguments.
    pub const CPU_ON_64: u64 = 0xC400_0003;
    /// `AFFINITY_INFO`, SMC32: `x1` = target affinity, `x2` = lowest
    /// affinity level (Bulkhead accepts only 0, one vCPU). Returns
    /// [`AFFINITY_ON`], [`AFFINITY_OFF`] or [`AFFINITY_ON_PENDING`].
    pub const AFFINITY_INFO_32: u64 = 0x8400_0004;
    /// `AFFINITY_INFO`, SMC64: as [`AFFINITY_INFO_32`] with a 64-bit affinity.
    pub const AFFINITY_INFO_64: u64 = 0xC400_0004;
    /// `MIGRATE_INFO_TYPE`: whether a trusted OS needs migrating; Bulkhead
    /// returns [`TOS_NOT_PRESENT`].
    pub const MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
    /// `SYSTEM_OFF`: under Bulkhead, stops the calling partition (and only
    /// it); does not return.
    pub const SYSTEM_OFF: u64 = 0x8400_0008;
    /// `SYSTEM_RESET`: under Bulkhead, stops the calling partition as
    /// [`SYSTEM_OFF`] does (partitions are not restarted); does not return.
    pub const SYSTEM_RESET: u64 = 0x8400_0009;
    /// `PSCI_FEATURES`: `x1` = a PSCI or SMCCC function id. Returns
    /// `NOT_SUPPORTED`, or the call's feature flags if it is implemented
    /// (0 from Bulkhead for every call).
    pub const PSCI_FEATURES: u64 = 0x8400_000A;
    /// `SMCCC_VERSION` (Arm DEN 0028): returns the SMCCC version in the
    /// same encoding as PSCI's ([`SMCCC_1_1`] from Bulkhead).
    pub const SMCCC_VERSION: u64 = 0x8000_0000;
    /// `SMCCC_ARCH_FEATURES` (Arm DEN 0028): `x1` = an architecture call
    /// id. Bulkhead answers 0 for `SMCCC_VERSION` and `SMCCC_ARCH_FEATURES`
    /// and `NOT_SUPPORTED` for the rest: it has no workarounds to report.
    pub const SMCCC_ARCH_FEATURES: u64 = 0x8000_0001;

    /// PSCI 1.1 in `PSCI_VERSION`'s encoding (major << 16 | minor).
    pub const VERSION_1_1: u64 = 0x0001_0001;
    /// SMCCC 1.1.
    pub const SMCCC_1_1: u64 = 0x0001_0001;
    /// `MIGRATE_INFO_TYPE`: no trusted OS, nothing to migrate.
    pub const TOS_NOT_PRESENT: u64 = 2;
    /// `AFFINITY_INFO` result: the target is on.
    pub const AFFINITY_ON: u64 = 0;
    /// `AFFINITY_INFO` result: the target is off.
    pub const AFFINITY_OFF: u64 = 1;
    /// `AFFINITY_INFO` result: a `CPU_ON` for the target is being carried out.
    pub const AFFINITY_ON_PENDING: u64 = 2;
}

/// Packs up to [`CONSOLE_WRITE_MAX`] bytes into the six argument registers of
/// [`call::CONSOLE_WRITE`]. Returns the registers and how many bytes they hold.
pub fn pack_console(bytes: &[u8]) -> ([u64; 6], usize) {
    let n = bytes.len().min(CONSOLE_WRITE_MAX);
    let mut regs = [0u64; 6];
    for (i, b) in bytes[..n].iter().enumerate() {
        regs[i / 8] |= (*b as u64) << ((i % 8) * 8);
    }
    (regs, n)
}

/// The inverse of [`pack_console`]: the `len` bytes held in `regs`.
/// `len` beyond [`CONSOLE_WRITE_MAX`] is the caller's error to reject.
pub fn unpack_console(regs: &[u64; 6], len: usize) -> impl Iterator<Item = u8> + '_ {
    (0..len.min(CONSOLE_WRITE_MAX)).map(move |i| (regs[i / 8] >> ((i % 8) * 8)) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_packing_round_trips() {
        let text = b"partition alpha: heartbeat 12345678901234567890 over forty-eight";
        let (regs, n) = pack_console(text);
        assert_eq!(n, CONSOLE_WRITE_MAX);
        let back: Vec<u8> = unpack_console(&regs, n).collect();
        assert_eq!(&back[..], &text[..CONSOLE_WRITE_MAX]);
        let (regs, n) = pack_console(b"hi\n");
        assert_eq!((regs[0], n), (0x0a_69_68, 3));
    }

    #[test]
    fn status_round_trips_and_ids_are_in_vendor_hyp_range() {
        for s in [
            Status::Success,
            Status::NotSupported,
            Status::InvalidParameters,
            Status::Denied,
            Status::AlreadyOn,
            Status::OnPending,
            Status::InvalidAddress,
        ] {
            assert_eq!(Status::from_reg(s.as_reg()), Some(s));
        }
        assert_eq!(Status::from_reg(7), None);
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(Counter::from_index(i as u64), Some(*c));
            assert_eq!(*c as u64, i as u64);
        }
        assert_eq!(Counter::from_index(Counter::ALL.len() as u64), None);
        assert_eq!((call::CONSOLE_WRITE >> 24) & 0x3f, 6);
        assert_eq!(MAGIC.to_le_bytes(), *b"BULKHEAD");
    }
}
