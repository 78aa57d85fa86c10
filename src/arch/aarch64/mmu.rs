//! The hypervisor's own EL2 stage-1 map: identity, RAM as Normal memory,
//! the UART and the GIC as Device memory, nothing else. Built once by the
//! boot CPU in a static pool, then switched on by every CPU.

use core::arch::asm;

use crate::config::{BoardConfig, GicConfig};
use crate::mm::PhysAddr;
use crate::mm::pagetable::{
    El2Stage1, MAIR_EL2_VALUE, MapError, MemKind, PageTable, TCR_EL2_VALUE, Table, TableAlloc,
};

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
            (hyp_interface, 0x2000),
            (virtual_cpu_interface, 0x2000),
        ],
    };
    for &(base, size) in gic {
        pt.map(&mut *pool, base, base, size, MemKind::Device)?;
    }
    ROOT.call_once(|| pt.root());
    Ok(())
}

/// Switches the EL2 MMU and caches on with the map [`build`] made.
pub fn enable() {
    let root = *ROOT.get().expect("EL2 map built before any CPU enables it");
    super::msr!("mair_el2", MAIR_EL2_VALUE);
    super::msr!("tcr_el2", TCR_EL2_VALUE);
    super::msr!("ttbr0_el2", root.0);
    // SCTLR_EL2 (E2H = 0): RES1 bits, M (MMU), C (data cache), SA (stack
    // alignment check), I (instruction cache).
    const SCTLR: u64 = 0x30c5_0830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12);
    // SAFETY: the map is an identity map of all RAM (code, data, stacks) and
    // the devices the hypervisor uses, so every address in use stays valid.
    unsafe {
        asm!(
            "tlbi alle2", "dsb nsh", "isb",
            "msr sctlr_el2, {v}", "isb",
            v = in(reg) SCTLR,
            options(nostack)
        )
    };
}
