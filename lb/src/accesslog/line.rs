//! One access line, built field by field in a fixed order, as text or as JSON.
//!
//! Contract:
//! * Text: `key=value` pairs separated by one space, in the order the record gives them, and a
//!   newline (logfmt). A value is written bare unless it is empty or holds a space, `"`, `=`,
//!   `\` or a control character; then it is quoted, with `\"`, `\\`, `\n`, `\r`, `\t` and
//!   `\xHH` (other control characters) inside. An absent value is `-` (bare), so every key is
//!   on every line. Times are RFC 3339 UTC with milliseconds; durations are milliseconds
//!   with three decimals.
//! * JSON: one object per line with the same keys in the same order; absent values are
//!   `null`, numbers and durations are JSON numbers, the rest strings (RFC 8259 escapes).
//! * No colours or other terminal sequences, whatever the destination.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::settings::Format;

/// A field's value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Text (quoted in the text format when needed).
    Str(&'a str),
    /// An unsigned number.
    Num(u64),
    /// A duration, written in milliseconds with three decimals.
    Millis(Duration),
    /// A wall-clock time, RFC 3339 UTC with milliseconds.
    Time(SystemTime),
    /// A socket address (`ip:port`, IPv6 in brackets).
    Addr(std::net::SocketAddr),
    /// Not known for this line: `-` in text, `null` in JSON.
    Absent,
}

/// A line being built.
pub struct Line {
    format: Format,
    buf: String,
    fields: usize,
}

impl Line {
    /// An empty line in `format`, reusing `buf`'s memory.
    pub fn new(format: Format, mut buf: String) -> Line {
        buf.clear();
        Line::after(format, buf)
    }

    /// A line written after what `buf` holds (a batch of lines: no copy per line).
    pub fn after(format: Format, mut buf: String) -> Line {
        if format == Format::Json {
            buf.push('{');
        }
        Line {
            format,
            buf,
            fields: 0,
        }
    }

    /// Appends `key` with `value`.
    pub fn field(&mut self, key: &'static str, value: Value<'_>) {
        match self.format {
            Format::Text => {
                if self.fields > 0 {
                    self.buf.push(' ');
                }
                self.buf.push_str(key);
                self.buf.push('=');
                text_value(&mut self.buf, value);
            }
            Format::Json => {
                if self.fields > 0 {
                    self.buf.push(',');
                }
                json_str(&mut self.buf, key);
                self.buf.push(':');
                json_value(&mut self.buf, value);
            }
        }
        self.fields += 1;
    }

    /// Appends an optional string (absent when None).
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        self.field(key, value.map_or(Value::Absent, Value::Str));
    }

    /// The finished line, newline included.
    pub fn finish(mut self) -> String {
        if self.format == Format::Json {
            self.buf.push('}');
        }
        self.buf.push('\n');
        self.buf
    }
}

fn text_value(out: &mut String, value: Value<'_>) {
    match value {
        Value::Str(s) => text_str(out, s),
        Value::Num(n) => num(out, n),
        Value::Addr(a) => addr(out, a),
        Value::Millis(d) => millis(out, d),
        Value::Time(t) => time(out, t),
        Value::Absent => out.push('-'),
    }
}

fn json_value(out: &mut String, value: Value<'_>) {
    match value {
        Value::Str(s) => json_str(out, s),
        Value::Num(n) => num(out, n),
        Value::Addr(a) => {
            out.push('"');
            addr(out, a);
            out.push('"');
        }
        Value::Millis(d) => millis(out, d),
        Value::Time(t) => {
            out.push('"');
            time(out, t);
            out.push('"');
        }
        Value::Absent => out.push_str("null"),
    }
}

fn num(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `n` (below 1000) in three digits.
fn three(out: &mut String, n: u32) {
    let d = [
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ];
    out.push_str(std::str::from_utf8(&d).unwrap_or("000"));
}

fn addr(out: &mut String, a: std::net::SocketAddr) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            let mut b = itoa::Buffer::new();
            for (i, o) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(b.format(*o));
            }
            out.push(':');
            out.push_str(b.format(v4.port()));
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn millis(out: &mut String, d: Duration) {
    let micros = d.as_micros().min(u128::from(u64::MAX)) as u64;
    num(out, micros / 1000);
    out.push('.');
    three(out, (micros % 1000) as u32);
}

