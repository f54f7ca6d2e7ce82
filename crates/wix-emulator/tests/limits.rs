//! Rate limits over HTTP: the token bucket, `Retry-After`, and the limiter's counts.

mod common;

use std::time::Duration;

use common::Site;
use wix_emulator::{EmulatorConfig, Fault, LimiterStats, RateLimit};

async fn folders(site: &Site) -> (u16, Option<String>) {
    let resp = site
        .authed(
            site.client
                .get(format!("{}/site-media/v1/folders", site.emu.base_url())),
        )
        .send()
        .await
        .unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), retry_after)
}

#[tokio::test]
async fn token_bucket_admits_a_burst_then_one_call_per_token() {
    // Ten tokens a second, three at most.
    let site = Site::start(EmulatorConfig {
        rate_limit: Some(RateLimit::token_bucket(600, 3).with_retry_after()),
        ..EmulatorConfig::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(folders(&site).await, (200, None));
    }
    assert_eq!(folders(&site).await, (429, Some("1".into())));
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(folders(&site).await.0, 200);
    assert_eq!(folders(&site).await.0, 429);
    assert_eq!(
        site.emu.limiter_stats(),
        LimiterStats {
            admitted: 4,
            refused: 2
        }
    );
    let faults: Vec<Option<String>> = site.emu.api_calls().into_iter().map(|c| c.fault).collect();
    assert_eq!(faults.iter().filter(|f| f.as_deref() == Some("rate-limit")).count(), 2);

    // Without Retry-After, and counts taken and zeroed.
    site.emu.set_rate_limit(Some(RateLimit::token_bucket(600, 1)));
    assert_eq!(folders(&site).await, (200, None));
    assert_eq!(folders(&site).await, (429, None));
    assert_eq!(
        site.emu.take_limiter_stats(),
        LimiterStats {
            admitted: 5,
            refused: 3
        }
    );
    assert_eq!(site.emu.limiter_stats(), LimiterStats::default());
    site.emu.set_rate_limit(None);
    assert_eq!(folders(&site).await.0, 200);
}

#[tokio::test]
async fn a_scripted_429_takes_no_token() {
    let site = Site::start(EmulatorConfig {
        rate_limit: Some(RateLimit::token_bucket(1, 2)),
        ..EmulatorConfig::default()
    })
    .await;
    site.emu
        .push_faults("", vec![Fault::TooManyRequests { retry_after: None }]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(folders(&site).await.0);
    }
    assert_eq!(statuses, [429, 200, 200, 429]);
    assert_eq!(
        site.emu.limiter_stats(),
        LimiterStats {
            admitted: 3,
            refused: 1
        }
    );
}

#[tokio::test]
async fn slow_bucket_says_when_the_next_token_comes() {
    // One token every 6 s.
    let site = Site::start(EmulatorConfig {
        rate_limit: Some(RateLimit::token_bucket(10, 1).with_retry_after()),
        ..EmulatorConfig::default()
    })
    .await;
    assert_eq!(folders(&site).await.0, 200);
    let (status, retry_after) = folders(&site).await;
    assert_eq!(status, 429);
    let secs: u64 = retry_after.unwrap().parse().unwrap();
    assert!((5..=6).contains(&secs), "{secs}");
}
