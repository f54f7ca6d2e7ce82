//! The links mail: the archives, private links and failures of a request or a link-only
//! backup, rendered from templates that escape HTML.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};

use crate::domain::outcome::{Archive, Failure, Outcome, PrivateLink};

/// A count of files of one media type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeCount {
    pub media_type: String,
    pub count: usize,
}

/// A file left out of a backup, as the mail lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedFile<'a> {
    pub file_id: &'a str,
    pub reason: &'static str,
}

/// What the links mail shows.
#[derive(Debug, Serialize)]
pub struct LinksMail<'a> {
    pub title: String,
    pub request_id: &'a str,
    pub file_count: usize,
    pub archives: &'a [Archive],
    pub private_files: &'a [PrivateLink],
    pub failed: &'a [Failure],
    pub failed_count: usize,
    pub skipped: Vec<SkippedFile<'a>>,
    pub by_type: &'a [TypeCount],
    pub total_size: Option<String>,
}

impl<'a> LinksMail<'a> {
    /// The context for an HTTP request's outcome.
    pub fn for_request(request_id: &'a str, file_count: usize, outcome: &'a Outcome) -> Self {
        LinksMail {
            title: format!("Your Wix media download links ({file_count} files)"),
            request_id,
            file_count,
            archives: &outcome.archives,
            private_files: &outcome.private_files,
            failed: &outcome.failed,
            failed_count: outcome.failed_files(),
            skipped: Vec::new(),
            by_type: &[],
            total_size: None,
        }
    }
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // minijinja's own HTML escaping also escapes `/`, which makes links unreadable in
        // the source of the message; `&`, `<`, `>` and quotes are what HTML needs.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
                out.write_str(&escape_html(s)).map_err(minijinja::Error::from)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        // The `.html` name turns on HTML escaping for that template only.
        env.add_template("links.txt", include_str!("templates/links.txt"))
            .expect("text template parses");
        env.add_template("links.html", include_str!("templates/links.html"))
            .expect("HTML template parses");
        env.add_template("restore.txt", include_str!("templates/restore.txt"))
            .expect("text template parses");
        env.add_template("restore.html", include_str!("templates/restore.html"))
            .expect("HTML template parses");
        env.add_template("backup.txt", include_str!("templates/backup.txt"))
            .expect("text template parses");
        env.add_template("backup.html", include_str!("templates/backup.html"))
            .expect("HTML template parses");
        env
    })
}

/// Renders the plain-text and HTML parts.
pub fn render(mail: &LinksMail<'_>) -> Result<(String, String), minijinja::Error> {
    let env = templates();
    let text = env.get_template("links.txt")?.render(mail)?;
    let html = env.get_template("links.html")?.render(mail)?;
    Ok((text, html))
}

/// What the mail of a stored backup shows: its summary and where it is, no download link.
#[derive(Debug, Serialize)]
pub struct BackupMail<'a, S: Serialize> {
    pub title: String,
    pub request_id: &'a str,
    /// The backup summary (the invocation's answer).
    pub s: &'a S,
    pub stored_size: String,
    pub duration: String,
    /// The backup's folder in the S3 console.
    pub console_url: String,
}

/// What the mail of a restore shows.
#[derive(Debug, Serialize)]
pub struct RestoreMail<'a, R: Serialize> {
    pub title: String,
    pub request_id: &'a str,
    /// The restore report.
    pub r: &'a R,
}

/// Renders a restore's mail.
pub fn render_restore<R: Serialize>(mail: &RestoreMail<'_, R>) -> Result<(String, String), minijinja::Error> {
    let env = templates();
    let text = env.get_template("restore.txt")?.render(mail)?;
    let html = env.get_template("restore.html")?.render(mail)?;
    Ok((text, html))
}

/// Renders a stored backup's mail.
pub fn render_backup<S: Serialize>(mail: &BackupMail<'_, S>) -> Result<(String, String), minijinja::Error> {
    let env = templates();
    let text = env.get_template("backup.txt")?.render(mail)?;
    let html = env.get_template("backup.html")?.render(mail)?;
    Ok((text, html))
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes in words, 1024-based.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::{FailureCode, FailureError};

    #[test]
    fn html_is_escaped_and_every_link_is_there() {
        let mut outcome = Outcome::default();
        outcome.archives.push(Archive {
            download_url: crate::domain::link::Link::new("https://example.com/a.zip?x=1&y=2"),
            file_count: 2,
            file_ids: vec!["a".into(), "b".into()],
            folders: vec!["<script>alert(1)</script>".into()],
        });
        outcome.private_files.push(PrivateLink {
            file_id: "p1".into(),
            download_url: crate::domain::link::Link::new("https://example.com/p1"),
            expires_at: "2026-11-28T10:00:00Z".into(),
        });
        outcome.fail(
            vec!["c".into()],
            FailureError {
                code: FailureCode::WixUnavailable,
                status: Some(503),
                message: "down <b>".into(),
                wix_request_id: None,
            },
        );
        let ctx = LinksMail::for_request("req-1", 4, &outcome);
        let (text, html) = render(&ctx).unwrap();
        assert!(text.contains("https://example.com/a.zip?x=1&y=2"));
        assert!(text.contains("https://example.com/p1") && text.contains("2026-11-28T10:00:00Z"));
        assert!(text.contains("WIX_UNAVAILABLE (503): down <b>") && text.contains("1 file: c"));
        assert!(html.contains("https://example.com/a.zip?x=1&amp;y=2"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("down &lt;b&gt;"));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(5_918_720), "5.6 MiB");
    }
}
