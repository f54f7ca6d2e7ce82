//! Timestamps as Wix writes them (RFC 3339) and as zip headers hold them (MS-DOS).

use std::time::{SystemTime, UNIX_EPOCH};

/// Base of the deterministic created/updated dates of seeded files (2022-01-01).
pub(crate) const DATES_FROM: u64 = 1_640_995_200;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// RFC 3339 UTC timestamp with milliseconds, as Wix writes them.
pub(crate) fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// (time, date) in MS-DOS format, local time taken as UTC; zip cannot say years before 1980.
pub(crate) fn dos_datetime(unix_secs: u64) -> (u16, u16) {
    let (y, m, d) = civil_from_days((unix_secs / 86_400) as i64);
    if y < 1980 {
        return (0, (1 << 5) | 1);
    }
    let rem = unix_secs % 86_400;
    let time = ((rem / 3600) << 11) | ((rem % 3600 / 60) << 5) | (rem % 60 / 2);
    let date = (((y - 1980).min(127) as u64) << 9) | (u64::from(m) << 5) | u64::from(d);
    (time as u16, date as u16)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        // 2023-11-14 22:13:20 → date (43 << 9 | 11 << 5 | 14), time (22 << 11 | 13 << 5 | 10).
        assert_eq!(
            dos_datetime(1_700_000_000),
            ((22 << 11) | (13 << 5) | 10, (43 << 9) | (11 << 5) | 14)
        );
        assert_eq!(dos_datetime(0), (0, 33));
    }
}
