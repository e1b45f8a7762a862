//! IBANs: a country code, two check digits and up to 30 alphanumerics, optionally in groups
//! of four, that pass the ISO 13616 mod-97 check.

use super::{longest, standalone};

/// Country, check digits, then 11–30 characters, grouped by single spaces or not.
pub const PATTERN: &str = r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}";

/// The longest standalone, mod-97 valid prefix.
pub fn confirm(hay: &str, start: usize, end: usize) -> Option<usize> {
    longest(
        hay,
        start,
        end,
        |b| b.is_ascii_alphanumeric(),
        |n| (15..=34).contains(&n),
        |hay, s, e| standalone(hay, s, e) && mod97(&hay[s..e]),
    )
}

/// The ISO 13616 check: move the first four characters to the end, letters to 10–35, and the
/// number is 1 modulo 97.
pub fn mod97(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for &b in tail.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if value >= 10 {
            (rem * 100 + value) % 97
        } else {
            (rem * 10 + value) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};
    use super::mod97;

    #[test]
    fn checksum_valid_ibans_are_found_and_invalid_ones_are_not() {
        assert!(mod97("GB82WEST12345698765432"));
        assert!(mod97("DE89 3704 0044 0532 0130 00"));
        assert!(!mod97("GB82WEST12345698765433"));
        let d = definition(Detector::Iban);
        assert_eq!(
            found(d, "pay to GB82 WEST 1234 5698 7654 32 now"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert_eq!(
            found(d, "IBAN: DE89370400440532013000."),
            ["DE89370400440532013000"]
        );
        assert!(
            found(d, "pay to GB82 WEST 1234 5698 7654 33 now").is_empty(),
            "bad checksum"
        );
        assert!(
            found(d, "XGB82WEST12345698765432").is_empty(),
            "glued to a word"
        );
        assert_eq!(
            found(d, "DE89370400440532013000 OK"),
            ["DE89370400440532013000"]
        );
    }
}
