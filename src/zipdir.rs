//! A zip archive's central directory, read from byte ranges (a stored archive is checked
//! and restored with ranged GETs, never downloaded whole): find the end record in the
//! archive's tail (ZIP64 too), then parse the directory it points at. Entry data is reached
//! through the local header at the entry's offset.

/// Bytes read from the end of an archive to find its end record: the record (22 bytes),
/// the longest comment it may carry (65,535), and the ZIP64 locator before it (20).
pub const TAIL_LEN: u64 = 22 + 65_535 + 20;
/// The fixed part of a local file header; the name and extra field follow.
pub const LOCAL_HEADER_LEN: u64 = 30;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Most entries believed: Wix packs at most 1000 files an archive; a bad count must not
/// allocate without bound.
const MAX_ENTRIES: u64 = 1_000_000;

/// One file in the archive, as its central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's path inside the archive (`/`-separated).
    pub name: String,
    pub crc32: u32,
    pub compressed_size: u64,
    /// Uncompressed size.
    pub size: u64,
    /// 0 stored, 8 deflated.
    pub method: u16,
    pub local_header_offset: u64,
    pub flags: u16,
}

impl Entry {
    /// A directory entry (no content of its own).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// The last segment of the entry's path.
    pub fn file_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

/// Why the bytes are not a readable zip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    #[error("no end-of-central-directory record: not a zip archive")]
    NoEndRecord,
    #[error("the zip's end record is damaged: {0}")]
    Damaged(&'static str),
    #[error("the zip spans several disks")]
    MultiDisk,
    #[error("the zip entry's local header is damaged")]
    BadLocalHeader,
}

/// Where the central directory is, as the end record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directory {
    pub offset: u64,
    pub size: u64,
    pub entries: u64,
}

/// What the tail says: the directory's place, or that the ZIP64 end record must be read
/// first from `at` (it lies before the tail that was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    Directory(Directory),
    Zip64RecordAt(u64),
}

/// Finds the central directory from `tail`, the last bytes of an archive of `total` bytes.
pub fn locate(tail: &[u8], total: u64) -> Result<Located, ZipError> {
    let tail_start = total
        .checked_sub(tail.len() as u64)
        .ok_or(ZipError::Damaged("the tail is longer than the archive"))?;
    let at = find_end_record(tail).ok_or(ZipError::NoEndRecord)?;
    let eocd = &tail[at..];
    let disk = le16(eocd, 4);
    let cd_disk = le16(eocd, 6);
    let entries = u64::from(le16(eocd, 10));
    let size = u64::from(le32(eocd, 12));
    let offset = u64::from(le32(eocd, 16));
    let needs_zip64 = entries == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff;
    if at >= 20 && le32(tail, at - 20) == ZIP64_LOCATOR_SIG {
        let locator = &tail[at - 20..at];
        if le32(locator, 16) > 1 {
            return Err(ZipError::MultiDisk);
        }
        let record = le64(locator, 8);
        return match record.checked_sub(tail_start) {
            Some(rel) if rel as usize + 56 <= tail.len() => {
                parse_zip64_record(&tail[rel as usize..]).map(Located::Directory)
            }
            _ => Ok(Located::Zip64RecordAt(record)),
        };
    }
    if needs_zip64 {
        return Err(ZipError::Damaged("ZIP64 sizes without a ZIP64 locator"));
    }
    if disk != 0 || cd_disk != 0 {
        return Err(ZipError::MultiDisk);
    }
    check_range(offset, size, total)?;
    Ok(Located::Directory(Directory { offset, size, entries }))
}

/// The directory's place from a ZIP64 end record (its first 56 bytes or more).
pub fn parse_zip64_record(record: &[u8]) -> Result<Directory, ZipError> {
    if record.len() < 56 || le32(record, 0) != ZIP64_EOCD_SIG {
        return Err(ZipError::Damaged("the ZIP64 end record is missing"));
    }
    if le32(record, 16) != 0 || le32(record, 20) != 0 {
        return Err(ZipError::MultiDisk);
    }
    Ok(Directory {
        entries: le64(record, 32),
        size: le64(record, 40),
        offset: le64(record, 48),
    })
}

