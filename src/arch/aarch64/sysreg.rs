//! The system registers `aarch64-cpu` lacks, typed in its style: the
//! fields as a tock-registers `register_bitfields!`, and a unit struct per
//! register implementing `Readable` (`mrs`) and/or `Writeable` (`msr`), with
//! a constant of the register's name. Every other system register the
//! hypervisor reads or writes is `aarch64_cpu::registers`'s.
//!
//! Ours, because `aarch64-cpu` 11 has no definition of them:
//! - the GICv3 CPU interface the hypervisor itself uses: ICC_PMR_EL1,
//!   ICC_BPR1_EL1, ICC_IGRPEN1_EL1, ICC_IAR1_EL1, ICC_EOIR1_EL1,
//!   ICC_DIR_EL1, ICC_SGI1R_EL1, and ICC_CTLR_EL1 (the crate's is read-only
//!   and names only ExtRange: the hypervisor writes EOImode);
//! - ICH_ELRSR_EL2, the empty list registers (the crate has the other ICH_*
//!   registers);
//! - CNTHP_TVAL_EL2 (the crate has CNTHP_CTL_EL2 only), VPIDR_EL2,
//!   PMCR_EL0, DCZID_EL0 and CTR_EL0;
//! - the fields of a data abort's ISS in ESR_ELx (the crate's ESR_EL1 has
//!   the ISS as one field);
//! - ICH_HCR_EL2.TALL1 (the crate's ICH_HCR_EL2 names no trap bit);
//! - ID_AA64PFR0_EL1.GIC (the crate's ID_AA64PFR0_EL1 names no GIC field).
//!
//! Only the fields the hypervisor uses are named. Each access is the one
//! `mrs`/`msr` instruction, inlined: a `write` of constant fields is one
//! `msr` of a constant, as the raw literal was.

use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::{RegisterLongName, register_bitfields};

use super::{mrs, msr};

/// `a + b + ...` of one register's field values, in a `const` (tock-registers'
/// `+` is not a `const fn`).
pub const fn fields<R: RegisterLongName>(values: &[FieldValue<u64, R>]) -> FieldValue<u64, R> {
    let (mut mask, mut value, mut i) = (0, 0, 0);
    while i < values.len() {
        mask |= values[i].mask();
        value |= values[i].value;
        i += 1;
    }
    FieldValue::<u64, R>::new(mask, 0, value)
}

/// Bits of register `R` that `aarch64-cpu` does not name (RES1 bits), set,
/// as a field value to add to the named ones.
pub const fn unnamed_bits_set<R: RegisterLongName>(bits: u64) -> FieldValue<u64, R> {
    FieldValue::<u64, R>::new(bits, 0, bits)
}

