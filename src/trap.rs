//! Decoding of guest exits: ESR_EL2 (and the fault address registers) into an
//! [`Exit`] the handlers match on. Pure: the arch layer reads the registers,
//! this module only interprets the bits (Arm ARM D19.2.37, ESR_EL2).
#![forbid(unsafe_code)]

use crate::mm::Ipa;

/// Exception classes Bulkhead handles (ESR_EL2.EC).
pub mod ec {
    pub const UNKNOWN: u8 = 0x00;
    pub const WFX: u8 = 0x01;
    pub const HVC64: u8 = 0x16;
    pub const SMC64: u8 = 0x17;
    pub const SYSREG: u8 = 0x18;
    pub const IABT_LOWER: u8 = 0x20;
    pub const DABT_LOWER: u8 = 0x24;
}

/// A stage-2 data abort, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// The faulting guest address.
    pub ipa: Ipa,
    /// ISV: the syndrome describes the access (an ordinary load or store of
    /// one register). Without it the access cannot be emulated.
    pub valid: bool,
    pub write: bool,
    /// Access size in bytes: 1, 2, 4 or 8 (meaningful when `valid`).
    pub size: u8,
    /// The transfer register (31 = xzr/wzr).
    pub reg: u8,
    /// A load sign-extends to the register width.
    pub sign_extend: bool,
    /// The register is 64 bits wide (otherwise 32, upper half zeroed).
    pub wide: bool,
    /// Data fault status code (translation, permission, ...).
    pub dfsc: u8,
}

/// A trapped MSR/MRS (EC 0x18), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// The register, as [`sysreg`] encodes it: op0, op1, CRn, CRm, op2.
    pub reg: u32,
    /// The general-purpose register (31 = xzr).
    pub rt: u8,
    /// MRS (a read); otherwise MSR (a write).
    pub read: bool,
}

/// Encodes a system register the way [`SysRegAccess::reg`] holds it.
pub const fn sysreg(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
}

/// Why a guest left EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// HVC #imm; ELR already points past it.
    Hvc {
        imm: u16,
    },
    /// SMC #imm, trapped by HCR_EL2.TSC; ELR points at it.
    Smc {
        imm: u16,
    },
    SysReg(SysRegAccess),
    DataAbort(DataAbort),
    /// A stage-2 instruction abort: the guest jumped outside its memory.
    InstructionAbort {
        ipa: Ipa,
    },
    /// Any other class; reported, never guessed at.
    Other {
        ec: u8,
    },
}

/// The exception class of `esr` (ESR_EL2.EC): which exit to decode.
#[inline(always)]
fn class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The faulting IPA of a stage-2 abort: HPFAR_EL2.FIPA holds IPA[51:12] in
/// bits [43:4]; FAR gives the page offset.
#[inline(always)]
fn abort_ipa(far: u64, hpfar: u64) -> Ipa {
    Ipa(((hpfar & 0x0fff_ffff_fff0) << 8) | (far & 0xfff))
}

impl Exit {
    /// Decodes one exit. `far` is FAR_EL2, `hpfar` is HPFAR_EL2 (both only
    /// meaningful for aborts).
    pub fn decode(esr: u64, far: u64, hpfar: u64) -> Exit {
        let ec = class(esr);
        let iss = esr & 0x1ff_ffff;
        match ec {
            ec::HVC64 => Exit::Hvc { imm: iss as u16 },
            ec::SMC64 => Exit::Smc { imm: iss as u16 },
            ec::SYSREG => {
                let op0 = ((iss >> 20) & 3) as u32;
                let op2 = ((iss >> 17) & 7) as u32;
                let op1 = ((iss >> 14) & 7) as u32;
                let crn = ((iss >> 10) & 0xf) as u32;
                let crm = ((iss >> 1) & 0xf) as u32;
                Exit::SysReg(SysRegAccess {
                    reg: sysreg(op0, op1, crn, crm, op2),
                    rt: ((iss >> 5) & 0x1f) as u8,
                    read: iss & 1 == 1,
                })
            }
            ec::DABT_LOWER => Exit::DataAbort(DataAbort::decode(esr, far, hpfar)),
            ec::IABT_LOWER => Exit::InstructionAbort {
                ipa: abort_ipa(far, hpfar),
            },
            _ => Exit::Other { ec },
        }
    }
}

