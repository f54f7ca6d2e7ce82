//! What each zip record holds (local header, data descriptor, central directory header, end
//! records, with their ZIP64 forms), and how long a stored archive will be before it is made.

use bytes::BufMut;

use crate::config::ZipFormat;
use crate::content::Content;
use crate::dates::dos_datetime;

pub(super) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(super) const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
pub(super) const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;

pub(super) const FLAG_DESCRIPTOR: u16 = 0x0008;
const FLAG_UTF8: u16 = 0x0800;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
pub(super) const MAX32: u64 = 0xFFFF_FFFF;
const MAX16: u64 = 0xFFFF;

/// One file of an archive.
#[derive(Clone, Debug)]
pub(crate) struct ZipEntry {
    pub(crate) name: String,
    pub(crate) content: Content,
    /// Unix seconds, for the entry's MS-DOS time.
    pub(crate) modified: u64,
}

/// What a header says about its entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryFacts<'a> {
    pub(crate) name: &'a str,
    pub(crate) deflated: bool,
    pub(crate) descriptor: bool,
    /// Sizes go in ZIP64 extra fields (the entry or its compressed form may pass 4 GiB).
    pub(crate) zip64: bool,
    pub(crate) crc: u32,
    pub(crate) compressed: u64,
    pub(crate) uncompressed: u64,
    pub(crate) modified: u64,
}

impl EntryFacts<'_> {
    fn flags(&self) -> u16 {
        FLAG_UTF8 | if self.descriptor { FLAG_DESCRIPTOR } else { 0 }
    }

    fn method(&self) -> u16 {
        if self.deflated {
            DEFLATED
        } else {
            STORED
        }
    }

    fn version(&self, zip64: bool) -> u16 {
        if zip64 {
            45
        } else {
            20
        }
    }
}

/// Zip writes names as at most 65,535 bytes; longer ones are cut at a character boundary.
fn name_bytes(name: &str) -> &[u8] {
    let mut end = name.len().min(MAX16 as usize);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name.as_bytes()[..end]
}

/// The local file header; sizes are those known up front (a deflated entry's compressed size is not, so 0).
pub(crate) fn local_header(e: &EntryFacts) -> Vec<u8> {
    let name = name_bytes(e.name);
    let (time, date) = dos_datetime(e.modified);
    let mut out = Vec::with_capacity(30 + name.len() + 20);
    out.put_u32_le(LOCAL_SIG);
    out.put_u16_le(e.version(e.zip64));
    out.put_u16_le(e.flags());
    out.put_u16_le(e.method());
    out.put_u16_le(time);
    out.put_u16_le(date);
    out.put_u32_le(e.crc);
    if e.zip64 {
        out.put_u32_le(MAX32 as u32);
        out.put_u32_le(MAX32 as u32);
    } else {
        out.put_u32_le(e.compressed as u32);
        out.put_u32_le(e.uncompressed as u32);
    }
    out.put_u16_le(name.len() as u16);
    out.put_u16_le(if e.zip64 { 20 } else { 0 });
    out.put_slice(name);
    if e.zip64 {
        // A local ZIP64 field holds both sizes, uncompressed first.
        out.put_u16_le(0x0001);
        out.put_u16_le(16);
        out.put_u64_le(e.uncompressed);
        out.put_u64_le(e.compressed);
    }
    out
}

/// The data descriptor after an entry's bytes; 8-byte sizes when the local header had a ZIP64 field.
pub(crate) fn data_descriptor(e: &EntryFacts) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.put_u32_le(DESCRIPTOR_SIG);
    out.put_u32_le(e.crc);
    if e.zip64 {
        out.put_u64_le(e.compressed);
        out.put_u64_le(e.uncompressed);
    } else {
        out.put_u32_le(e.compressed as u32);
        out.put_u32_le(e.uncompressed as u32);
    }
    out
}

