//! Archive zips written while they are sent: stored or deflated entries, ZIP64 when needed.
//!
//! Only a chunk of output and a few numbers per entry (CRC, sizes, offset) are ever held, so
//! an archive of many gigabytes costs no more memory than a small one. Layout:
//! `[local header, data, data descriptor?]* central directory [ZIP64 end record + locator]? end record`.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress, Status};

use crate::config::ZipFormat;
use crate::content::{fill, Content, CHUNK};
use crate::dates::dos_datetime;

const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;

const FLAG_DESCRIPTOR: u16 = 0x0008;
const FLAG_UTF8: u16 = 0x0800;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
const MAX32: u64 = 0xFFFF_FFFF;
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
fn needs_zip64(len: u64, format: ZipFormat) -> bool {
    match format {
        ZipFormat::Deflated => len.saturating_add(len / 1024 + 1024) >= MAX32,
        ZipFormat::Stored | ZipFormat::StoredCrcFirst => len >= MAX32,
    }
}

fn facts(entry: &ZipEntry, format: ZipFormat, force_zip64: bool, crc: u32, compressed: u64) -> EntryFacts<'_> {
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

/// What was written of an entry, for its central directory header.
struct Written {
    offset: u64,
    crc: u32,
    compressed: u64,
}

enum Step {
    Header(usize),
    Data { entry: usize, pos: u64 },
    Finish(usize),
    Descriptor(usize),
    Central(usize),
    End,
    Done,
}

/// A zip made chunk by chunk; each chunk is about [`CHUNK`] bytes.
pub(crate) struct ZipStream {
    entries: Vec<ZipEntry>,
    format: ZipFormat,
    force_zip64: bool,
    step: Step,
    offset: u64,
    written: Vec<Written>,
    cd_offset: u64,
    crc: crc32fast::Hasher,
    deflater: Option<Compress>,
    scratch: Vec<u8>,
    out: BytesMut,
}

impl ZipStream {
    pub(crate) fn new(entries: Vec<ZipEntry>, format: ZipFormat) -> ZipStream {
        let deflater = (format == ZipFormat::Deflated).then(|| Compress::new(Compression::fast(), false));
        ZipStream {
            written: Vec::with_capacity(entries.len()),
            entries,
            format,
            force_zip64: false,
            step: Step::Header(0),
            offset: 0,
            cd_offset: 0,
            crc: crc32fast::Hasher::new(),
            deflater,
            scratch: Vec::new(),
            out: BytesMut::new(),
        }
    }

    /// Writes ZIP64 records even where no size or count needs them, so tests can check them on small archives.
    #[cfg(test)]
    pub(crate) fn force_zip64(mut self) -> ZipStream {
        self.force_zip64 = true;
        self
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
    }