impl DataAbort {
    /// Decodes the ISS of a stage-2 data abort (EC 0x24, which the caller
    /// has seen: [`Exit::decode`] for any exit) with its fault addresses.
    #[inline(always)]
    pub fn decode(esr: u64, far: u64, hpfar: u64) -> DataAbort {
        let iss = esr & 0x1ff_ffff;
        DataAbort {
            ipa: abort_ipa(far, hpfar),
            valid: iss & (1 << 24) != 0,
            write: iss & (1 << 6) != 0,
            size: 1 << ((iss >> 22) & 3),
            reg: ((iss >> 16) & 0x1f) as u8,
            sign_extend: iss & (1 << 21) != 0,
            wide: iss & (1 << 15) != 0,
            dfsc: (iss & 0x3f) as u8,
        }
    }

    /// The value a load of `raw` (already the `size` bytes read) leaves in
    /// the destination register, with the sign extension and width the
    /// syndrome asks for.
    pub fn load_value(&self, raw: u64) -> u64 {
        // The access's bits moved to the top of the register and back,
        // arithmetically for a sign extension: 64 - 8 * size, 0 for 8
        // bytes (and never out of range, whatever `size` holds).
        let shift = (u32::from(self.size) * 8).wrapping_neg() & 63;
        let value = if self.sign_extend {
            (((raw << shift) as i64) >> shift) as u64
        } else {
            (raw << shift) >> shift
        };
        if self.wide {
            value
        } else {
            value & 0xffff_ffff
        }
    }

    /// A permission fault (DFSC 0b0011xx, any level): the address is
    /// mapped, without the right the access needs (a write to a shared
    /// region mapped read-only). Emulated registers are never mapped, so
    /// it is never theirs; and HPFAR_EL2, which [`Self::ipa`] comes from,
    /// need not hold the faulting IPA for it (Arm ARM: UNKNOWN for a
    /// stage-2 permission fault outside a stage-1 walk).
    pub fn permission_fault(&self) -> bool {
        self.dfsc & 0x3c == 0x0c
    }

