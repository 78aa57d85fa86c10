//! The arm64 Linux Image header, which a raw guest image may start with
//! (the kernel's `Documentation/arch/arm64/booting.rst`, "Call the kernel
//! image"): 64 bytes, little-endian.
//!
//! ```text
//! 0x00 code0, code1   executable code (a branch past the header)
//! 0x08 text_offset    where the image goes above a 2 MiB aligned base
//! 0x10 image_size     effective size: what the kernel uses from its load
//!                     address on, its BSS included (more than the file)
//! 0x18 flags          bit 0: big-endian; bits 1-2: page size; bit 3: placement
//! 0x20 res2..res4
//! 0x38 magic          "ARM\x64"
//! 0x3c res5
//! ```
//!
//! A raw image with the magic is taken for a Linux-style Image and checked
//! as the boot protocol asks (see `check::load_image`).

/// Bytes of the header.
pub const HEADER: usize = 64;
/// Where the magic is.
const MAGIC_OFFSET: usize = 0x38;
/// "ARM\x64".
const MAGIC: [u8; 4] = *b"ARM\x64";
/// The alignment the image's base (its load address less `text_offset`)
/// must have.
pub const BASE_ALIGN: u64 = 2 << 20;
/// `text_offset` of an image whose `image_size` is 0: kernels before 3.17
/// did not state it and were built for this offset (booting.rst).
const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// `flags` bit 0: the kernel is big-endian.
const FLAG_BIG_ENDIAN: u64 = 1 << 0;

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// The offset of the load address above a 2 MiB aligned base.
    pub text_offset: u64,
    /// The effective size, BSS included; 0 in kernels before 3.17.
    pub image_size: u64,
    /// The flags word.
    pub flags: u64,
}

impl ImageHeader {
    /// The header of `bytes`, if it starts with one (the magic is there).
    pub fn parse(bytes: &[u8]) -> Option<ImageHeader> {
        let header = bytes.get(..HEADER)?;
        if header[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
            return None;
        }
        let word = |at: usize| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(le)
        };
        let (text_offset, image_size) = (word(0x08), word(0x10));
        Some(ImageHeader {
            // "If image_size is zero, text_offset can be assumed to be 0x80000."
            text_offset: if image_size == 0 {
                LEGACY_TEXT_OFFSET
            } else {
                text_offset
            },
            image_size,
            flags: word(0x18),
        })
    }

    /// Whether the kernel is big-endian (a partition starts little-endian).
    pub fn big_endian(&self) -> bool {
        self.flags & FLAG_BIG_ENDIAN != 0
    }

    /// The bytes the kernel occupies from its load address on: its header's
    /// `image_size`, or the file's size when that is larger or unstated.
    pub fn footprint(&self, file_size: u64) -> u64 {
        self.image_size.max(file_size)
    }

    /// Whether `load` is a place the protocol allows: `text_offset` above
    /// a 2 MiB aligned base.
    pub fn placed_right(&self, load: u64) -> bool {
        load.checked_sub(self.text_offset)
            .is_some_and(|base| base.is_multiple_of(BASE_ALIGN))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Image of `file_size` bytes (at least [`HEADER`]) with this header.
    pub(crate) fn image(
        text_offset: u64,
        image_size: u64,
        flags: u64,
        file_size: usize,
    ) -> Vec<u8> {
        let mut bytes = vec![0u8; file_size.max(HEADER)];
        bytes[..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // b +0x40
        bytes[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        bytes[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        bytes[0x18..0x20].copy_from_slice(&flags.to_le_bytes());
        bytes[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        bytes
    }

    #[test]
    fn the_header_fields_are_read_little_endian() {
        let h = ImageHeader::parse(&image(0, 0x1aa_0000, 0xa, 0x1000)).expect("a header");
        assert_eq!(
            h,
            ImageHeader {
                text_offset: 0,
                image_size: 0x1aa_0000,
                flags: 0xa
            }
        );
        assert!(!h.big_endian());
        assert!(
            ImageHeader::parse(&image(0, 0x1000, 1, 64))
                .unwrap()
                .big_endian()
        );
    }

    #[test]
    fn without_the_magic_or_whole_header_there_is_none() {
        let mut bytes = image(0, 0x1000, 0, 0x100);
        assert!(ImageHeader::parse(&bytes[..HEADER - 1]).is_none());
        assert!(ImageHeader::parse(&bytes[..HEADER]).is_some());
        bytes[MAGIC_OFFSET + 3] = 0x65;
        assert!(ImageHeader::parse(&bytes).is_none());
        assert!(ImageHeader::parse(b"RAW IMAGE BYTES").is_none());
    }

    #[test]
    fn an_image_size_of_zero_means_the_legacy_text_offset_and_the_file_size() {
        let h = ImageHeader::parse(&image(0x1234, 0, 0, 0x3000)).unwrap();
        assert_eq!(h.text_offset, 0x8_0000);
        assert_eq!(h.footprint(0x3000), 0x3000);
        let h = ImageHeader::parse(&image(0, 0x5000, 0, 0x3000)).unwrap();
        assert_eq!(h.footprint(0x3000), 0x5000, "image_size includes the BSS");
        assert_eq!(h.footprint(0x6000), 0x6000, "never less than the file");
    }

    #[test]
    fn the_load_address_is_text_offset_above_a_2_mib_boundary() {
        let h = ImageHeader::parse(&image(0, 0x1000, 0, 64)).unwrap();
        assert!(h.placed_right(0x4020_0000));
        assert!(h.placed_right(0));
        assert!(!h.placed_right(0x4010_0000));
        let h = ImageHeader::parse(&image(0x8_0000, 0x1000, 0, 64)).unwrap();
        assert!(h.placed_right(0x4028_0000));
        assert!(!h.placed_right(0x4020_0000));
        assert!(!h.placed_right(0x4_0000), "below text_offset");
    }
}
