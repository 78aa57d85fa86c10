//! Just enough ELF: the loadable segments of a little-endian 64-bit AArch64
//! executable, and their flattening into one contiguous blob.
//!
//! Used twice: for guest images (the blob the hypervisor copies into a
//! partition) and by `bulkhead-config elf2image` (the hypervisor's own ELF
//! turned into the flat arm64 Image that QEMU boots). Every offset read from
//! the file is bounds-checked; a malformed file is an [`ElfError`], never a
//! panic.

use std::fmt;

/// `\x7fELF`.
const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
/// `e_ident[EI_CLASS]` for 64-bit objects.
const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]` for little-endian objects.
const ELFDATA2LSB: u8 = 1;
/// `e_type` of an executable (not relocatable, not shared).
const ET_EXEC: u16 = 2;
/// `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;
/// `p_type` of a loadable segment.
const PT_LOAD: u32 = 1;
/// Size of the ELF64 file header.
const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
const PHDR_SIZE: usize = 56;

/// Why a file is not an ELF we can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than the header or a table it points to.
    Truncated,
    /// Not ELFCLASS64 little-endian.
    NotElf64Le,
    /// `e_type` is not ET_EXEC.
    NotExecutable { e_type: u16 },
    /// `e_machine` is not AArch64.
    NotAarch64 { machine: u16 },
    /// `e_phentsize` is not the ELF64 size.
    BadProgramHeaderSize { size: u16 },
    /// A segment's file bytes lie outside the file.
    SegmentOutsideFile { index: usize },
    /// A segment whose `p_filesz` exceeds its `p_memsz`.
    FileSizeOverMemSize { index: usize },
    /// A segment whose address range wraps past 2^64.
    SegmentWraps { index: usize },
    /// Two loadable segments claim the same physical bytes.
    SegmentsOverlap { first: usize, second: usize },
    /// No PT_LOAD segment has any size.
    NoLoadableSegments,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("file is truncated"),
            Self::NotElf64Le => f.write_str("not a 64-bit little-endian ELF"),
            Self::NotExecutable { e_type } => {
                write!(
                    f,
                    "e_type is {e_type}, not ET_EXEC (2): link it as an executable"
                )
            }
            Self::NotAarch64 { machine } => {
                write!(f, "e_machine is {machine}, not AArch64 (183)")
            }
            Self::BadProgramHeaderSize { size } => {
                write!(f, "e_phentsize is {size}, not {PHDR_SIZE}")
            }
            Self::SegmentOutsideFile { index } => {
                write!(f, "program header {index}: file bytes lie outside the file")
            }
            Self::FileSizeOverMemSize { index } => {
                write!(f, "program header {index}: p_filesz is larger than p_memsz")
            }
            Self::SegmentWraps { index } => {
                write!(f, "program header {index}: address range wraps past 2^64")
            }
            Self::SegmentsOverlap { first, second } => write!(
                f,
                "program headers {first} and {second}: loadable segments overlap"
            ),
            Self::NoLoadableSegments => f.write_str("no PT_LOAD segment"),
        }
    }
}

impl std::error::Error for ElfError {}

/// One PT_LOAD segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Index of its program header, for messages.
    pub index: usize,
    /// Virtual address (`p_vaddr`).
    pub vaddr: u64,
    /// Physical address (`p_paddr`): where its bytes go.
    pub paddr: u64,
    /// Size in memory (`p_memsz`): file bytes, then zeroes.
    pub memsz: u64,
    /// Its bytes in the file (`p_filesz` of them).
    pub data: Vec<u8>,
}

impl Segment {
    /// `p_filesz`.
    pub fn filesz(&self) -> u64 {
        self.data.len() as u64
    }
}

/// A parsed executable: its entry point and loadable segments, sorted by
/// physical address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// `e_entry`.
    pub entry: u64,
    /// PT_LOAD segments with a non-zero `p_memsz`, lowest `p_paddr` first.
    pub segments: Vec<Segment>,
}

/// Whether `bytes` start with the ELF magic (so a failure to parse them is
/// an error rather than a sign of a raw image).
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

