//! `LLMRoute.spec.guardrails`: checks on prompts (and optionally answers) for a route, and
//! the pattern rules both the compile function and the gateway apply to them.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest compiled program one `blockedPatterns` entry may become (bytes of the regex
/// crate's compiled form). The regex crate matches in linear time; this bounds its memory
/// and compile time, so a pattern like `\w{1000}{1000}` is refused instead of built.
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Longest text (bytes) one `blockedPatterns` entry may match when it also checks answers:
/// a streamed answer holds back at most this much text to redact or block across chunks.
pub const MAX_RESPONSE_PATTERN_LEN: usize = 1024;

/// Checks on a route's prompts before any provider is called and, with `appliesTo`, on
/// its answers (streamed answers included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.maxPromptTokens) || has(self.blockedPatterns) || has(self.pii) || has(self.promptInjection)")
    .message("guardrails needs maxPromptTokens, blockedPatterns, pii or promptInjection"))]
pub struct Guardrails {
    /// Refuse prompts estimated above this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_prompt_tokens: Option<u32>,
    /// Refuse text matching any of these regular expressions (RE2-like syntax; linear-time
    /// matching; each compiled to at most 1 MiB). Entries checked on answers must match at
    /// most 1024 bytes (bounded repetitions: `{0,100}`, not `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 1024)))]
    pub blocked_patterns: Vec<String>,
    /// Personal data and secrets to find, each with what to do when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiPolicy>,
    /// A heuristic for prompt-injection phrasing in the prompt ("ignore previous
    /// instructions", "reveal your system prompt"…): `flag` or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_injection: Option<InjectionAction>,
    /// What `blockedPatterns` and `pii` check: `prompt` (default), `response` or `both`.
    /// `maxPromptTokens` and `promptInjection` always check the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<GuardrailScope>,
}

/// A detector's action for each kind of personal data or secret; unset kinds are not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.email) || has(self.phone) || has(self.paymentCard) || has(self.iban) || has(self.usSsn) || has(self.ipAddress) || has(self.secrets)")
    .message("pii needs at least one detector"))]
pub struct PiiPolicy {
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<GuardrailAction>,
    /// Phone numbers (international `+` form, or 10–11 digit North American form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<GuardrailAction>,
    /// Payment card numbers (13–19 digits that pass the Luhn check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_card: Option<GuardrailAction>,
    /// IBANs (with a valid ISO 13616 checksum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<GuardrailAction>,
    /// US social security numbers (`123-45-6789`, valid area, group and serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub us_ssn: Option<GuardrailAction>,
    /// IPv4 and IPv6 addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<GuardrailAction>,
    /// API keys of well-known shapes (OpenAI, Anthropic, AWS, GitHub, GitLab, Slack, Google,
    /// Stripe) and PEM private keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<GuardrailAction>,
}

/// What a detector does when it finds something.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GuardrailAction {
    /// Refuse: a prompt gets HTTP 400 `content_policy_violation` (no provider is called); an
    /// answer is replaced by that error (a stream ends with it).
    Block,
    /// Replace the text with `[REDACTED:<rule>]` and go on.
    Redact,
    /// Let it through; count it in metrics and mark it in the usage record.
    Flag,
}

/// What the prompt-injection heuristic does.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum InjectionAction {
    /// Refuse the prompt.
    Block,
    /// Let it through and record it.
    Flag,
}

impl From<InjectionAction> for GuardrailAction {
    fn from(a: InjectionAction) -> Self {
        match a {
            InjectionAction::Block => GuardrailAction::Block,
            InjectionAction::Flag => GuardrailAction::Flag,
        }
    }
}

/// Which side of the exchange content checks apply to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GuardrailScope {
    /// The prompt only.
    #[default]
    Prompt,
    /// The answer only.
    Response,
    /// Prompt and answer.
    Both,
}

impl GuardrailScope {
    /// Whether prompts are checked.
    pub fn prompt(self) -> bool {
        matches!(self, GuardrailScope::Prompt | GuardrailScope::Both)
    }

    /// Whether answers are checked.
    pub fn response(self) -> bool {
        matches!(self, GuardrailScope::Response | GuardrailScope::Both)
    }
}

/// Why a blocked pattern cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// It does not compile, or compiles too large.
    #[error("not a usable regular expression: {0}")]
    Compile(#[from] regex::Error),
    /// It can match unboundedly long text, so a stream cannot be checked with a bounded window.
    #[error(
        "can match text of unbounded length, so answers cannot be checked with a bounded window; bound its repetitions (e.g. `{{0,100}}` instead of `*` or `+`)"
    )]
    Unbounded,
    /// It can match longer text than a stream may hold back.
    #[error(
        "can match up to {0} bytes; patterns that check answers may match at most {MAX_RESPONSE_PATTERN_LEN}"
    )]
    TooLong(usize),
}

/// Compiles a blocked pattern with the size limit (the compile function and the gateway
/// both use this, so they accept exactly the same patterns).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, PatternError> {
    Ok(regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()?)
}

/// The longest text (bytes) `pattern` can match, `None` when unbounded.
pub fn max_match_len(pattern: &str) -> Result<Option<usize>, PatternError> {
    let hir = regex_syntax::parse(pattern)
        .map_err(|e| PatternError::Compile(regex::Error::Syntax(e.to_string())))?;
    Ok(hir.properties().maximum_len())
}

/// Checks a blocked pattern: it compiles within the size limit and, when it checks
/// answers, matches at most [`MAX_RESPONSE_PATTERN_LEN`] bytes.
pub fn check_pattern(pattern: &str, response: bool) -> Result<(), PatternError> {
    compile_pattern(pattern)?;
    if response {
        match max_match_len(pattern)? {
            None => return Err(PatternError::Unbounded),
            Some(n) if n > MAX_RESPONSE_PATTERN_LEN => return Err(PatternError::TooLong(n)),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked_for_size_and_for_answers_for_length() {
        assert!(check_pattern("(?i)project\\s{1,3}falcon", true).is_ok());
        assert!(matches!(
            check_pattern("(?i)project\\s+falcon", true),
            Err(PatternError::Unbounded)
        ));
        assert!(matches!(
            check_pattern("a(b", false),
            Err(PatternError::Compile(_))
        ));
        assert!(matches!(
            check_pattern(r"\w{1000}{1000}", false),
            Err(PatternError::Compile(_))
        ));
        assert!(
            check_pattern("secret.*", false).is_ok(),
            "prompts need no bound"
        );
        assert!(matches!(
            check_pattern("secret.*", true),
            Err(PatternError::Unbounded)
        ));
        assert!(matches!(
            check_pattern("x{2000}", true),
            Err(PatternError::TooLong(2000))
        ));
        assert_eq!(max_match_len("ab{0,3}").unwrap(), Some(4));
    }
}