/// Checks that a directory of `size` bytes at `offset` lies inside an archive of `total`.
pub fn check_range(offset: u64, size: u64, total: u64) -> Result<(), ZipError> {
    match offset.checked_add(size) {
        Some(end) if end <= total => Ok(()),
        _ => Err(ZipError::Damaged("the central directory lies outside the archive")),
    }
}

/// The entries of a central directory (exactly `directory.size` bytes).
pub fn parse_directory(bytes: &[u8], directory: &Directory) -> Result<Vec<Entry>, ZipError> {
    if directory.entries > MAX_ENTRIES {
        return Err(ZipError::Damaged("the entry count is implausible"));
    }
    let mut entries = Vec::with_capacity(directory.entries.min(10_000) as usize);
    let mut at = 0usize;
    while at + 46 <= bytes.len() && le32(bytes, at) == CENTRAL_SIG {
        let h = &bytes[at..];
        let flags = le16(h, 8);
        let method = le16(h, 10);
        let crc32 = le32(h, 16);
        let mut compressed_size = u64::from(le32(h, 20));
        let mut size = u64::from(le32(h, 24));
        let name_len = usize::from(le16(h, 28));
        let extra_len = usize::from(le16(h, 30));
        let comment_len = usize::from(le16(h, 32));
        let mut local_header_offset = u64::from(le32(h, 42));
        let end = 46 + name_len + extra_len + comment_len;
        if h.len() < end {
            return Err(ZipError::Damaged("a directory entry runs past the directory"));
        }
        let raw_name = &h[46..46 + name_len];
        let extra = &h[46 + name_len..46 + name_len + extra_len];
        let mut name = if flags & 0x0800 != 0 {
            String::from_utf8_lossy(raw_name).into_owned()
        } else {
            cp437(raw_name)
        };
        for (id, data) in extra_fields(extra) {
            match id {
                // ZIP64: the 64-bit values of the fields that are 0xFFFFFFFF, in this order.
                0x0001 => {
                    let mut values = data.chunks_exact(8).map(|c| le64(c, 0));
                    if size == 0xffff_ffff {
                        size = values.next().ok_or(ZipError::Damaged("a ZIP64 size is missing"))?;
                    }
                    if compressed_size == 0xffff_ffff {
                        compressed_size = values.next().ok_or(ZipError::Damaged("a ZIP64 size is missing"))?;
                    }
                    if local_header_offset == 0xffff_ffff {
                        local_header_offset = values.next().ok_or(ZipError::Damaged("a ZIP64 offset is missing"))?;
                    }
                }
                // Info-ZIP Unicode Path: the UTF-8 name of an entry whose name is not flagged UTF-8.
                0x7075 if data.len() > 5 && data[0] == 1 => {
                    if let Ok(utf8) = std::str::from_utf8(&data[5..]) {
                        name = utf8.to_owned();
                    }
                }
                _ => {}
            }
        }
        entries.push(Entry {
            name,
            crc32,
            compressed_size,
            size,
            method,
            local_header_offset,
            flags,
        });
        if entries.len() as u64 > MAX_ENTRIES {
            return Err(ZipError::Damaged("the entry count is implausible"));
        }
        at += end;
    }
    if entries.len() as u64 != directory.entries {
        return Err(ZipError::Damaged(
            "the directory holds another number of entries than the end record says",
        ));
    }
    Ok(entries)
}

/// Where an entry's data starts, from the first bytes of its local header (at least
/// [`LOCAL_HEADER_LEN`]).
pub fn data_offset(entry: &Entry, local_header: &[u8]) -> Result<u64, ZipError> {
    if local_header.len() < LOCAL_HEADER_LEN as usize || le32(local_header, 0) != LOCAL_SIG {
        return Err(ZipError::BadLocalHeader);
    }
    let name_len = u64::from(le16(local_header, 26));
    let extra_len = u64::from(le16(local_header, 28));
    entry
        .local_header_offset
        .checked_add(LOCAL_HEADER_LEN + name_len + extra_len)
        .ok_or(ZipError::BadLocalHeader)
}

