//! A route's guardrails as the gateway runs them: defaults applied, detectors listed with
//! their actions, patterns already checked (the gateway re-checks them, see `check`).

use serde::{Deserialize, Serialize};

pub use crate::guardrails::{GuardrailAction, GuardrailScope};
use crate::guardrails::{Guardrails, PiiPolicy};

/// One route's guardrails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailsConfig {
    /// Refuse prompts estimated above this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u32>,
    /// Regular expressions whose match blocks (checked against the size limit and, when
    /// answers are checked, the length bound).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_patterns: Vec<String>,
    /// Detectors and their actions, in [`Detector`] order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pii: Vec<DetectorConfig>,
    /// The prompt-injection heuristic's action (`block` or `flag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_injection: Option<GuardrailAction>,
    /// What `blockedPatterns` and `pii` check.
    pub applies_to: GuardrailScope,
}

/// A detector with its action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectorConfig {
    /// What it finds.
    pub detector: Detector,
    /// What happens when it does.
    pub action: GuardrailAction,
}

/// A kind of personal data or secret the gateway can find.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Detector {
    /// E-mail addresses.
    Email,
    /// Phone numbers.
    Phone,
    /// Luhn-valid payment card numbers.
    PaymentCard,
    /// Checksum-valid IBANs.
    Iban,
    /// US social security numbers.
    UsSsn,
    /// IPv4 and IPv6 addresses.
    IpAddress,
    /// API keys and private keys.
    Secrets,
}

impl Detector {
    /// Every detector, in order.
    pub const ALL: [Detector; 7] = [
        Detector::Email,
        Detector::Phone,
        Detector::PaymentCard,
        Detector::Iban,
        Detector::UsSsn,
        Detector::IpAddress,
        Detector::Secrets,
    ];

    /// The rule name in errors, metrics and usage records: the API field (`pii.email`).
    pub fn rule(self) -> &'static str {
        match self {
            Detector::Email => "pii.email",
            Detector::Phone => "pii.phone",
            Detector::PaymentCard => "pii.paymentCard",
            Detector::Iban => "pii.iban",
            Detector::UsSsn => "pii.usSsn",
            Detector::IpAddress => "pii.ipAddress",
            Detector::Secrets => "pii.secrets",
        }
    }

    fn action_in(self, p: &PiiPolicy) -> Option<GuardrailAction> {
        match self {
            Detector::Email => p.email,
            Detector::Phone => p.phone,
            Detector::PaymentCard => p.payment_card,
            Detector::Iban => p.iban,
            Detector::UsSsn => p.us_ssn,
            Detector::IpAddress => p.ip_address,
            Detector::Secrets => p.secrets,
        }
    }
}

impl GuardrailsConfig {
    /// The spec with defaults applied (patterns are checked by the compile function).
    pub fn from_spec(spec: &Guardrails) -> Self {
        let pii = spec
            .pii
            .as_ref()
            .map(|p| {
                Detector::ALL
                    .iter()
                    .filter_map(|&detector| {
                        detector
                            .action_in(p)
                            .map(|action| DetectorConfig { detector, action })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            max_prompt_tokens: spec.max_prompt_tokens,
            blocked_patterns: spec.blocked_patterns.clone(),
            pii,
            prompt_injection: spec.prompt_injection.map(GuardrailAction::from),
            applies_to: spec.applies_to.unwrap_or_default(),
        }
    }

    /// Every problem with it: patterns that do not compile or are unbounded on answers, an
    /// injection action of `redact`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, p) in self.blocked_patterns.iter().enumerate() {
            if let Err(e) = crate::guardrails::check_pattern(p, self.applies_to.response()) {
                out.push(format!("guardrails.blockedPatterns[{i}]: {e}"));
            }
        }
        if self.prompt_injection == Some(GuardrailAction::Redact) {
            out.push("guardrails.promptInjection: must be block or flag".to_owned());
        }
        out
    }
}
