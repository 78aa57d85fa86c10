//! Board description types the configuration tool checks and the
//! hypervisor runs on.
//!
//! The configuration tool (bulkhead-config) builds these from a board file
//! and, once it has checked them, writes them into the Rust source the
//! hypervisor is built with; the hypervisor's `config` module re-exports
//! them. One definition serves both, so the checked board and the board the
//! hypervisor sees cannot drift apart. Guests have no use for them.

/// The board's interrupt controller: where its register frames are, and its
/// maintenance interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicConfig {
    /// GICv3: a distributor and one redistributor per CPU.
    V3 {
        /// Physical base of the distributor (GICD).
        distributor: u64,
        /// Physical base of CPU 0's redistributor (GICR); CPU n's is
        /// `redistributor + n * 0x20000` (its RD_base and SGI_base frames).
        redistributor: u64,
        /// INTID of the GIC maintenance interrupt (a PPI).
        maintenance_intid: u32,
    },
    /// GICv2 with the virtualization extensions.
    V2 {
        /// Physical base of the distributor (GICD).
        distributor: u64,
        /// Physical base of the CPU interface (GICC).
        cpu_interface: u64,
        /// Physical base of the virtual interface control (GICH).
        hyp_interface: u64,
        /// Physical base of the virtual CPU interface (GICV).
        virtual_cpu_interface: u64,
        /// INTID of the GIC maintenance interrupt (a PPI).
        maintenance_intid: u32,
    },
}

impl GicConfig {
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
