//! Memory: address types and translation-table building.
#![forbid(unsafe_code)]

pub mod pagetable;

/// The address types, shared with the configuration tool through the
/// board description (`bulkhead_abi::board`): [`PhysAddr`] for machine
/// addresses, [`Ipa`] for a partition's guest-physical ones.
pub use bulkhead_abi::board::{Ipa, PhysAddr};

pub const PAGE_SIZE: u64 = 4096;
