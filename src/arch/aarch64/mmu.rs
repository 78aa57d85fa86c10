//! The hypervisor's own EL2 stage-1 map: identity, RAM as Normal memory,
//! the UART, the GIC and the power manager (if not PSCI) as Device
//! memory, nothing else. Built once by the
//! boot CPU in a static pool, then switched on by every CPU.

use core::arch::asm;

use aarch64_cpu::registers::{MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use tock_registers::fields::FieldValue;
use tock_registers::interfaces::Writeable;

use super::sysreg::{fields, unnamed_bits_set};
use crate::config::{BoardConfig, GicConfig, Power};
use crate::mm::PhysAddr;
use crate::mm::pagetable::{
    El2Stage1, MAIR_EL2_VALUE, MapError, MemKind, PageTable, TCR_EL2_VALUE, Table, TableAlloc,
};

/// MAIR_EL2 field by field: `mm::pagetable`'s `MAIR_EL2_VALUE` (the
/// attribute indexes its descriptors use; that module is host-tested,
/// without `aarch64-cpu`), checked equal below.
const MAIR: FieldValue<u64, MAIR_EL2::Register> = fields(&[
    MAIR_EL2::Attr0_Device::nonGathering_nonReordering_noEarlyWriteAck,
    MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc,
    MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
]);
const _: () = assert!(MAIR.value == MAIR_EL2_VALUE);

/// TCR_EL2 field by field: `mm::pagetable`'s `TCR_EL2_VALUE`, checked
/// equal below. RES1 bits 31 and 23 are not named by `aarch64-cpu`.
const TCR: FieldValue<u64, TCR_EL2::Register> = fields(&[
    unnamed_bits_set((1 << 31) | (1 << 23)),
    TCR_EL2::PS::Bits_40,
    TCR_EL2::TG0::KiB_4,
    TCR_EL2::SH0::Inner,
    TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable,
    TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable,
    TCR_EL2::T0SZ.val(25),
]);
const _: () = assert!(TCR.value == TCR_EL2_VALUE);

/// SCTLR_EL2 (E2H = 0) with the MMU on: M (MMU), C (data cache), SA (stack
/// alignment check), I (instruction cache), EIS and EOS (exception entry
/// and return synchronise context: RES1 without FEAT_ExS), and the RES1
/// bits `aarch64-cpu` does not name (29, 28, 23, 18, 16, 5, 4).
const SCTLR: FieldValue<u64, SCTLR_EL2::Register> = fields(&[
    unnamed_bits_set(0x3085_0030),
    SCTLR_EL2::EIS::IsSynch,
    SCTLR_EL2::EOS::IsSynch,
    SCTLR_EL2::M::Enable,
    SCTLR_EL2::C::Cacheable,
    SCTLR_EL2::SA::Enable,
    SCTLR_EL2::I::Cacheable,
]);
const _: () = assert!(SCTLR.value == 0x30c5_183d);

/// Tables for the EL2 map: a level-1 table and a few level-2/3 tables for
/// ranges that are not 1 GiB blocks. Enough for any board we describe.
const POOL_TABLES: usize = 16;

struct Pool {
    tables: [Table; POOL_TABLES],
    used: usize,
}

impl TableAlloc for Pool {
    fn alloc(&mut self) -> Option<PhysAddr> {
        let table = self.tables.get_mut(self.used)?;
        self.used += 1;
        table.0 = [0; 512];
        Some(PhysAddr(table as *mut Table as u64))
    }

    fn table(&mut self, pa: PhysAddr) -> &mut Table {
        // Identity-mapped (or MMU off): a table's address is its pointer, and
        // `pa` was handed out by `alloc` from this pool.
        let base = self.tables.as_ptr() as u64;
        &mut self.tables[((pa.0 - base) / 4096) as usize]
    }
}

static POOL: spin::Mutex<Pool> = spin::Mutex::new(Pool {
    tables: [const { Table([0; 512]) }; POOL_TABLES],
    used: 0,
});

static ROOT: spin::Once<PhysAddr> = spin::Once::new();

/// Builds the EL2 map for `board` (boot CPU, once).
pub fn build(board: &BoardConfig) -> Result<(), MapError> {
    let mut pool = POOL.lock();
    let mut pt = PageTable::<El2Stage1>::new(&mut *pool)?;
    for ram in board.ram {
        pt.map(&mut *pool, ram.base, ram.base, ram.size, MemKind::Normal)?;
    }
    pt.map(
        &mut *pool,
        board.uart.base,
        board.uart.base,
        board.uart.size.max(0x1000),
        MemKind::Device,
    )?;
    let gic: &[(PhysAddr, u64)] = match board.gic {
        GicConfig::V3 {
            distributor,
            redistributor,
            ..
        } => &[
            (distributor, 0x1_0000),
            (redistributor, 0x2_0000 * board.cpus.len() as u64),
        ],
        GicConfig::V2 {
            distributor,
            cpu_interface,
            hyp_interface,
            virtual_cpu_interface,
            ..
        } => &[
            (distributor, 0x1000),
            (cpu_interface, 0x2000),
            (hyp_interface, 0x1000),
            (virtual_cpu_interface, 0x2000),
        ],
    };
    for &(base, size) in gic {
        pt.map(&mut *pool, base, base, size, MemKind::Device)?;
    }
    if let GicConfig::V2 {
        hyp_interface_aliases: Some(base),
        ..
    } = board.gic
    {
        pt.map(&mut *pool, base, base, 0x1000, MemKind::Device)?;
    }
    if let Power::Bcm2835Watchdog(base) = board.power {
        pt.map(&mut *pool, base, base, 0x1000, MemKind::Device)?;
    }
    ROOT.call_once(|| pt.root());
    Ok(())
}

/// Switches the EL2 MMU and caches on with the map [`build`] made.
pub fn enable() {
    let root = *ROOT.get().expect("EL2 map built before any CPU enables it");
    MAIR_EL2.write(MAIR);
    TCR_EL2.write(TCR);
    // The root table's address is the register as it stands (BADDR, CnP
    // 0): not `set_baddr`, whose masking costs an instruction.
    TTBR0_EL2.set(root.0);
    // Not `SCTLR_EL2.write`: the MMU goes on in one sequence with the TLB
    // invalidation and barriers around it, which the compiler may not
    // split or move memory accesses into.
    // SAFETY: the map is an identity map of all RAM (code, data, stacks) and
    // the devices the hypervisor uses, so every address in use stays valid.
    unsafe {
        asm!(
            "tlbi alle2", "dsb nsh", "isb",
            "msr sctlr_el2, {v}", "isb",
            v = in(reg) SCTLR.value,
            options(nostack)
        )
    };
}
