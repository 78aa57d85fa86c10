//! Board description types the configuration tool checks and the
//! hypervisor runs on.
//!
//! The configuration tool (bulkhead-config) builds these from a board file
//! and, once it has checked them, writes them into the Rust source the
//! hypervisor is built with; the hypervisor's `config` module re-exports
//! them. One definition serves both, so the checked board and the board the
//! hypervisor sees cannot drift apart. Guests have no use for them.
//!
//! Addresses are typed by the space they belong to: [`PhysAddr`] for the
//! machine's, [`Ipa`] for a partition's guest-physical one. Both are a
//! `u64` and nothing more (`#[repr(transparent)]`, every method `const` and
//! inlined), so typing an address costs nothing at run time.

use core::fmt;

/// The interrupt of a partition's emulated PL011 (`console_pl011`): SPI 1,
/// where QEMU virt puts its UART, so guests written for that machine need
/// no change. Purely virtual: the hypervisor raises it from its model.
pub const CONSOLE_PL011_INTID: u32 = 33;

/// Defines an address type: a `u64` newtype with the few operations
/// addresses need, shown in hex.
macro_rules! address {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            /// The address as a number.
            #[inline(always)]
            pub const fn as_u64(self) -> u64 {
                self.0
            }

            /// The address `bytes` further on, or `None` past the top of
            /// the address space.
            #[inline(always)]
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }

            /// How many bytes past `base` this address is, or `None` when
            /// it is below `base`.
            #[inline(always)]
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// Whether the address is a multiple of `align`, a power of two.
            #[inline(always)]
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
        }

        impl From<$name> for u64 {
            #[inline(always)]
            fn from(a: $name) -> u64 {
                a.0
            }
        }

        /// In hex with its `0x`, as every message shows an address.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address! {
    /// A machine physical address: where RAM and devices really are, what
    /// the hypervisor's own map and the output side of stage 2 hold.
    PhysAddr
}

address! {
    /// An intermediate physical address: a partition's guest-physical
    /// address, what its guest believes is physical and stage 2 translates.
    Ipa
}

/// The board's interrupt controller: where its register frames are, and its
/// maintenance interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicConfig {
    /// GICv3: a distributor and one redistributor per CPU.
    V3 {
        /// Physical base of the distributor (GICD).
        distributor: PhysAddr,
        /// Physical base of CPU 0's redistributor (GICR); CPU n's is
        /// `redistributor + n * 0x20000` (its RD_base and SGI_base frames).
        redistributor: PhysAddr,
        /// INTID of the GIC maintenance interrupt (a PPI).
        maintenance_intid: u32,
    },
    /// GICv2 with the virtualization extensions.
    V2 {
        /// Physical base of the distributor (GICD).
        distributor: PhysAddr,
        /// Physical base of the CPU interface (GICC).
        cpu_interface: PhysAddr,
        /// Physical base of the virtual interface control (GICH).
        hyp_interface: PhysAddr,
        /// Physical base of the virtual CPU interface (GICV).
        virtual_cpu_interface: PhysAddr,
        /// Physical base of the per-CPU aliases of GICH, where the GIC has
        /// them (the GIC-400: GICH + 0x1000, CPU n's 0x200 bytes at
        /// + n * 0x200): any CPU reaches any CPU's list registers there.
        hyp_interface_aliases: Option<PhysAddr>,
        /// INTID of the GIC maintenance interrupt (a PPI).
        maintenance_intid: u32,
    },
}

/// Where every partition on a GICv2 board sees its distributor: QEMU
/// virt's address, whatever the board's (the Raspberry Pi 4's GIC-400 is
/// at 0xFF84_1000). A partition's GIC is virtual (the distributor emulated,
/// the CPU interface the GICV frame mapped by stage 2), so its address is
/// the hypervisor's choice: one for all GICv2 boards, and a guest built
/// for one runs on another unchanged, as with its RAM and console IPAs.
pub const GUEST_GICV2_DISTRIBUTOR: Ipa = Ipa(0x0800_0000);
/// Where every partition on a GICv2 board sees its CPU interface (the
/// board's GICV frame): QEMU virt's GICC address.
pub const GUEST_GICV2_CPU_INTERFACE: Ipa = Ipa(0x0801_0000);

impl GicConfig {
    /// Where a partition sees the distributor: the board's address on a
    /// GICv3, [`GUEST_GICV2_DISTRIBUTOR`] on a GICv2.
    pub const fn guest_distributor(&self) -> Ipa {
        match *self {
            GicConfig::V3 { distributor, .. } => Ipa(distributor.0),
            GicConfig::V2 { .. } => GUEST_GICV2_DISTRIBUTOR,
        }
    }

    /// The GIC architecture version: 2 or 3, as a board file's
    /// `gic.version` writes it.
    pub const fn version(&self) -> u32 {
        match self {
            GicConfig::V3 { .. } => 3,
            GicConfig::V2 { .. } => 2,
        }
    }

    /// INTID of the GIC maintenance interrupt (a PPI), either version's.
    pub const fn maintenance_intid(&self) -> u32 {
        match *self {
            GicConfig::V3 {
                maintenance_intid, ..
            }
            | GicConfig::V2 {
                maintenance_intid, ..
            } => maintenance_intid,
        }
    }
}

/// What a partition's fault does (a partition set's `on_fault`): an
/// exception the hypervisor cannot give back to the guest (an SError, an
/// unknown trap, AArch32 at EL1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFault {
    /// The partition stops and is reported (the default).
    #[default]
    Stop,
    /// The partition is reported and restarts as after PSCI SYSTEM_RESET.
    Restart,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_add_subtract_and_show_as_hex() {
        let a = PhysAddr(0x4000_0000);
        assert_eq!(a.checked_add(0x1000), Some(PhysAddr(0x4000_1000)));
        assert_eq!(PhysAddr(u64::MAX).checked_add(1), None);
        assert_eq!(PhysAddr(0x4000_1234).offset_from(a), Some(0x1234));
        assert_eq!(a.offset_from(PhysAddr(0x4000_0001)), None);
        assert!(a.is_aligned(0x4000_0000) && !Ipa(0x1800).is_aligned(0x1000));
        assert_eq!(u64::from(Ipa(7)), 7);
        assert_eq!(Ipa(0x900_0000).to_string(), "0x9000000");
        assert_eq!(core::mem::size_of::<Ipa>(), 8);
    }
}