    /// The next chunk, `None` once the end record was sent.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        self.out.reserve(CHUNK + 1024);
        while self.out.len() < CHUNK {
            if !self.advance() {
                break;
            }
        }
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// One step of the layout; `false` once there is nothing more to write.
    fn advance(&mut self) -> bool {
        match self.step {
            Step::Header(i) if i == self.entries.len() => {
                self.cd_offset = self.offset;
                self.step = Step::Central(0);
            }
            Step::Header(i) => {
                let crc = match self.format {
                    ZipFormat::StoredCrcFirst => self.entries[i].content.crc32(),
                    _ => 0,
                };
                let len = self.entries[i].content.len();
                let known = if self.format == ZipFormat::Deflated { 0 } else { len };
                let header = local_header(&facts(&self.entries[i], self.format, self.force_zip64, crc, known));
                self.written.push(Written {
                    offset: self.offset,
                    crc,
                    compressed: known,
                });
                self.emit(&header);
                self.crc = crc32fast::Hasher::new();
                self.step = Step::Data { entry: i, pos: 0 };
            }
            Step::Data { entry, pos } => {
                let len = self.entries[entry].content.len();
                if pos >= len {
                    self.step = if self.format == ZipFormat::Deflated {
                        Step::Finish(entry)
                    } else {
                        Step::Descriptor(entry)
                    };
                    return true;
                }
                let room = CHUNK.saturating_sub(self.out.len()).max(4096);
                let n = (len - pos).min(room as u64) as usize;
                if self.format == ZipFormat::Deflated {
                    self.deflate_data(entry, pos, n);
                } else {
                    self.store_data(entry, pos, n);
                }
                self.step = Step::Data {
                    entry,
                    pos: pos + n as u64,
                };
            }
            Step::Finish(i) => {
                self.deflate(&[], FlushCompress::Finish);
                let compressed = self.deflater.as_ref().map_or(0, Compress::total_out);
                if let Some(d) = self.deflater.as_mut() {
                    d.reset();
                }
                self.written[i].compressed = compressed;
                self.step = Step::Descriptor(i);
            }
            Step::Descriptor(i) => {
                let crc = std::mem::take(&mut self.crc).finalize();
                if self.format != ZipFormat::StoredCrcFirst {
                    self.written[i].crc = crc;
                    let w = &self.written[i];
                    let f = facts(&self.entries[i], self.format, self.force_zip64, w.crc, w.compressed);
                    let descriptor = data_descriptor(&f);
                    self.emit(&descriptor);
                }
                self.step = Step::Header(i + 1);
            }
            Step::Central(i) if i == self.entries.len() => self.step = Step::End,
            Step::Central(i) => {
                let w = &self.written[i];
                let f = facts(&self.entries[i], self.format, self.force_zip64, w.crc, w.compressed);
                let header = central_header(&f, w.offset);
                self.emit(&header);
                self.step = Step::Central(i + 1);
            }
            Step::End => {
                let cd_size = self.offset - self.cd_offset;
                let ends = end_records(self.entries.len() as u64, self.cd_offset, cd_size, self.force_zip64);
                self.emit(&ends);
                self.step = Step::Done;
            }
            Step::Done => return false,
        }
        true
    }

    fn store_data(&mut self, entry: usize, pos: u64, n: usize) {
        let start = self.out.len();
        match &self.entries[entry].content {
            Content::Generated { seed, .. } => {
                self.out.resize(start + n, 0);
                fill(*seed, pos, &mut self.out[start..]);
            }
            Content::Stored(bytes) => self.out.extend_from_slice(&bytes[pos as usize..pos as usize + n]),
        }
        self.crc.update(&self.out[start..]);
        self.offset += n as u64;
    }

    fn deflate_data(&mut self, entry: usize, pos: u64, n: usize) {
        let mut input = std::mem::take(&mut self.scratch);
        input.resize(n, 0);
        match &self.entries[entry].content {
            Content::Generated { seed, .. } => fill(*seed, pos, &mut input),
            Content::Stored(bytes) => input.copy_from_slice(&bytes[pos as usize..pos as usize + n]),
        }
        self.crc.update(&input);
        self.deflate(&input, FlushCompress::None);
        self.scratch = input;
    }

