//! The built-in detectors: one small file each, with a bounded regular expression that finds
//! candidates and a check that confirms them (a checksum, a digit count, the characters
//! around the candidate). Patterns use ASCII word boundaries and bounded repetitions, so each
//! match has a known maximum length (what a stream holds back) and the regex crate's lazy DFA
//! runs them in time linear in the text.

pub mod card;
pub mod email;
pub mod iban;
pub mod injection;
pub mod ip;
pub mod phone;
pub mod secrets;
pub mod ssn;

use tollgate_crds::config::Detector;

/// Confirms a candidate `hay[start..end]`: the end of the confirmed match (at most `end`: a
/// greedy candidate may confirm only as a shorter prefix), or `None`. It may look at the
/// characters just around the candidate.
pub type Confirm = fn(hay: &str, start: usize, end: usize) -> Option<usize>;

/// A detector's pattern and its confirmation.
#[derive(Clone, Copy, Debug)]
pub struct DetectorDef {
    /// The candidate pattern.
    pub pattern: &'static str,
    /// The check a candidate must pass.
    pub confirm: Confirm,
}

/// The definition of a built-in PII detector.
pub fn definition(d: Detector) -> DetectorDef {
    let (pattern, confirm): (&'static str, Confirm) = match d {
        Detector::Email => (email::PATTERN, email::confirm),
        Detector::Phone => (phone::PATTERN, phone::confirm),
        Detector::PaymentCard => (card::PATTERN, card::confirm),
        Detector::Iban => (iban::PATTERN, iban::confirm),
        Detector::UsSsn => (ssn::PATTERN, ssn::confirm),
        Detector::IpAddress => (ip::PATTERN, ip::confirm),
        Detector::Secrets => (secrets::PATTERN, secrets::confirm),
    };
    DetectorDef { pattern, confirm }
}

/// Accepts every candidate (the pattern says it all).
pub fn always(_hay: &str, _start: usize, end: usize) -> Option<usize> {
    Some(end)
}

/// The longest prefix of the candidate that ends after a character `ends_at` accepts and
/// passes `check`, trying ends from the longest down.
pub fn longest(
    hay: &str,
    start: usize,
    end: usize,
    ends_at: fn(u8) -> bool,
    check: impl Fn(&str, usize, usize) -> bool,
) -> Option<usize> {
    (start + 1..=end)
        .rev()
        .filter(|&e| ends_at(hay.as_bytes()[e - 1]))
        .find(|&e| check(hay, start, e))
}

/// The character just before `start`, if any.
pub fn before(hay: &str, start: usize) -> Option<char> {
    hay.get(..start).and_then(|s| s.chars().next_back())
}

/// The character just after `end`, if any.
pub fn after(hay: &str, end: usize) -> Option<char> {
    hay.get(end..).and_then(|s| s.chars().next())
}

/// Whether neither neighbour of the candidate is an ASCII letter or digit (so a number is not
/// the tail of a longer one, nor glued to a word).
pub fn standalone(hay: &str, start: usize, end: usize) -> bool {
    !before(hay, start).is_some_and(|c| c.is_ascii_alphanumeric())
        && !after(hay, end).is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The ASCII digits of `s`, as numbers.
pub fn digits(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
}

#[cfg(test)]
pub(crate) mod testing {
    use regex::Regex;

    use super::DetectorDef;

    /// The confirmed matches of `def` in `text`, scanned the way the scanner does.
    pub fn found(def: DetectorDef, text: &str) -> Vec<String> {
        let re = Regex::new(def.pattern).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(m) = re.find_at(text, pos) {
            if let Some(end) = (def.confirm)(text, m.start(), m.end()) {
                out.push(text[m.start()..end].to_owned());
                pos = end.max(m.start() + 1);
            } else {
                pos = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
            }
            if pos >= text.len() {
                break;
            }
        }
        out
    }
}
