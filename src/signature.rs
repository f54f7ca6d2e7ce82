//! `X-Archive-Signature: t=<unix seconds>,v1=<hex>`: HMAC-SHA256 over `"<t>." + body`,
//! checked against every caller key in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::credentials::SecretString;

type HmacSha256 = Hmac<Sha256>;

/// The header callers sign with.
pub const HEADER: &str = "x-archive-signature";

/// Why a signature was refused. The HTTP answer never says which; logs may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature timestamp is outside the allowed window")]
    Stale,
    #[error("no signature matches a caller key")]
    Mismatch,
}

/// Checks `header` for `body` at unix time `now`.
pub fn verify(
    header: Option<&[u8]>,
    body: &[u8],
    keys: &[SecretString],
    now: u64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    let mut timestamp: Option<&str> = None;
    let mut signatures: Vec<[u8; 32]> = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match key.trim() {
            "t" if timestamp.is_none() => timestamp = Some(value.trim()),
            "t" => return Err(SignatureError::Malformed),
            "v1" => {
                let mut sig = [0u8; 32];
                let value = value.trim();
                if value.len() != 64 || value.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(SignatureError::Malformed);
                }
                hex::decode_to_slice(value, &mut sig).map_err(|_| SignatureError::Malformed)?;
                signatures.push(sig);
            }
            // Other schemes (a future v2) are ignored, as Stripe-style headers do.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() || timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let t: u64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    if t.abs_diff(now) > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    for key in keys {
        let mac = signed_mac(key.expose().as_bytes(), timestamp, body);
        // `verify_slice` compares in constant time; try every entry so timing does not
        // tell which key or entry matched.
        let mut matched = false;
        for sig in &signatures {
            matched |= mac.clone().verify_slice(sig).is_ok();
        }
        if matched {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The header value a caller sends for `body` at unix time `t`.
pub fn sign(key: &str, t: u64, body: &[u8]) -> String {
    let t = t.to_string();
    let tag = signed_mac(key.as_bytes(), &t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

fn signed_mac(key: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn keys(list: &[&str]) -> Vec<SecretString> {
        list.iter().map(|k| SecretString::new(k.to_string())).collect()
    }

    fn check(header: Option<&str>, body: &[u8], ks: &[&str]) -> Result<(), SignatureError> {
        verify(header.map(str::as_bytes), body, &keys(ks), NOW, 300)
    }

    #[test]
    fn a_good_signature() {
        let h = sign("k1", NOW, b"{}");
        assert_eq!(check(Some(&h), b"{}", &["k1"]), Ok(()));
        assert_eq!(
            check(Some(&format!(" {} ", h.replace(',', " , "))), b"{}", &["k1"]),
            Ok(())
        );
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "1700000000.{}") from Python's hmac module.
        assert_eq!(
            sign("key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(check(None, b"{}", &["k1"]), Err(SignatureError::Missing));
        let good = sign("k1", NOW, b"{}");
        let v1 = good.split(",v1=").nth(1).unwrap();
        for bad in [
            "".to_string(),
            "garbage".to_string(),
            format!("v1={v1}"),
            format!("t={NOW}"),
            format!("t=,v1={v1}"),
            format!("t=-5,v1={v1}"),
            format!("t=12a,v1={v1}"),
            format!("t={NOW},t={NOW},v1={v1}"),
            format!("t={NOW},v1={}", &v1[..63]),
            format!("t={NOW},v1={}", v1.to_uppercase()),
            format!("t={NOW},v1={}zz", &v1[..62]),
            format!("t=99999999999999999999999,v1={v1}"),
        ] {
            assert_eq!(
                check(Some(&bad), b"{}", &["k1"]),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(Some(b"t=1,v1=\xff"), b"{}", &keys(&["k1"]), NOW, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn wrong_key_tampered_body_and_stale() {
        let h = sign("k1", NOW, b"{}");
        assert_eq!(check(Some(&h), b"{}", &["other"]), Err(SignatureError::Mismatch));
        assert_eq!(check(Some(&h), b"{ }", &["k1"]), Err(SignatureError::Mismatch));
        assert_eq!(check(Some(&h), b"{}", &[]), Err(SignatureError::Mismatch));
        let old = sign("k1", NOW - 301, b"{}");
        assert_eq!(check(Some(&old), b"{}", &["k1"]), Err(SignatureError::Stale));
        let edge = sign("k1", NOW - 300, b"{}");
        assert_eq!(check(Some(&edge), b"{}", &["k1"]), Ok(()));
        let future = sign("k1", NOW + 301, b"{}");
        assert_eq!(check(Some(&future), b"{}", &["k1"]), Err(SignatureError::Stale));
    }

    #[test]
    fn second_v1_and_rotated_keys() {
        let new = sign("new", NOW, b"{}");
        let old = sign("old", NOW, b"{}");
        let both = format!("{},v1={}", old, new.split(",v1=").nth(1).unwrap());
        assert_eq!(check(Some(&both), b"{}", &["new"]), Ok(()));
        assert_eq!(check(Some(&both), b"{}", &["old"]), Ok(()));
        assert_eq!(check(Some(&new), b"{}", &["old", "new"]), Ok(()));
        assert_eq!(check(Some(&both), b"{}", &["neither"]), Err(SignatureError::Mismatch));
        let with_v0 = format!("{new},v0=abc");
        assert_eq!(check(Some(&with_v0), b"{}", &["new"]), Ok(()));
    }
}