/// The central directory header of an entry whose local header starts at `offset`.
pub(crate) fn central_header(e: &EntryFacts, offset: u64) -> Vec<u8> {
    let name = name_bytes(e.name);
    let (time, date) = dos_datetime(e.modified);
    let far = offset >= MAX32;
    // Only fields marked 0xFFFFFFFF get a value in the ZIP64 field, in this order.
    let mut extra = Vec::new();
    if e.zip64 {
        extra.put_u64_le(e.uncompressed);
        extra.put_u64_le(e.compressed);
    }
    if far {
        extra.put_u64_le(offset);
    }
    let extra_len = if extra.is_empty() { 0 } else { 4 + extra.len() };
    let mut out = Vec::with_capacity(46 + name.len() + extra_len);
    out.put_u32_le(CENTRAL_SIG);
    out.put_u16_le(e.version(e.zip64 || far));
    out.put_u16_le(e.version(e.zip64 || far));
    out.put_u16_le(e.flags());
    out.put_u16_le(e.method());
    out.put_u16_le(time);
    out.put_u16_le(date);
    out.put_u32_le(e.crc);
    if e.zip64 {
        out.put_u32_le(MAX32 as u32);
        out.put_u32_le(MAX32 as u32);
    } else {
        out.put_u32_le(e.compressed as u32);
        out.put_u32_le(e.uncompressed as u32);
    }
    out.put_u16_le(name.len() as u16);
    out.put_u16_le(extra_len as u16);
    out.put_u16_le(0); // comment
    out.put_u16_le(0); // disk
    out.put_u16_le(0); // internal attributes
    out.put_u32_le(0); // external attributes
    out.put_u32_le(if far { MAX32 as u32 } else { offset as u32 });
    out.put_slice(name);
    if !extra.is_empty() {
        out.put_u16_le(0x0001);
        out.put_u16_le(extra.len() as u16);
        out.put_slice(&extra);
    }
    out
}

/// The end records for `entries` entries whose central directory spans `cd_offset .. cd_offset + cd_size`.
pub(crate) fn end_records(entries: u64, cd_offset: u64, cd_size: u64, force_zip64: bool) -> Vec<u8> {
    let zip64 = force_zip64 || entries >= MAX16 || cd_offset >= MAX32 || cd_size >= MAX32;
    let mut out = Vec::with_capacity(98);
    if zip64 {
        let record_at = cd_offset + cd_size;
        out.put_u32_le(ZIP64_END_SIG);
        out.put_u64_le(44); // size of the rest of the record
        out.put_u16_le(45);
        out.put_u16_le(45);
        out.put_u32_le(0); // this disk
        out.put_u32_le(0); // disk of the central directory
        out.put_u64_le(entries);
        out.put_u64_le(entries);
        out.put_u64_le(cd_size);
        out.put_u64_le(cd_offset);
        out.put_u32_le(ZIP64_LOCATOR_SIG);
        out.put_u32_le(0);
        out.put_u64_le(record_at);
        out.put_u32_le(1);
    }
    out.put_u32_le(END_SIG);
    out.put_u16_le(0);
    out.put_u16_le(0);
    // Readers (the zip crate among them) look for the ZIP64 record only behind these markers.
    let (count, size, at) = if zip64 {
        (MAX16, MAX32, MAX32)
    } else {
        (entries, cd_size, cd_offset)
    };
    out.put_u16_le(count as u16);
    out.put_u16_le(count as u16);
    out.put_u32_le(size as u32);
    out.put_u32_le(at as u32);
    out.put_u16_le(0); // comment
    out
}

/// Whether an entry of `len` bytes needs ZIP64 sizes; deflating random bytes can grow them a little.
pub(super) fn needs_zip64(len: u64, format: ZipFormat) -> bool {
    match format {
        ZipFormat::Deflated => len.saturating_add(len / 1024 + 1024) >= MAX32,
        ZipFormat::Stored | ZipFormat::StoredCrcFirst => len >= MAX32,
    }
}

pub(super) fn facts(
    entry: &ZipEntry,
    format: ZipFormat,
    force_zip64: bool,
    crc: u32,
    compressed: u64,
) -> EntryFacts<'_> {
    EntryFacts {
        name: &entry.name,
        deflated: format == ZipFormat::Deflated,
        descriptor: format != ZipFormat::StoredCrcFirst,
        zip64: force_zip64 || needs_zip64(entry.content.len(), format),
        crc,
        compressed,
        uncompressed: entry.content.len(),
        modified: entry.modified,
    }
}

