//! Durations as operators write them: humantime strings (`"500ms"`, `"2s"`, `"5m"`, `"1h 30m"`,
//! `"1day"`), and the message when a value is not one.
//!
//! Contract: [`parse_duration`] accepts what `humantime::parse_duration` accepts; a TOML integer
//! is refused (a duration needs its unit) with the value and its likely meaning in seconds as
//! the example. Use [`deserialize`] as a field's `#[serde(with = "...")]` for `Duration`
//! fields; every error quotes the value and gives an example.

use std::fmt;
use std::time::Duration;

use serde::de::{Deserializer, Visitor};

/// Written examples shown by every error.
pub const EXAMPLES: &str = "write e.g. \"500ms\", \"2s\" or \"5m\"";

/// Parses a duration as written; the error quotes it and gives `examples` (a sentence such as
/// [`EXAMPLES`]).
pub fn parse_duration(text: &str, examples: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("{text:?} is not a duration; {examples}"))
}

/// serde: a `Duration` field written as a humantime string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// serde: an optional `Duration` field (`#[serde(default, with = "...::duration::option")]`):
/// absent is `None`, present must be a duration.
pub mod option {
    use std::time::Duration;

    use serde::de::Deserializer;

    /// Deserializes a present value as [`super::deserialize`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a duration; {EXAMPLES}")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v, EXAMPLES).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "{v} is not a duration (a duration has a unit); write e.g. \"{v}s\" or \"{v}ms\""
        )))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "{v} is not a duration (a duration has a unit); write e.g. \"{v}s\" or \"{v}ms\""
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_humantime_reads_them() {
        let table: &[(&str, Duration)] = &[
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("5m", Duration::from_secs(300)),
            ("1h 30m", Duration::from_secs(5400)),
            ("1day", Duration::from_secs(86_400)),
            ("0s", Duration::ZERO),
            (" 2s ", Duration::from_secs(2)),
        ];
        for &(text, want) in table {
            assert_eq!(parse_duration(text, EXAMPLES), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn what_is_not_a_duration_is_quoted_with_an_example() {
        for text in ["", "2", "2 fortnights", "-1s", "s"] {
            assert_eq!(
                parse_duration(text, EXAMPLES),
                Err(format!(
                    "{text:?} is not a duration; write e.g. \"500ms\", \"2s\" or \"5m\""
                ))
            );
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        #[serde(with = "super")]
        wait: Duration,
    }

    fn from_toml(value: &str) -> Result<Duration, String> {
        toml::from_str::<Doc>(&format!("wait = {value}"))
            .map(|d| d.wait)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn toml_values_deserialize_or_say_what_to_write() {
        assert_eq!(from_toml("\"2s\""), Ok(Duration::from_secs(2)));
        assert_eq!(
            from_toml("\"2 fortnights\""),
            Err(
                "\"2 fortnights\" is not a duration; write e.g. \"500ms\", \"2s\" or \"5m\"".into()
            )
        );
        assert_eq!(
            from_toml("30"),
            Err(
                "30 is not a duration (a duration has a unit); write e.g. \"30s\" or \"30ms\""
                    .into()
            )
        );
        assert!(from_toml("true")
            .unwrap_err()
            .contains("a duration; write e.g."));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Optional {
        #[serde(default, with = "super::option")]
        ttl: Option<Duration>,
    }

    #[test]
    fn an_optional_duration_is_none_when_absent() {
        let absent: Optional = toml::from_str("").unwrap();
        assert_eq!(absent.ttl, None);
        let present: Optional = toml::from_str("ttl = \"10m\"").unwrap();
        assert_eq!(present.ttl, Some(Duration::from_secs(600)));
        assert!(toml::from_str::<Optional>("ttl = \"ten minutes\"").is_err());
    }
}
