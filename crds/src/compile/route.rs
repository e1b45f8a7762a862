//! `LLMRoute` → `RouteConfig`: name conflicts, backend resolution, defaults.

use std::collections::BTreeMap;

use super::{
    Context, Inputs, Kind, ObjectRef, Reason, object_ref, provider::Providers, unsupported,
};
use crate::{
    LLMProvider, LLMRoute,
    common::{Duration, LocalRef, Timeouts},
    config::{
        BackendConfig, CacheConfig, GuardrailsConfig, HeaderMatchConfig, MatchConfig,
        RateLimitConfig, RetryConfig, RouteConfig, RuleConfig, SemanticConfig, TimeoutsConfig,
        WeightedBackend,
    },
    route::{Backend, CachePolicy, Guardrails, HeaderMatchType, LLMRouteSpec, RetryOn, RouteRule},
};

/// Accepted routes by id.
pub(super) type Routes = BTreeMap<String, RouteConfig>;

pub(super) fn compile_all(cx: &mut Context, inputs: &Inputs<'_>, providers: &Providers) -> Routes {
    let provider_specs: BTreeMap<String, &LLMProvider> = inputs
        .providers
        .iter()
        .map(|p| (object_ref(Kind::LLMProvider, p).id(), p))
        .collect();

    // The older route keeps a contested name: sort by creation time, then namespace/name.
    let mut sorted: Vec<(&LLMRoute, ObjectRef)> = inputs
        .routes
        .iter()
        .map(|r| (r, object_ref(Kind::LLMRoute, r)))
        .collect();
    sorted.sort_by(|(a, ar), (b, br)| {
        let ta = a.metadata.creation_timestamp.as_ref();
        let tb = b.metadata.creation_timestamp.as_ref();
        (ta.is_none(), ta, ar).cmp(&(tb.is_none(), tb, br))
    });

    let mut claimed: BTreeMap<String, ObjectRef> = BTreeMap::new();
    let mut objects: BTreeMap<String, ObjectRef> = BTreeMap::new();
    let mut out = Routes::new();
    for (route, object) in sorted {
        if out.contains_key(&object.id()) {
            continue;
        }
        if !cx.admit(&object, route, unsupported::route(&route.spec))
            || !patterns_compile(cx, &object, &route.spec.rules)
            || !guardrail_patterns_compile(cx, &object, route.spec.guardrails.as_ref())
            || cx.left_out(&object)
        {
            continue;
        }
        let names = std::iter::once(("spec.model".to_owned(), &route.spec.model)).chain(
            route
                .spec
                .aliases
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("spec.aliases[{i}]"), a)),
        );
        let mut conflict = false;
        for (field, name) in names.clone() {
            if let Some(owner) = claimed.get(name) {
                let message = format!(
                    "model name {name:?} is already served by {owner}, which is older; rename this route's model or alias"
                );
                cx.problem(&object, field, Reason::ModelNameConflict, message);
                conflict = true;
            }
        }
        if conflict {
            continue;
        }
        for (_, name) in names {
            claimed.insert(name.clone(), object.clone());
        }
        let config = compile_one(cx, &object, route, providers, &provider_specs);
        cx.source(&object, route.metadata.generation);
        out.insert(object.id(), config);
        objects.insert(object.id(), object);
    }
    resolve_embedding_routes(cx, &objects, &mut out);
    out
}

/// A semantic cache's embedding route must be an accepted route of the namespace without a
/// semantic cache of its own (its lookups would call themselves); otherwise the route keeps
/// its exact cache and reports the problem.
fn resolve_embedding_routes(
    cx: &mut Context,
    objects: &BTreeMap<String, ObjectRef>,
    routes: &mut Routes,
) {
    let semantic: BTreeMap<String, bool> = routes
        .iter()
        .map(|(id, r)| {
            let has = r.cache.as_ref().is_some_and(|c| c.semantic.is_some());
            (id.clone(), has)
        })
        .collect();
    for (id, route) in routes.iter_mut() {
        let Some(cache) = route.cache.as_mut() else {
            continue;
        };
        let Some(s) = &cache.semantic else {
            continue;
        };
        let Some(object) = objects.get(id) else {
            continue;
        };
        let field = "spec.cache.semantic.embeddingRoute.name";
        let name = s
            .embedding_route
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let problem = match semantic.get(&s.embedding_route) {
            None => Some((
                Reason::RouteNotFound,
                format!(
                    "LLMRoute {name:?} not found (or not accepted) in namespace {:?}",
                    object.namespace
                ),
            )),
            // Reported as a reference that cannot be used: the route itself stays accepted.
            Some(true) => Some((
                Reason::RouteNotFound,
                format!(
                    "LLMRoute {name:?} has a semantic cache itself; point embeddingRoute at a route without one"
                ),
            )),
            Some(false) => None,
        };
        if let Some((reason, message)) = problem {
            cx.problem(object, field, reason, message);
            cache.semantic = None;
        }
    }
}

