//! Incremental backups: the manifest `latest.json` names says what is already stored. A
//! file with the same ID, `hash` and `sizeInBytes` (`updatedDate` when Wix sent no hash),
//! stored then, is not downloaded again: its line is carried over with the old `backupId`,
//! `object` and `entry`. A manifest that cannot be read (missing, corrupt, another site's)
//! means a full backup, with a warning — never one that silently drops files.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::finish::{latest_key, Latest};
use super::manifest::{self, LineStatus, ManifestLine};
use super::steps::FileMeta;
use crate::storage::Store;

/// What the previous complete backup left.
#[derive(Debug, Default)]
pub struct Previous {
    pub latest: Option<Latest>,
    /// The backup `latest.json` names, even when its manifest is unusable (never pruned).
    pub latest_id: Option<String>,
    /// Its manifest's lines by file ID.
    pub lines: HashMap<String, ManifestLine>,
    /// Why the previous backup could not be used, if it could not.
    pub warning: Option<String>,
}

/// How the listing differs from the previous backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub new: usize,
    pub changed: usize,
    pub removed: usize,
}

/// Reads `latest.json` and the manifest it names. Any failure is a warning and no previous
/// backup: the next backup is full.
pub async fn read_previous(store: &Store) -> Previous {
    let key = latest_key(store);
    let bytes = match store.get(&key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Previous::default(),
        Err(e) => return unusable(format!("latest.json could not be read ({e}); this backup is full")),
    };
    let latest: Latest = match serde_json::from_slice(&bytes) {
        Ok(latest) => latest,
        Err(e) => return unusable(format!("latest.json is not readable ({e}); this backup is full")),
    };
    let latest_id = Some(latest.backup_id.clone());
    let unusable = |warning: String| Previous {
        latest_id: latest_id.clone(),
        ..unusable(warning)
    };
    if !latest.manifest.starts_with(store.root()) {
        return unusable(format!(
            "latest.json names a manifest outside this site's prefix ({}); this backup is full",
            latest.manifest
        ));
    }
    let manifest_bytes = match store.get(&latest.manifest).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return unusable(format!(
                "the manifest of backup {} is missing; this backup is full",
                latest.backup_id
            ))
        }
        Err(e) => {
            return unusable(format!(
                "the manifest of backup {} could not be read ({e}); this backup is full",
                latest.backup_id
            ))
        }
    };
    let lines = match manifest::decode(&manifest_bytes) {
        Ok(lines) => lines,
        Err(e) => {
            return unusable(format!(
                "the manifest of backup {} is not readable ({e}); this backup is full",
                latest.backup_id
            ))
        }
    };
    let foreign = lines
        .iter()
        .filter_map(|l| l.object.as_deref())
        .find(|o| !o.starts_with(store.root()));
    if let Some(object) = foreign {
        return unusable(format!(
            "the manifest of backup {} points outside this site's prefix ({object}); this backup is full",
            latest.backup_id
        ));
    }
    Previous {
        lines: lines.into_iter().map(|l| (l.file_id.clone(), l)).collect(),
        latest: Some(latest),
        latest_id,
        warning: None,
    }
}

fn unusable(warning: String) -> Previous {
    tracing::warn!(warning = %warning, "no previous backup to build on");
    Previous {
        warning: Some(warning),
        ..Previous::default()
    }
}

/// Whether this backup is full: asked for, no usable previous backup, or the last full one
/// older than `full_every_days`.
pub fn is_full(previous: &Previous, forced: bool, full_every_days: u32, now: SystemTime) -> bool {
    let Some(latest) = &previous.latest else {
        return true;
    };
    if forced {
        return true;
    }
    match humantime::parse_rfc3339(&latest.full_completed_at) {
        Ok(at) => now
            .duration_since(at)
            .is_ok_and(|age| age >= Duration::from_secs(u64::from(full_every_days) * 86_400)),
        Err(_) => true,
    }
}

