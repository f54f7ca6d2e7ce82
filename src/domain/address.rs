//! E-mail addresses as recipients of the links.

/// Most characters SES accepts in one address.
const MAX_ADDRESS_LEN: usize = 254;

/// A plain `local@domain.tld` address: no display name, no spaces or control characters,
/// a dot in the domain. SES does the full check; this catches typos before any Wix call.
pub fn is_valid(address: &str) -> bool {
    if address.len() > MAX_ADDRESS_LEN
        || address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
    {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains('@')
        && domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
}

/// Splits a comma-separated list of addresses, trimming each; empty entries are dropped.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in ["owner@example.com", "a.b+c@sub.example.co.uk", "x@y.io"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "owner",
            "@example.com",
            "owner@",
            "owner@example",
            "owner@@example.com",
            "own er@example.com",
            "Owner <owner@example.com>",
            "owner@example..com",
            "owner@.example.com",
            "a,b@example.com",
            "owner@example.com\n",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(!is_valid(&format!("{}@example.com", "a".repeat(250))));
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a@b.co , ,c@d.io,"), vec!["a@b.co", "c@d.io"]);
        assert!(split_list("").is_empty());
    }
}
