//! Prometheus metrics with the OpenTelemetry GenAI names (dots become underscores), plus
//! Tollgate's own: the gateway's overhead and config reloads.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tollgate_crds::config::ProviderType;

/// `gen_ai.provider.name` for a provider type, per the OpenTelemetry GenAI conventions.
pub fn provider_name(provider_type: ProviderType) -> &'static str {
    match provider_type {
        ProviderType::OpenAI | ProviderType::OpenAICompatible => "openai",
        ProviderType::AzureOpenAI => "azure.ai.openai",
        ProviderType::Anthropic => "anthropic",
        ProviderType::Gemini => "gcp.gemini",
        ProviderType::Bedrock => "aws.bedrock",
        ProviderType::Mock => "tollgate.mock",
    }
}

/// Labels of one request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `chat` (Anthropic Messages and Responses included), `embeddings`, `count_tokens`.
    pub gen_ai_operation_name: &'static str,
    /// Provider name (see [`provider_name`]).
    pub gen_ai_provider_name: &'static str,
    /// The model the app asked for.
    pub gen_ai_request_model: String,
    /// The model that answered.
    pub gen_ai_response_model: String,
    /// Empty on success, else the failure class.
    pub error_type: &'static str,
    /// The route id.
    pub route: String,
}

impl RequestLabels {
    /// Labels of a successful request so far (`error_type` empty).
    pub fn new(
        operation: &'static str,
        provider_type: ProviderType,
        request_model: &str,
        response_model: &str,
        route: &str,
    ) -> Self {
        Self {
            gen_ai_operation_name: operation,
            gen_ai_provider_name: provider_name(provider_type),
            gen_ai_request_model: request_model.to_owned(),
            gen_ai_response_model: response_model.to_owned(),
            error_type: "",
            route: route.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_response_model: String,
    gen_ai_token_type: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    gen_ai_operation_name: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    route: String,
    provider: String,
    model: String,
    outcome: &'static str,
    fallback: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    provider: String,
    model: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfigLabels {
    hash: String,
}

/// Token counts of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Uncached input.
    pub input: u64,
    /// Output, reasoning excluded.
    pub output: u64,
    /// Cached input.
    pub cached_input: u64,
    /// Reasoning.
    pub reasoning: u64,
    /// Input written to a prompt cache (5-minute tier), not in `input`.
    pub cache_write: u64,
    /// Input written to Anthropic's 1-hour prompt cache, not in `input`.
    pub cache_write_1h: u64,
}

/// Labels of `tollgate_cost_usd_total`: bounded, since teams come from client-key Secrets,
/// never from a client's header.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CostLabels {
    /// Route id.
    pub route: String,
    /// Provider id.
    pub provider: String,
    /// Provider model.
    pub model: String,
    /// The client key's team (empty without one).
    pub team: String,
}

/// Labels of the budget decision counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// Budget id.
    pub budget: String,
    /// `rejected`, `downgraded`, `over` (alert or shadow mode), `unavailable` (state down).
    pub decision: &'static str,
}

/// All metrics.
#[derive(Debug)]
pub struct Metrics {
    cost: Family<CostLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    budget_decisions: Family<BudgetLabels, Counter>,
    usage_dropped: Counter,
    registry: Registry,
    tokens: Family<TokenLabels, Histogram, fn() -> Histogram>,
    duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    ttft: Family<RequestLabels, Histogram, fn() -> Histogram>,
    tpot: Family<RequestLabels, Histogram, fn() -> Histogram>,
    overhead: Family<RouteLabels, Histogram, fn() -> Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    config: Family<ConfigLabels, Gauge>,
    current_hash: ArcSwapOption<String>,
    attempts: Family<AttemptLabels, Counter>,
    fallbacks: Family<RouteLabels, Counter>,
    retries: Family<ReasonLabels, Counter>,
    ejections: Family<BackendLabels, Counter>,
    panics: Family<RouteLabels, Counter>,
    /// Rate limits and shared-state failures.
    pub limits: crate::limits::LimitMetrics,
    /// The response cache's metrics.
    pub cache: crate::cache::CacheMetrics,
    guardrail_findings: Family<GuardrailLabels, Counter>,
}

/// Labels of the guardrail findings counter (rule names, never content).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardrailLabels {
    /// Route id.
    pub route: String,
    /// Rule name (`pii.email`, `blockedPatterns[0]`…).
    pub rule: String,
    /// `block`, `redact` or `flag`.
    pub action: &'static str,
    /// `prompt` or `response`.
    pub stage: &'static str,
}

