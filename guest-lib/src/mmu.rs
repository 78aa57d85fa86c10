//! The EL1 stage-1 identity map, turned on by `boot.S` on every CPU before
//! any Rust runs.
//!
//! Why at all: with the MMU off every data access is Device-nGnRnE, where
//! exclusive loads/stores (the atomics in `console`, `irq`, `timer`) are not
//! guaranteed to work on real hardware, and unaligned accesses fault. One
//! level-1 table of 1 GiB blocks is the smallest map that fixes this:
//! `[0, 1 GiB)` Device (QEMU virt's and a partition's devices) and
//! `[1 GiB, 2 GiB)` Normal write-back (RAM; guests are linked at 1 GiB).
//! Nothing else is mapped, so a stray pointer faults.

/// MAIR_EL1 attribute index of Device-nGnRnE memory.
const ATTR_DEVICE: u64 = 0;
/// MAIR_EL1 attribute index of Normal memory, inner and outer write-back.
const ATTR_NORMAL: u64 = 1;

/// MAIR_EL1: attribute 0 = 0x00 (Device-nGnRnE), attribute 1 = 0xFF (Normal,
/// inner/outer write-back non-transient, read- and write-allocate).
pub(crate) const MAIR_EL1: u64 = (0x00 << (8 * ATTR_DEVICE)) | (0xFF << (8 * ATTR_NORMAL));

/// TCR_EL1.T0SZ = 32: a 4 GiB (32-bit) input range, so a walk starts at
/// level 1 with four 1 GiB entries.
const T0SZ: u64 = 32;
/// TCR_EL1.IRGN0/ORGN0 = 0b01: table walks are write-back cacheable.
const TCR_WALK_WB: u64 = (0b01 << 8) | (0b01 << 10);
/// TCR_EL1.SH0 = 0b11: table walks are inner shareable.
const TCR_SH0_INNER: u64 = 0b11 << 12;
/// TCR_EL1.TG0 = 0b00: 4 KiB granule (no bits to set).
const TCR_TG0_4K: u64 = 0b00 << 14;
/// TCR_EL1.EPD1: no walks through TTBR1_EL1 (there is no upper range).
const TCR_EPD1: u64 = 1 << 23;
/// TCR_EL1 (IPS = 0: 32-bit output addresses cover everything mapped).
pub(crate) const TCR_EL1: u64 = T0SZ | TCR_WALK_WB | TCR_SH0_INNER | TCR_TG0_4K | TCR_EPD1;

/// Level-1 descriptor type: a block (bits 1:0 = 0b01).
const BLOCK: u64 = 0b01;
/// Access flag: set, so first use does not fault.
const AF: u64 = 1 << 10;
/// Shareability SH[9:8] = 0b11, inner shareable (what atomics across CPUs need).
const SH_INNER: u64 = 0b11 << 8;
/// Privileged execute-never.
const PXN: u64 = 1 << 53;
/// Unprivileged execute-never (nothing runs at EL0).
const UXN: u64 = 1 << 54;
/// AP[7:6] = 0b00: read/write at EL1, no EL0 access (no bits to set).
const AP_EL1_RW: u64 = 0b00 << 6;

/// `[0, 1 GiB)`: Device-nGnRnE, never executable.
pub(crate) const DEVICE_BLOCK: u64 = BLOCK | (ATTR_DEVICE << 2) | AP_EL1_RW | AF | PXN | UXN;
/// `[1 GiB, 2 GiB)`: Normal write-back, inner shareable, executable at EL1.
pub(crate) const NORMAL_BLOCK: u64 =
    0x4000_0000 | BLOCK | (ATTR_NORMAL << 2) | AP_EL1_RW | SH_INNER | AF | UXN;

/// SCTLR_EL1 bits that are RES1 in ARMv8.0 (EOS, TSCXT, EIS, SPAN, nTLSMD,
/// LSMAOE: 11, 20, 22, 23, 28, 29); with everything else 0 this is the MMU
/// off, caches off, little-endian state the EL2 drop starts EL1 in.
pub(crate) const SCTLR_EL1_MMU_OFF: u64 =
    (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
/// SCTLR_EL1.M (MMU), .C (data cache), .I (instruction cache).
pub(crate) const SCTLR_EL1_MMU_ON: u64 = SCTLR_EL1_MMU_OFF | (1 << 0) | (1 << 2) | (1 << 12);

const _: () = assert!(DEVICE_BLOCK == 0x0060_0000_0000_0401);
const _: () = assert!(NORMAL_BLOCK == 0x0040_0000_4000_0705);
