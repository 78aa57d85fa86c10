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

/// Bytes of a partition's memory that one CPU loads at a time: a
/// partition's CPUs share the loading of its memory by these chunks.
pub const LOAD_CHUNK: u64 = 2 << 20;

/// How many chunks [`load_chunk`] splits memory regions of `sizes` into.
pub fn load_chunks(sizes: impl IntoIterator<Item = u64>) -> usize {
    sizes
        .into_iter()
        .map(|size| size.div_ceil(LOAD_CHUNK) as usize)
        .sum()
}

/// Chunk `n` of memory regions of `sizes` (in order, each split into
/// [`LOAD_CHUNK`] pieces, its last one shorter): (region index, offset in
/// it, length), or `None` past the last one.
pub fn load_chunk(sizes: impl IntoIterator<Item = u64>, mut n: usize) -> Option<(usize, u64, u64)> {
    for (region, size) in sizes.into_iter().enumerate() {
        let count = size.div_ceil(LOAD_CHUNK) as usize;
        if n < count {
            let offset = n as u64 * LOAD_CHUNK;
            return Some((region, offset, (size - offset).min(LOAD_CHUNK)));
        }
        n -= count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{LOAD_CHUNK, load_chunk, load_chunks, uncovered};

    #[test]
    fn load_chunks_cover_every_region_once_in_order() {
        let sizes = [3 * LOAD_CHUNK + 4096, LOAD_CHUNK, 4096];
        let chunks: Vec<_> = (0..).map_while(|n| load_chunk(sizes, n)).collect();
        assert_eq!(
            chunks,
            [
                (0, 0, LOAD_CHUNK),
                (0, LOAD_CHUNK, LOAD_CHUNK),
                (0, 2 * LOAD_CHUNK, LOAD_CHUNK),
                (0, 3 * LOAD_CHUNK, 4096),
                (1, 0, LOAD_CHUNK),
                (2, 0, 4096),
            ]
        );
        assert_eq!(load_chunk([], 0), None);
        assert_eq!(load_chunks(sizes), chunks.len());
    }

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
