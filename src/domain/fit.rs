//! Keeping an answer inside Lambda's 6 MB invocation payload: an answer that would be larger
//! than [`ANSWER_LIMIT`] keeps its counts, its links and its first failures, and says what
//! it left out.

use serde::Serialize;

use super::outcome::Outcome;

/// Largest answer body (JSON bytes). Lambda's limit is 6 MB for the whole payload; an HTTP
/// body travels as an escaped string inside it, so this leaves room for the escaping.
pub const ANSWER_LIMIT: usize = 5_000_000;
/// Failures kept in a shortened answer, and file IDs kept per failure.
pub const FIRST_FAILURES: usize = 100;

/// What a shortened answer left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shortened {
    pub reason: &'static str,
    /// The archives' `fileIds` lists (each archive keeps its `fileCount` and link).
    pub archive_file_ids_omitted: bool,
    /// Failure entries past the first [`FIRST_FAILURES`].
    pub failures_omitted: usize,
    /// File IDs left out of the failures that are listed.
    pub failed_file_ids_omitted: usize,
    /// Private files' links left out.
    pub private_files_omitted: usize,
    /// Entries of detail lists (a backup's `skipped`) left out.
    pub details_omitted: usize,
}

/// An answer that can be cut down to fit.
pub trait Shorten: Serialize {
    /// The links and failures.
    fn outcome_mut(&mut self) -> &mut Outcome;
    /// Empties the answer's detail lists; returns how many entries went.
    fn drop_details(&mut self) -> usize {
        0
    }
    /// Records what was left out.
    fn set_shortened(&mut self, shortened: Shortened);
}

/// The answer as JSON, cut down step by step until it is at most `limit` bytes: detail
/// lists, then the archives' file lists, then failures past the first hundred, then as many
/// private links as it takes.
pub fn fit<T: Shorten>(answer: &mut T, limit: usize) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(answer)?;
    if json.len() <= limit {
        return Ok(json);
    }
    let mut shortened = Shortened {
        reason: "the full answer would exceed Lambda's 6 MB payload limit",
        ..Shortened::default()
    };
    shortened.details_omitted = answer.drop_details();
    {
        let outcome = answer.outcome_mut();
        for archive in &mut outcome.archives {
            archive.file_ids = Vec::new();
        }
        shortened.archive_file_ids_omitted = !outcome.archives.is_empty();
        if outcome.failed.len() > FIRST_FAILURES {
            shortened.failures_omitted = outcome.failed.len() - FIRST_FAILURES;
            outcome.failed.truncate(FIRST_FAILURES);
        }
        for failure in &mut outcome.failed {
            if failure.file_ids.len() > FIRST_FAILURES {
                shortened.failed_file_ids_omitted += failure.file_ids.len() - FIRST_FAILURES;
                failure.file_ids.truncate(FIRST_FAILURES);
            }
        }
    }
    answer.set_shortened(shortened.clone());
    let mut json = serde_json::to_string(answer)?;
    while json.len() > limit {
        let outcome = answer.outcome_mut();
        let n = outcome.private_files.len();
        if n == 0 {
            break;
        }
        let per_entry = serde_json::to_string(&outcome.private_files)?.len() / n + 1;
        let over = json.len() - limit;
        let drop = over.div_ceil(per_entry).clamp(1, n);
        outcome.private_files.truncate(n - drop);
        shortened.private_files_omitted += drop;
        answer.set_shortened(shortened.clone());
        json = serde_json::to_string(answer)?;
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::link::Link;
    use crate::domain::outcome::{Archive, FailureCode, FailureError, PrivateLink};

    #[derive(Serialize)]
    struct Answer {
        #[serde(flatten)]
        outcome: Outcome,
        skipped: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        shortened: Option<Shortened>,
    }

    impl Shorten for Answer {
        fn outcome_mut(&mut self) -> &mut Outcome {
            &mut self.outcome
        }
        fn drop_details(&mut self) -> usize {
            std::mem::take(&mut self.skipped).len()
        }
        fn set_shortened(&mut self, shortened: Shortened) {
            self.shortened = Some(shortened);
        }
    }

    fn answer(archives: usize, private: usize, failures: usize) -> Answer {
        let id = |i: usize| format!("abcdef_{i:032x}~mv2.jpg");
        let mut outcome = Outcome::default();
        for a in 0..archives {
            outcome.archives.push(Archive {
                download_url: Link::new(format!("https://download.example/{a}.zip")),
                file_count: 1000,
                file_ids: (0..1000).map(|i| id(a * 1000 + i)).collect(),
                folders: Vec::new(),
            });
        }
        for p in 0..private {
            outcome.private_files.push(PrivateLink {
                file_id: id(p),
                download_url: Link::new(format!("https://download.example/p/{p}?token={}", "t".repeat(200))),
                expires_at: "2026-12-03T10:00:00Z".into(),
            });
        }
        for f in 0..failures {
            outcome.fail(
                (0..150).map(|i| id(f * 150 + i)).collect(),
                FailureError {
                    code: FailureCode::WixUnavailable,
                    status: Some(503),
                    message: "down".into(),
                    wix_request_id: None,
                },
            );
        }
        Answer {
            outcome,
            skipped: (0..1000).map(id).collect(),
            shortened: None,
        }
    }

    #[test]
    fn small_answers_are_left_alone() {
        let mut a = answer(2, 3, 1);
        let json = fit(&mut a, ANSWER_LIMIT).unwrap();
        assert!(a.shortened.is_none());
        assert!(json.contains("fileIds"));
    }

    #[test]
    fn big_answers_keep_counts_links_and_first_failures() {
        let mut a = answer(150, 100, 300);
        let full = serde_json::to_string(&a).unwrap().len();
        assert!(full > ANSWER_LIMIT, "{full}");
        let json = fit(&mut a, ANSWER_LIMIT).unwrap();
        assert!(json.len() <= ANSWER_LIMIT);
        let s = a.shortened.clone().unwrap();
        assert!(s.archive_file_ids_omitted);
        assert_eq!(s.failures_omitted, 200);
        assert_eq!(s.failed_file_ids_omitted, 100 * 50);
        assert_eq!(s.private_files_omitted, 0);
        assert_eq!(s.details_omitted, 1000);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["archives"].as_array().unwrap().len(), 150);
        assert_eq!(v["archives"][0]["fileCount"], 1000);
        assert!(v["archives"][0].get("fileIds").is_none());
        assert_eq!(v["privateFiles"].as_array().unwrap().len(), 100);
        assert_eq!(v["shortened"]["failuresOmitted"], 200);
    }

    #[test]
    fn private_links_go_last_and_only_as_many_as_needed() {
        let mut a = answer(1, 30_000, 0);
        let json = fit(&mut a, ANSWER_LIMIT).unwrap();
        assert!(json.len() <= ANSWER_LIMIT, "{}", json.len());
        let s = a.shortened.unwrap();
        assert!(s.private_files_omitted > 0);
        assert_eq!(a.outcome.private_files.len() + s.private_files_omitted, 30_000);
        assert!(
            json.len() > ANSWER_LIMIT - 10_000,
            "kept as many as fit: {}",
            json.len()
        );
    }
}