/// The route's cache with defaults applied.
fn cache_config(namespace: &str, policy: &CachePolicy) -> CacheConfig {
    CacheConfig {
        ttl_ms: millis(Some(&policy.ttl), 0).max(1),
        max_entry_bytes: u64::from(policy.max_entry_bytes.unwrap_or(1 << 20)),
        scope: policy.scope.unwrap_or_default(),
        semantic: policy.semantic.as_ref().map(|s| SemanticConfig {
            embedding_route: format!("{namespace}/{}", s.embedding_route.name),
            threshold: s.threshold.unwrap_or(0.95),
            max_entries: s.max_entries.unwrap_or(1000),
        }),
    }
}

fn patterns_compile(cx: &mut Context, object: &ObjectRef, rules: &[RouteRule]) -> bool {
    let mut ok = true;
    for (i, rule) in rules.iter().enumerate() {
        let mut check = |field: String, pattern: &str| {
            if let Err(e) = regex::Regex::new(pattern) {
                cx.problem(
                    object,
                    field,
                    Reason::Invalid,
                    format!("not a valid regular expression: {e}"),
                );
                ok = false;
            }
        };
        if let Some(p) = &rule.matches.pattern {
            check(format!("spec.rules[{i}].match.pattern"), p);
        }
        for (j, h) in rule.matches.headers.iter().enumerate() {
            if h.match_type == Some(HeaderMatchType::Regex) {
                check(
                    format!("spec.rules[{i}].match.headers[{j}].value"),
                    &h.value,
                );
            }
        }
    }
    ok
}

/// Blocked patterns must compile within the size limit and, when they check answers, match
/// a bounded length (a stream holds back at most that much).
fn guardrail_patterns_compile(
    cx: &mut Context,
    object: &ObjectRef,
    guardrails: Option<&Guardrails>,
) -> bool {
    let Some(g) = guardrails else { return true };
    let response = g.applies_to.unwrap_or_default().response();
    let mut ok = true;
    for (i, pattern) in g.blocked_patterns.iter().enumerate() {
        if let Err(e) = crate::guardrails::check_pattern(pattern, response) {
            cx.problem(
                object,
                format!("spec.guardrails.blockedPatterns[{i}]"),
                Reason::Invalid,
                e.to_string(),
            );
            ok = false;
        }
    }
    ok
}

struct Resolver<'a> {
    object: &'a ObjectRef,
    providers: &'a Providers,
    provider_specs: &'a BTreeMap<String, &'a LLMProvider>,
    route_timeouts: Option<&'a Timeouts>,
}

impl Resolver<'_> {
    /// The backend, or a reported `ResolvedRefs` problem.
    fn backend(
        &self,
        cx: &mut Context,
        provider: &LocalRef,
        model: &str,
        field: &str,
    ) -> Option<BackendConfig> {
        let ns = &self.object.namespace;
        let id = format!("{ns}/{}", provider.name);
        match self.providers.get(&id) {
            None => {
                cx.problem(
                    self.object,
                    format!("{field}.providerRef.name"),
                    Reason::ProviderNotFound,
                    format!(
                        "LLMProvider {:?} not found in namespace {ns:?}",
                        provider.name
                    ),
                );
                None
            }
            Some(Err(why)) => {
                cx.problem(
                    self.object,
                    format!("{field}.providerRef.name"),
                    Reason::ProviderNotReady,
                    format!("LLMProvider {id} is not usable: {why} (see its conditions)"),
                );
                None
            }
            Some(Ok(p)) if !p.models.iter().any(|m| m.name == model) => {
                let listed: Vec<&str> = p.models.iter().map(|m| m.name.as_str()).collect();
                cx.problem(
                    self.object,
                    format!("{field}.model"),
                    Reason::ModelNotFound,
                    format!(
                        "LLMProvider {id} does not list model {model:?} (it lists: {})",
                        listed.join(", ")
                    ),
                );
                None
            }
            Some(Ok(_)) => {
                let provider_timeouts = self
                    .provider_specs
                    .get(&id)
                    .and_then(|p| p.spec.timeouts.as_ref());
                Some(BackendConfig {
                    provider: id,
                    model: model.to_owned(),
                    timeouts: effective_timeouts(self.route_timeouts, provider_timeouts),
                })
            }
        }
    }

    fn weighted(
        &self,
        cx: &mut Context,
        backends: &[Backend],
        field: &str,
    ) -> Vec<WeightedBackend> {
        backends
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let backend =
                    self.backend(cx, &b.provider_ref, &b.model, &format!("{field}[{i}]"))?;
                Some(WeightedBackend {
                    backend,
                    weight: b.weight.unwrap_or(1),
                    priority: b.priority.unwrap_or(0),
                })
            })
            .collect()
    }
}

