//! Memory: address types and translation-table building.
#![forbid(unsafe_code)]

pub mod pagetable;

/// A physical (machine) address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysAddr(pub u64);

/// An intermediate physical address: what a guest believes is physical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ipa(pub u64);

pub const PAGE_SIZE: u64 = 4096;
