//! Phone numbers: the international `+` form (8–15 digits, E.164) or the North American
//! form (10 digits, or 11 with a leading 1), with common separators.

use super::{before, digits, longest, standalone};

/// An optional `+`, then digits, spaces, dots, dashes and parentheses, ending in a digit.
pub const PATTERN: &str = r"\+?[0-9(][0-9 ().-]{6,20}[0-9]";

/// The longest prefix that is standalone, has balanced parentheses, no doubled separators,
/// and the digit count of one of the two forms.
pub fn confirm(hay: &str, start: usize, end: usize) -> Option<usize> {
    if before(hay, start).is_some_and(|c| c == '.' || c == '-' || c == '+') {
        return None;
    }
    longest(
        hay,
        start,
        end,
        |b| b.is_ascii_digit(),
        |n| (8..=15).contains(&n),
        |hay, s, e| standalone(hay, s, e) && shaped(&hay[s..e]),
    )
}

fn shaped(text: &str) -> bool {
    let opens = text.matches('(').count();
    if opens != text.matches(')').count() || opens > 1 {
        return false;
    }
    let b = text.as_bytes();
    let doubled = b.windows(2).any(|w| {
        let sep = |c: u8| matches!(c, b' ' | b'.' | b'-');
        sep(w[0]) && sep(w[1])
    });
    if doubled {
        return false;
    }
    let ds: Vec<u32> = digits(text).collect();
    if text.starts_with('+') {
        return (8..=15).contains(&ds.len()) && ds[0] != 0;
    }
    let local = match ds.len() {
        10 => &ds[..],
        11 if ds[0] == 1 => &ds[1..],
        _ => return false,
    };
    // North American numbering: area code and exchange start with 2–9.
    local[0] >= 2 && local[3] >= 2
}

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};

    #[test]
    fn phone_numbers_in_both_forms_and_not_dates_or_versions() {
        let d = definition(Detector::Phone);
        assert_eq!(found(d, "call +44 20 7946 0958 now"), ["+44 20 7946 0958"]);
        assert_eq!(found(d, "call (415) 555-2671."), ["(415) 555-2671"]);
        assert_eq!(found(d, "or 1-415-555-2671"), ["1-415-555-2671"]);
        assert_eq!(found(d, "or 415.555.2671"), ["415.555.2671"]);
        assert!(found(d, "on 2024-01-15 at 12:30").is_empty(), "a date");
        assert!(found(d, "v1.2.3-4567").is_empty(), "a version");
        assert!(
            found(d, "(015) 555-2671").is_empty(),
            "area code starting with 0"
        );
        assert!(found(d, "+0 123 456 789").is_empty());
        assert!(found(d, "id 41555526710000").is_empty(), "too many digits");
    }
}
