//! Sizes as operators write them (`"64m"`, `"256MiB"`, `"1.5G"`, `"500KB"`, `1048576`), parsed
//! once into a [`Size`] (a byte count).
//!
//! Contract (the table in `docs/config.md#units`):
//! * a number (digits, optionally `.` and more digits), optional spaces, then a unit;
//! * no unit, `b` or `B`: bytes (a whole number);
//! * `k`/`K`, `m`/`M`, `g`/`G`, `t`/`T`: binary, 2^10, 2^20, 2^30, 2^40 (as nginx and Varnish
//!   read `64m`);
//! * `KiB`, `MiB`, `GiB`, `TiB`: binary too (IEC);
//! * `KB` (or `kB`), `MB`, `GB`, `TB`: decimal, 10^3, 10^6, 10^9, 10^12 (SI);
//! * anything else (`mb`, `Kb`, `64 mebibytes`, a negative number) is not a size; a fraction is
//!   rounded down to whole bytes; a size above `u64::MAX` bytes is refused.
//!
//! A TOML integer is a number of bytes. Errors quote the value and give an example
//! ([`SizeError`]), and the config loaders prefix them with the key and its `FILE:LINE:COL`.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(u64);

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Units and what one of them is worth, in bytes.
const UNITS: [(&str, u64); 19] = [
    ("", 1),
    ("b", 1),
    ("B", 1),
    ("k", KIB),
    ("K", KIB),
    ("m", MIB),
    ("M", MIB),
    ("g", GIB),
    ("G", GIB),
    ("t", TIB),
    ("T", TIB),
    ("KiB", KIB),
    ("MiB", MIB),
    ("GiB", GIB),
    ("TiB", TIB),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Written examples shown by every error.
const EXAMPLES: &str = "write e.g. \"256MiB\" or \"64m\"";

impl Size {
    /// `n` bytes.
    pub const fn bytes(n: u64) -> Size {
        Size(n)
    }

    /// `n` KiB (1024 bytes each).
    pub const fn kib(n: u64) -> Size {
        Size(n * KIB)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Size {
        Size(n * MIB)
    }

    /// `n` GiB.
    pub const fn gib(n: u64) -> Size {
        Size(n * GIB)
    }

    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Parses a size as written (see the module doc).
    pub fn parse(text: &str) -> Result<Size, SizeError> {
        let bad = |why: Why| SizeError {
            text: text.to_owned(),
            why,
        };
        let trimmed = text.trim();
        let number_end = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(number_end);
        let unit = unit.trim_start();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
            return Err(bad(Why::Syntax));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(bad(Why::Syntax));
        };
        if scale == 1 && !fraction.is_empty() {
            return Err(bad(Why::FractionOfAByte));
        }
        // Whole part and fraction scaled exactly in u128, the fraction rounded down.
        // A whole part of up to 39 digits times a scale up to 2^40 can pass u128: too large,
        // never a wrapped (small) size.
        let whole: u128 = whole.parse().map_err(|_| bad(Why::TooLarge))?;
        let mut bytes = whole
            .checked_mul(u128::from(scale))
            .ok_or_else(|| bad(Why::TooLarge))?;
        if !fraction.is_empty() {
            let digits = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
            let numerator: u128 = digits.parse().map_err(|_| bad(Why::Syntax))?;
            bytes = bytes
                .checked_add(numerator * u128::from(scale) / 10u128.pow(digits.len() as u32))
                .ok_or_else(|| bad(Why::TooLarge))?;
        }
        u64::try_from(bytes)
            .map(Size)
            .map_err(|_| bad(Why::TooLarge))
    }
}

/// Fraction digits that count (the rest are below a byte for every unit up to `T`).
const MAX_FRACTION_DIGITS: usize = 15;

/// Shown in messages as written in configs: `64MiB`, `3KiB` or `1000 bytes`.
impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, scale) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
            if n >= scale && n.is_multiple_of(scale) {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        write!(f, "{n} bytes")
    }
}

/// A value that is not a size: it quotes the value and gives an example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct SizeError {
    text: String,
    why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Syntax,
    FractionOfAByte,
    TooLarge,
    Negative,
}

