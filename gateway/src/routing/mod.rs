//! Which backends a request may go to, in order: the first rule that matches picks its
//! backends, else the route's; they are ordered by priority, balanced by weight within a
//! priority (`balance`), and followed by the route's fallbacks. Health, quotas, context
//! windows and retries are applied while walking this order (`pipeline::walk`).

pub mod balance;
pub mod route;
pub mod tokens;

use std::sync::Arc;

use http::HeaderMap;

pub use route::{BackendList, PatternError, RouteRuntime, RuleRuntime};

use crate::{
    backend::Backend,
    wire::openai::{ChatRequest, Content, ContentPart},
};

/// The ordered backends for one request, and the rule that chose them.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Backends to try, in order.
    pub backends: Vec<&'a Arc<Backend>>,
    /// How many of them come from `fallbacks` (at the end).
    pub fallbacks: usize,
    /// The matching rule, if any.
    pub rule: Option<&'a str>,
}

impl Plan<'_> {
    /// Whether the backend at `index` comes from `fallbacks`.
    pub fn is_fallback(&self, index: usize) -> bool {
        index >= self.backends.len().saturating_sub(self.fallbacks)
    }
}

/// Plans a chat request; `prompt_tokens` is only read when a rule matches on it.
pub fn plan<'a>(
    route: &'a RouteRuntime,
    req: &ChatRequest,
    headers: &HeaderMap,
    prompt_tokens: u64,
) -> Plan<'a> {
    if route.rules.is_empty() {
        return plan_default(route);
    }
    let facts = Facts::of(req, prompt_tokens);
    match route.rules.iter().find(|r| matches(r, &facts, headers)) {
        Some(rule) => plan_from(&rule.list, route, Some(rule.config.name.as_str())),
        None => plan_default(route),
    }
}

/// Plans a request that rules do not apply to (embeddings).
pub fn plan_default(route: &RouteRuntime) -> Plan<'_> {
    plan_from(&route.list, route, None)
}

fn plan_from<'a>(
    list: &'a BackendList,
    route: &'a RouteRuntime,
    rule: Option<&'a str>,
) -> Plan<'a> {
    let mut backends: Vec<&Arc<Backend>> =
        Vec::with_capacity(list.backends.len() + route.fallbacks.len());
    list.set.order(|i| {
        if let Some(b) = list.backends.get(i) {
            backends.push(b);
        }
    });
    backends.extend(route.fallbacks.iter());
    Plan {
        backends,
        fallbacks: route.fallbacks.len(),
        rule,
    }
}

/// What rules look at, computed once per request (only when the route has rules).
struct Facts {
    has_tools: bool,
    has_images: bool,
    last_user: String,
    last_user_lower: String,
    prompt_tokens: u64,
}

impl Facts {
    fn of(req: &ChatRequest, prompt_tokens: u64) -> Self {
        let has_images = req.messages.iter().any(|m| match &m.content {
            Some(Content::Parts(parts)) => parts
                .iter()
                .any(|p| matches!(p, ContentPart::ImageUrl { .. })),
            _ => false,
        });
        let last_user = req.last_user_text();
        Self {
            has_tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            has_images,
            last_user_lower: last_user.to_lowercase(),
            last_user,
            prompt_tokens,
        }
    }
}

fn matches(rule: &RuleRuntime, facts: &Facts, headers: &HeaderMap) -> bool {
    let m = &rule.config.matches;
    let headers_ok = m
        .headers
        .iter()
        .zip(&rule.header_patterns)
        .all(|(h, pattern)| {
            let Some(value) = headers.get(h.name.as_str()).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            match pattern {
                Some(re) => re.is_match(value),
                None => value == h.value,
            }
        });
    headers_ok
        && m.min_prompt_tokens
            .is_none_or(|min| facts.prompt_tokens >= u64::from(min))
        && m.max_prompt_tokens
            .is_none_or(|max| facts.prompt_tokens <= u64::from(max))
        && m.has_tools.is_none_or(|want| want == facts.has_tools)
        && m.has_images.is_none_or(|want| want == facts.has_images)
        && (m.keywords.is_empty()
            || m.keywords
                .iter()
                .any(|k| facts.last_user_lower.contains(k.as_str())))
        && rule
            .pattern
            .as_ref()
            .is_none_or(|re| re.is_match(&facts.last_user))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
