//! The media library the emulator serves: folders, files and Wix-shaped ids.

use fastrand::Rng;

/// Parent folder id of the site's top level.
pub const MEDIA_ROOT: &str = "media-root";
/// Parent folder id of deleted files.
pub const TRASH_ROOT: &str = "trash-root";
/// Parent folder id of files uploaded by site visitors.
pub const VISITOR_UPLOADS: &str = "visitor-uploads";

/// The folders and files of one emulated site, in a stable order.
#[derive(Clone, Debug, Default)]
pub struct Library {
    /// Every folder, parents before their children.
    pub folders: Vec<Folder>,
    /// Every file, in the order search and listing return them.
    pub files: Vec<FileRecord>,
}

/// One Media Manager folder.
#[derive(Clone, Debug)]
pub struct Folder {
    /// Folder id, `f<hex>`.
    pub id: String,
    /// Name shown in the Media Manager.
    pub display_name: String,
    /// `media-root` for top-level folders.
    pub parent_folder_id: String,
    /// Always `OK` in seeded libraries.
    pub state: String,
}

/// One Media Manager file.
#[derive(Clone, Debug)]
pub struct FileRecord {
    /// Wix file id, e.g. `d4dde1_<32 hex>~mv2.jpg`.
    pub id: String,
    /// Name shown in the Media Manager.
    pub display_name: String,
    /// Folder id, or one of the special roots.
    pub parent_folder_id: String,
    /// `IMAGE`, `VIDEO`, `AUDIO`, `DOCUMENT`, `VECTOR`, `ARCHIVE`, `OTHER`, …
    pub media_type: String,
    /// Private files are only reachable through temporary links.
    pub private: bool,
    /// `READY`, `PENDING` or `FAILED`.
    pub operation_status: String,
    /// `OK` or `DELETED`.
    pub state: String,
    /// Size of the original, in bytes.
    pub size_in_bytes: u64,
}

/// Media types with their weight in seeded libraries.
const MEDIA_TYPES: [(&str, u32); 7] = [
    ("IMAGE", 60),
    ("VIDEO", 10),
    ("AUDIO", 8),
    ("DOCUMENT", 10),
    ("VECTOR", 5),
    ("ARCHIVE", 4),
    ("OTHER", 3),
];

const FOLDER_NAMES: [&str; 12] = [
    "Products",
    "Blog",
    "Events",
    "Team",
    "Gallery",
    "Downloads",
    "Press",
    "Backgrounds",
    "Logos",
    "Podcasts",
    "Videos",
    "Archive",
];

