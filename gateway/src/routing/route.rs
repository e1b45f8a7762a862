//! Routes compiled for the hot path: rule patterns compiled, backends resolved to
//! [`Backend`] handles and grouped by priority and weight.

use std::sync::Arc;

use regex::Regex;
use tollgate_crds::config::{BackendConfig, RouteConfig, RuleConfig, WeightedBackend};

use super::balance::BackendSet;
use crate::{backend::Backend, resilience::retry::RetryBudget};

/// A rule pattern that does not compile (the compile function prevents this; a hand-edited
/// config may not).
#[derive(Debug, thiserror::Error)]
#[error("route {route} rule {rule}: {error}")]
pub struct PatternError {
    /// Route id.
    pub route: String,
    /// Rule name.
    pub rule: String,
    /// The regex error.
    pub error: regex::Error,
}

/// Weighted backends, resolved, with their schedule.
#[derive(Debug)]
pub struct BackendList {
    /// The backends whose provider is loaded, in config order.
    pub backends: Vec<Arc<Backend>>,
    /// Their priority groups and weighted schedules (indices into `backends`).
    pub set: BackendSet,
}

impl BackendList {
    fn new(
        weighted: &[WeightedBackend],
        resolve: &mut impl FnMut(&BackendConfig) -> Option<Arc<Backend>>,
    ) -> Self {
        let mut backends = Vec::with_capacity(weighted.len());
        let mut pairs = Vec::with_capacity(weighted.len());
        for w in weighted {
            if let Some(b) = resolve(&w.backend) {
                backends.push(b);
                pairs.push((w.weight, w.priority));
            }
        }
        Self {
            backends,
            set: BackendSet::new(&pairs),
        }
    }
}

/// A rule with its patterns compiled.
#[derive(Debug)]
pub struct RuleRuntime {
    /// The rule.
    pub config: RuleConfig,
    /// `match.pattern`, compiled.
    pub pattern: Option<Regex>,
    /// Header regexes by position in `match.headers` (`None` for exact matches).
    pub header_patterns: Vec<Option<Regex>>,
    /// Its backends.
    pub list: BackendList,
}

/// A route ready to use.
#[derive(Debug)]
pub struct RouteRuntime {
    /// Its id, shared with the streams it serves.
    pub id: Arc<str>,
    /// The route.
    pub config: RouteConfig,
    /// Its rules, compiled.
    pub rules: Vec<RuleRuntime>,
    /// Its default backends.
    pub list: BackendList,
    /// Its fallbacks, in order.
    pub fallbacks: Vec<Arc<Backend>>,
    /// Caps retries at `retry.budgetPercent` of its requests.
    pub budget: RetryBudget,
    /// Whether a rule matches on prompt tokens.
    pub rules_count_tokens: bool,
    /// Whether a provider of its backends has a tokens-per-minute quota.
    pub token_quota: bool,
    /// The smallest context window of its backends, if any states one.
    pub smallest_window: Option<u32>,
    /// The longest total timeout of any of its backends (the walk's deadline).
    pub longest_total: std::time::Duration,
    /// Its guardrails, compiled.
    pub guardrails: Option<Arc<crate::guardrails::RouteGuardrails>>,
}

impl RouteRuntime {
    /// Compiles `config`; `resolve` gives each backend's handle, `None` when its provider is
    /// not loaded (that backend is left out).
    pub fn compile(
        config: &RouteConfig,
        mut resolve: impl FnMut(&BackendConfig) -> Option<Arc<Backend>>,
    ) -> Result<Self, PatternError> {
        let rules = config
            .rules
            .iter()
            .map(|rule| compile_rule(&config.id, rule, &mut resolve))
            .collect::<Result<Vec<_>, _>>()?;
        let fallbacks: Vec<Arc<Backend>> =
            config.fallbacks.iter().filter_map(&mut resolve).collect();
        let longest = config
            .all_backends()
            .map(|b| b.timeouts.total_ms)
            .max()
            .unwrap_or(0);
        let list = BackendList::new(&config.backends, &mut resolve);
        let every = || {
            list.backends
                .iter()
                .chain(&fallbacks)
                .chain(rules.iter().flat_map(|r| &r.list.backends))
        };
        let token_quota = every().any(|b| b.provider.limits_tokens());
        let guardrails = config
            .guardrails
            .as_ref()
            .map(|g| crate::guardrails::RouteGuardrails::compile(g).map(Arc::new))
            .transpose()
            .map_err(|(rule, error)| PatternError {
                route: config.id.clone(),
                rule: format!("guardrails.{rule}"),
                error,
            })?;
        let smallest_window = every().filter_map(|b| b.context_window).min();
        Ok(Self {
            list,
            fallbacks,
            budget: RetryBudget::new(config.retry.budget_percent),
            rules_count_tokens: config.rules.iter().any(|r| {
                r.matches.min_prompt_tokens.is_some() || r.matches.max_prompt_tokens.is_some()
            }),
            token_quota,
            smallest_window,
            longest_total: std::time::Duration::from_millis(longest),
            guardrails,
            rules,
            id: Arc::from(config.id.as_str()),
            config: config.clone(),
        })
    }

    /// Whether a prompt of at most `prompt_bytes` bytes needs its tokens estimated: a rule
    /// or a quota counts them, or a context window may be too small for it.
    pub fn needs_prompt_tokens(&self, prompt_bytes: u64) -> bool {
        self.rules_count_tokens
            || self.token_quota
            || self
                .smallest_window
                .is_some_and(|w| u64::from(w) < prompt_bytes)
    }
}

fn compile_rule(
    route: &str,
    rule: &RuleConfig,
    resolve: &mut impl FnMut(&BackendConfig) -> Option<Arc<Backend>>,
) -> Result<RuleRuntime, PatternError> {
    let err = |error| PatternError {
        route: route.to_owned(),
        rule: rule.name.clone(),
        error,
    };
    let pattern = rule
        .matches
        .pattern
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(err)?;
    let header_patterns = rule
        .matches
        .headers
        .iter()
        .map(|h| {
            if h.regex {
                Regex::new(&format!("^(?:{})$", h.value))
                    .map(Some)
                    .map_err(err)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(RuleRuntime {
        list: BackendList::new(&rule.backends, resolve),
        config: rule.clone(),
        pattern,
        header_patterns,
    })
}