fn time(out: &mut String, t: SystemTime) {
    use std::cell::RefCell;
    thread_local! {
        /// The last second formatted and its text up to the fraction ("…T15:11:55."): lines
        /// of the same second only add their milliseconds.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let Ok(since) = t.duration_since(SystemTime::UNIX_EPOCH) else {
        let _ = write!(out, "{}", humantime::format_rfc3339_millis(t));
        return;
    };
    let (secs, ms) = (since.as_secs(), since.subsec_millis());
    SECOND.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != secs {
            let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let text = humantime::format_rfc3339_seconds(whole).to_string();
            // "YYYY-MM-DDThh:mm:ssZ" -> "YYYY-MM-DDThh:mm:ss."
            cell.1 = format!("{}.", text.trim_end_matches('Z'));
            cell.0 = secs;
        }
        out.push_str(&cell.1);
    });
    three(out, ms);
    out.push('Z');
}

/// Whether a text value must be quoted.
fn needs_quotes(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if s.is_ascii() {
        return s
            .bytes()
            .any(|b| matches!(b, b' ' | b'"' | b'=' | b'\\') || b < 0x20 || b == 0x7f);
    }
    s.chars()
        .any(|c| matches!(c, ' ' | '"' | '=' | '\\') || c.is_control())
}

/// `s` as quoted-string content: `"`, `\`, newline, return and tab escaped with a backslash,
/// any other character `other` writes an escape for (it returns false to keep it), the runs
/// between them copied whole.
fn escaped(out: &mut String, s: &str, other: fn(char, &mut String) -> bool) {
    let mut from = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii() && !matches!(c, '"' | '\\') && (c as u32) >= 0x20 && c != '\x7f' {
            continue;
        }
        out.push_str(&s[from..i]);
        from = i + c.len_utf8();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !other(c, out) => out.push(c),
            _ => {}
        }
    }
    out.push_str(&s[from..]);
}

fn text_str(out: &mut String, s: &str) {
    if !needs_quotes(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    escaped(out, s, |c, out| {
        let escape = c.is_control() && (c as u32) < 0x100;
        if escape {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        escape
    });
    out.push('"');
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    escaped(out, s, |c, out| {
        let escape = (c as u32) < 0x20;
        if escape {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        escape
    });
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(format: Format) -> String {
        let mut l = Line::new(format, String::new());
        l.field(
            "time",
            Value::Time(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
        );
        l.field("path", Value::Str("/a b?x=\"1\""));
        l.field("status", Value::Num(200));
        l.field("duration_ms", Value::Millis(Duration::from_micros(12_345)));
        l.field("empty", Value::Str(""));
        l.opt_str("server", None);
        l.field("ctl", Value::Str("a\u{1}\n"));
        l.finish()
    }

    #[test]
    fn text_is_key_value_pairs_quoted_only_when_needed() {
        assert_eq!(
            sample(Format::Text),
            "time=2023-11-14T22:13:20.123Z path=\"/a b?x=\\\"1\\\"\" status=200 \
             duration_ms=12.345 empty=\"\" server=- ctl=\"a\\x01\\n\"\n"
        );
    }

    #[test]
    fn json_is_one_object_with_the_same_keys() {
        let line = sample(Format::Json);
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["path"], "/a b?x=\"1\"");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 12.345);
        assert_eq!(v["empty"], "");
        assert!(v["server"].is_null());
        assert_eq!(v["ctl"], "a\u{1}\n");
        let keys: Vec<&str> = ["time", "path", "status", "duration_ms", "empty", "server"]
            .into_iter()
            .collect();
        let mut at = 0;
        for k in keys {
            let pos = line[at..].find(&format!("\"{k}\":")).expect(k) + at;
            at = pos;
        }
    }

    #[test]
    fn sub_millisecond_durations_keep_three_decimals() {
        let mut l = Line::new(Format::Text, String::new());
        l.field("d", Value::Millis(Duration::from_micros(7)));
        assert_eq!(l.finish(), "d=0.007\n");
    }

    #[test]
    fn numbers_times_and_addresses_are_written_exactly() {
        let mut l = Line::new(Format::Text, String::new());
        l.field("a", Value::Addr("127.0.0.1:80".parse().unwrap()));
        l.field("b", Value::Addr("[::1]:8080".parse().unwrap()));
        l.field("ms", Value::Millis(Duration::from_micros(5)));
        l.field("ms2", Value::Millis(Duration::from_micros(12_034_050)));
        l.field("n", Value::Num(u64::MAX));
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_007);
        l.field("t", Value::Time(t));
        // The next second: the cached prefix is replaced.
        l.field("t2", Value::Time(t + Duration::from_secs(1)));
        assert_eq!(
            l.finish(),
            "a=127.0.0.1:80 b=[::1]:8080 ms=0.005 ms2=12034.050 n=18446744073709551615 \
             t=2023-11-14T22:13:20.007Z t2=2023-11-14T22:13:21.007Z\n"
        );
        let mut l = Line::new(Format::Json, String::new());
        l.field("a", Value::Addr("10.1.2.3:4".parse().unwrap()));
        assert_eq!(l.finish(), "{\"a\":\"10.1.2.3:4\"}\n");
    }
}
