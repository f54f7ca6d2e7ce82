//! Retention: after a complete backup, the backups older than `BACKUP_RETENTION_DAYS` go —
//! except every object that a kept backup's manifest still points at (an incremental
//! backup's unchanged files live in older backups' archives), and except the backup
//! `latest.json` names. Only unreferenced objects are ever deleted, and a backup's
//! manifest and report go after its objects, so stopping at any point (a crash, the
//! deadline) leaves every kept manifest's objects in place.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::manifest::{self, ManifestLine};
use crate::storage::Store;

/// What pruning did to one old backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    pub backup_id: String,
    /// Objects deleted.
    pub deleted_objects: usize,
    /// Objects kept because a kept backup's manifest still points at them.
    pub kept_objects: usize,
}

/// The time a backup ID names (`YYYYMMDDTHHMMSSZ-…`).
pub fn backup_time(backup_id: &str) -> Option<SystemTime> {
    let stamp = backup_id.split('-').next()?;
    if stamp.len() != 16 || !stamp.ends_with('Z') || stamp.as_bytes()[8] != b'T' {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    humantime::parse_rfc3339(&rfc).ok()
}

/// Prunes the backups of `store` older than `retention_days` at `now`. `current` is the
/// backup just finished (its lines in memory, its manifest written), `latest` the one
/// `latest.json` names now. Nothing is deleted when a kept backup's manifest cannot be read
/// (what it points at would be unknown).
pub async fn prune(
    store: &Store,
    current: (&str, &[ManifestLine]),
    latest: Option<&str>,
    retention_days: u32,
    now: SystemTime,
) -> Result<Vec<Pruned>, String> {
    if retention_days == 0 {
        return Ok(Vec::new());
    }
    let backups_root = store.key("backups/");
    let keys = store.list(&backups_root).await.map_err(|e| e.to_string())?;
    let mut by_backup: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in keys {
        if let Some(id) = key[backups_root.len()..].split('/').next() {
            by_backup.entry(id.to_owned()).or_default().push(key);
        }
    }
    let keep_for = Duration::from_secs(u64::from(retention_days) * 86_400);
    let is_old = |id: &str| {
        // A backup whose time cannot be read is never taken for an old one.
        backup_time(id).is_some_and(|at| now.duration_since(at).is_ok_and(|age| age > keep_for))
    };
    let (old, kept): (Vec<&String>, Vec<&String>) = by_backup
        .keys()
        .partition(|id| is_old(id) && id.as_str() != current.0 && Some(id.as_str()) != latest);
    if old.is_empty() {
        return Ok(Vec::new());
    }
    let mut referenced: HashSet<String> = current
        .1
        .iter()
        .filter_map(|l| l.referenced_object())
        .map(str::to_owned)
        .collect();
    for id in kept.iter().filter(|id| id.as_str() != current.0) {
        let key = store.key(&format!("backups/{id}/manifest.jsonl.gz"));
        match store.get(&key).await {
            Ok(Some(bytes)) => {
                let lines = manifest::decode(&bytes)
                    .map_err(|e| format!("the manifest of kept backup {id} is not readable ({e}); nothing pruned"))?;
                referenced.extend(lines.iter().filter_map(|l| l.referenced_object()).map(str::to_owned));
            }
            // A backup that never finished has no manifest: nothing points into other backups.
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "the manifest of kept backup {id} could not be read ({e}); nothing pruned"
                ))
            }
        }
    }
    let mut pruned = Vec::new();
    for id in old {
        let dir = store.key(&format!("backups/{id}/"));
        let is_index = |k: &str| k == format!("{dir}manifest.jsonl.gz") || k == format!("{dir}report.json");
        let keys = &by_backup[id.as_str()];
        let (objects, index): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| !is_index(k));
        let (still_used, unused): (Vec<&String>, Vec<&String>) =
            objects.into_iter().partition(|k| referenced.contains(k.as_str()));
        let unused: Vec<String> = unused.into_iter().cloned().collect();
        store.delete(&unused).await.map_err(|e| e.to_string())?;
        let index: Vec<String> = index.into_iter().cloned().collect();
        store.delete(&index).await.map_err(|e| e.to_string())?;
        tracing::info!(backup_id = %id, deleted = unused.len(), kept = still_used.len(), "pruned an old backup");
        pruned.push(Pruned {
            backup_id: id.clone(),
            deleted_objects: unused.len(),
            kept_objects: still_used.len(),
        });
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_name_their_time() {
        let at = backup_time("20261202T030405Z-0a1b2c3d").unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(at).to_string(),
            "2026-12-02T03:04:05Z"
        );
        assert_eq!(backup_time("whatever"), None);
        assert_eq!(backup_time("20261302T030405Z-x"), None);
        assert_eq!(backup_time(""), None);
    }
}
