//! Which response status codes this cache understands (RFC 9111 §3, §5.2.2.3).
//!
//! Contract: [`is_understood`] is true for the final status codes whose semantics strait knows
//! and applies: those RFC 9110 §15 defines, plus 429, 431 (RFC 6585) and 451 (RFC 7725). Any
//! other status (an extension code such as 299 or 599, WebDAV's 207, 1xx, anything past 599)
//! is not understood: it is stored only with explicit freshness, and never under
//! `must-understand`.

use http::StatusCode;

/// True when the cache understands `status` (see the module contract).
pub fn is_understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=206
            | 300..=305
            | 307
            | 308
            | 400..=417
            | 421
            | 422
            | 426
            | 429
            | 431
            | 451
            | 500..=505
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn understood(code: u16) -> bool {
        is_understood(StatusCode::from_u16(code).unwrap())
    }

    #[test]
    fn rfc_9110_final_codes_are_understood() {
        for code in [
            200, 203, 204, 206, 301, 304, 308, 404, 410, 417, 421, 426, 451, 505,
        ] {
            assert!(understood(code), "{code}");
        }
    }

    #[test]
    fn extension_and_interim_codes_are_not() {
        for code in [
            100, 103, 207, 226, 299, 306, 418, 420, 499, 506, 599, 600, 999,
        ] {
            assert!(!understood(code), "{code}");
        }
    }
}