/// Inflates a raw deflate stream (a zip entry's data, method 8) chunk by chunk, so an entry
/// of any size is restored at constant memory. A stream that ends before its deflate end
/// is an error.
pub fn inflate<S>(input: S) -> impl futures_util::Stream<Item = Result<bytes::Bytes, String>> + Unpin
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
{
    use bytes::Buf;
    use flate2::{Decompress, FlushDecompress, Status};
    use futures_util::StreamExt;

    const OUT: usize = 64 * 1024;
    struct State<S> {
        input: S,
        inflater: Decompress,
        pending: bytes::Bytes,
        input_done: bool,
        done: bool,
    }
    let state = State {
        input,
        inflater: Decompress::new(false),
        pending: bytes::Bytes::new(),
        input_done: false,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if st.pending.is_empty() && !st.input_done {
                match st.input.next().await {
                    Some(Ok(chunk)) => st.pending = chunk,
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    None => st.input_done = true,
                }
            }
            let mut out = vec![0u8; OUT];
            let (in_before, out_before) = (st.inflater.total_in(), st.inflater.total_out());
            let flush = if st.input_done {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let status = match st.inflater.decompress(&st.pending, &mut out, flush) {
                Ok(status) => status,
                Err(e) => {
                    st.done = true;
                    return Some((Err(format!("the entry is not valid deflate data: {e}")), st));
                }
            };
            let consumed = (st.inflater.total_in() - in_before) as usize;
            let produced = (st.inflater.total_out() - out_before) as usize;
            st.pending.advance(consumed);
            if status == Status::StreamEnd {
                st.done = true;
            } else if consumed == 0 && produced == 0 && (st.input_done || !st.pending.is_empty()) {
                st.done = true;
                return Some((Err("the entry's deflate data ends early".to_owned()), st));
            }
            if produced > 0 {
                out.truncate(produced);
                return Some((Ok(bytes::Bytes::from(out)), st));
            }
        }
    }))
}

/// The last end-of-central-directory signature whose comment length fits the tail.
fn find_end_record(tail: &[u8]) -> Option<usize> {
    if tail.len() < 22 {
        return None;
    }
    (0..=tail.len() - 22)
        .rev()
        .find(|&i| le32(tail, i) == EOCD_SIG && i + 22 + usize::from(le16(tail, i + 20)) == tail.len())
        .or_else(|| (0..=tail.len() - 22).rev().find(|&i| le32(tail, i) == EOCD_SIG))
}

