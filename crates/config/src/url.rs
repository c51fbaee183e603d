//! What of a URL may be printed. A URL's userinfo (`user:password@`) is a credential (reqwest
//! sends it as basic auth), and some webhook URLs carry their secret in the path (chat
//! webhooks: `/services/T0/B0/<secret>`). Every log line, health answer and error that shows
//! a configured URL goes through one of these two.

/// The URL without its userinfo: `http://user:pw@host:6060/debug/pprof/heap` →
/// `http://host:6060/debug/pprof/heap`; a bare authority (`user:pw@host:6060`, a scrape
/// target) → `host:6060`. Anything else is returned as it is.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = split_scheme(url);
    let end = authority_end(rest);
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}{tail}")
}

/// Only the URL's scheme and host (and port), for URLs whose path or query may hold a
/// secret: `https://u:p@hooks.example.com/services/T0/B0/xyz?token=1` →
/// `https://hooks.example.com`.
pub fn url_origin(url: &str) -> String {
    let (scheme, rest) = split_scheme(url);
    let authority = &rest[..authority_end(rest)];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}")
}

/// `("http://", "host/…")` or `("", url)` without a scheme.
fn split_scheme(url: &str) -> (&str, &str) {
    match url.find("://") {
        Some(i)
            if url[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            url.split_at(i + 3)
        }
        _ => ("", url),
    }
}

/// Where the authority (`userinfo@host:port`) ends: at the first `/`, `?` or `#`.
fn authority_end(rest: &str) -> usize {
    rest.find(['/', '?', '#']).unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_never_printed() {
        for (url, redacted, origin) in [
            (
                "http://user:s3cret@host:6060/debug/pprof/heap?x=1",
                "http://host:6060/debug/pprof/heap?x=1",
                "http://host:6060",
            ),
            ("user:s3cret@host:6060", "host:6060", "host:6060"),
            (
                "https://hooks.example.com/services/T0/B0/s3cret",
                "https://hooks.example.com/services/T0/B0/s3cret",
                "https://hooks.example.com",
            ),
            // An `@` in the password, and one in the path (not userinfo).
            (
                "https://a:b@c@example.com:8443/p@th",
                "https://example.com:8443/p@th",
                "https://example.com:8443",
            ),
            ("http://host/p?u=a@b", "http://host/p?u=a@b", "http://host"),
            ("127.0.0.1:6060", "127.0.0.1:6060", "127.0.0.1:6060"),
            ("", "", ""),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
            assert_eq!(url_origin(url), origin, "{url}");
        }
    }
}
