//! Values as operators write them, parsed in one place for every strait config: sizes
//! (`size`: [`Size`]), durations (`duration`: [`parse_duration`] and a serde `with` module) and
//! the message for a value that is not an `ip:port` address ([`not_an_address`]).
//!
//! Every message quotes the value and says what to write instead; the loaders put the key and
//! `FILE:LINE:COL` in front.

pub mod duration;
mod size;

pub use duration::parse_duration;
pub use size::{Size, SizeError};

/// What an address error says after its key: the value quoted, the form asked for, and that
/// names (`localhost`, `example.com`) are not looked up.
pub fn not_an_address(text: &str) -> String {
    format!("{text:?} is not an ip:port address (e.g. \"127.0.0.1:8080\"); names are not resolved")
}

/// Like [`not_an_address`] for keys that take an IP address without a port.
pub fn not_an_ip(text: &str) -> String {
    format!("{text:?} is not an IP address (e.g. \"10.0.0.11\"); names are not resolved")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_messages_quote_the_value_and_say_names_are_not_resolved() {
        assert_eq!(
            not_an_address("localhost:8080"),
            "\"localhost:8080\" is not an ip:port address (e.g. \"127.0.0.1:8080\"); names \
             are not resolved"
        );
        assert!(not_an_ip("db1").starts_with("\"db1\" is not an IP address"));
    }
}