    /// Feeds `input` to the deflater (all of it; with `Finish`, until the stream ends).
    fn deflate(&mut self, input: &[u8], flush: FlushCompress) {
        let Some(deflater) = self.deflater.as_mut() else {
            return;
        };
        let mut consumed = 0;
        loop {
            let start = self.out.len();
            self.out.resize(start + CHUNK.max(input.len() - consumed + 1024), 0);
            let (before_in, before_out) = (deflater.total_in(), deflater.total_out());
            let status = deflater.compress(&input[consumed..], &mut self.out[start..], flush);
            let produced = (deflater.total_out() - before_out) as usize;
            consumed += (deflater.total_in() - before_in) as usize;
            self.out.truncate(start + produced);
            self.offset += produced as u64;
            let finished = match (status, flush) {
                (Ok(Status::StreamEnd), _) => true,
                (Ok(_), FlushCompress::Finish) => false,
                (Ok(_), _) => consumed >= input.len(),
                // Cannot happen with a sane buffer; stop rather than spin.
                (Err(_), _) => true,
            };
            if finished {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::seed_of;
    use std::io::{Cursor, Read};

    fn entry(name: &str, len: u64) -> ZipEntry {
        ZipEntry {
            name: name.into(),
            content: Content::Generated {
                seed: seed_of(name, 0),
                len,
            },
            modified: 1_700_000_000,
        }
    }

    fn collect(mut stream: ZipStream) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = stream.next_chunk() {
            assert!(chunk.len() <= 4 * CHUNK, "chunk of {}", chunk.len());
            out.extend_from_slice(&chunk);
        }
        out
    }

    fn read_back(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip the zip crate reads");
        (0..zip.len())
            .map(|i| {
                let mut e = zip.by_index(i).unwrap();
                let mut content = Vec::new();
                e.read_to_end(&mut content).expect("content with a matching CRC");
                (e.name().to_string(), content)
            })
            .collect()
    }

    /// Python's zipfile must read it too, when a python3 is at hand.
    fn python_reads(bytes: &[u8], expected_entries: usize) {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wix-emulator-zip-{}-{n}", std::process::id()));
        std::fs::write(&dir, bytes).unwrap();
        let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(len(z.infolist()))";
        let run = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&dir)
            .output();
        let _ = std::fs::remove_file(&dir);
        match run {
            Ok(out) if out.status.success() => {
                let count: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                assert_eq!(count, expected_entries);
            }
            Ok(out) => panic!("python zipfile refused it: {}", String::from_utf8_lossy(&out.stderr)),
            Err(_) => eprintln!("python3 not found; zipfile check skipped"),
        }
    }

    fn sample() -> Vec<ZipEntry> {
        vec![
            entry("a.jpg", 1000),
            entry("empty", 0),
            entry("dir/b ü.pdf", 200_000),
            entry("c.jpg", 7),
        ]
    }

    #[test]
    fn every_format_reads_back_with_exact_length() {
        for format in [ZipFormat::Stored, ZipFormat::StoredCrcFirst, ZipFormat::Deflated] {
            for force in [false, true] {
                let mut stream = ZipStream::new(sample(), format);
                if force {
                    stream = stream.force_zip64();
                }
                let bytes = collect(stream);
                if format != ZipFormat::Deflated {
                    assert_eq!(
                        archive_len(&sample(), format, force),
                        Some(bytes.len() as u64),
                        "{format:?}"
                    );
                }
                let entries = read_back(&bytes);
                let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, ["a.jpg", "empty", "dir/b ü.pdf", "c.jpg"], "{format:?} {force}");
                for ((_, content), e) in entries.iter().zip(sample()) {
                    assert_eq!(content, &e.content.to_vec());
                }
                python_reads(&bytes, 4);
            }
        }
        assert_eq!(archive_len(&sample(), ZipFormat::Deflated, false), None);
    }

    #[test]
    fn repeated_names_stay_repeated() {
        let bytes = collect(ZipStream::new(
            vec![entry("same.jpg", 10), entry("same.jpg", 20)],
            ZipFormat::Stored,
        ));
        let central = bytes.windows(4).filter(|w| *w == CENTRAL_SIG.to_le_bytes()).count();
        assert_eq!(central, 2);
        python_reads(&bytes, 2);
        // The zip crate keys entries by name: it shows only one of them.
        assert_eq!(zip::ZipArchive::new(Cursor::new(&bytes)).unwrap().len(), 1);
    }

    #[test]
    fn crc_first_has_no_descriptors_and_stored_has_sizes_up_front() {
        let bytes = collect(ZipStream::new(vec![entry("x", 100)], ZipFormat::StoredCrcFirst));
        assert!(!bytes.windows(4).any(|w| w == DESCRIPTOR_SIG.to_le_bytes()));
        let crc = u32::from_le_bytes(bytes[14..18].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&entry("x", 100).content.to_vec()));
        let bytes = collect(ZipStream::new(vec![entry("x", 100)], ZipFormat::Stored));
        assert_eq!(
            u16::from_le_bytes([bytes[6], bytes[7]]) & FLAG_DESCRIPTOR,
            FLAG_DESCRIPTOR
        );
        assert_eq!(u32::from_le_bytes(bytes[18..22].try_into().unwrap()), 100);
        assert_eq!(u32::from_le_bytes(bytes[22..26].try_into().unwrap()), 100);
    }

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

    #[test]
    fn more_than_65535_entries_switch_to_zip64() {
        let entries: Vec<ZipEntry> = (0..70_000).map(|i| entry(&format!("{i}"), i % 3)).collect();
        let len = archive_len(&entries, ZipFormat::Stored, false).unwrap();
        let bytes = collect(ZipStream::new(entries, ZipFormat::Stored));
        assert_eq!(bytes.len() as u64, len);
        let zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(zip.len(), 70_000);
        python_reads(&bytes, 70_000);
    }
}
