//! Archive zips written while they are sent: stored or deflated entries, ZIP64 when needed.
//!
//! Only a chunk of output and a few numbers per entry (CRC, sizes, offset) are ever held, so
//! an archive of many gigabytes costs no more memory than a small one. Layout:
//! `[local header, data, data descriptor?]* central directory [ZIP64 end record + locator]? end record`.

mod layout;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress, Status};

pub(crate) use layout::{archive_len, ZipEntry};

use crate::config::ZipFormat;
use crate::content::{fill, Content, CHUNK};
use layout::{central_header, data_descriptor, end_records, facts, local_header};

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
    use super::layout::{CENTRAL_SIG, DESCRIPTOR_SIG, FLAG_DESCRIPTOR};
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
