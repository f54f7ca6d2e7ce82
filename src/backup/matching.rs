//! Which zip entry holds which file of a batch. Wix does not document how it names the
//! entries of an archive, so an entry is matched to a file, in this order:
//! 1. by the file's ID as the entry's name (or last path segment);
//! 2. by the file's display name as the entry's last path segment, preferring an entry whose
//!    directory is the end of the file's folder path (Wix's folder archives keep sub-folder
//!    paths, without the top folder's own name);
//! 3. for files whose display name repeats, by the renamed forms `name (2).ext` and
//!    `name_2.ext`.
//!
//! Each entry is given to at most one file, and only when its size is the size Wix
//! reported for the file (where Wix reported one). A file left without an entry is not in
//! the archive: `ARCHIVE_INCOMPLETE`.

use std::collections::HashMap;

use crate::zipdir::Entry;

/// What matching needs of a batch file.
#[derive(Debug, Clone, Copy)]
pub struct FileToMatch<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub folder_path: &'a str,
    pub size: Option<u64>,
}

/// Each file's entry (an index into the entries), or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Entry(usize),
    /// No entry of that name.
    Missing,
    /// Entries of its name exist, but none of the size Wix reported.
    WrongSize {
        found: u64,
        expected: u64,
    },
}

/// Matches `files` to `entries` (directory entries are never matched).
pub fn match_entries(files: &[FileToMatch<'_>], entries: &[Entry]) -> Vec<Match> {
    let mut used = vec![false; entries.len()];
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if !e.is_dir() {
            by_name.entry(e.file_name()).or_default().push(i);
        }
    }
    let mut result: Vec<Option<Match>> = vec![None; files.len()];
    let size_fits = |e: &Entry, f: &FileToMatch<'_>| f.size.is_none_or(|s| s == e.size);

    // 1. By ID.
    for (fi, f) in files.iter().enumerate() {
        if let Some(candidates) = by_name.get(f.id) {
            if let Some(&ei) = candidates.iter().find(|&&ei| !used[ei] && size_fits(&entries[ei], f)) {
                used[ei] = true;
                result[fi] = Some(Match::Entry(ei));
            }
        }
    }
    // 2. By display name, an entry in the file's own folder first.
    for (fi, f) in files.iter().enumerate() {
        if result[fi].is_some() || f.display_name.is_empty() {
            continue;
        }
        if let Some(ei) = best(by_name.get(f.display_name), entries, &used, f, size_fits) {
            used[ei] = true;
            result[fi] = Some(Match::Entry(ei));
        }
    }
    // 3. Renamed duplicates.
    for (fi, f) in files.iter().enumerate() {
        if result[fi].is_some() || f.display_name.is_empty() {
            continue;
        }
        let renamed: Vec<usize> = renamed_forms(f.display_name)
            .iter()
            .filter_map(|n| by_name.get(n.as_str()))
            .flatten()
            .copied()
            .collect();
        if let Some(ei) = best(Some(&renamed), entries, &used, f, size_fits) {
            used[ei] = true;
            result[fi] = Some(Match::Entry(ei));
        }
    }
    // What is left: tell a size mismatch from an absence.
    files
        .iter()
        .zip(result)
        .map(|(f, m)| {
            m.unwrap_or_else(|| {
                let same_name = by_name
                    .get(f.id)
                    .into_iter()
                    .chain(by_name.get(f.display_name))
                    .flatten()
                    .find(|&&ei| !used[ei]);
                match (same_name, f.size) {
                    (Some(&ei), Some(expected)) => Match::WrongSize {
                        found: entries[ei].size,
                        expected,
                    },
                    _ => Match::Missing,
                }
            })
        })
        .collect()
}

