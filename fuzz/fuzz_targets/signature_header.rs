//! `signature::verify` against fixed caller keys and a fixed time.
//!
//! Input: `<header>\n<body>` (no newline: the whole input is the header, the body is
//! empty). The header and body are checked as given; then the body is signed with `sign`
//! at a time near `NOW` (offset, key and flipped position derived from the input's bytes).
//!
//! Checked:
//! - arbitrary headers and bodies never panic, also at the extremes of `now`; no header at
//!   all is `Missing`; an arbitrary header only verifies if it carries the right HMAC;
//! - `sign(key, t, body)` always verifies for each caller key when `|t - NOW| <= 300`
//!   (also with spaces around its parts and an unknown `v0=` part), and is `Stale` outside;
//! - the same header with one hex digit of `v1` changed never verifies (`Mismatch`);
//!   upper-cased, it is `Malformed`; signed with a key that is not a caller key, `Mismatch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wix_media_archiver::credentials::SecretString;
use wix_media_archiver::signature::{self, SignatureError};

const NOW: u64 = 1_800_000_000;
const TOLERANCE: u64 = 300;
const KEYS: [&str; 3] = ["caller-key-1", "k", "rotated key with spaces and ünïcode"];

fn keys() -> Vec<SecretString> {
    KEYS.iter().map(|k| SecretString::new((*k).to_owned())).collect()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };

    // Arbitrary input: never panics, whatever the clock.
    let got = signature::verify(Some(header), body, &keys, NOW, TOLERANCE);
    if got.is_ok() {
        // Only a header that carries one of the keys' HMACs over "<t>.<body>" can pass.
        let text = std::str::from_utf8(header).expect("a verified header is UTF-8");
        // Parts are read as `verify` reads them: `key=value`, each side trimmed.
        let ok = keys.iter().any(|k| {
            text.split(',')
                .filter_map(|p| p.split_once('='))
                .filter(|(key, _)| key.trim() == "t")
                .any(|(_, t)| {
                    let t = t.trim();
                    let Ok(n) = t.parse::<u64>() else { return false };
                    // `sign` writes t without leading zeros; only compare when t is canonical.
                    n.to_string() != t || {
                        let good = signature::sign(k.expose(), n, body);
                        let hex = good.split(",v1=").nth(1).unwrap();
                        text.contains(hex)
                    }
                })
        });
        assert!(ok, "{text:?} verified without a matching HMAC");
    }
    for now in [0, 1, u64::MAX, NOW + TOLERANCE] {
        let _ = signature::verify(Some(header), body, &keys, now, TOLERANCE);
        let _ = signature::verify(Some(header), body, &keys, now, u64::MAX);
    }
    assert_eq!(
        signature::verify(None, body, &keys, NOW, TOLERANCE),
        Err(SignatureError::Missing)
    );

    // Headers made with `sign`.
    let h = fnv(data);
    let offset = (h % 801) as i64 - 400; // -400..=400 seconds from NOW
    let t = NOW.checked_add_signed(offset).unwrap();
    let fresh = offset.unsigned_abs() <= TOLERANCE;
    let key = KEYS[(h >> 16) as usize % KEYS.len()];
    let good = signature::sign(key, t, body);
    let expect_good = if fresh { Ok(()) } else { Err(SignatureError::Stale) };
    assert_eq!(
        signature::verify(Some(good.as_bytes()), body, &keys, NOW, TOLERANCE),
        expect_good,
        "{good}"
    );
    let spaced = format!(" {} ,v0=abc", good.replace(',', " , "));
    assert_eq!(
        signature::verify(Some(spaced.as_bytes()), body, &keys, NOW, TOLERANCE),
        expect_good,
        "{spaced}"
    );

    // One hex digit of v1 changed to another lowercase hex digit.
    let v1_at = good.find(",v1=").unwrap() + 4;
    let pos = v1_at + (h >> 24) as usize % 64;
    let old = good.as_bytes()[pos];
    let digits = b"0123456789abcdef";
    let mut new = digits[(h >> 32) as usize % 16];
    if new == old {
        new = digits[(digits.iter().position(|&d| d == old).unwrap() + 1) % 16];
    }
    let mut flipped = good.clone().into_bytes();
    flipped[pos] = new;
    let expect_bad = if fresh {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Stale)
    };
    assert_eq!(
        signature::verify(Some(&flipped), body, &keys, NOW, TOLERANCE),
        expect_bad,
        "{}",
        String::from_utf8_lossy(&flipped)
    );

    // Upper-case hex is refused as malformed; a key that is not a caller key never matches.
    let upper = good.to_ascii_uppercase().replace("T=", "t=").replace("V1=", "v1=");
    if upper != good {
        assert_eq!(
            signature::verify(Some(upper.as_bytes()), body, &keys, NOW, TOLERANCE),
            Err(SignatureError::Malformed)
        );
    }
    let stranger = signature::sign("not-a-caller-key", t, body);
    assert_eq!(
        signature::verify(Some(stranger.as_bytes()), body, &keys, NOW, TOLERANCE),
        expect_bad
    );
    // The right signature for another body does not verify this one.
    let mut other_body = body.to_vec();
    other_body.push(b' ');
    let for_other = signature::sign(key, t, &other_body);
    assert_eq!(
        signature::verify(Some(for_other.as_bytes()), body, &keys, NOW, TOLERANCE),
        expect_bad
    );
});