/// The previous line of `file`, carried over, when the file has not changed since: its
/// current name and folder, the old object, entry and checksums.
pub fn carried(file: &FileMeta, previous: &ManifestLine) -> Option<ManifestLine> {
    if previous.status != LineStatus::Stored || previous.object.is_none() {
        return None;
    }
    let same = match (&file.hash, &previous.hash) {
        (Some(now), Some(then)) => now == then && file.size_in_bytes == previous.size_in_bytes,
        (None, None) => {
            file.updated_date.is_some()
                && file.updated_date == previous.updated_date
                && file.size_in_bytes == previous.size_in_bytes
        }
        _ => false,
    };
    if !same || file.private != previous.private {
        return None;
    }
    let mut line = previous.clone();
    line.display_name = file.display_name.clone();
    line.folder_path = file.folder_path.clone();
    line.media_type = file.media_type.clone();
    line.updated_date = file.updated_date.clone();
    line.previous = None;
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(hash: Option<&str>, size: u64, updated: Option<&str>) -> FileMeta {
        FileMeta {
            file_id: "a".into(),
            display_name: "renamed.jpg".into(),
            folder_path: "/New".into(),
            media_type: "IMAGE".into(),
            size_in_bytes: Some(size),
            hash: hash.map(str::to_owned),
            updated_date: updated.map(str::to_owned),
            private: false,
        }
    }

    fn stored(hash: Option<&str>, size: u64, updated: Option<&str>) -> ManifestLine {
        let mut l = meta(hash, size, updated).line(LineStatus::Stored);
        l.display_name = "old.jpg".into();
        l.folder_path = "/Old".into();
        l.backup_id = Some("B1".into());
        l.object = Some("p/s/backups/B1/archives/00001.zip".into());
        l.entry = Some("old.jpg".into());
        l
    }

    #[test]
    fn unchanged_files_keep_their_object_and_take_their_new_name() {
        let c = carried(&meta(Some("h1"), 10, None), &stored(Some("h1"), 10, None)).unwrap();
        assert_eq!(c.backup_id.as_deref(), Some("B1"));
        assert_eq!(c.entry.as_deref(), Some("old.jpg"));
        assert_eq!(
            (c.display_name.as_str(), c.folder_path.as_str()),
            ("renamed.jpg", "/New")
        );
    }

    #[test]
    fn changes_are_not_carried() {
        assert!(carried(&meta(Some("h2"), 10, None), &stored(Some("h1"), 10, None)).is_none());
        assert!(carried(&meta(Some("h1"), 11, None), &stored(Some("h1"), 10, None)).is_none());
        // Without a hash, the update date decides, with the size.
        let t = Some("2026-01-01T00:00:00Z");
        assert!(carried(&meta(None, 10, t), &stored(None, 10, t)).is_some());
        assert!(carried(&meta(None, 10, Some("2026-02-01T00:00:00Z")), &stored(None, 10, t)).is_none());
        assert!(carried(&meta(None, 10, None), &stored(None, 10, None)).is_none());
        // A hash now but none then (or the reverse): not comparable, stored again.
        assert!(carried(&meta(Some("h1"), 10, t), &stored(None, 10, t)).is_none());
        // What was not stored is stored now.
        let mut failed = stored(Some("h1"), 10, None);
        failed.status = LineStatus::Failed;
        assert!(carried(&meta(Some("h1"), 10, None), &failed).is_none());
    }

    #[test]
    fn full_when_asked_when_none_or_when_the_last_full_one_is_old() {
        let now = humantime::parse_rfc3339("2026-12-02T03:00:00Z").unwrap();
        let with_full_at = |at: &str| Previous {
            latest: Some(Latest {
                backup_id: "B".into(),
                completed_at: at.into(),
                manifest: "m".into(),
                files: 1,
                bytes: 1,
                full_backup_id: "F".into(),
                full_completed_at: at.into(),
            }),
            ..Previous::default()
        };
        assert!(is_full(&Previous::default(), false, 30, now));
        assert!(!is_full(&with_full_at("2026-11-20T03:00:00Z"), false, 30, now));
        assert!(is_full(&with_full_at("2026-11-20T03:00:00Z"), true, 30, now));
        assert!(is_full(&with_full_at("2026-11-01T03:00:00Z"), false, 30, now));
        assert!(is_full(&with_full_at("garbage"), false, 30, now));
    }
}
