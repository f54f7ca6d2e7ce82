//! The owner's console: one page (HTML, CSS and a hand-written script, compiled into the
//! binary) served at `GET /console`. It holds no data and no secret: the owner pastes a
//! caller key, and the page signs every call of the API itself, as any other caller does.
//! Served with a strict Content-Security-Policy: no inline script or style, nothing from
//! another origin, calls only to the function itself.

use crate::entry::http::HttpResponse;

#[cfg(feature = "local")]
pub mod serve;

/// The page's three files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `GET /console`.
    Page,
    /// `GET /console/app.js`.
    Script,
    /// `GET /console/app.css`.
    Style,
}

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The policy of every console file: the page's own script and style, calls to its own
/// origin, images only inline (`data:`), no plugins, no frames, no form posts, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The answer for one of the console's files.
pub fn serve(asset: Asset) -> HttpResponse {
    let (content_type, body) = match asset {
        Asset::Page => ("text/html; charset=utf-8", PAGE),
        Asset::Script => ("text/javascript; charset=utf-8", SCRIPT),
        Asset::Style => ("text/css; charset=utf-8", STYLE),
    };
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type", content_type.to_owned()),
            ("content-security-policy", CONTENT_SECURITY_POLICY.to_owned()),
            ("x-content-type-options", "nosniff".to_owned()),
            ("referrer-policy", "no-referrer".to_owned()),
            ("x-frame-options", "DENY".to_owned()),
            ("cross-origin-opener-policy", "same-origin".to_owned()),
            ("cross-origin-resource-policy", "same-origin".to_owned()),
            (
                "permissions-policy",
                "camera=(), microphone=(), geolocation=()".to_owned(),
            ),
            // The files change with the binary; a deployed update shows at the next load.
            ("cache-control", "no-cache".to_owned()),
        ],
        body: body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_file_is_served_under_the_strict_policy() {
        for asset in [Asset::Page, Asset::Script, Asset::Style] {
            let r = serve(asset);
            assert_eq!(r.status, 200);
            assert_eq!(header(&r, "content-security-policy"), Some(CONTENT_SECURITY_POLICY));
            assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
            assert_eq!(header(&r, "referrer-policy"), Some("no-referrer"));
        }
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"), "no other origin");
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_says_it_needs_javascript() {
        let page = serve(Asset::Page).body;
        // Every <script> loads the served file; none carries code.
        for tag in page.split("<script").skip(1) {
            let (attributes, rest) = tag.split_once('>').unwrap();
            assert!(attributes.contains("src=\"console/app.js\""), "{attributes}");
            assert!(rest.starts_with("</script>"), "an inline script: {rest}");
        }
        assert!(!page.contains("<style"), "an inline style");
        assert!(!page.contains(" style="), "a style attribute");
        let handler = page.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert_eq!(handler, None, "an inline event handler");
        assert!(
            !page.contains("//cdn") && !page.contains("https://"),
            "a third-party file"
        );
        let noscript = page.split("<noscript>").nth(1).unwrap();
        assert!(noscript.contains("needs JavaScript"), "{noscript}");
        assert!(page.contains("<meta name=\"viewport\""));
    }

    #[test]
    fn the_script_signs_as_the_contract_says_and_keeps_the_key_out_of_storage() {
        let script = serve(Asset::Script).body;
        assert!(script.contains("\"HMAC\""));
        assert!(script.contains("\"SHA-256\""));
        assert!(script.contains("`${t}.${body}`"));
        assert!(script.contains("`t=${t},v1=${"));
        assert!(script.contains("X-Archive-Signature"));
        assert!(!script.contains("localStorage"), "the key never outlives the tab");
        assert!(!script.contains("console.log"), "nothing logged");
        assert!(!script.contains("innerHTML"), "text goes in as text, never as markup");
        assert!(!script.contains("eval(") && !script.contains("new Function"));
    }
}
