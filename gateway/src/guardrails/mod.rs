//! Guardrails: a route's checks on prompts (before any provider is called) and on answers
//! (JSON bodies before they are returned, streams chunk by chunk).
//!
//! - [`detectors`]: the built-in PII, secret and injection detectors, one file each.
//! - [`scan`]: runs a route's rules over text, linear in its size.
//! - [`prompt`]: the plan-stage check; may refuse (400 `content_policy_violation`) or hand
//!   back a redacted copy of the request.
//! - [`answer`]: the same on a JSON answer.
//! - [`stream`]: the stream filter (the pipeline's `ChunkFilter`) that redacts or blocks
//!   across chunk boundaries, holding back at most [`RouteGuardrails::stream_hold`] bytes.
//!
//! This module sits below the pipeline: it sees requests and answers through the function
//! pointers and filter methods `pipeline/guard.rs` hands it, not through `Operation`.
//! - [`metrics`]: counts what fired in `tollgate_guardrail_findings` and logs it (names only).
//!
//! Any door (Operation) gets guardrails by exposing its prompt's text parts
//! (`Operation::prompt_text_mut`) and its JSON answer's text (`Operation::answer_text_mut`);
//! see `pipeline/guard.rs`.
//! Matched text never leaves this module: errors, logs, metrics and usage records name rules.

pub mod answer;
pub mod detectors;
pub mod metrics;
pub mod prompt;
pub mod scan;
pub mod stream;

#[cfg(test)]
mod scan_tests;
#[cfg(test)]
mod stream_tests;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tollgate_crds::{
    config::{GuardrailAction, GuardrailsConfig},
    guardrails::{PatternError, compile_pattern, max_match_len},
};

use self::scan::{Rule, Scanner};
pub use self::{answer::check_answer, prompt::check_prompt, stream::StreamGuard};
pub use crate::error::{PolicyStage as Stage, Violation};

/// Regex-program size limit for a built-in detector (ours, so larger than a user pattern's:
/// the private-key shape repeats a class up to 8 KiB).
const BUILTIN_SIZE_LIMIT: usize = 16 << 20;

/// One text part of a prompt, borrowed mutably so redaction rewrites it in place.
#[derive(Debug)]
pub struct PromptText<'a> {
    /// The text.
    pub text: &'a mut String,
    /// Whether it is the application's own instructions (system or developer messages):
    /// the prompt-injection heuristic skips those.
    pub instructions: bool,
}

/// A route's guardrails, compiled.
#[derive(Debug)]
pub struct RouteGuardrails {
    /// `maxPromptTokens`.
    pub max_prompt_tokens: Option<u32>,
    /// Rules on prompts (`None`: only the token limit, if any).
    pub prompt: Option<Scanner>,
    /// Rules on answers (`None`: answers are not checked).
    pub response: Option<Arc<Scanner>>,
    /// Rule names by id; id 0 is `maxPromptTokens`.
    pub names: Vec<Arc<str>>,
}

/// Rule id of `maxPromptTokens`.
pub const MAX_PROMPT_TOKENS: usize = 0;

