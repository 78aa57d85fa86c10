//! The build sizes the hypervisor's heap with a bound on the stage-2 tables
//! a partition's mappings take (`bulkhead_config::budget`); the hypervisor
//! then builds those tables on that heap at boot (`mm::pagetable`). If the
//! bound were short, boot would stop for want of memory: this checks it
//! against the hypervisor's own table builder, for generated mappings.

use bulkhead::mm::pagetable::{ENTRIES, MemKind, PageTable, Stage2, Table, TableAlloc};
use bulkhead::mm::{Ipa, PhysAddr};
use bulkhead_config::budget::mapping_tables;
use proptest::prelude::*;

/// Tables in a vector, at made-up addresses; counts what it hands out.
struct Counting(Vec<Box<Table>>);

const FAKE_BASE: u64 = 0x7_0000_0000;
const PAGE: u64 = 0x1000;

impl TableAlloc for Counting {
    fn alloc(&mut self) -> Option<PhysAddr> {
        self.0.push(Box::new(Table([0; ENTRIES])));
        Some(PhysAddr(FAKE_BASE + (self.0.len() as u64 - 1) * PAGE))
    }

    fn table(&mut self, pa: PhysAddr) -> &mut Table {
        &mut self.0[((pa.0 - FAKE_BASE) / PAGE) as usize]
    }
}

/// One mapping as pages: a gap before it, its length, and how far its
/// machine address is from its guest address.
type Mapping = (u64, u64, u64);

fn mapping() -> impl Strategy<Value = Mapping> {
    // Up to 2 GiB gaps and 16 MiB lengths (in pages), so mappings cross
    // 2 MiB and 1 GiB boundaries; offsets from none to odd pages.
    (0u64..0x8_0000, 1u64..0x1000, 0u64..0x2000)
}

proptest! {
    #[test]
    fn the_builds_table_bound_holds_for_the_hypervisors_table_builder(
        start in 0u64..0x4_0000,
        mappings in prop::collection::vec(mapping(), 1..6),
        congruent in any::<bool>(),
    ) {
        let mut alloc = Counting(Vec::new());
        let mut s2 = PageTable::<Stage2>::new(&mut alloc).expect("a root");
        let mut bound = 1; // the root
        let mut at = start * PAGE;
        for (gap, pages, offset) in mappings {
            let ipa = at + gap * PAGE;
            let size = pages * PAGE;
            // Congruent: guest and machine addresses agree modulo 2 MiB.
            let offset = if congruent { offset << 21 } else { offset * PAGE };
            let phys = ipa + offset;
            s2.map(&mut alloc, Ipa(ipa), PhysAddr(phys), size, MemKind::Normal)
                .expect("disjoint mappings map");
            bound += mapping_tables(ipa, Some(phys), size);
            at = ipa + size;
        }
        prop_assert!(
            alloc.0.len() as u64 <= bound,
            "{} tables, bound {bound}",
            alloc.0.len()
        );
    }
}

#[test]
fn an_unknown_machine_address_is_bounded_as_the_worst_case() {
    // The control page's machine address is the heap's, chosen at boot:
    // whatever it is, one page takes a level-2 and a level-3 table at most.
    for phys in [0x4000_0000, 0x4000_1000, 0x5020_3000] {
        let mut alloc = Counting(Vec::new());
        let mut s2 = PageTable::<Stage2>::new(&mut alloc).expect("a root");
        s2.map(
            &mut alloc,
            Ipa(0x7fff_f000),
            PhysAddr(phys),
            PAGE,
            MemKind::Normal,
        )
        .expect("maps");
        assert!(alloc.0.len() as u64 <= 1 + mapping_tables(0x7fff_f000, None, PAGE));
    }
}