    /// The bytes a store writes, from the source register's value.
    pub fn store_value(&self, reg_value: u64) -> u64 {
        match self.size {
            8 => reg_value,
            n => reg_value & ((1u64 << (u32::from(n) * 8)) - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_fault_at_any_level_is_told_from_a_translation_fault() {
        // str at a read-only page: DFSC 0b0011 11 (level 3); 0b0001 11 is a
        // level-3 translation fault (nothing mapped).
        let abort = |dfsc: u64| {
            let esr = (0x24u64 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 6) | dfsc;
            let Exit::DataAbort(d) = Exit::decode(esr, 0x7000_2000, 0x70_0020 << 4) else {
                panic!("a data abort");
            };
            d
        };
        for level in 0..4 {
            assert!(abort(0b00_1100 | level).permission_fault(), "level {level}");
            assert!(
                !abort(0b00_0100 | level).permission_fault(),
                "level {level}"
            );
            assert!(!abort(0b00_1000 | level).permission_fault(), "access flag");
        }
        assert!(!abort(0b01_0000).permission_fault(), "external abort");
    }

    #[test]
    fn decodes_a_word_store_to_an_unmapped_page() {
        // str w1, [x0] at IPA 0x0900_0000: EC 0x24, IL, ISV, SAS=2, SRT=1, WnR, DFSC=0x06.
        let esr = (0x24u64 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 16) | (1 << 6) | 6;
        let exit = Exit::decode(esr, 0x0900_0000, (0x0900_0000 >> 12) << 4);
        let Exit::DataAbort(d) = exit else {
            panic!("not a data abort: {exit:?}")
        };
        assert!(d.valid && d.write);
        assert_eq!((d.size, d.reg, d.dfsc), (4, 1, 6));
        assert_eq!(d.ipa, Ipa(0x0900_0000));
    }

    #[test]
    fn the_ipa_comes_from_hpfar_and_the_page_offset_from_far() {
        let esr = (0x24u64 << 26) | (1 << 24) | (3 << 22);
        // IPA 0x5400_0018: HPFAR.FIPA = IPA >> 12 in bits [43:4]; FAR is a guest VA.
        let hpfar = (0x5400_0018u64 >> 12) << 4;
        let Exit::DataAbort(d) = Exit::decode(esr, 0xffff_0000_1234_5018, hpfar) else {
            panic!()
        };
        assert_eq!(d.ipa, Ipa(0x5400_0018));
        assert_eq!(d.size, 8);
    }

    #[test]
    fn loads_are_extended_as_the_syndrome_says() {
        let mut d = DataAbort {
            ipa: Ipa(0),
            valid: true,
            write: false,
            size: 1,
            reg: 0,
            sign_extend: true,
            wide: true,
            dfsc: 6,
        };
        assert_eq!(d.load_value(0x80), 0xffff_ffff_ffff_ff80);
        d.wide = false;
        assert_eq!(d.load_value(0x80), 0xffff_ff80);
        d.sign_extend = false;
        assert_eq!(d.load_value(0x1_80), 0x80);
        d.size = 8;
        d.wide = true;
        assert_eq!(d.load_value(u64::MAX), u64::MAX);
        assert_eq!(d.store_value(0x1234_5678_9abc_def0), 0x1234_5678_9abc_def0);
        d.size = 2;
        assert_eq!(d.store_value(0x1234_5678_9abc_def0), 0xdef0);
    }

    #[test]
    fn decodes_calls_and_system_registers() {
        assert_eq!(Exit::decode((0x16 << 26) | 7, 0, 0), Exit::Hvc { imm: 7 });
        assert_eq!(Exit::decode(0x17 << 26, 0, 0), Exit::Smc { imm: 0 });
        // MSR ICC_SGI1R_EL1, X3: op0=3 op1=0 CRn=12 CRm=11 op2=5, Rt=3, write.
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
        let Exit::SysReg(s) = Exit::decode((0x18 << 26) | iss, 0, 0) else {
            panic!()
        };
        assert_eq!(s.reg, sysreg(3, 0, 12, 11, 5));
        assert_eq!((s.rt, s.read), (3, false));
        assert_eq!(Exit::decode(0x07 << 26, 0, 0), Exit::Other { ec: 7 });
    }

    /// `sysreg` packs the fields as the MRS/MSR instruction does in its
    /// bits [20:5] (op0, op1, CRn, CRm, op2): checked against encodings
    /// from the assembler, the last with every field at its maximum.
    #[test]
    fn sysreg_packs_fields_as_the_instruction_encodes_them() {
        for (insn, fields) in [
            (0xd53b_e040u32, (3, 3, 14, 0, 2)), // MRS X0, CNTVCT_EL0
            (0xd518_cba3, (3, 0, 12, 11, 5)),   // MSR ICC_SGI1R_EL1, X3
            (0xd538_00a1, (3, 0, 0, 0, 5)),     // MRS X1, MPIDR_EL1
            (0xd51f_ffe2, (3, 7, 15, 15, 7)),   // MSR S3_7_C15_C15_7, X2
        ] {
            let (op0, op1, crn, crm, op2) = fields;
            assert_eq!(
                sysreg(op0, op1, crn, crm, op2),
                (insn >> 5) & 0xffff,
                "{insn:#x}"
            );
            // The trap's ISS carries the same fields in its own order.
            let iss = (u64::from(op0) << 20)
                | (u64::from(op2) << 17)
                | (u64::from(op1) << 14)
                | (u64::from(crn) << 10)
                | (u64::from(insn & 0x1f) << 5)
                | (u64::from(crm) << 1)
                | u64::from(insn >> 21 & 1);
            let Exit::SysReg(s) = Exit::decode((0x18 << 26) | iss, 0, 0) else {
                panic!()
            };
            assert_eq!(s.reg, (insn >> 5) & 0xffff, "{insn:#x}");
            assert_eq!(u32::from(s.rt), insn & 0x1f);
            assert_eq!(s.read, insn >> 21 & 1 == 1, "{insn:#x}");
        }
    }
}