/// Defines register `$name` as `aarch64-cpu` does: a unit struct `$ty`, a
/// constant `$name` of it, `Readable` with `mrs` and/or `Writeable` with
/// `msr` of the assembler's name `$asm`, its fields the `register_bitfields!`
/// register `$fields` (`()` for none).
macro_rules! sysreg {
    ($(#[$doc:meta])* $name:ident: $ty:ident = $asm:literal, $fields:ty, $($access:ident),+) => {
        $(#[$doc])*
        pub struct $ty;
        $(#[$doc])*
        pub const $name: $ty = $ty;
        $(sysreg!(@$access $ty, $asm, $fields);)+
    };
    (@read $ty:ident, $asm:literal, $fields:ty) => {
        impl Readable for $ty {
            type T = u64;
            type R = $fields;
            #[inline(always)]
            fn get(&self) -> u64 {
                mrs!($asm)
            }
        }
    };
    (@write $ty:ident, $asm:literal, $fields:ty) => {
        impl Writeable for $ty {
            type T = u64;
            type R = $fields;
            #[inline(always)]
            fn set(&self, value: u64) {
                msr!($asm, value)
            }
        }
    };
}

register_bitfields! {u64,
    /// Interrupt Controller Interrupt Priority Mask Register.
    pub ICC_PMR_EL1 [
        /// Only interrupts of a higher priority (a lower value) are signalled.
        Priority OFFSET(0) NUMBITS(8) [],
    ],
    /// Interrupt Controller Binary Point Register 1.
    pub ICC_BPR1_EL1 [
        /// The split of group-1 priorities into group priority (preemption)
        /// and subpriority.
        BinaryPoint OFFSET(0) NUMBITS(3) [],
    ],
    /// Interrupt Controller Control Register (EL1).
    pub ICC_CTLR_EL1 [
        /// Whether a write to ICC_EOIR1_EL1 also deactivates the interrupt.
        EOImode OFFSET(1) NUMBITS(1) [
            /// ICC_EOIR1_EL1 drops the priority and deactivates.
            DropAndDeactivate = 0,
            /// ICC_EOIR1_EL1 only drops the priority; ICC_DIR_EL1 deactivates.
            DropOnly = 1,
        ],
        /// Whether ICC_BPR0_EL1 also sets the group-1 binary point.
        CBPR OFFSET(0) NUMBITS(1) [],
    ],
    /// Interrupt Controller Interrupt Group 1 Enable register.
    pub ICC_IGRPEN1_EL1 [
        Enable OFFSET(0) NUMBITS(1) [],
    ],
    /// The fields of the registers that hold one INTID: ICC_IAR1_EL1 (the
    /// acknowledged interrupt, 1023 when none is pending), ICC_EOIR1_EL1
    /// (priority drop) and ICC_DIR_EL1 (deactivation).
    pub ICC_INTID [
        INTID OFFSET(0) NUMBITS(24) [],
    ],
    /// Interrupt Controller Software Generated Interrupt Group 1 Register.
    pub ICC_SGI1R_EL1 [
        /// Aff3 of the targets.
        Aff3 OFFSET(48) NUMBITS(8) [],
        /// Which block of 16 Aff0 values TargetList covers.
        RS OFFSET(44) NUMBITS(4) [],
        /// Interrupt Routing Mode: every PE but the sender (1), or the targets (0).
        IRM OFFSET(40) NUMBITS(1) [],
        /// Aff2 of the targets.
        Aff2 OFFSET(32) NUMBITS(8) [],
        /// The SGI.
        INTID OFFSET(24) NUMBITS(4) [],
        /// Aff1 of the targets.
        Aff1 OFFSET(16) NUMBITS(8) [],
        /// One bit per target Aff0 value (in the RS block).
        TargetList OFFSET(0) NUMBITS(16) [],
    ],
    /// Performance Monitors Control Register.
    pub PMCR_EL0 [
        /// The number of event counters.
        N OFFSET(11) NUMBITS(5) [],
    ],
    /// AArch64 Processor Feature Register 0: only the field the crate's
    /// definition lacks.
    pub ID_AA64PFR0_EL1 [
        /// The GIC CPU interface system registers (ICC_*, ICH_*).
        GIC OFFSET(24) NUMBITS(4) [
            /// None: a GICv2, memory-mapped only (or none at all).
            NotImplemented = 0,
            /// GICv3 and GICv4.0's.
            V3 = 1,
            /// GICv4.1's.
            V4_1 = 3,
        ],
    ],
    /// Data Cache Zero ID register.
    pub DCZID_EL0 [
        /// DC ZVA is prohibited (1).
        DZP OFFSET(4) NUMBITS(1) [],
        /// Log2 of the DC ZVA block size in words.
        BS OFFSET(0) NUMBITS(4) [],
    ],
    /// ESR_ELx.ISS of a data abort.
    pub ISS_DATA_ABORT [
        /// Write not Read: the access was a write.
        WnR OFFSET(6) NUMBITS(1) [],
        /// Data Fault Status Code.
        DFSC OFFSET(0) NUMBITS(6) [
            SynchronousExternalAbort = 0b01_0000,
        ],
    ],
    /// The ISS of an instruction abort (ESR_ELx.EC 0x20/0x21).
    pub ISS_INSTRUCTION_ABORT [
        /// Instruction Fault Status Code.
        IFSC OFFSET(0) NUMBITS(6) [
            SynchronousExternalAbort = 0b01_0000,
        ],
    ],
    /// Cache Type Register.
    pub CTR_EL0 [
        /// Log2 of the smallest data cache line, in words.
        DminLine OFFSET(16) NUMBITS(4) [],
    ],
}

sysreg!(ICC_PMR_EL1: IccPmrEl1 = "icc_pmr_el1", ICC_PMR_EL1::Register, write);
sysreg!(ICC_BPR1_EL1: IccBpr1El1 = "icc_bpr1_el1", ICC_BPR1_EL1::Register, write);
sysreg!(ICC_CTLR_EL1: IccCtlrEl1 = "icc_ctlr_el1", ICC_CTLR_EL1::Register, write);
sysreg!(ICC_IGRPEN1_EL1: IccIgrpen1El1 = "icc_igrpen1_el1", ICC_IGRPEN1_EL1::Register, write);
sysreg!(
    /// Interrupt Controller Interrupt Acknowledge Register 1.
    ICC_IAR1_EL1: IccIar1El1 = "icc_iar1_el1", ICC_INTID::Register, read
);
sysreg!(
    /// Interrupt Controller End Of Interrupt Register 1.
    ICC_EOIR1_EL1: IccEoir1El1 = "icc_eoir1_el1", ICC_INTID::Register, write
);
sysreg!(
    /// Interrupt Controller Deactivate Interrupt Register.
    ICC_DIR_EL1: IccDirEl1 = "icc_dir_el1", ICC_INTID::Register, write
);
sysreg!(ICC_SGI1R_EL1: IccSgi1rEl1 = "icc_sgi1r_el1", ICC_SGI1R_EL1::Register, write);
sysreg!(
    /// ID_AA64PFR0_EL1 with its GIC field (see `ID_AA64PFR0_EL1` fields).
    ID_AA64PFR0_EL1: IdAa64pfr0El1 = "id_aa64pfr0_el1", ID_AA64PFR0_EL1::Register, read
);
sysreg!(
    /// Interrupt Controller Empty List Register Status Register: bit n set
    /// when list register n holds no interrupt.
    ICH_ELRSR_EL2: IchElrsrEl2 = "ich_elrsr_el2", (), read
);
sysreg!(
    /// Counter-timer Hypervisor Physical Timer TimerValue: ticks until the
    /// EL2 physical timer fires.
    CNTHP_TVAL_EL2: CnthpTvalEl2 = "cnthp_tval_el2", (), write
);
sysreg!(
    /// Virtualization Processor ID Register: what the guest reads as MIDR_EL1.
    VPIDR_EL2: VpidrEl2 = "vpidr_el2", (), write
);
sysreg!(PMCR_EL0: PmcrEl0 = "pmcr_el0", PMCR_EL0::Register, read);
sysreg!(DCZID_EL0: DczidEl0 = "dczid_el0", DCZID_EL0::Register, read);
sysreg!(CTR_EL0: CtrEl0 = "ctr_el0", CTR_EL0::Register, read);

/// ICH_HCR_EL2.TALL1 [12]: the guest's (EL1's) accesses to its group-1
/// CPU interface registers (ICV_IAR1, EOIR1, HPPIR1, BPR1, AP1R<n>,
/// IGRPEN1) trap to EL2.
pub const ICH_HCR_EL2_TALL1: u64 = 1 << 12;
