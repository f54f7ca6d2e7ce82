//! The media library an emulator starts with: folders, files and Wix-shaped ids.

use std::ops::Range;

use fastrand::Rng;

use crate::content::generated_content;

/// Parent folder id of the site's top level.
pub const MEDIA_ROOT: &str = "media-root";
/// Parent folder id of deleted files.
pub const TRASH_ROOT: &str = "trash-root";
/// Parent folder id of files uploaded by site visitors.
pub const VISITOR_UPLOADS: &str = "visitor-uploads";

/// The folders and files of one emulated site, in a stable order (a value: the running emulator keeps its own copy).
#[derive(Clone, Debug, Default)]
pub struct Library {
    /// Every folder, parents before their children.
    pub folders: Vec<Folder>,
    /// Every file; search and listing sort them by `updatedDate` (newest first) unless asked otherwise.
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
    /// `IMAGE`, `VIDEO`, `AUDIO`, `DOCUMENT`, `VECTOR`, `ARCHIVE`, `MODEL3D`, `OTHER`, …
    pub media_type: String,
    /// Private files are only reachable through temporary links.
    pub private: bool,
    /// `READY`, `PENDING` or `FAILED`.
    pub operation_status: String,
    /// `OK` or `DELETED`.
    pub state: String,
    /// Size of the original in bytes; the emulator serves exactly this many.
    pub size_in_bytes: u64,
}

/// Media types with their weight in seeded libraries, and the part of the size range each
/// takes (videos at the top, vectors at the bottom), so sizes stay varied by type.
const MEDIA_TYPES: [(&str, u32, (f64, f64)); 8] = [
    ("IMAGE", 60, (0.05, 0.3)),
    ("VIDEO", 10, (0.5, 1.0)),
    ("AUDIO", 8, (0.3, 0.7)),
    ("DOCUMENT", 10, (0.05, 0.4)),
    ("VECTOR", 5, (0.0, 0.1)),
    ("ARCHIVE", 4, (0.3, 0.8)),
    ("MODEL3D", 2, (0.4, 0.9)),
    ("OTHER", 3, (0.0, 0.3)),
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
    /// Sizes of seeded files unless told otherwise: small, so that content served at its real size stays cheap (12,000 files ≈ 25 MB).
    pub const DEFAULT_SIZES: Range<u64> = 200..8192;

    /// Deterministic library of `files` files over nested folders (depth up to 3, about files/60 folders, at least 3), with every media type (IMAGE mostly, VIDEO, AUDIO, DOCUMENT, VECTOR, ARCHIVE, MODEL3D, OTHER), about 5% private, 2% PENDING (and a few FAILED), 1% state DELETED, sizes in [`Library::DEFAULT_SIZES`] varied by type.
    pub fn seeded(files: usize, seed: u64) -> Library {
        Library::seeded_with(files, seed, Library::DEFAULT_SIZES)
    }

    /// [`Library::seeded`] with file sizes drawn from `sizes` (each media type keeps its part of the range).
    pub fn seeded_with(files: usize, seed: u64, sizes: Range<u64>) -> Library {
        let mut rng = Rng::with_seed(seed);
        let prefix = hex(&mut rng, 6);

        let folder_count = (files / 60).max(3);
        let mut folders: Vec<Folder> = Vec::with_capacity(folder_count);
        // Folders that can still take a child (depth below 3), kept as they are made.
        let mut nestable: Vec<(usize, usize)> = Vec::with_capacity(folder_count);
        for i in 0..folder_count {
            let (parent, depth) = if i < 3 || nestable.is_empty() || rng.u32(0..3) == 0 {
                (MEDIA_ROOT.to_string(), 1)
            } else {
                let (k, depth) = nestable[rng.usize(..nestable.len())];
                (folders[k].id.clone(), depth + 1)
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
            if depth < 3 {
                nestable.push((i, depth));
            }
        }

        let total_weight: u32 = MEDIA_TYPES.iter().map(|(_, w, _)| w).sum();
        let mut types: Vec<usize> = (0..files)
            .map(|_| {
                let mut roll = rng.u32(0..total_weight);
                for (k, (_, w, _)) in MEDIA_TYPES.iter().enumerate() {
                    if roll < *w {
                        return k;
                    }
                    roll -= w;
                }
                0
            })
            .collect();
        // Spread positions so that every media type occurs whenever there is room.
        if files >= MEDIA_TYPES.len() {
            for k in 0..MEDIA_TYPES.len() {
                types[k * files / MEDIA_TYPES.len()] = k;
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

        let span = sizes.end.saturating_sub(sizes.start).max(1) as f64;
        let mut records = Vec::with_capacity(files);
        for (i, k) in types.into_iter().enumerate() {
            let (media_type, _, (lo, hi)) = MEDIA_TYPES[k];
            let body = hex(&mut rng, 32);
            let (id, display_name) = match media_type {
                "IMAGE" => {
                    let ext = if rng.u32(0..4) == 0 { "png" } else { "jpg" };
                    (
                        format!("{prefix}_{body}~mv2.{ext}"),
                        format!("IMG_{:04}.{ext}", 1000 + i),
                    )
                }
                "VIDEO" => (format!("{prefix}_{body}"), format!("video-{i}.mp4")),
                "AUDIO" => (format!("{prefix}_{body}.mp3"), format!("track-{i}.mp3")),
                "DOCUMENT" => (format!("{prefix}_{body}.pdf"), format!("document-{i}.pdf")),
                "VECTOR" => (format!("{prefix}_{body}.svg"), format!("logo-{i}.svg")),
                "ARCHIVE" => (format!("{prefix}_{body}.zip"), format!("bundle-{i}.zip")),
                "MODEL3D" => (format!("{prefix}_{body}.glb"), format!("model-{i}.glb")),
                _ => (format!("{prefix}_{body}.csv"), format!("data-{i}.csv")),
            };
            let fraction = lo + (hi - lo) * rng.f64();
            let size = (sizes.start + (span * fraction) as u64).min(sizes.end.saturating_sub(1).max(sizes.start));
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

    /// Ready public VIDEO files in media-root, one per entry of `sizes` (e.g. `&[5 << 30]` for one 5 GiB file), ids from `file_id(i)` with the video shape (no extension).
    pub fn big_files(sizes: &[u64]) -> Library {
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| FileRecord {
                id: Library::file_id(i).replace("~mv2.jpg", ""),
                display_name: format!("big-{i}.mp4"),
                parent_folder_id: MEDIA_ROOT.into(),
                media_type: "VIDEO".into(),
                private: false,
                operation_status: "READY".into(),
                state: "OK".into(),
                size_in_bytes: size,
            })
            .collect();
        Library {
            folders: Vec::new(),
            files,
        }
    }

    /// Plain library: `n` READY public IMAGE files in media-root, ids from `file_id(i)`, 200 B to 8 KB each.
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
                size_in_bytes: 200 + (i as u64 % 1000) * 8,
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

    /// The bytes the emulator serves for file `id` as seeded (`size_in_bytes` long); `None` for an unknown id.
    pub fn content(&self, id: &str) -> Option<Vec<u8>> {
        self.file(id).map(|f| generated_content(&f.id, 0, f.size_in_bytes))
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
        for (t, _, _) in MEDIA_TYPES {
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
}
