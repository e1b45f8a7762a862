//! E-mail addresses: a local part, `@`, and a dotted domain with a letter TLD.

/// Local part up to 64 characters, up to 8 domain labels, a 2–24 letter TLD.
pub const PATTERN: &str = r"(?-u:\b)[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?-u:\b)";

/// The pattern is the whole rule.
pub use super::always as confirm;

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};

    #[test]
    fn finds_addresses_and_not_lookalikes() {
        let d = definition(Detector::Email);
        assert_eq!(
            found(d, "mail jane.doe+work@mail.example.co.uk today"),
            ["jane.doe+work@mail.example.co.uk"]
        );
        assert_eq!(
            found(d, "a@b.io, x_y@corp.example"),
            ["a@b.io", "x_y@corp.example"]
        );
        assert!(found(d, "user@localhost and @handle and a@b.c1").is_empty());
        assert!(found(d, "version 1.2.3@4").is_empty());
    }
}