fn compile_one(
    cx: &mut Context,
    object: &ObjectRef,
    route: &LLMRoute,
    providers: &Providers,
    provider_specs: &BTreeMap<String, &LLMProvider>,
) -> RouteConfig {
    let spec = &route.spec;
    let resolver = Resolver {
        object,
        providers,
        provider_specs,
        route_timeouts: spec.timeouts.as_ref(),
    };
    let backends = resolver.weighted(cx, &spec.backends, "spec.backends");
    let fallbacks = spec
        .fallbacks
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            resolver.backend(
                cx,
                &f.provider_ref,
                &f.model,
                &format!("spec.fallbacks[{i}]"),
            )
        })
        .collect();
    let rules = spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| RuleConfig {
            name: rule.name.clone(),
            matches: match_config(rule),
            backends: resolver.weighted(cx, &rule.backends, &format!("spec.rules[{i}].backends")),
        })
        .collect();
    let retry = spec.retry.clone().unwrap_or_default();
    let backoff = retry.backoff.unwrap_or_default();
    // A bound given alone moves the other default so that initial <= max always holds.
    let given_initial = backoff.initial.as_ref().map(|d| millis(Some(d), 250));
    let given_max = backoff.max.as_ref().map(|d| millis(Some(d), 10_000));
    let backoff_max_ms = given_max.unwrap_or_else(|| given_initial.unwrap_or(0).max(10_000));
    let backoff_initial_ms = given_initial.unwrap_or_else(|| backoff_max_ms.min(250));
    let mut on = if retry.on.is_empty() {
        RetryOn::ALL.to_vec()
    } else {
        retry.on
    };
    on.sort();
    RouteConfig {
        id: object.id(),
        model: spec.model.clone(),
        aliases: spec.aliases.clone(),
        backends,
        fallbacks,
        rules,
        retry: RetryConfig {
            attempts: retry.attempts.unwrap_or(2),
            backoff_initial_ms,
            backoff_max_ms,
            on,
            budget_percent: retry.budget_percent.unwrap_or(20),
        },
        rate_limits: rate_limits(spec),
        cache: spec
            .cache
            .as_ref()
            .map(|c| cache_config(&object.namespace, c)),
        guardrails: spec.guardrails.as_ref().map(GuardrailsConfig::from_spec),
    }
}

/// `rateLimit` (one limit) or `rateLimits` (several), sorted by what they count per. The
/// schema's rules (one form, unique `per`, at least one limit each) hold here already.
fn rate_limits(spec: &LLMRouteSpec) -> Vec<RateLimitConfig> {
    let mut out: Vec<RateLimitConfig> = spec
        .rate_limit
        .iter()
        .chain(&spec.rate_limits)
        .map(|l| RateLimitConfig {
            per: l.per.unwrap_or_default(),
            requests_per_minute: l.requests_per_minute,
            tokens_per_minute: l.tokens_per_minute,
        })
        .collect();
    out.sort_by_key(|l| l.per);
    out
}

fn match_config(rule: &RouteRule) -> MatchConfig {
    let m = &rule.matches;
    MatchConfig {
        headers: m
            .headers
            .iter()
            .map(|h| HeaderMatchConfig {
                name: h.name.to_ascii_lowercase(),
                value: h.value.clone(),
                regex: h.match_type == Some(HeaderMatchType::Regex),
            })
            .collect(),
        min_prompt_tokens: m.prompt_tokens.as_ref().and_then(|t| t.min),
        max_prompt_tokens: m.prompt_tokens.as_ref().and_then(|t| t.max),
        has_tools: m.has_tools,
        has_images: m.has_images,
        keywords: m.keywords.iter().map(|k| k.to_lowercase()).collect(),
        pattern: m.pattern.clone(),
    }
}

/// Route value, else provider value, else the default; each timeout on its own.
pub(crate) fn effective_timeouts(
    route: Option<&Timeouts>,
    provider: Option<&Timeouts>,
) -> TimeoutsConfig {
    // A zero value counts as unset, so it falls through to the provider, then the default.
    let set = |t: Option<&Timeouts>, get: fn(&Timeouts) -> Option<&Duration>| {
        t.and_then(get)
            .map(|d| millis(Some(d), 0))
            .filter(|ms| *ms > 0)
    };
    let pick = |get: fn(&Timeouts) -> Option<&Duration>, default: u64| {
        set(route, get)
            .or_else(|| set(provider, get))
            .unwrap_or(default)
    };
    let d = TimeoutsConfig::DEFAULT;
    TimeoutsConfig {
        connect_ms: pick(|t| t.connect.as_ref(), d.connect_ms),
        first_token_ms: pick(|t| t.first_token.as_ref(), d.first_token_ms),
        idle_ms: pick(|t| t.idle.as_ref(), d.idle_ms),
        total_ms: pick(|t| t.total.as_ref(), d.total_ms),
    }
}

/// A validated duration in milliseconds, or `default` when absent (or zero).
fn millis(value: Option<&Duration>, default: u64) -> u64 {
    value
        .and_then(|d| d.to_std().ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .filter(|ms| *ms > 0)
        .unwrap_or(default)
}