/// The exact size of the archive, known up front for stored formats only.
pub(crate) fn archive_len(entries: &[ZipEntry], format: ZipFormat, force_zip64: bool) -> Option<u64> {
    if format == ZipFormat::Deflated {
        return None;
    }
    let mut offset = 0u64;
    let mut offsets = Vec::with_capacity(entries.len());
    for entry in entries {
        let f = facts(entry, format, force_zip64, 0, entry.content.len());
        offsets.push(offset);
        offset += local_header(&f).len() as u64 + entry.content.len();
        if f.descriptor {
            offset += data_descriptor(&f).len() as u64;
        }
    }
    let cd_offset = offset;
    for (entry, at) in entries.iter().zip(offsets) {
        let f = facts(entry, format, force_zip64, 0, entry.content.len());
        offset += central_header(&f, at).len() as u64;
    }
    let ends = end_records(entries.len() as u64, cd_offset, offset - cd_offset, force_zip64);
    Some(offset + ends.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_an_entry_past_4_gib() {
        let big = 5u64 << 30;
        let f = EntryFacts {
            name: "big.mp4",
            deflated: false,
            descriptor: true,
            zip64: needs_zip64(big, ZipFormat::Stored),
            crc: 0xdead_beef,
            compressed: big,
            uncompressed: big,
            modified: 1_700_000_000,
        };
        assert!(
            f.zip64 && !needs_zip64(MAX32 - 1, ZipFormat::Stored) && needs_zip64(MAX32 - 2000, ZipFormat::Deflated)
        );
        let local = local_header(&f);
        assert_eq!(u16::from_le_bytes([local[4], local[5]]), 45);
        assert_eq!(&local[18..26], &[0xff; 8]);
        assert_eq!(u16::from_le_bytes([local[28], local[29]]), 20);
        let extra = &local[30 + 7..];
        assert_eq!(extra[..4], [1, 0, 16, 0]);
        assert_eq!(u64::from_le_bytes(extra[4..12].try_into().unwrap()), big);
        assert_eq!(u64::from_le_bytes(extra[12..20].try_into().unwrap()), big);

        let descriptor = data_descriptor(&f);
        assert_eq!(descriptor.len(), 24);
        assert_eq!(u64::from_le_bytes(descriptor[8..16].try_into().unwrap()), big);

        // Far offset and big sizes: all three values, in order, behind 0xFFFFFFFF markers.
        let central = central_header(&f, 6u64 << 30);
        assert_eq!(&central[20..28], &[0xff; 8]);
        assert_eq!(&central[42..46], &[0xff; 4]);
        let extra = &central[46 + 7..];
        assert_eq!(extra[..4], [1, 0, 24, 0]);
        let values: Vec<u64> = extra[4..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, [big, big, 6u64 << 30]);
        // A small entry far into the archive carries only its offset.
        let small = EntryFacts {
            zip64: false,
            compressed: 10,
            uncompressed: 10,
            ..f
        };
        let central = central_header(&small, 6u64 << 30);
        assert_eq!(u32::from_le_bytes(central[20..24].try_into().unwrap()), 10);
        assert_eq!(central[46 + 7..], [1, 0, 8, 0, 0, 0, 0, 0x80, 1, 0, 0, 0]);

        let ends = end_records(3, 6u64 << 30, 300, false);
        assert_eq!(ends.len(), 56 + 20 + 22);
        assert_eq!(u64::from_le_bytes(ends[48..56].try_into().unwrap()), 6u64 << 30);
        assert_eq!(u64::from_le_bytes(ends[64..72].try_into().unwrap()), (6u64 << 30) + 300);
        assert_eq!(&ends[76 + 8..76 + 20], &[0xff; 12]);
        assert_eq!(end_records(3, 1000, 300, false).len(), 22);
    }
}