fn token_buckets() -> Histogram {
    Histogram::new([
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        4194304.0,
    ])
}

fn duration_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ])
}

fn per_token_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
    ])
}

fn overhead_buckets() -> Histogram {
    Histogram::new([
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Counts `usd` of spend.
    pub fn cost(&self, labels: &CostLabels, usd: f64) {
        self.cost.get_or_create(labels).inc_by(usd);
    }

    /// Counts one budget decision.
    pub fn budget_decision(&self, budget: &str, decision: &'static str) {
        self.budget_decisions
            .get_or_create(&BudgetLabels {
                budget: budget.to_owned(),
                decision,
            })
            .inc();
    }

    /// Counts a request on which a guardrail rule fired.
    pub fn guardrail_finding(&self, labels: &GuardrailLabels) {
        self.guardrail_findings.get_or_create(labels).inc();
    }

    /// How many requests a guardrail rule fired on (tests and benchmarks).
    pub fn guardrail_findings(&self, labels: &GuardrailLabels) -> u64 {
        self.guardrail_findings.get_or_create(labels).get()
    }

    /// Counts a dropped usage record.
    pub fn usage_dropped(&self) {
        self.usage_dropped.inc();
    }

    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let tokens = Family::<TokenLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            token_buckets as fn() -> Histogram,
        );
        let duration = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_buckets as fn() -> Histogram,
        );
        let ttft = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_buckets as fn() -> Histogram,
        );
        let tpot = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            per_token_buckets as fn() -> Histogram,
        );
        let overhead = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            overhead_buckets as fn() -> Histogram,
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        let config = Family::<ConfigLabels, Gauge>::default();
        registry.register("gen_ai_client_token_usage", "Tokens used per request, by gen_ai_token_type (input, output, cached_input, reasoning)", tokens.clone());
        registry.register(
            "gen_ai_server_request_duration",
            "Seconds from request to the last byte of the answer",
            duration.clone(),
        );
        registry.register(
            "gen_ai_server_time_to_first_token",
            "Seconds from request to the first streamed chunk",
            ttft.clone(),
        );
        registry.register(
            "gen_ai_server_time_per_output_token",
            "Seconds per output token after the first, for streams",
            tpot.clone(),
        );
        registry.register(
            "tollgate_gateway_overhead_seconds",
            "Seconds spent inside the gateway itself (everything but waiting on the upstream)",
            overhead.clone(),
        );
        registry.register(
            "tollgate_config_reloads",
            "Config reloads by result (loaded, rejected)",
            reloads.clone(),
        );
        registry.register(
            "tollgate_config_info",
            "1 for the hash of the config being served",
            config.clone(),
        );
        let cost = Family::<CostLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        let budget_decisions = Family::<BudgetLabels, Counter>::default();
        let usage_dropped = Counter::default();
        registry.register(
            "tollgate_cost_usd",
            "Spend in USD by route, provider, model and client-key team (exact values are in the usage records)",
            cost.clone(),
        );
        registry.register(
            "tollgate_budget_decisions",
            "Requests a budget refused, downgraded, or saw over its limit without enforcing",
            budget_decisions.clone(),
        );
        registry.register(
            "tollgate_usage_records_dropped",
            "Usage records dropped because the writer fell behind or failed",
            usage_dropped.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        let fallbacks = Family::<RouteLabels, Counter>::default();
        let retries = Family::<ReasonLabels, Counter>::default();
        let ejections = Family::<BackendLabels, Counter>::default();
        let panics = Family::<RouteLabels, Counter>::default();
        registry.register(
            "tollgate_attempts",
            "Upstream attempts by route, backend and outcome (success or failure class)",
            attempts.clone(),
        );
        registry.register(
            "tollgate_fallbacks",
            "Requests answered by a route's fallbacks",
            fallbacks.clone(),
        );
        registry.register(
            "tollgate_retries",
            "Retries on the same backend, by the failure that caused them",
            retries.clone(),
        );
        registry.register(
            "tollgate_ejections",
            "Backends ejected by passive health checks, by failure class",
            ejections.clone(),
        );
        registry.register(
            "tollgate_panic_mode",
            "Requests sent to an ejected backend because every backend of the route was ejected",
            panics.clone(),
        );
        let limits = crate::limits::LimitMetrics::register(&mut registry);
        let cache = crate::cache::CacheMetrics::register(&mut registry);
        let guardrail_findings = Family::<GuardrailLabels, Counter>::default();
        registry.register(
            "tollgate_guardrail_findings",
            "Requests on which a guardrail rule fired, by route, rule, action (block, redact, flag) and stage (prompt, response)",
            guardrail_findings.clone(),
        );
        Self {
            limits,
            cache,
            guardrail_findings,
            cost,
            budget_decisions,
            usage_dropped,
            registry,
            tokens,
            duration,
            ttft,
            tpot,
            overhead,
            reloads,
            config,
            current_hash: ArcSwapOption::empty(),
            attempts,
            fallbacks,
            retries,
            ejections,
            panics,
        }
    }

    /// Records a finished request.
    pub fn request(&self, labels: &RequestLabels, seconds: f64, tokens: Option<TokenCounts>) {
        self.duration.get_or_create(labels).observe(seconds);
        let Some(t) = tokens else { return };
        for (kind, count) in [
            ("input", t.input),
            ("output", t.output),
            ("cached_input", t.cached_input),
            ("reasoning", t.reasoning),
        ] {
            if count == 0 && matches!(kind, "cached_input" | "reasoning") {
                continue;
            }
            let l = TokenLabels {
                gen_ai_operation_name: labels.gen_ai_operation_name,
                gen_ai_provider_name: labels.gen_ai_provider_name,
                gen_ai_request_model: labels.gen_ai_request_model.clone(),
                gen_ai_response_model: labels.gen_ai_response_model.clone(),
                gen_ai_token_type: kind,
                route: labels.route.clone(),
            };
            self.tokens.get_or_create(&l).observe(count as f64);
        }
    }

    /// Records a stream's time to first token and time per output token.
    pub fn stream_timing(
        &self,
        labels: &RequestLabels,
        first_token: f64,
        after_first: f64,
        output_tokens: u64,
    ) {
        self.ttft.get_or_create(labels).observe(first_token);
        if output_tokens > 1 {
            self.tpot
                .get_or_create(labels)
                .observe(after_first / (output_tokens - 1) as f64);
        }
    }

    /// Records the gateway's own time for one request.
    pub fn overhead(&self, operation: &'static str, route: &str, seconds: f64) {
        self.overhead
            .get_or_create(&RouteLabels {
                gen_ai_operation_name: operation,
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Records a reload; a loaded config becomes the `tollgate_config_info` hash.
    pub fn config_reload(&self, result: &'static str, hash: Option<&str>) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
        if let Some(hash) = hash {
            let previous = self.current_hash.swap(Some(Arc::new(hash.to_owned())));
            if let Some(old) = previous {
                self.config.remove(&ConfigLabels {
                    hash: old.as_ref().clone(),
                });
            }
            self.config
                .get_or_create(&ConfigLabels {
                    hash: hash.to_owned(),
                })
                .set(1);
        }
    }

    /// Records one upstream attempt.
    pub fn attempt(
        &self,
        route: &str,
        provider: &str,
        model: &str,
        outcome: &'static str,
        fallback: bool,
    ) {
        let labels = AttemptLabels {
            route: route.to_owned(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            outcome,
            fallback: if fallback { "true" } else { "false" },
        };
        self.attempts.get_or_create(&labels).inc();
        if fallback && outcome == "success" {
            self.fallbacks
                .get_or_create(&RouteLabels {
                    gen_ai_operation_name: "any",
                    route: route.to_owned(),
                })
                .inc();
        }
    }

    /// Records a retry on the same backend.
    pub fn retry(&self, route: &str, reason: &'static str) {
        self.retries
            .get_or_create(&ReasonLabels {
                route: route.to_owned(),
                reason,
            })
            .inc();
    }

    /// Records an ejection.
    pub fn ejection(&self, provider: &str, model: &str, reason: &'static str) {
        self.ejections
            .get_or_create(&BackendLabels {
                provider: provider.to_owned(),
                model: model.to_owned(),
                reason,
            })
            .inc();
    }

    /// Records a panic-mode attempt.
    pub fn panic_mode(&self, route: &str) {
        self.panics
            .get_or_create(&RouteLabels {
                gen_ai_operation_name: "any",
                route: route.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
