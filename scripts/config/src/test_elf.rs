//! Test support, shared by the unit tests (`lib.rs` declares it under
//! `cfg(test)`) and the command-line tests (`tests/cli.rs` includes it by
//! path): a minimal AArch64 executable built from a list of segments.
//!
//! The ELF constants are written out here rather than taken from
//! [`crate::elf`], so the parser is checked against the format, not
//! against itself.

/// Size of the ELF64 file header.
const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
const PHDR_SIZE: usize = 56;

/// A test segment: physical (= virtual) address, file bytes, memory size.
pub struct Seg<'a> {
    pub paddr: u64,
    pub data: &'a [u8],
    pub memsz: u64,
}

/// Builds a minimal AArch64 executable with the given PT_LOAD segments: the
/// file header, the program headers right after it, then each segment's
/// bytes in order.
pub fn build_elf(entry: u64, segs: &[Seg<'_>]) -> Vec<u8> {
    let phoff = EHDR_SIZE;
    let mut data_off = phoff + segs.len() * PHDR_SIZE;
    let mut out = vec![0u8; data_off];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // ELFDATA2LSB
    out[6] = 1; // EI_VERSION
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[24..32].copy_from_slice(&entry.to_le_bytes());
    out[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
    out[52..54].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    out[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
    for (i, s) in segs.iter().enumerate() {
        let ph = phoff + i * PHDR_SIZE;
        let fields: [(usize, u64); 6] = [
            (8, data_off as u64), // p_offset
            (16, s.paddr),        // p_vaddr
            (24, s.paddr),        // p_paddr
            (32, s.data.len() as u64),
            (40, s.memsz),
            (48, 0x1000), // p_align
        ];
        out[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        for (at, v) in &fields {
            out[ph + at..ph + at + 8].copy_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(s.data);
        data_off += s.data.len();
    }
    out
}