impl RouteGuardrails {
    /// Compiles a route's guardrails. Fails only for a pattern the config check lets
    /// through but the regex crate refuses (a hand-edited config).
    pub fn compile(config: &GuardrailsConfig) -> Result<Self, (String, regex::Error)> {
        let mut names: Vec<Arc<str>> = vec![Arc::from("maxPromptTokens")];
        let mut prompt_rules = Vec::new();
        let mut response_rules = Vec::new();
        let scope = config.applies_to;
        let mut add = |name: String,
                       pattern: &str,
                       action: GuardrailAction,
                       (confirm, standalone_start): (detectors::Confirm, bool),
                       (on_prompt, on_response): (bool, bool),
                       builtin: bool|
         -> Result<(), (String, regex::Error)> {
            let id = names.len();
            let err = |e: PatternError| {
                let e = match e {
                    PatternError::Compile(e) => e,
                    other => regex::Error::Syntax(other.to_string()),
                };
                (name.clone(), e)
            };
            let max_len = max_match_len(pattern).map_err(err)?;
            let regex = if builtin {
                regex::RegexBuilder::new(pattern)
                    .size_limit(BUILTIN_SIZE_LIMIT)
                    .dfa_size_limit(BUILTIN_SIZE_LIMIT)
                    .build()
                    .map_err(|e| (name.clone(), e))?
            } else {
                compile_pattern(pattern).map_err(err)?
            };
            let skips = name == "promptInjection";
            let rule = |regex: regex::Regex| Rule {
                id,
                action,
                regex,
                confirm,
                skips_instructions: skips,
                standalone_start,
            };
            if on_prompt {
                prompt_rules.push((rule(regex.clone()), max_len.unwrap_or(usize::MAX)));
            }
            if on_response {
                let Some(len) = max_len else {
                    return Err(err(PatternError::Unbounded));
                };
                response_rules.push((rule(regex), len));
            }
            names.push(Arc::from(name.as_str()));
            Ok(())
        };
        let sides = (scope.prompt(), scope.response());
        for (i, p) in config.blocked_patterns.iter().enumerate() {
            add(
                format!("blockedPatterns[{i}]"),
                p,
                GuardrailAction::Block,
                (detectors::always, false),
                sides,
                false,
            )?;
        }
        for d in &config.pii {
            let def = detectors::definition(d.detector);
            add(
                d.detector.rule().to_owned(),
                def.pattern,
                d.action,
                (def.confirm, def.standalone_start),
                sides,
                true,
            )?;
        }
        if let Some(action) = config.prompt_injection {
            add(
                "promptInjection".to_owned(),
                detectors::injection::PATTERN,
                action,
                (detectors::injection::confirm, false),
                (true, false),
                true,
            )?;
        }
        let scanner = |rules: Vec<(Rule, usize)>| {
            (!rules.is_empty()).then(|| Scanner {
                max_len: rules.iter().map(|(_, l)| *l).max().unwrap_or(0),
                rules: rules.into_iter().map(|(r, _)| r).collect(),
            })
        };
        Ok(Self {
            max_prompt_tokens: config.max_prompt_tokens,
            prompt: scanner(prompt_rules),
            response: scanner(response_rules).map(Arc::new),
            names,
        })
    }

    /// The action of rule `id` on `stage` (`maxPromptTokens` blocks).
    pub fn action_of(&self, id: usize, stage: Stage) -> GuardrailAction {
        let scanner = match stage {
            Stage::Prompt => self.prompt.as_ref(),
            Stage::Response => self.response.as_deref(),
        };
        scanner
            .and_then(|s| s.rules.iter().find(|r| r.id == id))
            .map_or(GuardrailAction::Block, |r| r.action)
    }

    /// The most answer text a stream holds back: the longest answer rule's match plus the
    /// look-around margin (0 when answers are not checked).
    pub fn stream_hold(&self) -> usize {
        self.response
            .as_ref()
            .map_or(0, |s| s.max_len + scan::MARGIN)
    }
}

/// The rules that fired on one request, shared by the prompt check, the answer check or
/// stream filter, and the usage record (which reads it when the request settles).
#[derive(Clone, Debug, Default)]
pub struct Fired {
    bits: Arc<AtomicU64>,
    guard: Option<Arc<RouteGuardrails>>,
}

impl Fired {
    /// Nothing fired yet on a request to a route with these guardrails.
    pub fn new(guard: Option<Arc<RouteGuardrails>>) -> Self {
        Self {
            bits: Arc::default(),
            guard,
        }
    }

    /// Adds rules; returns those not seen before on this request.
    pub fn add(&self, bits: u64) -> u64 {
        bits & !self.bits.fetch_or(bits, Ordering::Relaxed)
    }

    /// The names of every rule that fired, in rule order.
    pub fn names(&self) -> Vec<&str> {
        let bits = self.bits.load(Ordering::Relaxed);
        let Some(g) = &self.guard else {
            return Vec::new();
        };
        g.names
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
            .map(|(_, n)| &**n)
            .collect()
    }
}
