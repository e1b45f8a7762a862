//! US social security numbers in their written form `AAA-GG-SSSS`, with the number ranges
//! the SSA never issues refused.

use super::standalone;

/// Three, two and four digits, separated by dashes or single spaces.
pub const PATTERN: &str = r"[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}";

/// Standalone, one kind of separator, area not 000, 666 or 900–999, group not 00, serial
/// not 0000.
pub fn confirm(hay: &str, start: usize, end: usize) -> Option<usize> {
    let s = hay.get(start..end).filter(|s| s.len() == 11)?;
    let b = s.as_bytes();
    if b[3] != b[6] || !standalone(hay, start, end) {
        return None;
    }
    let (area, group, serial) = (&s[0..3], &s[4..6], &s[7..11]);
    let issued = area != "000"
        && area != "666"
        && !area.starts_with('9')
        && group != "00"
        && serial != "0000";
    issued.then_some(end)
}

#[cfg(test)]
mod tests {
    use super::super::{Detector, definition, testing::found};

    #[test]
    fn issued_ranges_are_ssns_and_others_are_not() {
        let d = definition(Detector::UsSsn);
        assert_eq!(found(d, "SSN 123-45-6789."), ["123-45-6789"]);
        assert_eq!(found(d, "ssn 078 05 1120"), ["078 05 1120"]);
        assert!(
            found(d, "000-12-3456 666-12-3456 912-34-5678").is_empty(),
            "never issued"
        );
        assert!(
            found(d, "123-00-4567 123-45-0000").is_empty(),
            "zero group or serial"
        );
        assert!(found(d, "123-45 6789").is_empty(), "mixed separators");
        assert!(
            found(d, "1123-45-6789").is_empty(),
            "part of a longer number"
        );
    }
}
