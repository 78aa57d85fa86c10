//! The set/clear register banks both GIC architectures have at the same
//! offsets of the distributor (ISENABLER, ICENABLER, ISPENDR, ICPENDR,
//! ISACTIVER, ICACTIVER; Arm IHI 0069 and IHI 0048B), and of a GICv3
//! redistributor's SGI_base frame for INTIDs 0..32: one bit of one
//! interrupt a write, writing 0 bits does nothing, so no lock is needed.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadWrite, WriteOnly};

register_structs! {
    /// The banks, from the frame's base.
    pub Banks {
        (0x000 => _reserved0),
        (0x100 => isenabler: [WriteOnly<u32>; 32]),
        (0x180 => icenabler: [WriteOnly<u32>; 32]),
        (0x200 => ispendr: [ReadWrite<u32>; 32]),
        (0x280 => icpendr: [WriteOnly<u32>; 32]),
        (0x300 => isactiver: [ReadWrite<u32>; 32]),
        (0x380 => icactiver: [WriteOnly<u32>; 32]),
        (0x400 => @END),
    }
}

/// A set/clear pair.
#[derive(Clone, Copy)]
pub enum Bank {
    Enable,
    Pending,
    Active,
}

impl Banks {
    /// Sets (`on`) or clears `intid`'s bit in `bank`: one write of one bit.
    pub fn write(&self, bank: Bank, intid: u32, on: bool) {
        if intid >= 1020 {
            return;
        }
        let (n, bit) = ((intid / 32) as usize, 1u32 << (intid % 32));
        match (bank, on) {
            (Bank::Enable, true) => self.isenabler[n].set(bit),
            (Bank::Enable, false) => self.icenabler[n].set(bit),
            (Bank::Pending, true) => self.ispendr[n].set(bit),
            (Bank::Pending, false) => self.icpendr[n].set(bit),
            (Bank::Active, true) => self.isactiver[n].set(bit),
            (Bank::Active, false) => self.icactiver[n].set(bit),
        }
    }

    /// `intid`'s (pending, active) bits (for a level interrupt the pending
    /// bit follows its line, also while it is active).
    pub fn state(&self, intid: u32) -> (bool, bool) {
        if intid >= 1020 {
            return (false, false);
        }
        let (n, bit) = ((intid / 32) as usize, 1u32 << (intid % 32));
        (
            self.ispendr[n].get() & bit != 0,
            self.isactiver[n].get() & bit != 0,
        )
    }

    /// The pending and active words of INTIDs 0..32.
    pub fn private_state(&self) -> (u32, u32) {
        (self.ispendr[0].get(), self.isactiver[0].get())
    }
}
