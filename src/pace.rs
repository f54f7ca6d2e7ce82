//! The site's Wix pace in DynamoDB (`PACE_TABLE`): one item per site holds the starts handed
//! out in the last minute (and a pause), and every container takes its next start from it
//! with a conditional write (optimistic: read, place the start by the window rule, write if
//! nobody wrote in between; else read again). So HTTP requests, a job's workers and a
//! restore, in as many containers as Lambda runs, share `WIX_REQUESTS_PER_MINUTE`.
//!
//! The item: `pk` (`wix-pace#<site>`), `v` (its version), `base` (ms since the epoch) and
//! `starts` (binary: each start as a little-endian u32 of ms after `base`, in order),
//! `pausedUntil` (ms), `expiresAt` (epoch seconds, the table's TTL attribute).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::credentials::CredentialsSource;
use crate::wix::limiter::{window_slot, PaceFuture, SharedPace, SHARED_WINDOW_MS};

/// Tries of a reservation before it gives up (each lost race reads again).
const MAX_TRIES: u32 = 40;
/// The item outlives its last start by this much (TTL).
const KEEP_SECS: u64 = 3600;

/// The shared pace in a DynamoDB table.
pub struct DynamoPace {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    credentials: Arc<dyn CredentialsSource>,
    /// Reservations of this container go one at a time: they would only race each other.
    turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DynamoPace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoPace").field("table", &self.table).finish()
    }
}

/// The item as read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Window {
    version: Option<u64>,
    starts: Vec<u64>,
    paused_until: u64,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl Window {
    fn decode(item: &HashMap<String, AttributeValue>) -> Window {
        let base = number(item, "base").unwrap_or(0);
        let starts = item
            .get("starts")
            .and_then(|v| v.as_b().ok())
            .map(|b| {
                b.as_ref()
                    .chunks_exact(4)
                    .map(|c| base + u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect()
            })
            .unwrap_or_default();
        Window {
            version: number(item, "v"),
            starts,
            paused_until: number(item, "pausedUntil").unwrap_or(0),
        }
    }

    /// `base` and the packed starts.
    fn encode(&self) -> (u64, Vec<u8>) {
        let base = self.starts.first().copied().unwrap_or(0);
        let mut packed = Vec::with_capacity(self.starts.len() * 4);
        for s in &self.starts {
            let offset = u32::try_from(s - base).unwrap_or(u32::MAX);
            packed.extend_from_slice(&offset.to_le_bytes());
        }
        (base, packed)
    }

    /// Forgets starts that can no longer hold a later one back.
    fn prune(&mut self, now: u64) {
        let keep_from = self.starts.partition_point(|s| s + SHARED_WINDOW_MS <= now);
        self.starts.drain(..keep_from);
    }
}

impl DynamoPace {
    /// The pace of the site the credentials are for, in `table`.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: String, credentials: Arc<dyn CredentialsSource>) -> Self {
        DynamoPace {
            ddb,
            table,
            credentials,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    async fn key(&self) -> Result<AttributeValue, String> {
        let credentials = self.credentials.current().await.map_err(|e| e.to_string())?;
        Ok(AttributeValue::S(format!("wix-pace#{}", credentials.site())))
    }

    async fn read(&self, key: &AttributeValue) -> Result<Window, String> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", key.clone())
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", &e))?;
        Ok(out.item().map(Window::decode).unwrap_or_default())
    }

    /// Writes `window` if the item is still at `version`; false when another writer won.
    async fn write(&self, key: &AttributeValue, window: &Window, version: Option<u64>) -> Result<bool, String> {
        let (base, packed) = window.encode();
        let now_secs = ms(SystemTime::now()) / 1000;
        let last = window.starts.last().copied().unwrap_or(0).max(window.paused_until) / 1000;
        let mut put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", key.clone())
            .item("v", AttributeValue::N((version.unwrap_or(0) + 1).to_string()))
            .item("base", AttributeValue::N(base.to_string()))
            .item("starts", AttributeValue::B(Blob::new(packed)))
            .item("pausedUntil", AttributeValue::N(window.paused_until.to_string()))
            .item(
                "expiresAt",
                AttributeValue::N((now_secs.max(last) + KEEP_SECS).to_string()),
            );
        put = match version {
            Some(v) => put
                .condition_expression("v = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(dynamo_error("PutItem", &e)),
        }
    }

    /// Reads, changes and writes the item until the write wins.
    async fn update<T>(&self, mut change: impl FnMut(&mut Window, u64) -> Option<T>) -> Result<Option<T>, String> {
        let key = self.key().await?;
        let _turn = self.turn.lock().await;
        for attempt in 0..MAX_TRIES {
            let mut window = self.read(&key).await?;
            let version = window.version;
            let now = ms(SystemTime::now());
            window.prune(now);
            let Some(answer) = change(&mut window, now) else {
                return Ok(None);
            };
            if self.write(&key, &window, version).await? {
                return Ok(Some(answer));
            }
            // Another container wrote first: read again, after a short random wait.
            let wait = fastrand::u64(1..=(4 << attempt.min(4)));
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        Err(format!("{MAX_TRIES} tries lost the race for the shared pace"))
    }
}

impl SharedPace for DynamoPace {
    fn reserve(
        &self,
        earliest: SystemTime,
        latest: Option<SystemTime>,
        budget: u32,
    ) -> PaceFuture<'_, Result<Option<SystemTime>, String>> {
        Box::pin(async move {
            let (earliest, latest) = (ms(earliest), latest.map(ms));
            let slot = self
                .update(|window, now| {
                    let slot = window_slot(&window.starts, earliest.max(now), window.paused_until, budget);
                    if latest.is_some_and(|l| slot > l) {
                        return None;
                    }
                    window.starts.push(slot);
                    Some(slot)
                })
                .await?;
            Ok(slot.map(|s| UNIX_EPOCH + Duration::from_millis(s)))
        })
    }

    fn pause(&self, until: SystemTime) -> PaceFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let until = ms(until);
            self.update(|window, _| {
                if window.paused_until >= until {
                    return None;
                }
                window.paused_until = until;
                Some(())
            })
            .await
            .map(|_| ())
        })
    }
}

