//! Whole-config consistency checks: what the gateway verifies before swapping a config in.
//! The compile function only emits configs that pass; a hand-edited or skewed one may not.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ActionConfig, BackendConfig, CacheConfig, GatewayConfig, PeriodConfig, ProviderConfig,
    ProviderType, RouteConfig,
};

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not a config.
    #[error("config is not valid JSON for the gateway-config contract: {0}")]
    Parse(#[source] serde_json::Error),
    /// The config could not be serialized.
    #[error("config could not be serialized: {0}")]
    Serialize(#[source] serde_json::Error),
    /// Written by a different contract version.
    #[error("config version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Parsed, but inconsistent.
    #[error("config is inconsistent: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl GatewayConfig {
    /// Checks that every reference resolves and every value is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let mut providers: BTreeMap<&str, &ProviderConfig> = BTreeMap::new();
        for p in &self.providers {
            if providers.insert(&p.id, p).is_some() {
                errors.push(format!("provider {}: duplicate id", p.id));
            }
            check_provider(p, &mut errors);
        }
        let mut names: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &self.routes {
            for name in std::iter::once(&r.model).chain(&r.aliases) {
                if let Some(other) = names.insert(name, &r.id) {
                    errors.push(format!(
                        "route {}: model name {name:?} is also claimed by route {other}",
                        r.id
                    ));
                }
            }
            check_route(r, &providers, &mut errors);
        }
        check_embedding_routes(&self.routes, &mut errors);
        let route_ids: BTreeSet<&str> = self.routes.iter().map(|r| r.id.as_str()).collect();
        for b in &self.budgets {
            for route in &b.routes {
                if !route_ids.contains(route.as_str()) {
                    errors.push(format!("budget {}: route {route} does not exist", b.id));
                }
            }
            if let ActionConfig::Downgrade { route } = &b.action
                && !route_ids.contains(route.as_str())
            {
                errors.push(format!(
                    "budget {}: downgrade route {route} does not exist",
                    b.id
                ));
            }
            match &b.period {
                PeriodConfig::Daily { time_zone }
                | PeriodConfig::Weekly { time_zone }
                | PeriodConfig::Monthly { time_zone } => {
                    if jiff::tz::TimeZone::get(time_zone).is_err() {
                        errors.push(format!("budget {}: unknown time zone {time_zone:?}", b.id));
                    }
                }
                PeriodConfig::Rolling { window_ms } => {
                    if *window_ms == 0 {
                        errors.push(format!("budget {}: rolling window must be positive", b.id));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

fn check_provider(p: &ProviderConfig, errors: &mut Vec<String>) {
    let needs_url = p.provider_type != ProviderType::Mock;
    if needs_url != p.base_url.is_some() {
        errors.push(format!(
            "provider {}: baseUrl must be set for every type but mock",
            p.id
        ));
    }
    let needs_credentials = !matches!(
        p.provider_type,
        ProviderType::Mock | ProviderType::OpenAICompatible
    );
    if needs_credentials && p.credentials.is_empty() {
        errors.push(format!("provider {}: has no credentials", p.id));
    }
    if (p.provider_type == ProviderType::AzureOpenAI) != p.azure.is_some() {
        errors.push(format!(
            "provider {}: azure settings must be present exactly for azure-openai",
            p.id
        ));
    }
    if (p.provider_type == ProviderType::Bedrock) != p.bedrock_region.is_some() {
        errors.push(format!(
            "provider {}: bedrockRegion must be present exactly for bedrock",
            p.id
        ));
    }
    if p.models.is_empty() {
        errors.push(format!("provider {}: serves no models", p.id));
    }
    let mut seen = BTreeSet::new();
    for m in &p.models {
        if !seen.insert(&m.name) {
            errors.push(format!("provider {}: model {} listed twice", p.id, m.name));
        }
    }
}

fn check_route(
    r: &RouteConfig,
    providers: &BTreeMap<&str, &ProviderConfig>,
    errors: &mut Vec<String>,
) {
    for b in r.all_backends() {
        check_backend(&r.id, b, providers, errors);
    }
    for rule in &r.rules {
        if let Some(pattern) = &rule.matches.pattern
            && let Err(e) = regex::Regex::new(pattern)
        {
            errors.push(format!(
                "route {} rule {}: pattern does not compile: {e}",
                r.id, rule.name
            ));
        }
        for h in rule.matches.headers.iter().filter(|h| h.regex) {
            if let Err(e) = regex::Regex::new(&h.value) {
                errors.push(format!(
                    "route {} rule {}: header {} regex does not compile: {e}",
                    r.id, rule.name, h.name
                ));
            }
        }
    }
    if let Some(c) = &r.cache {
        check_cache(r, c, errors);
    }
    if let Some(g) = &r.guardrails {
        for problem in g.problems() {
            errors.push(format!("route {}: {problem}", r.id));
        }
    }
    if r.retry.attempts == 0 {
        errors.push(format!("route {}: retry.attempts must be at least 1", r.id));
    }
    if r.retry.backoff_initial_ms > r.retry.backoff_max_ms {
        errors.push(format!("route {}: retry backoff initial exceeds max", r.id));
    }
    let mut per = BTreeSet::new();
    for (i, l) in r.rate_limits.iter().enumerate() {
        if !per.insert(l.per) {
            errors.push(format!(
                "route {}: rateLimits[{i}].per {:?} repeats an earlier limit",
                r.id, l.per
            ));
        }
        if l.requests_per_minute.is_none() && l.tokens_per_minute.is_none() {
            errors.push(format!(
                "route {}: rateLimits[{i}] needs requestsPerMinute or tokensPerMinute",
                r.id
            ));
        }
        if l.requests_per_minute == Some(0) || l.tokens_per_minute == Some(0) {
            errors.push(format!(
                "route {}: rateLimits[{i}] limits must be at least 1",
                r.id
            ));
        }
    }
}

fn check_backend(
    route: &str,
    b: &BackendConfig,
    providers: &BTreeMap<&str, &ProviderConfig>,
    errors: &mut Vec<String>,
) {
    match providers.get(b.provider.as_str()) {
        None => errors.push(format!(
            "route {route}: backend provider {} does not exist",
            b.provider
        )),
        Some(p) if !p.models.iter().any(|m| m.name == b.model) => {
            errors.push(format!(
                "route {route}: provider {} does not serve model {}",
                b.provider, b.model
            ));
        }
        Some(_) => {}
    }
    let t = b.timeouts;
    if t.connect_ms == 0 || t.first_token_ms == 0 || t.idle_ms == 0 || t.total_ms == 0 {
        errors.push(format!(
            "route {route}: backend {}/{} has a zero timeout",
            b.provider, b.model
        ));
    }
}

fn check_cache(r: &RouteConfig, c: &CacheConfig, errors: &mut Vec<String>) {
    if c.ttl_ms == 0 {
        errors.push(format!("route {}: cache.ttlMs must be more than 0", r.id));
    }
    if c.max_entry_bytes == 0 {
        errors.push(format!(
            "route {}: cache.maxEntryBytes must be more than 0",
            r.id
        ));
    }
    if let Some(s) = &c.semantic {
        if !(s.threshold > 0.0 && s.threshold <= 1.0) {
            errors.push(format!(
                "route {}: cache.semantic.threshold must be in (0, 1]",
                r.id
            ));
        }
        if s.max_entries == 0 {
            errors.push(format!(
                "route {}: cache.semantic.maxEntries must be more than 0",
                r.id
            ));
        }
    }
}

/// Semantic caches whose embedding route is missing or itself semantic (its lookups would
/// call themselves).
fn check_embedding_routes(routes: &[RouteConfig], errors: &mut Vec<String>) {
    let by_id: BTreeMap<&str, &RouteConfig> = routes.iter().map(|r| (r.id.as_str(), r)).collect();
    for r in routes {
        let Some(s) = r.cache.as_ref().and_then(|c| c.semantic.as_ref()) else {
            continue;
        };
        match by_id.get(s.embedding_route.as_str()) {
            None => errors.push(format!(
                "route {}: cache.semantic.embeddingRoute {} does not exist",
                r.id, s.embedding_route
            )),
            Some(e) if e.cache.as_ref().is_some_and(|c| c.semantic.is_some()) => {
                errors.push(format!(
                    "route {}: cache.semantic.embeddingRoute {} has a semantic cache itself",
                    r.id, s.embedding_route
                ));
            }
            Some(_) => {}
        }
    }
}