impl Library {
    /// Deterministic library of `files` files over nested folders (depth up to 3, about files/60 folders, at least 3), with every media type (IMAGE mostly, VIDEO, AUDIO, DOCUMENT, VECTOR, ARCHIVE, OTHER), about 5% private, 2% PENDING (and a few FAILED), 1% state DELETED, sizes varied.
    pub fn seeded(files: usize, seed: u64) -> Library {
        let mut rng = Rng::with_seed(seed);
        let prefix = hex(&mut rng, 6);

        let folder_count = (files / 60).max(3);
        let mut folders: Vec<Folder> = Vec::with_capacity(folder_count);
        let mut depths: Vec<usize> = Vec::with_capacity(folder_count);
        for i in 0..folder_count {
            let nestable: Vec<usize> = (0..folders.len()).filter(|&k| depths[k] < 3).collect();
            let (parent, depth) = if i < 3 || nestable.is_empty() || rng.u32(0..3) == 0 {
                (MEDIA_ROOT.to_string(), 1)
            } else {
                let k = nestable[rng.usize(..nestable.len())];
                (folders[k].id.clone(), depths[k] + 1)
            };
            let base = FOLDER_NAMES[i % FOLDER_NAMES.len()];
            let display_name = match i / FOLDER_NAMES.len() {
                0 => base.to_string(),
                n => format!("{base} {}", n + 1),
            };
            folders.push(Folder {
                id: format!("f{}", hex(&mut rng, 24)),
                display_name,
                parent_folder_id: parent,
                state: "OK".into(),
            });
            depths.push(depth);
        }

        let total_weight: u32 = MEDIA_TYPES.iter().map(|(_, w)| w).sum();
        let mut types: Vec<&str> = (0..files)
            .map(|_| {
                let mut roll = rng.u32(0..total_weight);
                for (t, w) in MEDIA_TYPES {
                    if roll < w {
                        return t;
                    }
                    roll -= w;
                }
                "IMAGE"
            })
            .collect();
        // Spread positions so that every media type occurs whenever there is room.
        if files >= MEDIA_TYPES.len() {
            for (k, (t, _)) in MEDIA_TYPES.iter().enumerate() {
                types[k * files / MEDIA_TYPES.len()] = t;
            }
        }

        // Disjoint sets, so a test can tell why a file was skipped.
        let mut order: Vec<usize> = (0..files).collect();
        rng.shuffle(&mut order);
        let at_least_one = |n: usize, percent: usize, min_files: usize| {
            if files >= min_files {
                ((n * percent + 50) / 100).max(1)
            } else {
                0
            }
        };
        let k_private = at_least_one(files, 5, 10);
        let k_pending = at_least_one(files, 2, 10);
        let k_failed = if files >= 50 { (files / 200).max(1) } else { 0 };
        let k_deleted = at_least_one(files, 1, 50);
        let mut flags = vec![0u8; files];
        let mut cursor = order.into_iter();
        for (flag, count) in [(1, k_private), (2, k_pending), (3, k_failed), (4, k_deleted)] {
            for i in cursor.by_ref().take(count) {
                flags[i] = flag;
            }
        }

        let mut records = Vec::with_capacity(files);
        for (i, media_type) in types.into_iter().enumerate() {
            let body = hex(&mut rng, 32);
            let (id, display_name, size) = match media_type {
                "IMAGE" => {
                    let ext = if rng.u32(0..4) == 0 { "png" } else { "jpg" };
                    (
                        format!("{prefix}_{body}~mv2.{ext}"),
                        format!("IMG_{:04}.{ext}", 1000 + i),
                        rng.u64(20_000..8_000_000),
                    )
                }
                "VIDEO" => (
                    format!("{prefix}_{body}"),
                    format!("video-{i}.mp4"),
                    rng.u64(1_000_000..500_000_000),
                ),
                "AUDIO" => (
                    format!("{prefix}_{body}.mp3"),
                    format!("track-{i}.mp3"),
                    rng.u64(500_000..20_000_000),
                ),
                "DOCUMENT" => (
                    format!("{prefix}_{body}.pdf"),
                    format!("document-{i}.pdf"),
                    rng.u64(10_000..5_000_000),
                ),
                "VECTOR" => (
                    format!("{prefix}_{body}.svg"),
                    format!("logo-{i}.svg"),
                    rng.u64(1_000..200_000),
                ),
                "ARCHIVE" => (
                    format!("{prefix}_{body}.zip"),
                    format!("bundle-{i}.zip"),
                    rng.u64(100_000..50_000_000),
                ),
                _ => (
                    format!("{prefix}_{body}.csv"),
                    format!("data-{i}.csv"),
                    rng.u64(100..1_000_000),
                ),
            };
            let parent_folder_id = if rng.u32(0..10) == 0 {
                MEDIA_ROOT.to_string()
            } else {
                folders[rng.usize(..folders.len())].id.clone()
            };
            let flag = flags[i];
            records.push(FileRecord {
                id,
                display_name,
                parent_folder_id,
                media_type: media_type.to_string(),
                private: flag == 1,
                operation_status: match flag {
                    2 => "PENDING",
                    3 => "FAILED",
                    _ => "READY",
                }
                .into(),
                state: if flag == 4 { "DELETED" } else { "OK" }.into(),
                size_in_bytes: size,
            });
        }
        Library {
            folders,
            files: records,
        }
    }

    /// Plain library: `n` READY public IMAGE files in media-root, ids from `file_id(i)`.
    pub fn flat(n: usize) -> Library {
        let files = (0..n)
            .map(|i| FileRecord {
                id: Library::file_id(i),
                display_name: format!("image-{i}.jpg"),
                parent_folder_id: MEDIA_ROOT.into(),
                media_type: "IMAGE".into(),
                private: false,
                operation_status: "READY".into(),
                state: "OK".into(),
                size_in_bytes: 10_000 + (i as u64 % 1000) * 1_000,
            })
            .collect();
        Library {
            folders: Vec::new(),
            files,
        }
    }