fn dynamo_error<E: ProvideErrorMetadata, R>(operation: &str, e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String {
    format!("DynamoDB {operation} failed: {}", crate::aws::describe(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_packs_and_unpacks() {
        let w = Window {
            version: Some(3),
            starts: vec![1_800_000_000_000, 1_800_000_000_005, 1_800_000_059_999],
            paused_until: 0,
        };
        let (base, packed) = w.encode();
        let mut item = HashMap::new();
        item.insert("v".to_owned(), AttributeValue::N("3".into()));
        item.insert("base".to_owned(), AttributeValue::N(base.to_string()));
        item.insert("starts".to_owned(), AttributeValue::B(Blob::new(packed)));
        assert_eq!(Window::decode(&item), w);
        assert_eq!(Window::decode(&HashMap::new()), Window::default());
    }

    #[test]
    fn old_starts_are_forgotten() {
        let mut w = Window {
            starts: vec![0, 100, 60_300, 70_000],
            ..Window::default()
        };
        w.prune(60_400);
        assert_eq!(w.starts, vec![60_300, 70_000]);
    }

    #[test]
    fn the_rule_keeps_every_window_within_the_budget() {
        // Budget 3: the fourth start waits for the first to leave the window.
        let mut starts = Vec::new();
        for _ in 0..7 {
            let s = window_slot(&starts, 1_000, 0, 3);
            starts.push(s);
        }
        assert_eq!(starts[..3], [1_000, 1_000, 1_000]);
        assert_eq!(starts[3], 1_000 + SHARED_WINDOW_MS);
        assert_eq!(starts[6], 1_000 + 2 * SHARED_WINDOW_MS);
        for (i, s) in starts.iter().enumerate() {
            let within = starts[i..].iter().filter(|t| **t < s + 60_000).count();
            assert!(within <= 3);
        }
        // A pause holds the next start.
        assert_eq!(window_slot(&[], 1_000, 5_000, 3), 5_000);
    }
}
