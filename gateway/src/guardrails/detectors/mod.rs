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
    /// Whether `confirm` refuses every candidate right after an ASCII letter or digit: the
    /// scanner then skips the rest of such a run at once instead of trying each position.
    pub standalone_start: bool,
}

/// The definition of a built-in PII detector.
pub fn definition(d: Detector) -> DetectorDef {
    let (pattern, confirm, standalone_start): (&'static str, Confirm, bool) = match d {
        Detector::Email => (email::PATTERN, email::confirm, false),
        Detector::Phone => (phone::PATTERN, phone::confirm, true),
        Detector::PaymentCard => (card::PATTERN, card::confirm, true),
        Detector::Iban => (iban::PATTERN, iban::confirm, true),
        Detector::UsSsn => (ssn::PATTERN, ssn::confirm, true),
        Detector::IpAddress => (ip::PATTERN, ip::confirm, true),
        Detector::Secrets => (secrets::PATTERN, secrets::confirm, false),
    };
    DetectorDef {
        pattern,
        confirm,
        standalone_start,
    }
}

/// Accepts every candidate (the pattern says it all).
pub fn always(_hay: &str, _start: usize, end: usize) -> Option<usize> {
    Some(end)
}

/// The longest prefix of the candidate that ends after a byte `counted` accepts, has a count
/// of such bytes `count_ok` accepts, and passes `check`, trying ends from the longest down.
/// The count filter is O(1) per end, so only plausible ends pay for `check`; and a
/// candidate glued to a letter or digit before it is refused at once (inside a long digit
/// run every position is a candidate): the cost per candidate stays linear in its length.
pub fn longest(
    hay: &str,
    start: usize,
    end: usize,
    counted: fn(u8) -> bool,
    count_ok: fn(usize) -> bool,
    check: impl Fn(&str, usize, usize) -> bool,
) -> Option<usize> {
    if before(hay, start).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let bytes = &hay.as_bytes()[start..end];
    let mut n = bytes.iter().filter(|b| counted(**b)).count();
    for (i, &b) in bytes.iter().enumerate().rev() {
        if counted(b) {
            if count_ok(n) && check(hay, start, start + i + 1) {
                return Some(start + i + 1);
            }
            n -= 1;
        }
    }
    None
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
    use tollgate_crds::config::GuardrailAction;

    use super::DetectorDef;
    use crate::guardrails::scan::{Rule, Scanner};

    /// The confirmed matches of `def` in `text`, found by the real scanner.
    pub fn found(def: DetectorDef, text: &str) -> Vec<String> {
        let scanner = Scanner {
            rules: vec![Rule {
                id: 0,
                action: GuardrailAction::Flag,
                regex: Regex::new(def.pattern).unwrap(),
                confirm: def.confirm,
                skips_instructions: false,
                standalone_start: def.standalone_start,
            }],
            max_len: 0,
        };
        let mut out = Vec::new();
        scanner.find(text, 0, text.len(), false, &mut out);
        out.iter()
            .map(|f| text[f.start..f.end].to_owned())
            .collect()
    }
}