    /// The i-th deterministic image id, e.g. "a1b2c3_<32 hex>~mv2.jpg".
    pub fn file_id(i: usize) -> String {
        let mut rng = Rng::with_seed(0x5eed_0000_0000_0000 ^ i as u64);
        format!("a1b2c3_{}~mv2.jpg", hex(&mut rng, 32))
    }

    /// The file with this bare id.
    pub fn file(&self, id: &str) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.id == id)
    }

    /// The folder with this id.
    pub fn folder(&self, id: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| f.id == id)
    }
}

/// Bare file id from an id or a Wix media URL (the SDK's rule: drop `#…`, `?…`, `wix:`, `<type>://v1/`, a leading `ugd/`, take the first `/` segment).
pub fn normalize_file_id(s: &str) -> String {
    let s = s.split('#').next().unwrap_or_default();
    let s = s.split('?').next().unwrap_or_default();
    let s = s.strip_prefix("wix:").unwrap_or(s);
    let s = match s.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            rest.strip_prefix("v1/").unwrap_or(rest)
        }
        _ => s,
    };
    let s = s.strip_prefix("ugd/").unwrap_or(s);
    s.split('/').next().unwrap_or_default().to_string()
}

/// Deterministic bytes the emulator serves as the content of file `id`.
pub fn file_content(id: &str) -> Vec<u8> {
    let mut out = format!("wix-emulator content of {id}\n").into_bytes();
    let mut rng = Rng::with_seed(fnv64(id.as_bytes()));
    out.extend((0..64).map(|_| rng.u8(..)));
    out
}

/// FNV-1a: stable across runs and platforms, unlike the std hasher.
pub(crate) fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn hex(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
        .collect()
}

/// RFC 3339 UTC timestamp with milliseconds, as Wix writes them.
pub(crate) fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seeded_is_deterministic_and_varied() {
        let a = Library::seeded(250, 7);
        let b = Library::seeded(250, 7);
        let ids_a: Vec<_> = a.files.iter().map(|f| f.id.clone()).collect();
        let ids_b: Vec<_> = b.files.iter().map(|f| f.id.clone()).collect();
        assert_eq!(ids_a, ids_b);
        assert_eq!(a.files.len(), 250);
        assert!(a.folders.len() >= 3);
        let unique: HashSet<_> = ids_a.iter().collect();
        assert_eq!(unique.len(), 250);
        for (t, _) in MEDIA_TYPES {
            assert!(a.files.iter().any(|f| f.media_type == t), "{t}");
        }
        assert!(a.files.iter().any(|f| f.private));
        assert!(a.files.iter().any(|f| f.operation_status == "PENDING"));
        assert!(a.files.iter().any(|f| f.operation_status == "FAILED"));
        assert!(a.files.iter().any(|f| f.state == "DELETED"));
        assert!(a.files.iter().any(|f| f.parent_folder_id == MEDIA_ROOT));
        assert!(a.folders.iter().any(|f| f.parent_folder_id != MEDIA_ROOT));
        for f in &a.files {
            assert!(f.id.chars().all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c)));
        }
        assert_ne!(
            ids_a,
            Library::seeded(250, 8)
                .files
                .iter()
                .map(|f| f.id.clone())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn flat_ids() {
        let lib = Library::flat(3);
        assert_eq!(lib.files[1].id, Library::file_id(1));
        let id = Library::file_id(0);
        assert_eq!(id.len(), "a1b2c3_".len() + 32 + "~mv2.jpg".len());
        assert!(lib.file(&id).is_some());
    }

    #[test]
    fn normalizes_like_the_sdk() {
        let id = "0abec0_b291a9349a0b4da59067f76287e386fb~mv2.jpg";
        for input in [
            id.to_string(),
            format!("wix:image://v1/{id}/leon.jpg#originWidth=3024&originHeight=4032"),
            format!("image://v1/{id}/leon.jpg"),
            format!("wix:document://v1/ugd/{id}/x.pdf"),
            format!("{id}?x=1"),
        ] {
            assert_eq!(normalize_file_id(&input), id, "{input}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
