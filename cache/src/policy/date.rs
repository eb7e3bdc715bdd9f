//! Reading HTTP-dates as a cache recipient must (RFC 9110 §5.6.7, RFC 9111 §4.2): the
//! preferred IMF-fixdate and the two obsolete forms (RFC 850, asctime), in any letter case
//! ("sun, 06 nov 1994 08:49:37 gmt"), and asctime with a one-digit day written without its
//! padding space. Anything else is not a date (callers treat it as such: an invalid `Expires`
//! means already expired, RFC 9111 §5.3).

use std::time::SystemTime;

/// The time `text` names, when it is an HTTP-date in one of the accepted forms.
pub fn parse(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(t) = httpdate::parse_http_date(text) {
        return Some(t);
    }
    let cased = canonical_case(text)?;
    if let Ok(t) = httpdate::parse_http_date(&cased) {
        return Some(t);
    }
    // asctime: "Sun Nov 6 08:49:37 1994" (the day not padded to two places).
    if cased.contains(',') {
        return None;
    }
    let parts: Vec<&str> = cased.split_whitespace().collect();
    let [wday, month, day, time, year] = parts[..] else {
        return None;
    };
    if day.len() != 1 {
        return None;
    }
    httpdate::parse_http_date(&format!("{wday} {month}  {day} {time} {year}")).ok()
}

/// Day and month names as `Sun`/`Sunday`/`Nov`, `GMT` in capitals; None for non-ASCII text.
fn canonical_case(text: &str) -> Option<String> {
    if !text.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut word_start = true;
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            out.push(if word_start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            word_start = false;
        } else {
            out.push(c);
            word_start = true;
        }
    }
    Some(out.replace("Gmt", "GMT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_form_in_any_case_names_the_same_instant() {
        let want = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "sun, 06 nov 1994 08:49:37 gmt",
            "SUN, 06 NOV 1994 08:49:37 GMT",
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "SUNDAY, 06-NOV-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "sun nov  6 08:49:37 1994",
            "Sun Nov 6 08:49:37 1994",
        ] {
            assert_eq!(parse(text), Some(want), "{text:?}");
        }
    }

    #[test]
    fn what_is_not_a_date_stays_not_a_date() {
        for text in [
            "",
            "0",
            "-1",
            "tomorrow",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun Nov 16 08:49:37",
            "Sün, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
