//! The options of one backup: the event's `backup` object laid over the environment's
//! defaults, checked before any Wix call.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::config::{self, Config};
use crate::domain::address;

/// Root folders Search Files accepts, and the parent folder ID each stands for.
pub const ROOTS: [(&str, &str); 3] = [
    ("MEDIA_ROOT", "media-root"),
    ("VISITOR_UPLOADS_ROOT", "visitor-uploads"),
    ("TRASH_ROOT", "trash-root"),
];
/// Most recipients of one backup report.
const MAX_RECIPIENTS: usize = 50;

/// What one backup does, after the event's options are laid over the environment's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupOptions {
    pub media_types: Vec<String>,
    pub root_folder: String,
    pub include_private: bool,
    pub email_to: Vec<String>,
    /// A full backup even when an incremental one could build on the last (stored backups).
    pub full: bool,
}

impl BackupOptions {
    /// The defaults from the configuration, with `raw` (the event's `backup` object) over them.
    pub fn parse(raw: Option<&RawValue>, config: &Config) -> Result<Self, String> {
        let mut options = BackupOptions {
            media_types: config.backup_media_types.clone(),
            root_folder: "MEDIA_ROOT".to_owned(),
            include_private: config.backup_include_private,
            email_to: config.backup_email_to.clone(),
            full: false,
        };
        let Some(raw) = raw else {
            return Ok(options);
        };
        let map: Map<String, Value> =
            serde_json::from_str(raw.get()).map_err(|_| "`backup` must be a JSON object".to_owned())?;
        for (key, value) in map {
            match key.as_str() {
                "mediaTypes" => {
                    let list = string_list(&value).ok_or("`mediaTypes` must be an array of strings")?;
                    options.media_types =
                        config::parse_media_types(&list.join(",")).map_err(|e| format!("`mediaTypes` {e}"))?;
                }
                "rootFolder" => {
                    let root = value.as_str().ok_or("`rootFolder` must be a string")?;
                    if !ROOTS.iter().any(|(name, _)| *name == root) {
                        return Err(format!(
                            "`rootFolder` must be one of {}",
                            ROOTS.map(|(name, _)| name).join(", ")
                        ));
                    }
                    options.root_folder = root.to_owned();
                }
                "includePrivate" => {
                    options.include_private = value.as_bool().ok_or("`includePrivate` must be true or false")?;
                }
                "emailTo" => {
                    let list = string_list(&value).ok_or("`emailTo` must be an array of addresses")?;
                    if list.len() > MAX_RECIPIENTS {
                        return Err(format!("`emailTo` lists more than {MAX_RECIPIENTS} addresses"));
                    }
                    if let Some(i) = list.iter().position(|a| !address::is_valid(a.trim())) {
                        return Err(format!("`emailTo[{i}]` is not a valid e-mail address"));
                    }
                    options.email_to = list.iter().map(|a| a.trim().to_owned()).collect();
                }
                "full" => {
                    options.full = value.as_bool().ok_or("`full` must be true or false")?;
                }
                other => return Err(format!("`{other}` is not a known option")),
            }
        }
        Ok(options)
    }

    /// The parent folder ID of the root (`media-root`, …).
    pub fn root_folder_id(&self) -> &'static str {
        ROOTS
            .iter()
            .find(|(name, _)| *name == self.root_folder)
            .map_or("media-root", |(_, id)| id)
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "WIX_API_KEY" | "WIX_SITE_ID" | "CALLER_KEYS" => Some("x".into()),
            "BACKUP_EMAIL_TO" => Some("a@example.com".into()),
            _ => None,
        })
        .unwrap()
    }

    fn parse(json: &str) -> Result<BackupOptions, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        BackupOptions::parse(Some(&raw), &config())
    }

    #[test]
    fn options_over_defaults() {
        let d = BackupOptions::parse(None, &config()).unwrap();
        assert_eq!(
            (d.root_folder.as_str(), d.include_private, d.email_to.clone()),
            ("MEDIA_ROOT", true, vec!["a@example.com".to_owned()])
        );
        let o = parse(r#"{"mediaTypes": ["image", "VIDEO"], "includePrivate": false, "emailTo": ["b@example.com"], "rootFolder": "VISITOR_UPLOADS_ROOT"}"#).unwrap();
        assert_eq!(o.media_types, vec!["IMAGE", "VIDEO"]);
        assert!(!o.include_private);
        assert_eq!(o.email_to, vec!["b@example.com"]);
        assert_eq!(o.root_folder_id(), "visitor-uploads");
        assert!(parse(r#"{"emailTo": []}"#).unwrap().email_to.is_empty());
    }

    #[test]
    fn bad_options_name_the_option() {
        for (json, needle) in [
            (r#"{"mediaTypes": ["PHOTO"]}"#, "`mediaTypes`"),
            (r#"{"mediaTypes": "IMAGE"}"#, "`mediaTypes`"),
            (r#"{"rootFolder": "SOMEWHERE"}"#, "`rootFolder`"),
            (r#"{"includePrivate": "yes"}"#, "`includePrivate`"),
            (r#"{"emailTo": ["nope"]}"#, "`emailTo[0]`"),
            (r#"{"foo": 1}"#, "`foo`"),
            ("[]", "`backup`"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
