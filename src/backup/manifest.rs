//! The manifest: one JSON line per listed file, gzip'd, sorted by folder path then display
//! name — the complete index of the library as of one backup: where each file's bytes are
//! (`STORED`: this backup or an earlier one), or why it has none (`SKIPPED`, `FAILED`).

use std::io::{BufRead, BufReader, Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

/// A file's state in a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineStatus {
    /// Its bytes are checked and in S3.
    Stored,
    /// Not backed up on purpose (`reason`).
    Skipped,
    /// Not backed up (`error`).
    Failed,
}

/// Why a file failed, as a manifest line says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub code: String,
    pub message: String,
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestLine {
    pub file_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub folder_path: String,
    #[serde(default)]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_in_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date: Option<String>,
    #[serde(default)]
    pub private: bool,
    pub status: LineStatus,
    /// The backup whose objects hold the bytes (this one, or an earlier one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The S3 key of the object holding the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The file's entry name in the archive (absent for private files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// CRC-32 of the zip entry (of the object, for a private file), lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    /// The object's checksum as S3 keeps it (base64 CRC-32), for `verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LineError>,
    /// On a `FAILED` line: where an earlier backup stored the file, so that copy stays
    /// referenced (retention keeps it) until a backup stores the file again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousCopy>,
}

/// An earlier backup's copy of a file that failed this time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousCopy {
    pub backup_id: String,
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_checksum: Option<String>,
}

impl ManifestLine {
    /// Where this file's bytes are kept, if anywhere: its own object when `STORED`, an
    /// earlier backup's copy when `FAILED` with one.
    pub fn referenced_object(&self) -> Option<&str> {
        match self.status {
            LineStatus::Stored => self.object.as_deref(),
            LineStatus::Failed => self.previous.as_ref().map(|p| p.object.as_str()),
            LineStatus::Skipped => None,
        }
    }

    /// The sort key: folder path, then display name, then ID (so the order is total).
    fn order_key(&self) -> (&str, &str, &str) {
        (&self.folder_path, &self.display_name, &self.file_id)
    }
}

/// Sorts lines as the manifest keeps them.
pub fn sort(lines: &mut [ManifestLine]) {
    lines.sort_unstable_by(|a, b| a.order_key().cmp(&b.order_key()));
}

/// The gzip'd JSON lines of `lines` (already sorted).
pub fn encode(lines: &[ManifestLine]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        serde_json::to_writer(&mut gz, line)?;
        gz.write_all(b"\n")?;
    }
    gz.finish()
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not gzip'd JSON lines: {0}")]
    Unreadable(String),
    #[error("line {line} of the manifest is not a manifest line: {reason}")]
    BadLine { line: usize, reason: String },
}

/// The lines of a gzip'd manifest.
pub fn decode(bytes: &[u8]) -> Result<Vec<ManifestLine>, ManifestError> {
    decode_from(GzDecoder::new(bytes))
}

fn decode_from<R: Read>(reader: R) -> Result<Vec<ManifestLine>, ManifestError> {
    let mut lines = Vec::new();
    for (i, text) in BufReader::new(reader).lines().enumerate() {
        let text = text.map_err(|e| ManifestError::Unreadable(e.to_string()))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: ManifestLine = serde_json::from_str(&text).map_err(|e| ManifestError::BadLine {
            line: i + 1,
            reason: e.to_string(),
        })?;
        lines.push(line);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn line(id: &str, folder: &str, name: &str) -> ManifestLine {
        ManifestLine {
            file_id: id.into(),
            display_name: name.into(),
            folder_path: folder.into(),
            media_type: "IMAGE".into(),
            size_in_bytes: Some(5),
            hash: Some("h".into()),
            updated_date: None,
            private: false,
            status: LineStatus::Stored,
            backup_id: Some("20261202T030000Z-0a1b2c3d".into()),
            object: Some("p/s/backups/x/archives/00001.zip".into()),
            entry: Some(id.into()),
            crc32: Some("3610a686".into()),
            object_checksum: None,
            reason: None,
            error: None,
            previous: None,
        }
    }

    #[test]
    fn sorted_by_folder_then_name_and_round_tripped() {
        let mut lines = vec![
            line("c", "/b", "a.jpg"),
            line("a", "/a", "z.jpg"),
            line("b", "/a", "b.jpg"),
        ];
        sort(&mut lines);
        let ids: Vec<&str> = lines.iter().map(|l| l.file_id.as_str()).collect();
        assert_eq!(ids, vec!["b", "a", "c"]);
        let bytes = encode(&lines).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
        assert_eq!(decode(&bytes).unwrap(), lines);
        let text = {
            let mut s = String::new();
            GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
            s
        };
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["status"], "STORED");
        assert_eq!(first["sizeInBytes"], 5);
        assert!(first.get("reason").is_none());
    }

    #[test]
    fn unreadable_manifests_are_errors() {
        assert!(decode(b"not gzip").is_err());
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"fileId\": \"a\", \"status\": \"STORED\"}\n{broken\n")
            .unwrap();
        let bytes = gz.finish().unwrap();
        assert!(matches!(decode(&bytes), Err(ManifestError::BadLine { line: 2, .. })));
    }
}
