//! `LLMRoute`: a model name apps ask for, and everything behind it.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::guardrails::Guardrails;
use crate::{
    common::{Duration, LocalRef, Timeouts},
    conditions::{Condition, conditions_schema},
};

/// The model-name syntax apps may send (and aliases use).
pub const MODEL_NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$";

/// The same `(providerRef, model)` pair, written once for CEL rules over `backends`.
macro_rules! same_backend {
    ($a:literal, $b:literal) => {
        concat!(
            $a,
            ".providerRef.name == ",
            $b,
            ".providerRef.name && ",
            $a,
            ".model == ",
            $b,
            ".model"
        )
    };
}

/// A model name applications request, and the backends, fallbacks and policies behind it.
// The derive repeats `type_ = "string"` across printer columns, which clippy mistakes
// for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "llm.tollgate.dev",
    version = "v1alpha1",
    kind = "LLMRoute",
    plural = "llmroutes",
    singular = "llmroute",
    namespaced,
    status = "LLMRouteStatus",
    derive = "PartialEq",
    shortname = "llmr",
    category = "tollgate",
    doc = "A model name that applications send, and the backends, fallbacks, rules and policies that serve it.",
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(
        name = "Backends",
        type_ = "integer",
        json_path = ".status.backendCount"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.aliases) || !(self.model in self.aliases)")
        .message("aliases must not repeat model")
        .field_path(".aliases")
        .reason(kube::core::Reason::FieldValueDuplicate),
    validation = Rule::new(concat!("!has(self.fallbacks) || self.fallbacks.all(f, !self.backends.exists(b, ", same_backend!("b", "f"), "))"))
        .message("fallbacks may not repeat a primary backend (same providerRef and model)")
        .field_path(".fallbacks")
        .reason(kube::core::Reason::FieldValueDuplicate),
    validation = Rule::new(concat!("self.backends.all(b, self.backends.exists_one(c, ", same_backend!("b", "c"), "))"))
        .message("backends must be unique (providerRef and model)")
        .field_path(".backends")
        .reason(kube::core::Reason::FieldValueDuplicate),
    validation = Rule::new(concat!("!has(self.fallbacks) || self.fallbacks.all(f, self.fallbacks.exists_one(g, ", same_backend!("f", "g"), "))"))
        .message("fallbacks must be unique (providerRef and model)")
        .field_path(".fallbacks")
        .reason(kube::core::Reason::FieldValueDuplicate),
    validation = Rule::new("!has(self.rateLimit) || !has(self.rateLimits)")
        .message("set either rateLimit (one limit) or rateLimits (several), not both")
)]
pub struct LLMRouteSpec {
    /// The model name applications send in `model`. Unique across all routes and aliases
    /// in the cluster: when two routes claim one name, the older route keeps it.
    #[schemars(length(min = 1, max = 128), regex(pattern = MODEL_NAME_PATTERN))]
    pub model: String,

    /// Other names that select this route (e.g. a short name or a legacy model id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 128), regex(pattern = MODEL_NAME_PATTERN)))]
    pub aliases: Vec<String>,

    /// The default backends. The lowest `priority` value is tried first; backends of equal
    /// priority share traffic by `weight`.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new("self.exists(b, !has(b.weight) || b.weight > 0)")
        .message("at least one backend needs a non-zero weight"))]
    pub backends: Vec<Backend>,

    /// Backends tried in order, after every default backend has failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub fallbacks: Vec<BackendRef>,

    /// Rules tried in order; the first that matches picks its own backends instead of
    /// `backends`. `fallbacks` still apply after them.
    /// A list-map keyed by `name`: names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub rules: Vec<RouteRule>,

    /// Retrying a failed attempt on the same backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,

    /// Timeouts for this route; each one set here overrides the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,

    /// Response caching: exact, and optionally semantic (see `docs/cache.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,

    /// One rate limit: the single-limit form of `rateLimits`, kept for manifests written
    /// before several limits per route were possible. Not together with `rateLimits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitPolicy>,

    /// Rate limits, each counted per route, per client-key team or per client key (e.g. a
    /// route-wide limit and a per-key one). A request must fit every limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    #[x_kube(validation = Rule::new("self.all(l, self.exists_one(m, (has(m.per) ? m.per : 'route') == (has(l.per) ? l.per : 'route')))")
        .message("rateLimits[].per must be unique: one limit per route, team and key"))]
    pub rate_limits: Vec<RateLimitPolicy>,

    /// Checks on prompts (and, with `appliesTo`, answers): size, blocked patterns, personal
    /// data and secrets, prompt injection. See `docs/guardrails.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<Guardrails>,
}