impl SizeError {
    fn message(&self) -> String {
        let text = &self.text;
        match self.why {
            Why::Syntax => format!("{text:?} is not a size; {EXAMPLES}"),
            Why::FractionOfAByte => {
                format!("{text:?} is not a whole number of bytes; {EXAMPLES}")
            }
            Why::TooLarge => format!("{text:?} is too large a size; {EXAMPLES}"),
            Why::Negative => format!("{text} is not a size (it is negative); {EXAMPLES}"),
        }
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = Size;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a size; {EXAMPLES}")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
        Size::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
        Ok(Size(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
        u64::try_from(v).map(Size).map_err(|_| {
            E::custom(SizeError {
                text: v.to_string(),
                why: Why::Negative,
            })
        })
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Size, E> {
        Err(E::custom(SizeError {
            text: v.to_string(),
            why: Why::FractionOfAByte,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (written, bytes): every unit, spaces, fractions.
    const GOOD: &[(&str, u64)] = &[
        ("0", 0),
        ("1", 1),
        ("1048576", 1 << 20),
        ("512b", 512),
        ("512B", 512),
        ("64k", 64 << 10),
        ("64K", 64 << 10),
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("2g", 2 << 30),
        ("2G", 2 << 30),
        ("1t", 1 << 40),
        ("1T", 1 << 40),
        ("8KiB", 8 << 10),
        ("256MiB", 256 << 20),
        ("10GiB", 10 << 30),
        ("1TiB", 1 << 40),
        ("500KB", 500_000),
        ("64MB", 64_000_000),
        ("2GB", 2_000_000_000),
        ("1TB", 1_000_000_000_000),
        ("64 MiB", 64 << 20),
        (" 64m ", 64 << 20),
        ("1.5G", 3 << 29),
        ("1.5GB", 1_500_000_000),
        ("0.5KiB", 512),
        ("1.0001k", 1024),
    ];

    /// Written values that are not sizes.
    const BAD: &[&str] = &[
        "",
        " ",
        "m",
        "MiB",
        "64 mb",
        "64mb",
        "64Kb",
        "64kib",
        "64 mebibytes",
        "12 parsecs",
        "-1",
        "+1",
        "1.5",
        "1.",
        ".5m",
        "1.2.3m",
        "64 M iB",
        "0x10",
        "1e6",
        "99999999999999999999",
        "16777216T",
    ];

    #[test]
    fn sizes_parse_as_the_table_says() {
        for &(text, want) in GOOD {
            assert_eq!(Size::parse(text), Ok(Size(want)), "{text:?}");
        }
    }

    #[test]
    fn what_is_not_a_size_is_refused_with_the_value_quoted() {
        for text in BAD {
            let e = Size::parse(text).expect_err(text);
            let message = e.to_string();
            assert!(message.starts_with(&format!("{text:?} ")), "{message}");
            assert!(
                message.ends_with("write e.g. \"256MiB\" or \"64m\""),
                "{message}"
            );
        }
        assert_eq!(
            Size::parse("64 mb").unwrap_err().to_string(),
            "\"64 mb\" is not a size; write e.g. \"256MiB\" or \"64m\""
        );
        assert_eq!(
            Size::parse("1.5").unwrap_err().to_string(),
            "\"1.5\" is not a whole number of bytes; write e.g. \"256MiB\" or \"64m\""
        );
        assert_eq!(
            Size::parse("16777216T").unwrap_err().to_string(),
            "\"16777216T\" is too large a size; write e.g. \"256MiB\" or \"64m\""
        );
    }

    #[test]
    fn the_largest_size_is_u64_max() {
        assert_eq!(Size::parse("18446744073709551615"), Ok(Size(u64::MAX)));
        assert!(Size::parse("18446744073709551616").is_err());
        assert_eq!(Size::parse("16777215T"), Ok(Size(16_777_215 << 40)));
        // Past u128 in the multiplication (found by the node_config fuzz target): too large,
        // not a panic and not a wrapped size.
        for text in [
            "7777777777777777777777777777764T",
            "340282366920938463463374607431768211455T",
            "340282366920938463463374607431768211455.5T",
        ] {
            let e = Size::parse(text).unwrap_err();
            assert!(e.to_string().contains("too large"), "{text}: {e}");
        }
    }

    #[test]
    fn display_is_the_largest_exact_binary_unit() {
        assert_eq!(Size::mib(256).to_string(), "256MiB");
        assert_eq!(Size::kib(3).to_string(), "3KiB");
        assert_eq!(Size::gib(2).to_string(), "2GiB");
        assert_eq!(Size::kib(1536).to_string(), "1536KiB");
        assert_eq!(Size::bytes(1_048_577).to_string(), "1048577 bytes");
        assert_eq!(Size::bytes(0).to_string(), "0 bytes");
        for size in [Size::mib(256), Size::kib(3), Size::gib(2)] {
            assert_eq!(Size::parse(&size.to_string()), Ok(size));
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        size: Size,
    }

    fn from_toml(value: &str) -> Result<Size, String> {
        toml::from_str::<Doc>(&format!("size = {value}"))
            .map(|d| d.size)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn toml_strings_and_integers_deserialize() {
        assert_eq!(from_toml("\"64m\""), Ok(Size::mib(64)));
        assert_eq!(from_toml("4096"), Ok(Size::kib(4)));
        assert_eq!(
            from_toml("\"64 mb\""),
            Err("\"64 mb\" is not a size; write e.g. \"256MiB\" or \"64m\"".into())
        );
        assert_eq!(
            from_toml("-5"),
            Err("-5 is not a size (it is negative); write e.g. \"256MiB\" or \"64m\"".into())
        );
        assert_eq!(
            from_toml("1.5"),
            Err("\"1.5\" is not a whole number of bytes; write e.g. \"256MiB\" or \"64m\"".into())
        );
        assert!(from_toml("true")
            .unwrap_err()
            .contains("a size; write e.g."));
    }
}
