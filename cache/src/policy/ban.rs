//! What a ban may name: an absolute URL prefix (`http://host/...`) that cannot remove every
//! object by accident.
//!
//! Contract: every primary key is `http://` + host (+ port) + path-and-query (`super::key`), so
//! a ban prefix must start with `http://` (any case) and name at least the start of a host.
//! Refused: an empty prefix, a relative one (`/img/`, `img/`, `example.com/img/` — no scheme),
//! another scheme (`https://` keys do not exist: the node serves plain HTTP), a prefix that
//! names no host (`http://`), or a host with userinfo. The prefix is returned as keys are
//! written: scheme and host lowercased and, when the host is complete (a `/` or `?` follows
//! it), the default port removed. Emptying the cache on purpose is a separate request (the
//! admin's `all=1`), never a prefix.

use super::key::{normalize_authority, SCHEME};

/// Why a ban prefix is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanRefused {
    /// Nothing (or only spaces) was given.
    Empty,
    /// No `scheme://`: a path, or a host without its scheme.
    NotAbsolute,
    /// A scheme other than `http`.
    OtherScheme,
    /// `http://` and nothing after it: every object would match.
    NoHost,
    /// The host part cannot be a key's (userinfo, a bad port).
    BadHost,
}

impl BanRefused {
    /// For the operator: what is wrong and what to write instead.
    pub fn message(self) -> &'static str {
        match self {
            BanRefused::Empty => {
                "a ban needs a prefix such as http://example.com/img/ (to empty the whole cache \
                 on purpose: `strait ctl ban --all`, POST /ban?all=1)"
            }
            BanRefused::NotAbsolute => {
                "a ban prefix is an absolute URL prefix such as http://example.com/img/ (cache \
                 keys are http://host/path?query)"
            }
            BanRefused::OtherScheme => {
                "cache keys start with http:// (the node serves plain HTTP); write e.g. \
                 http://example.com/img/"
            }
            BanRefused::NoHost => {
                "a ban prefix must name a host, e.g. http://example.com/img/ (to empty the \
                 whole cache on purpose: `strait ctl ban --all`, POST /ban?all=1)"
            }
            BanRefused::BadHost => {
                "the prefix's host is not one a cache key can have (no user@, a numeric port)"
            }
        }
    }
}

/// The prefix to ban, written as keys are, or why it is refused (see the module doc).
pub fn checked_ban_prefix(raw: &str) -> Result<String, BanRefused> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(BanRefused::Empty);
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(BanRefused::NotAbsolute);
    };
    if !scheme.eq_ignore_ascii_case("http") {
        let scheme_like = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        return Err(if scheme_like {
            BanRefused::OtherScheme
        } else {
            BanRefused::NotAbsolute
        });
    }
    let host_end = rest.find(['/', '?']);
    let (authority, tail) = rest.split_at(host_end.unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(BanRefused::NoHost);
    }
    if authority.contains('@') {
        return Err(BanRefused::BadHost);
    }
    let host = match host_end {
        // The whole host: normalised as keys are (lowercase, no ":80").
        Some(_) => normalize_authority(authority).ok_or(BanRefused::BadHost)?,
        // The start of a host: only lowercased.
        None => authority.to_ascii_lowercase(),
    };
    let tail = if tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_owned()
    };
    Ok(format!("{SCHEME}{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_prefixes_are_written_as_keys_are() {
        let table = [
            ("http://example.com/img/", "http://example.com/img/"),
            ("HTTP://Example.COM/Img/", "http://example.com/Img/"),
            ("http://example.com:80/a", "http://example.com/a"),
            ("http://example.com:8080/a", "http://example.com:8080/a"),
            ("http://example.com", "http://example.com"),
            ("http://ex", "http://ex"),
            ("http://EX", "http://ex"),
            ("http://example.com?q=1", "http://example.com/?q=1"),
            ("  http://example.com/  ", "http://example.com/"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ];
        for (raw, want) in table {
            assert_eq!(checked_ban_prefix(raw).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn empty_relative_and_hostless_prefixes_are_refused() {
        let table = [
            ("", BanRefused::Empty),
            ("   ", BanRefused::Empty),
            ("/", BanRefused::NotAbsolute),
            ("/img/", BanRefused::NotAbsolute),
            ("img/", BanRefused::NotAbsolute),
            ("example.com/img/", BanRefused::NotAbsolute),
            ("h", BanRefused::NotAbsolute),
            ("http", BanRefused::NotAbsolute),
            ("http:", BanRefused::NotAbsolute),
            ("http:/", BanRefused::NotAbsolute),
            ("://x", BanRefused::NotAbsolute),
            ("http://", BanRefused::NoHost),
            ("http:///img/", BanRefused::NoHost),
            ("https://example.com/", BanRefused::OtherScheme),
            ("ftp://example.com/", BanRefused::OtherScheme),
            ("http://user@example.com/", BanRefused::BadHost),
            ("http://example.com:x/", BanRefused::BadHost),
        ];
        for (raw, want) in table {
            assert_eq!(checked_ban_prefix(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn no_accepted_prefix_matches_every_key() {
        for raw in ["http://a", "http://example.com/", "HTTP://X/"] {
            let prefix = checked_ban_prefix(raw).unwrap();
            assert!(prefix.len() > SCHEME.len(), "{prefix}");
            assert!(!prefix.starts_with("http:///"), "{prefix}");
        }
    }

    #[test]
    fn messages_say_what_to_write() {
        for why in [
            BanRefused::Empty,
            BanRefused::NotAbsolute,
            BanRefused::OtherScheme,
            BanRefused::NoHost,
        ] {
            assert!(why.message().contains("http://example.com/img/"), "{why:?}");
        }
        assert!(BanRefused::Empty.message().contains("--all"));
    }
}