/// A reference to one model of one provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    /// The `LLMProvider`, in this route's namespace.
    pub provider_ref: LocalRef,
    /// One of that provider's `models[].name`.
    #[schemars(length(min = 1, max = 128))]
    pub model: String,
}

/// A backend with its share of traffic and its place in the order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The `LLMProvider`, in this route's namespace.
    pub provider_ref: LocalRef,
    /// One of that provider's `models[].name`.
    #[schemars(length(min = 1, max = 128))]
    pub model: String,
    /// Relative share of traffic among backends of the same priority. `0` keeps the
    /// backend as a standby of its priority. Default `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub weight: Option<u32>,
    /// Lower values are tried first. Default `0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub priority: Option<u32>,
}

/// A conditional set of backends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// Name of the rule, shown in metrics and the `x-tollgate-rule` response header.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// What the request must look like; every condition given must hold.
    #[serde(rename = "match")]
    pub matches: RuleMatch,
    /// The backends for matching requests.
    #[schemars(length(min = 1, max = 16))]
    pub backends: Vec<Backend>,
}

/// Conditions on a request. Every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.headers) || has(self.promptTokens) || has(self.hasTools) || has(self.hasImages) || has(self.keywords) || has(self.pattern)"
).message("a rule must match on something: headers, promptTokens, hasTools, hasImages, keywords or pattern"))]
pub struct RuleMatch {
    /// Request headers that must all match (e.g. `x-tollgate-team`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub headers: Vec<HeaderMatch>,
    /// Size of the prompt in estimated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<TokenRange>,
    /// `true`: the request offers tools; `false`: it offers none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_tools: Option<bool>,
    /// `true`: the request contains an image; `false`: it contains none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_images: Option<bool>,
    /// The last user message contains at least one of these (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    pub keywords: Vec<String>,
    /// The last user message matches this regular expression (RE2-like syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub pattern: Option<String>,
}

/// A request header condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    pub name: String,
    /// The value to compare with.
    #[schemars(length(min = 1, max = 1024))]
    pub value: String,
    /// `exact` (default) or `regex`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<HeaderMatchType>,
}

/// How a header value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeaderMatchType {
    /// The whole value equals `value`.
    Exact,
    /// The value matches the regular expression `value`.
    Regex,
}

/// An inclusive range of estimated prompt tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.min) || has(self.max)").message("promptTokens needs min or max"),
    validation = Rule::new("!has(self.min) || !has(self.max) || self.min <= self.max")
        .message("promptTokens.min must not exceed promptTokens.max")
)]
pub struct TokenRange {
    /// At least this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min: Option<u32>,
    /// At most this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max: Option<u32>,
}

/// When and how an attempt is retried on the same backend before falling back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.backoff) || !has(self.backoff.initial) || !has(self.backoff.max) || duration(self.backoff.initial) <= duration(self.backoff.max)"
).message("retry.backoff.initial must not exceed retry.backoff.max"))]
pub struct RetryPolicy {
    /// Attempts per backend, the first included (`1` = no retry). Default `2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub attempts: Option<u32>,
    /// Exponential backoff with full jitter between attempts; a provider's `Retry-After`
    /// takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// The failures that are retried. Default: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, y == x))").message("retry.on must not repeat a value"))]
    pub on: Vec<RetryOn>,
    /// Retries may add at most this percentage of extra requests, so an outage cannot
    /// multiply load. Default `20`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub budget_percent: Option<u32>,
}

