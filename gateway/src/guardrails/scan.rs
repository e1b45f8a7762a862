//! The scanner: a route's rules (built-in detectors, blocked patterns, the injection
//! heuristic), each a bounded regular expression plus a confirmation, run over text one rule
//! at a time. Everything here is synchronous and linear in the text: the regex crate's lazy
//! DFA finds candidates, and a rejected candidate costs at most its bounded length again.

use std::sync::Arc;

use regex::Regex;
use tollgate_crds::config::GuardrailAction;

use super::detectors::Confirm;

/// Bytes of lookahead and lookbehind a rule may use beyond its match (word boundaries,
/// the confirmations' neighbour checks).
pub const MARGIN: usize = 8;

/// One rule, compiled.
#[derive(Debug)]
pub struct Rule {
    /// Its id within the route (an index into the route's rule names).
    pub id: usize,
    /// What happens when it fires.
    pub action: GuardrailAction,
    /// Candidates.
    pub regex: Regex,
    /// Confirms a candidate.
    pub confirm: Confirm,
    /// Whether it skips the application's own instructions (the injection heuristic).
    pub skips_instructions: bool,
    /// Whether `confirm` refuses any candidate right after an ASCII letter or digit.
    pub standalone_start: bool,
}

/// The rules for one side (prompt or answer) of a route.
#[derive(Debug)]
pub struct Scanner {
    /// The rules.
    pub rules: Vec<Rule>,
    /// The longest text any rule matches, in bytes.
    pub max_len: usize,
}

/// A confirmed match of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Start byte.
    pub start: usize,
    /// End byte.
    pub end: usize,
    /// Index into [`Scanner::rules`].
    pub rule: usize,
}

/// What one text (or one stream's emitted part) triggered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The first blocking rule found (its id), if any.
    pub blocked: Option<usize>,
    /// Ids of every rule that fired, as a bit set.
    pub fired: u64,
}

impl Scanner {
    /// Confirmed findings of every rule that start in `from..limit` of `hay` (`hay[..from]` is
    /// context for look-behind only). `instructions`: the text is the application's own.
    pub fn find(
        &self,
        hay: &str,
        from: usize,
        limit: usize,
        instructions: bool,
        out: &mut Vec<Finding>,
    ) {
        for (i, rule) in self.rules.iter().enumerate() {
            if instructions && rule.skips_instructions {
                continue;
            }
            let mut pos = from;
            while pos < limit {
                let Some(m) = rule.regex.find_at(hay, pos) else {
                    break;
                };
                if m.start() >= limit {
                    break;
                }
                match (rule.confirm)(hay, m.start(), m.end()) {
                    Some(end) if end > m.start() => {
                        out.push(Finding {
                            start: m.start(),
                            end,
                            rule: i,
                        });
                        pos = end;
                    }
                    _ => {
                        pos = next_char(hay, m.start());
                        if rule.standalone_start {
                            // Every start inside this alphanumeric run would be refused.
                            let b = hay.as_bytes();
                            while pos < b.len() && b[pos - 1].is_ascii_alphanumeric() {
                                pos += 1;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Records `findings` in `verdict` (fired rules, the first blocking one by position).
    pub fn judge(&self, findings: &[Finding], verdict: &mut Verdict) {
        let mut first_block: Option<&Finding> = None;
        for f in findings {
            let rule = &self.rules[f.rule];
            verdict.fired |= 1 << rule.id;
            if rule.action == GuardrailAction::Block
                && first_block.is_none_or(|b| f.start < b.start)
            {
                first_block = Some(f);
            }
        }
        if verdict.blocked.is_none() {
            verdict.blocked = first_block.map(|f| self.rules[f.rule].id);
        }
    }

    /// The regions to redact: `redact` findings sorted by start, overlapping ones merged,
    /// each labelled with the rule of its earliest finding.
    pub fn regions(&self, findings: &[Finding]) -> Vec<Finding> {
        let mut redact: Vec<Finding> = findings
            .iter()
            .filter(|f| self.rules[f.rule].action == GuardrailAction::Redact)
            .copied()
            .collect();
        redact.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end), f.rule));
        let mut out: Vec<Finding> = Vec::with_capacity(redact.len());
        for f in redact {
            match out.last_mut() {
                Some(last) if f.start < last.end => last.end = last.end.max(f.end),
                _ => out.push(f),
            }
        }
        out
    }

    /// Checks a whole text and redacts it in place. Returns whether it changed.
    pub fn check_text(
        &self,
        text: &mut String,
        instructions: bool,
        names: &[Arc<str>],
        verdict: &mut Verdict,
    ) -> bool {
        let mut findings = Vec::new();
        self.find(text, 0, text.len(), instructions, &mut findings);
        if findings.is_empty() {
            return false;
        }
        self.judge(&findings, verdict);
        let regions = self.regions(&findings);
        if regions.is_empty() || verdict.blocked.is_some() {
            return false;
        }
        let mut out = String::with_capacity(text.len());
        self.redact_into(text, 0, text.len(), &regions, names, &mut out);
        *text = out;
        true
    }

    /// Appends `hay[from..to]` to `out` with `regions` (inside that range) replaced.
    pub fn redact_into(
        &self,
        hay: &str,
        from: usize,
        to: usize,
        regions: &[Finding],
        names: &[Arc<str>],
        out: &mut String,
    ) {
        let mut pos = from;
        for r in regions.iter().filter(|r| r.start >= from && r.end <= to) {
            out.push_str(&hay[pos..r.start]);
            out.push_str("[REDACTED:");
            out.push_str(&names[self.rules[r.rule].id]);
            out.push(']');
            pos = r.end;
        }
        out.push_str(&hay[pos..to]);
    }
}

/// The byte index of the character after the one at `i`.
pub fn next_char(hay: &str, i: usize) -> usize {
    i + hay[i..].chars().next().map_or(1, char::len_utf8)
}

/// `i` moved down to a character boundary of `hay`.
pub fn floor_boundary(hay: &str, mut i: usize) -> usize {
    i = i.min(hay.len());
    while !hay.is_char_boundary(i) {
        i -= 1;
    }
    i
}
