//! Memory: address types and translation-table building.
#![forbid(unsafe_code)]

pub mod pagetable;

/// The address types, shared with the configuration tool through the
/// board description (`bulkhead_abi::board`): [`PhysAddr`] for machine
/// addresses, [`Ipa`] for a partition's guest-physical ones.
pub use bulkhead_abi::board::{Ipa, PhysAddr};

pub const PAGE_SIZE: u64 = 4096;

/// The parts of `[base, base + size)` that none of `covered` (ranges as
/// (start, length), at most [`MAX_COVERED`], in any order, possibly
/// overlapping or reaching outside) covers, in ascending order, as
/// (start, length). Loading a partition zeroes these and copies its images
/// over the rest, so no byte is written twice.
pub fn uncovered(base: u64, size: u64, covered: &[(u64, u64)]) -> impl Iterator<Item = (u64, u64)> {
    let end = base + size;
    let mut sorted = [(0u64, 0u64); MAX_COVERED];
    let n = covered.len().min(MAX_COVERED);
    sorted[..n].copy_from_slice(&covered[..n]);
    sorted[..n].sort_unstable();
    let mut at = base;
    let mut i = 0;
    core::iter::from_fn(move || {
        while at < end {
            // The next covered range that ends past `at`.
            while i < n && sorted[i].0.saturating_add(sorted[i].1) <= at {
                i += 1;
            }
            let next = if i < n { sorted[i].0.max(at) } else { end }.min(end);
            if next > at {
                let gap = (at, next - at);
                at = next;
                return Some(gap);
            }
            // `at` is inside range i: skip past it.
            at = sorted[i].0.saturating_add(sorted[i].1).min(end);
            i += 1;
        }
        None
    })
}

/// Most ranges [`uncovered`] takes: a partition's image, initrd and device tree.
pub const MAX_COVERED: usize = 4;

#[cfg(test)]
mod tests {
    use super::uncovered;

    fn gaps(base: u64, size: u64, covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
        uncovered(base, size, covered).collect()
    }

    #[test]
    fn what_no_image_covers_is_left_in_order() {
        assert_eq!(gaps(0x1000, 0x100, &[]), [(0x1000, 0x100)]);
        // Image at the start, device tree at the end, initrd between.
        assert_eq!(
            gaps(0, 100, &[(90, 10), (0, 20), (40, 10)]),
            [(20, 20), (50, 40)]
        );
        // Overlapping, touching, and reaching outside the region.
        assert_eq!(
            gaps(10, 90, &[(0, 15), (14, 6), (20, 5), (95, 50)]),
            [(25, 70)]
        );
        assert_eq!(gaps(0, 100, &[(0, 100)]), []);
        assert_eq!(gaps(0, 100, &[(200, 10)]), [(0, 100)]);
        // A range wholly inside another.
        assert_eq!(gaps(0, 100, &[(10, 50), (20, 5)]), [(0, 10), (60, 40)]);
    }
}