/// Exponential backoff bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First delay. Default `250ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Duration>,
    /// Longest delay. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Duration>,
}

/// A class of failure that may be retried.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// The connection could not be established.
    ConnectError,
    /// A connect, first-token or idle timeout.
    Timeout,
    /// HTTP 429 from the provider.
    RateLimited,
    /// HTTP 5xx (including "overloaded") from the provider.
    ServerError,
}

impl RetryOn {
    /// Every retryable class, the default of `retry.on`.
    pub const ALL: [RetryOn; 4] = [
        RetryOn::ConnectError,
        RetryOn::Timeout,
        RetryOn::RateLimited,
        RetryOn::ServerError,
    ];
}

/// Response caching: identical (and, with `semantic`, similar) requests are answered from
/// stored answers without calling a provider. Answers are kept per route and per team, so
/// one tenant never sees another's answers (see `docs/cache.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.ttl) > duration('0s')")
    .message("cache.ttl must be longer than 0s"))]
pub struct CachePolicy {
    /// How long a stored answer is served (e.g. `10m`, `24h`).
    pub ttl: Duration,
    /// Answers larger than this (body, or all frames of a stream) are not stored, so one
    /// huge answer cannot push out many small ones. Default `1048576` (1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 67_108_864))]
    pub max_entry_bytes: Option<u32>,
    /// Who shares stored answers: `team` (default; callers whose client keys carry the same
    /// team) or `key` (each client key its own). Callers without a key share the route's
    /// anonymous scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<CacheScope>,
    /// Also serve an answer stored for a similar prompt (same conversation before it, same
    /// parameters; the last user message close in embedding space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticCache>,
}

/// Who shares a route's stored answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Callers of one team (from their client key).
    #[default]
    Team,
    /// Callers presenting the same client key.
    Key,
}

/// Similar-prompt matching through embeddings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SemanticCache {
    /// The `LLMRoute` (same namespace) that computes embeddings of the prompt. Its keys,
    /// budgets and health apply to these calls like to any `/v1/embeddings` request.
    pub embedding_route: LocalRef,
    /// Least cosine similarity for a stored answer to be served, in `(0, 1]`. Default
    /// `0.95`; lower serves more answers to questions that only look alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.5, max = 1.0))]
    pub threshold: Option<f64>,
    /// Most prompts remembered per scope (route, team, conversation before the prompt,
    /// parameters); the oldest is forgotten first. Bounds memory and search time (brute
    /// force). Default `1000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_entries: Option<u32>,
}

/// Requests and tokens per minute, counted per route, team or client key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.requestsPerMinute) || has(self.tokensPerMinute)")
    .message("rateLimit needs requestsPerMinute or tokensPerMinute"))]
pub struct RateLimitPolicy {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) per minute: the estimate is reserved when a request is
    /// admitted and corrected to the real usage when the answer ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u32>,
    /// What the limit is counted per. Default `route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<RateLimitKey>,
}

/// What a rate limit is counted per. Teams and keys come from the client key (its
/// Secret's `tollgate.dev/team` annotation), never from a header the client chooses.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitKey {
    /// One counter for the whole route.
    #[default]
    Route,
    /// One counter per client-key team; requests without a team share one counter.
    Team,
    /// One counter per client key; requests without a known key share one counter.
    Key,
}

/// Observed state of an `LLMRoute`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMRouteStatus {
    /// The `.metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed`, `Ready`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// How many `spec.backends` the observed generation lists (the BACKENDS column: a
    /// JSONPath column would show only the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_count: Option<i64>,
}