fn read<const N: usize>(bytes: &[u8], offset: usize) -> Result<[u8; N], ElfError> {
    let end = offset.checked_add(N).ok_or(ElfError::Truncated)?;
    let slice = bytes.get(offset..end).ok_or(ElfError::Truncated)?;
    let mut out = [0; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn u16_at(bytes: &[u8], offset: usize) -> Result<u16, ElfError> {
    read(bytes, offset).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32, ElfError> {
    read(bytes, offset).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64, ElfError> {
    read(bytes, offset).map(u64::from_le_bytes)
}

/// Offsets into a file are `u64` in ELF; convert, failing as truncation.
fn offset(value: u64) -> Result<usize, ElfError> {
    usize::try_from(value).map_err(|_| ElfError::Truncated)
}

impl Elf {
    /// Parses an AArch64 executable.
    pub fn parse(bytes: &[u8]) -> Result<Elf, ElfError> {
        if bytes.len() < EHDR_SIZE {
            return Err(ElfError::Truncated);
        }
        if !is_elf(bytes) || bytes[4] != ELFCLASS64 || bytes[5] != ELFDATA2LSB {
            return Err(ElfError::NotElf64Le);
        }
        let e_type = u16_at(bytes, 16)?;
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable { e_type });
        }
        let machine = u16_at(bytes, 18)?;
        if machine != EM_AARCH64 {
            return Err(ElfError::NotAarch64 { machine });
        }
        let entry = u64_at(bytes, 24)?;
        let phoff = offset(u64_at(bytes, 32)?)?;
        let phentsize = u16_at(bytes, 54)?;
        let phnum = usize::from(u16_at(bytes, 56)?);
        if phnum > 0 && usize::from(phentsize) != PHDR_SIZE {
            return Err(ElfError::BadProgramHeaderSize { size: phentsize });
        }

        let mut segments = Vec::new();
        for index in 0..phnum {
            let ph = index
                .checked_mul(PHDR_SIZE)
                .and_then(|o| o.checked_add(phoff))
                .ok_or(ElfError::Truncated)?;
            if u32_at(bytes, ph)? != PT_LOAD {
                continue;
            }
            let file_offset = u64_at(bytes, ph + 8)?;
            let vaddr = u64_at(bytes, ph + 16)?;
            let paddr = u64_at(bytes, ph + 24)?;
            let filesz = u64_at(bytes, ph + 32)?;
            let memsz = u64_at(bytes, ph + 40)?;
            if memsz == 0 {
                continue;
            }
            if filesz > memsz {
                return Err(ElfError::FileSizeOverMemSize { index });
            }
            if paddr.checked_add(memsz).is_none() || vaddr.checked_add(memsz).is_none() {
                return Err(ElfError::SegmentWraps { index });
            }
            let start = offset(file_offset)?;
            let data = start
                .checked_add(offset(filesz)?)
                .and_then(|end| bytes.get(start..end))
                .ok_or(ElfError::SegmentOutsideFile { index })?;
            segments.push(Segment {
                index,
                vaddr,
                paddr,
                memsz,
                data: data.to_vec(),
            });
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadableSegments);
        }
        segments.sort_by_key(|s| s.paddr);
        for pair in segments.windows(2) {
            // Sorted by paddr, so only neighbours can overlap first.
            if pair[0].paddr + pair[0].memsz > pair[1].paddr {
                return Err(ElfError::SegmentsOverlap {
                    first: pair[0].index,
                    second: pair[1].index,
                });
            }
        }
        Ok(Elf { entry, segments })
    }

    /// The physical range the flattened blob covers: from the lowest
    /// `p_paddr` of a segment with file bytes to the highest
    /// `p_paddr + p_filesz`. For an ELF with no file bytes at all, an empty
    /// range at the lowest segment.
    pub fn file_span(&self) -> (u64, u64) {
        let with_data = || self.segments.iter().filter(|s| !s.data.is_empty());
        match with_data().map(|s| s.paddr).min() {
            Some(base) => {
                let end = with_data()
                    .map(|s| s.paddr + s.filesz())
                    .max()
                    .unwrap_or(base);
                (base, end)
            }
            None => {
                let lowest = self.segments.first().map_or(0, |s| s.paddr);
                (lowest, lowest)
            }
        }
    }

    /// The segments' file bytes laid out by physical address over
    /// [`Elf::file_span`], gaps zero-filled. Trailing zero-initialised
    /// memory (`.bss`) is not included: whoever loads the blob zeroes it.
    ///
    /// Returns the physical address of the first byte and the bytes. The
    /// caller checks the span first: two segments far apart make a large blob.
    pub fn flatten(&self) -> (u64, Vec<u8>) {
        let (base, end) = self.file_span();
        let mut out = vec![0u8; (end - base) as usize];
        for s in self.segments.iter().filter(|s| !s.data.is_empty()) {
            let at = (s.paddr - base) as usize;
            out[at..at + s.data.len()].copy_from_slice(&s.data);
        }
        (base, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_elf::{Seg, build_elf};

    #[test]
    fn flattens_by_physical_address_with_zero_filled_gaps() {
        // Given out of order: the high segment first.
        let elf = build_elf(
            0x4000_0000,
            &[
                Seg {
                    paddr: 0x4000_0010,
                    data: b"DATA",
                    memsz: 0x100, // .bss after it is not written
                },
                Seg {
                    paddr: 0x4000_0000,
                    data: b"CODE",
                    memsz: 4,
                },
            ],
        );
        let elf = Elf::parse(&elf).expect("valid ELF");
        assert_eq!(elf.entry, 0x4000_0000);
        assert_eq!(elf.segments[0].paddr, 0x4000_0000);
        let (base, bytes) = elf.flatten();
        assert_eq!(base, 0x4000_0000);
        let mut expected = b"CODE".to_vec();
        expected.resize(0x10, 0);
        expected.extend_from_slice(b"DATA");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn rejects_malformed_files() {
        assert_eq!(Elf::parse(b"\x7fELF"), Err(ElfError::Truncated));
        let mut elf = build_elf(
            0,
            &[Seg {
                paddr: 0,
                data: b"x",
                memsz: 1,
            }],
        );
        elf[18] = 62; // EM_X86_64
        assert_eq!(Elf::parse(&elf), Err(ElfError::NotAarch64 { machine: 62 }));

        let mut elf = build_elf(
            0,
            &[Seg {
                paddr: 0,
                data: b"xy",
                memsz: 2,
            }],
        );
        elf.truncate(elf.len() - 1);
        assert_eq!(
            Elf::parse(&elf),
            Err(ElfError::SegmentOutsideFile { index: 0 })
        );

        let elf = build_elf(
            0,
            &[Seg {
                paddr: 0,
                data: b"xy",
                memsz: 1,
            }],
        );
        assert_eq!(
            Elf::parse(&elf),
            Err(ElfError::FileSizeOverMemSize { index: 0 })
        );

        let elf = build_elf(
            0,
            &[
                Seg {
                    paddr: 0,
                    data: b"ab",
                    memsz: 0x20,
                },
                Seg {
                    paddr: 0x10,
                    data: b"cd",
                    memsz: 2,
                },
            ],
        );
        assert_eq!(
            Elf::parse(&elf),
            Err(ElfError::SegmentsOverlap {
                first: 0,
                second: 1
            })
        );

        assert_eq!(
            Elf::parse(&build_elf(0, &[])),
            Err(ElfError::NoLoadableSegments)
        );
    }

    /// One segment of `data` at `paddr`, as large in memory as in the file.
    fn one(paddr: u64, data: &[u8]) -> Vec<u8> {
        let memsz = data.len() as u64;
        build_elf(paddr, &[Seg { paddr, data, memsz }])
    }

    /// Overwrites the little-endian value at `at` with `value`'s low `N` bytes.
    fn patch<const N: usize>(elf: &mut [u8], at: usize, value: u64) {
        elf[at..at + N].copy_from_slice(&value.to_le_bytes()[..N]);
    }

    /// Offset of field `field` of program header `index` in a [`build_elf`] file.
    fn ph(index: usize, field: usize) -> usize {
        EHDR_SIZE + index * PHDR_SIZE + field
    }

    #[test]
    fn a_file_shorter_than_its_header_or_tables_is_truncated() {
        let elf = one(0x1000, b"code");
        assert_eq!(Elf::parse(&elf[..EHDR_SIZE - 1]), Err(ElfError::Truncated));
        // The header is whole, the program header table is cut short.
        assert_eq!(Elf::parse(&elf[..EHDR_SIZE + 4]), Err(ElfError::Truncated));
        let mut far = elf.clone();
        patch::<8>(&mut far, 32, elf.len() as u64); // e_phoff just past the end
        assert_eq!(Elf::parse(&far), Err(ElfError::Truncated));
        patch::<8>(&mut far, 32, u64::MAX); // e_phoff that overflows
        assert_eq!(Elf::parse(&far), Err(ElfError::Truncated));
    }

    #[test]
    fn segment_bytes_must_lie_inside_the_file() {
        let elf = one(0x1000, b"code");
        // p_offset + p_filesz exactly at the end of the file is fine.
        assert_eq!(
            Elf::parse(&elf).map(|e| e.segments[0].data.clone()),
            Ok(b"code".to_vec())
        );
        for offset in [elf.len() as u64 - 3, u64::MAX - 1] {
            let mut bad = elf.clone();
            patch::<8>(&mut bad, ph(0, 8), offset);
            assert_eq!(
                Elf::parse(&bad),
                Err(ElfError::SegmentOutsideFile { index: 0 }),
                "p_offset {offset:#x}"
            );
        }
    }

    #[test]
    fn only_a_64_bit_little_endian_elf_is_read() {
        let elf = one(0x1000, b"code");
        for (at, value) in [(0, b'E'), (4, 1), (5, 2)] {
            // Not the magic, ELFCLASS32, ELFDATA2MSB: each alone is refused.
            let mut bad = elf.clone();
            bad[at] = value;
            assert_eq!(Elf::parse(&bad), Err(ElfError::NotElf64Le), "byte {at}");
        }
        let mut relocatable = elf.clone();
        patch::<2>(&mut relocatable, 16, 1); // ET_REL
        assert_eq!(
            Elf::parse(&relocatable),
            Err(ElfError::NotExecutable { e_type: 1 })
        );
    }

    #[test]
    fn program_header_size_matters_only_when_there_are_program_headers() {
        let mut elf = one(0x1000, b"code");
        patch::<2>(&mut elf, 54, 64);
        assert_eq!(
            Elf::parse(&elf),
            Err(ElfError::BadProgramHeaderSize { size: 64 })
        );
        let mut none = build_elf(0x1000, &[]);
        patch::<2>(&mut none, 54, 0);
        assert_eq!(Elf::parse(&none), Err(ElfError::NoLoadableSegments));
    }

    #[test]
    fn program_headers_other_than_pt_load_are_skipped() {
        let mut elf = build_elf(
            0x1000,
            &[
                Seg {
                    paddr: 0x1000,
                    data: b"code",
                    memsz: 4,
                },
                Seg {
                    paddr: 0x2000,
                    data: b"note",
                    memsz: 4,
                },
            ],
        );
        patch::<4>(&mut elf, ph(1, 0), 4); // PT_NOTE
        let parsed = Elf::parse(&elf).expect("valid ELF");
        let indices: Vec<usize> = parsed.segments.iter().map(|s| s.index).collect();
        assert_eq!(indices, [0]);
    }

    #[test]
    fn a_segment_keeps_its_own_virtual_and_physical_addresses() {
        let mut elf = one(0x4000_0000, b"code");
        patch::<8>(&mut elf, ph(0, 16), 0xffff_0000_4000_0000);
        let parsed = Elf::parse(&elf).expect("valid ELF");
        let s = &parsed.segments[0];
        assert_eq!(
            (s.vaddr, s.paddr, s.memsz),
            (0xffff_0000_4000_0000, 0x4000_0000, 4)
        );
    }

    #[test]
    fn a_segment_whose_physical_or_virtual_range_wraps_is_refused() {
        // p_vaddr (16) and p_paddr (24) in turn run past 2^64, the other not.
        for field in [16, 24] {
            let mut elf = one(0x1000, b"code");
            patch::<8>(&mut elf, ph(0, field), u64::MAX - 2);
            assert_eq!(
                Elf::parse(&elf),
                Err(ElfError::SegmentWraps { index: 0 }),
                "field {field}"
            );
            // Ending at the last address, it does not wrap.
            patch::<8>(&mut elf, ph(0, field), u64::MAX - 4);
            assert!(Elf::parse(&elf).is_ok(), "field {field}");
        }
    }

    #[test]
    fn segments_that_touch_are_accepted_one_byte_of_overlap_is_not() {
        let pair = |second: u64| {
            build_elf(
                0,
                &[
                    Seg {
                        paddr: 0,
                        data: b"ab",
                        memsz: 0x10,
                    },
                    Seg {
                        paddr: second,
                        data: b"cd",
                        memsz: 2,
                    },
                ],
            )
        };
        let touching = Elf::parse(&pair(0x10)).expect("touching segments");
        let (base, bytes) = touching.flatten();
        assert_eq!(base, 0);
        assert_eq!(bytes, b"ab\0\0\0\0\0\0\0\0\0\0\0\0\0\0cd");
        assert_eq!(
            Elf::parse(&pair(0xf)),
            Err(ElfError::SegmentsOverlap {
                first: 0,
                second: 1
            })
        );
    }

    #[test]
    fn each_error_says_what_is_wrong() {
        let cases = [
            (ElfError::Truncated, "file is truncated"),
            (ElfError::NotElf64Le, "not a 64-bit little-endian ELF"),
            (
                ElfError::NotExecutable { e_type: 3 },
                "e_type is 3, not ET_EXEC (2): link it as an executable",
            ),
            (
                ElfError::NotAarch64 { machine: 62 },
                "e_machine is 62, not AArch64 (183)",
            ),
            (
                ElfError::BadProgramHeaderSize { size: 64 },
                "e_phentsize is 64, not 56",
            ),
            (
                ElfError::SegmentOutsideFile { index: 1 },
                "program header 1: file bytes lie outside the file",
            ),
            (
                ElfError::FileSizeOverMemSize { index: 2 },
                "program header 2: p_filesz is larger than p_memsz",
            ),
            (
                ElfError::SegmentWraps { index: 3 },
                "program header 3: address range wraps past 2^64",
            ),
            (
                ElfError::SegmentsOverlap {
                    first: 4,
                    second: 5,
                },
                "program headers 4 and 5: loadable segments overlap",
            ),
            (ElfError::NoLoadableSegments, "no PT_LOAD segment"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