/// The unused candidate of the right size, one in the file's folder first.
fn best(
    candidates: Option<&Vec<usize>>,
    entries: &[Entry],
    used: &[bool],
    file: &FileToMatch<'_>,
    size_fits: impl Fn(&Entry, &FileToMatch<'_>) -> bool,
) -> Option<usize> {
    let candidates = candidates?;
    let folder = file.folder_path.trim_matches('/');
    let in_folder = |e: &Entry| {
        let dir = e.name.rsplit_once('/').map_or("", |(d, _)| d).trim_matches('/');
        if dir.is_empty() {
            folder.is_empty()
        } else {
            folder == dir || folder.ends_with(&format!("/{dir}"))
        }
    };
    let free = || {
        candidates
            .iter()
            .copied()
            .filter(|&i| !used[i] && size_fits(&entries[i], file))
    };
    free().find(|&i| in_folder(&entries[i])).or_else(|| free().next())
}

/// `photo (2).jpg`, `photo_2.jpg` … for `photo.jpg`: the forms a zip writer may give a
/// repeated name.
fn renamed_forms(name: &str) -> Vec<String> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    (1..=20)
        .flat_map(|n| {
            [
                format!("{stem} ({n}){ext}"),
                format!("{stem}_{n}{ext}"),
                format!("{stem}-{n}{ext}"),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64) -> Entry {
        Entry {
            name: name.into(),
            crc32: 0,
            compressed_size: size,
            size,
            method: 0,
            local_header_offset: 0,
            flags: 0,
        }
    }

    fn file<'a>(id: &'a str, name: &'a str, folder: &'a str, size: u64) -> FileToMatch<'a> {
        FileToMatch {
            id,
            display_name: name,
            folder_path: folder,
            size: Some(size),
        }
    }

    #[test]
    fn by_id_as_the_emulator_names_entries() {
        let files = [
            file("a1_x~mv2.jpg", "x.jpg", "/", 3),
            file("a1_y.pdf", "y.pdf", "/Docs", 4),
        ];
        let entries = [entry("a1_y.pdf", 4), entry("a1_x~mv2.jpg", 3)];
        assert_eq!(match_entries(&files, &entries), vec![Match::Entry(1), Match::Entry(0)]);
    }

    #[test]
    fn by_display_name_with_repeats_told_apart_by_folder_and_size() {
        let files = [
            file("1", "logo.png", "/Shop/Summer", 10),
            file("2", "logo.png", "/Blog", 10),
            file("3", "logo.png", "/Press", 20),
        ];
        // A folder archive of the media root: sub-folder paths kept.
        let entries = [
            entry("Blog/logo.png", 10),
            entry("Press/logo.png", 20),
            entry("Shop/Summer/logo.png", 10),
        ];
        assert_eq!(
            match_entries(&files, &entries),
            vec![Match::Entry(2), Match::Entry(0), Match::Entry(1)]
        );
        // A flat archive of repeated names: told apart by size, then in order.
        let flat = [entry("logo.png", 20), entry("logo.png", 10), entry("logo.png", 10)];
        assert_eq!(
            match_entries(&files, &flat),
            vec![Match::Entry(1), Match::Entry(2), Match::Entry(0)]
        );
    }

    #[test]
    fn renamed_repeats_are_found() {
        let files = [
            file("1", "a.jpg", "/", 1),
            file("2", "a.jpg", "/", 2),
            file("3", "a.jpg", "/", 3),
        ];
        let entries = [entry("a.jpg", 1), entry("a (1).jpg", 2), entry("a_2.jpg", 3)];
        assert_eq!(
            match_entries(&files, &entries),
            vec![Match::Entry(0), Match::Entry(1), Match::Entry(2)]
        );
    }

    #[test]
    fn missing_files_and_wrong_sizes_are_told_apart() {
        let files = [
            file("1", "a.jpg", "/", 5),
            file("2", "b.glb", "/", 9),
            file("3", "c.txt", "/", 4),
        ];
        let entries = [entry("a.jpg", 5), entry("c.txt", 40), entry("Folder/", 0)];
        assert_eq!(
            match_entries(&files, &entries),
            vec![
                Match::Entry(0),
                Match::Missing,
                Match::WrongSize { found: 40, expected: 4 }
            ]
        );
        // Each entry is used once: two files cannot share one entry.
        let twice = [file("1", "a.jpg", "/", 5), file("2", "a.jpg", "/", 5)];
        assert_eq!(
            match_entries(&twice, &[entry("a.jpg", 5)]),
            vec![Match::Entry(0), Match::Missing]
        );
    }

    #[test]
    fn unknown_sizes_match_any_size() {
        let files = [FileToMatch {
            id: "1",
            display_name: "a.jpg",
            folder_path: "/",
            size: None,
        }];
        assert_eq!(match_entries(&files, &[entry("a.jpg", 77)]), vec![Match::Entry(0)]);
    }
}