fn extra_fields(mut extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if extra.len() < 4 {
            return None;
        }
        let id = le16(extra, 0);
        let len = usize::from(le16(extra, 2));
        let data = extra.get(4..4 + len)?;
        extra = &extra[4 + len..];
        Some((id, data))
    })
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Code page 437, the zip format's default for names not flagged UTF-8.
fn cp437(bytes: &[u8]) -> String {
    const HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    let high: Vec<char> = HIGH.chars().collect();
    bytes
        .iter()
        .map(|&b| {
            if b < 0x80 {
                b as char
            } else {
                high[usize::from(b - 0x80)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])], deflate: bool, comment: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let method = if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, content) in files {
            w.start_file(*name, options).unwrap();
            w.write_all(content).unwrap();
        }
        w.set_comment(comment);
        w.finish().unwrap().into_inner()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Entry>, ZipError> {
        let total = bytes.len() as u64;
        let tail = &bytes[bytes.len().saturating_sub(TAIL_LEN as usize)..];
        let dir = match locate(tail, total)? {
            Located::Directory(d) => d,
            Located::Zip64RecordAt(at) => parse_zip64_record(&bytes[at as usize..])?,
        };
        check_range(dir.offset, dir.size, total)?;
        parse_directory(&bytes[dir.offset as usize..(dir.offset + dir.size) as usize], &dir)
    }

    #[test]
    fn stored_and_deflated_entries_with_names_sizes_and_crcs() {
        for deflate in [false, true] {
            let big = vec![7u8; 10_000];
            let bytes = zip_of(
                &[
                    ("a1_x~mv2.jpg", b"hello"),
                    ("Shop/Summer/été.png", &big),
                    ("Shop/", b""),
                ],
                deflate,
                "a comment",
            );
            let entries = read_all(&bytes).unwrap();
            assert_eq!(entries.len(), 3);
            assert_eq!(entries[0].name, "a1_x~mv2.jpg");
            assert_eq!(entries[0].size, 5);
            assert_eq!(entries[0].crc32, crc32fast::hash(b"hello"));
            assert_eq!(entries[1].file_name(), "été.png");
            assert_eq!(entries[1].size, 10_000);
            assert_eq!(entries[1].crc32, crc32fast::hash(&big));
            assert_eq!(entries[1].method, if deflate { 8 } else { 0 });
            assert!(entries[2].is_dir());
            // The data of each entry starts where its local header says.
            for e in &entries[..2] {
                let at = e.local_header_offset as usize;
                let start = data_offset(e, &bytes[at..at + 30]).unwrap() as usize;
                let data = &bytes[start..start + e.compressed_size as usize];
                if !deflate {
                    assert_eq!(crc32fast::hash(data), e.crc32);
                }
            }
        }
    }

    #[test]
    fn zip64_archives_are_read() {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        w.start_file("big.bin", options).unwrap();
        w.write_all(b"not really big").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let entries = read_all(&bytes).unwrap();
        assert_eq!(entries[0].size, 14);
        assert_eq!(entries[0].crc32, crc32fast::hash(b"not really big"));
    }

    /// One stored entry `x` holding `abc`, written with ZIP64 markers everywhere: sizes and
    /// offset in the ZIP64 extra field, the counts in a ZIP64 end record and its locator.
    fn hand_made_zip64() -> (Vec<u8>, u64) {
        let data = b"abc";
        let crc = crc32fast::hash(data);
        let mut z = Vec::new();
        z.extend(LOCAL_SIG.to_le_bytes());
        z.extend(45u16.to_le_bytes()); // version needed
        z.extend([0u8; 6]); // flags, method, time
        z.extend([0u8; 2]); // date
        z.extend(crc.to_le_bytes());
        z.extend(3u32.to_le_bytes());
        z.extend(3u32.to_le_bytes());
        z.extend(1u16.to_le_bytes()); // name length
        z.extend(0u16.to_le_bytes()); // extra length
        z.extend(b"x");
        z.extend(data);
        let cd_offset = z.len() as u64;
        z.extend(CENTRAL_SIG.to_le_bytes());
        z.extend(45u16.to_le_bytes()); // made by
        z.extend(45u16.to_le_bytes()); // needed
        z.extend([0u8; 8]); // flags, method, time, date
        z.extend(crc.to_le_bytes());
        z.extend(0xffff_ffffu32.to_le_bytes()); // compressed
        z.extend(0xffff_ffffu32.to_le_bytes()); // uncompressed
        z.extend(1u16.to_le_bytes()); // name length
        z.extend(28u16.to_le_bytes()); // extra length: 4 + 24
        z.extend(0u16.to_le_bytes()); // comment length
        z.extend([0u8; 8]); // disk, internal and external attributes
        z.extend(0xffff_ffffu32.to_le_bytes()); // local header offset
        z.extend(b"x");
        z.extend(1u16.to_le_bytes());
        z.extend(24u16.to_le_bytes());
        z.extend(3u64.to_le_bytes()); // uncompressed
        z.extend(3u64.to_le_bytes()); // compressed
        z.extend(0u64.to_le_bytes()); // offset
        let cd_size = z.len() as u64 - cd_offset;
        let record_at = z.len() as u64;
        z.extend(ZIP64_EOCD_SIG.to_le_bytes());
        z.extend(44u64.to_le_bytes());
        z.extend([45, 0, 45, 0]);
        z.extend([0u8; 8]); // this disk, directory disk
        z.extend(1u64.to_le_bytes());
        z.extend(1u64.to_le_bytes());
        z.extend(cd_size.to_le_bytes());
        z.extend(cd_offset.to_le_bytes());
        z.extend(ZIP64_LOCATOR_SIG.to_le_bytes());
        z.extend(0u32.to_le_bytes());
        z.extend(record_at.to_le_bytes());
        z.extend(1u32.to_le_bytes());
        z.extend(EOCD_SIG.to_le_bytes());
        z.extend([0u8; 4]); // disks
        z.extend(0xffffu16.to_le_bytes());
        z.extend(0xffffu16.to_le_bytes());
        z.extend(0xffff_ffffu32.to_le_bytes());
        z.extend(0xffff_ffffu32.to_le_bytes());
        z.extend(0u16.to_le_bytes());
        (z, record_at)
    }

    #[test]
    fn a_hand_made_zip64_end_record_is_followed() {
        let (z, record_at) = hand_made_zip64();
        let entries = read_all(&z).unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(
            (e.name.as_str(), e.size, e.compressed_size, e.local_header_offset),
            ("x", 3, 3, 0)
        );
        let start = data_offset(e, &z[..30]).unwrap() as usize;
        assert_eq!(&z[start..start + 3], b"abc");
        // From a short tail the record lies before it: the caller is told where to read.
        let tail = &z[z.len() - 22 - 20..];
        assert_eq!(locate(tail, z.len() as u64), Ok(Located::Zip64RecordAt(record_at)));
    }

    #[test]
    fn damaged_and_foreign_bytes_are_errors_not_panics() {
        assert_eq!(read_all(b""), Err(ZipError::NoEndRecord));
        assert_eq!(
            read_all(b"<html>Nothing to download</html>"),
            Err(ZipError::NoEndRecord)
        );
        let good = zip_of(&[("a", b"1"), ("b", b"22")], false, "");
        // Cut anywhere, flip anything: never a panic.
        for cut in 0..good.len() {
            let _ = read_all(&good[..cut]);
            let _ = read_all(&good[cut..]);
        }
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..2000 {
            let mut bad = good.clone();
            let i = rng.usize(..bad.len());
            bad[i] = rng.u8(..);
            let _ = read_all(&bad);
        }
        // A directory that claims more entries than it holds.
        let mut lying = good.clone();
        let n = lying.len();
        lying[n - 12..n - 10].copy_from_slice(&3u16.to_le_bytes());
        assert!(matches!(read_all(&lying), Err(ZipError::Damaged(_))));
    }

    #[tokio::test]
    async fn deflated_entries_inflate_in_chunks_and_truncation_is_an_error() {
        use futures_util::StreamExt;
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let bytes = zip_of(&[("f.bin", &content)], true, "");
        let entries = read_all(&bytes).unwrap();
        let e = &entries[0];
        let at = e.local_header_offset as usize;
        let start = data_offset(e, &bytes[at..at + 30]).unwrap() as usize;
        let data = bytes[start..start + e.compressed_size as usize].to_vec();
        let chunks = |cut: usize| {
            let data = data[..cut].to_vec();
            futures_util::stream::iter(
                data.chunks(777)
                    .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            )
        };
        let out: Vec<Result<bytes::Bytes, String>> = inflate(chunks(data.len())).collect().await;
        let joined: Vec<u8> = out.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(joined, content);
        let cut: Vec<Result<bytes::Bytes, String>> = inflate(chunks(data.len() / 2)).collect().await;
        assert!(cut.last().unwrap().is_err(), "a cut stream is an error");
    }

    #[test]
    fn names_in_cp437_and_unicode_path_fields() {
        assert_eq!(cp437(b"caf\x82.jpg"), "café.jpg");
        let extra = {
            let mut e = vec![0x75, 0x70];
            let name = "日本.png".as_bytes();
            e.extend(((5 + name.len()) as u16).to_le_bytes());
            e.push(1);
            e.extend([0u8; 4]);
            e.extend(name);
            e
        };
        let fields: Vec<(u16, &[u8])> = extra_fields(&extra).collect();
        assert_eq!(fields[0].0, 0x7075);
    }
}
