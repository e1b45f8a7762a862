//! Payment card numbers: 13–19 digits, optionally grouped by single spaces or dashes, that
//! pass the Luhn check.

use super::{digits, longest, standalone};

/// 13–19 digits with optional single separators.
pub const PATTERN: &str = r"[0-9](?:[ -]?[0-9]){12,18}";

/// The longest prefix of at least 13 digits that is standalone, separated consistently (one
/// kind of separator at most) and Luhn-valid.
pub fn confirm(hay: &str, start: usize, end: usize) -> Option<usize> {
    longest(
        hay,
        start,
        end,
        |b| b.is_ascii_digit(),
        |n| n >= 13,
        |hay, s, e| {
            let text = &hay[s..e];
            standalone(hay, s, e) && !(text.contains(' ') && text.contains('-')) && luhn(text)
        },
    )
}

/// The Luhn checksum over the digits of `s`.
pub fn luhn(s: &str) -> bool {
    let ds: Vec<u32> = digits(s).collect();
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};
    use super::luhn;

    #[test]
    fn luhn_valid_numbers_are_cards_and_invalid_ones_are_not() {
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));
        let d = definition(Detector::PaymentCard);
        assert_eq!(
            found(d, "card 4111 1111 1111 1111 exp"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            found(d, "card 5500-0000-0000-0004."),
            ["5500-0000-0000-0004"]
        );
        assert_eq!(found(d, "amex 378282246310005"), ["378282246310005"]);
        assert_eq!(
            found(d, "4111 1111 1111 1111 2025"),
            ["4111 1111 1111 1111"],
            "a greedy candidate confirms as its valid prefix"
        );
        assert!(
            found(d, "card 4111 1111 1111 1112 exp").is_empty(),
            "Luhn-invalid"
        );
        assert!(
            found(d, "order 12345678901234567890123").is_empty(),
            "too long"
        );
        assert!(
            found(d, "id A4111111111111111").is_empty(),
            "glued to a word"
        );
        assert!(
            found(d, "4111 1111-1111 1111").is_empty(),
            "mixed separators"
        );
    }
}
