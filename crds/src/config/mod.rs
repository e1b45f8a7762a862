//! The gateway-config contract: everything the gateway needs, compiled from the CRs.
//!
//! A [`GatewayConfig`] has no references left to resolve and no secret values: credentials
//! are named by their key in the gateway's mounted Secret. The operator writes it to a
//! ConfigMap as [`CONFIG_FILE`]; the gateway reads it, checks it with
//! [`GatewayConfig::validate`], and swaps it in.

mod check;
mod guardrails;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::provider::ProviderType;
pub use crate::route::{CacheScope, RateLimitKey, RetryOn};
pub use check::ConfigError;
pub use guardrails::{Detector, DetectorConfig, GuardrailAction, GuardrailScope, GuardrailsConfig};

/// The contract's version. A gateway refuses configs of a version it does not know.
pub const CONFIG_VERSION: u32 = 1;

/// The ConfigMap key (and mounted file name) holding the config.
pub const CONFIG_FILE: &str = "gateway.json";

/// A whole, self-contained gateway configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfig {
    /// Always [`CONFIG_VERSION`] when written by this crate.
    pub version: u32,
    /// Providers, sorted by `id`.
    pub providers: Vec<ProviderConfig>,
    /// Routes, sorted by `model`.
    pub routes: Vec<RouteConfig>,
    /// Budgets, sorted by `id`.
    pub budgets: Vec<BudgetConfig>,
    /// Client keys (hashes only), sorted by `id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_keys: Vec<ClientKeyConfig>,
    /// Namespaces whose routes require a client key: those with at least one client-key
    /// Secret, even when every key in them was refused (fail closed). Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyed_namespaces: Vec<String>,
    /// The objects (and generations) this config was compiled from, sorted.
    pub sources: Vec<Source>,
}

/// One object that went into the config, with its `.metadata.generation`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// `LLMProvider`, `LLMRoute` or `LLMBudget`.
    pub kind: String,
    /// `namespace/name`.
    pub id: String,
    /// The generation compiled (0 when the object has none, e.g. an offline manifest).
    pub generation: i64,
}

/// A provider, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    /// `namespace/name` of the `LLMProvider`.
    pub id: String,
    /// The API it speaks.
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    /// Base URL with the type's default applied; `None` only for `mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Usable credentials, in spec order; balanced by the gateway.
    #[serde(default)]
    pub credentials: Vec<Credential>,
    /// Azure settings, for `azure-openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureConfig>,
    /// Bedrock region, for `bedrock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock_region: Option<String>,
    /// Models served, sorted by name.
    pub models: Vec<ModelConfig>,
    /// Per-credential quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsConfig>,
    /// Extra headers for every upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
}

/// A credential, named by key(s) in the gateway's mounted Secret (never the value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Credential {
    /// An API key (bearer token, `x-api-key`, `api-key` or `x-goog-api-key`, by type).
    #[serde(rename_all = "camelCase")]
    ApiKey {
        /// Key in the gateway Secret.
        secret_key: String,
    },
    /// AWS access keys for SigV4.
    #[serde(rename_all = "camelCase")]
    Aws {
        /// Key in the gateway Secret holding the access key id.
        access_key_id: String,
        /// Key in the gateway Secret holding the secret access key.
        secret_access_key: String,
        /// Key in the gateway Secret holding the session token, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
}

impl Credential {
    /// Every gateway-Secret key this credential needs.
    pub fn secret_keys(&self) -> Vec<&str> {
        match self {
            Credential::ApiKey { secret_key } => vec![secret_key],
            Credential::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let mut keys = vec![access_key_id.as_str(), secret_access_key.as_str()];
                keys.extend(session_token.as_deref());
                keys
            }
        }
    }
}

/// The gateway-Secret key under which the operator stores `key` of Secret `secret` in
/// `namespace`. Namespaces and Secret names cannot contain `_`, so `__` is unambiguous.
pub fn gateway_secret_key(namespace: &str, secret: &str, key: &str) -> String {
    format!("{namespace}__{secret}__{key}")
}

/// Azure OpenAI settings, with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureConfig {
    /// The `api-version` query parameter.
    pub api_version: String,
    /// Deployment per model name; a model missing here uses its own name.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
}

/// A model with its resolved prices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    /// The provider's model id.
    pub name: String,
    /// Prices per million tokens, every field resolved.
    pub pricing: Pricing,
    /// Where the prices came from.
    pub price_source: PriceSource,
    /// Context window in tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
}

/// USD per million tokens, exact decimals (serialized as strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// Uncached input tokens.
    pub input: Decimal,
    /// Output tokens.
    pub output: Decimal,
    /// Input tokens read from a prompt cache.
    pub cached_input: Decimal,
    /// Input tokens written to a prompt cache (Anthropic: the 5-minute tier).
    pub cache_write: Decimal,
    /// Input tokens written to Anthropic's 1-hour prompt cache. Always set by compile;
    /// absent in configs from older operators, where it means twice `input`.
    #[serde(
        default,
        rename = "cacheWrite1h",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write_1h: Option<Decimal>,
    /// Reasoning tokens.
    pub reasoning: Decimal,
}

/// Where a model's prices came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "camelCase")]
pub enum PriceSource {
    /// The `LLMProvider` spec.
    Spec,
    /// The built-in catalogue.
    #[serde(rename_all = "camelCase")]
    Catalogue {
        /// The page the price was read from.
        source: String,
        /// The date it was read.
        read: String,
    },
}

/// Quotas per credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsConfig {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
}

/// A static header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderConfig {
    /// Name, lower-cased.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A route, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    /// `namespace/name` of the `LLMRoute`.
    pub id: String,
    /// The model name apps send.
    pub model: String,
    /// Other names for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Default backends. Empty when none resolved: requests then fail with 503.
    pub backends: Vec<WeightedBackend>,
    /// Tried in order after the chosen backends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<BackendConfig>,
    /// First match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleConfig>,
    /// Retry policy with defaults applied.
    pub retry: RetryConfig,
    /// Response caching, when the route asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
    /// Checks on prompts and answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<GuardrailsConfig>,
    /// Rate limits; a request must fit every one. At most one per `per`, sorted by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitConfig>,
}

/// A route's response cache, with defaults applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheConfig {
    /// How long an answer is served, in milliseconds (> 0).
    pub ttl_ms: u64,
    /// Larger answers are not stored.
    pub max_entry_bytes: u64,
    /// Who shares stored answers.
    pub scope: CacheScope,
    /// Similar-prompt matching, when configured and its embedding route resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticConfig>,
}

/// Similar-prompt matching, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SemanticConfig {
    /// Id (`namespace/name`) of the route that computes embeddings.
    pub embedding_route: String,
    /// Least cosine similarity served, in `(0, 1]`.
    pub threshold: f64,
    /// Most prompts remembered per scope.
    pub max_entries: u32,
}

/// One rate limit of a route: requests and/or tokens per minute, counted per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitConfig {
    /// What the limit is counted per.
    pub per: RateLimitKey,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
}

impl RouteConfig {
    /// Every backend the route can use: default backends, fallbacks, and rule backends.
    pub fn all_backends(&self) -> impl Iterator<Item = &BackendConfig> {
        self.backends
            .iter()
            .map(|w| &w.backend)
            .chain(&self.fallbacks)
            .chain(
                self.rules
                    .iter()
                    .flat_map(|r| r.backends.iter().map(|w| &w.backend)),
            )
    }
}

/// A backend with its weight and priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedBackend {
    /// The backend.
    #[serde(flatten)]
    pub backend: BackendConfig,
    /// Share of traffic within its priority.
    pub weight: u32,
    /// Lower is tried first.
    pub priority: u32,
}

/// One model of one provider, with the timeouts that apply on this route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendConfig {
    /// `ProviderConfig::id`.
    pub provider: String,
    /// A `ModelConfig::name` of that provider.
    pub model: String,
    /// Route timeouts over provider timeouts over defaults.
    pub timeouts: TimeoutsConfig,
}

/// Resolved timeouts in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutsConfig {
    /// Connection establishment.
    pub connect_ms: u64,
    /// Until the first response byte.
    pub first_token_ms: u64,
    /// Longest gap between stream chunks.
    pub idle_ms: u64,
    /// The whole request.
    pub total_ms: u64,
}

impl TimeoutsConfig {
    /// The defaults documented in `docs/api.md`.
    pub const DEFAULT: TimeoutsConfig = TimeoutsConfig {
        connect_ms: 5_000,
        first_token_ms: 60_000,
        idle_ms: 30_000,
        total_ms: 600_000,
    };
}

/// A rule, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleConfig {
    /// The rule's name.
    pub name: String,
    /// The conditions, all of which must hold.
    #[serde(rename = "match")]
    pub matches: MatchConfig,
    /// Backends for matching requests. Empty when none resolved: matching requests fail with 503.
    pub backends: Vec<WeightedBackend>,
}

/// Request conditions, normalised for the hot path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchConfig {
    /// Header conditions; names lower-cased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatchConfig>,
    /// Minimum estimated prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u32>,
    /// Maximum estimated prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u32>,
    /// Whether tools must (true) or must not (false) be offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_tools: Option<bool>,
    /// Whether an image must (true) or must not (false) be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_images: Option<bool>,
    /// Lower-cased keywords; any one in the last user message matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// A regular expression the last user message must match (already checked to compile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// One header condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatchConfig {
    /// Lower-cased header name.
    pub name: String,
    /// Exact value, or a regular expression when `regex`.
    pub value: String,
    /// Whether `value` is a regular expression (already checked to compile).
    #[serde(default)]
    pub regex: bool,
}

/// Retry policy with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Attempts per backend, the first included.
    pub attempts: u32,
    /// First backoff delay.
    pub backoff_initial_ms: u64,
    /// Longest backoff delay.
    pub backoff_max_ms: u64,
    /// Retried failure classes.
    pub on: Vec<RetryOn>,
    /// Extra requests retries may add, in percent.
    pub budget_percent: u32,
}

/// A client key, resolved from a labelled Secret: only SHA-256 hashes of the key values
/// ever leave the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientKeyConfig {
    /// `namespace/name` of the Secret: the key id in logs, metrics and usage records.
    pub id: String,
    /// The namespace whose routes the key may call.
    pub namespace: String,
    /// Lower-case hex SHA-256 of each accepted key value (`key`, and `previous-key` during a
    /// rotation).
    pub sha256: Vec<String>,
    /// The team requests with this key are attributed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Route ids the key may call; empty means every route of its namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// When the key stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A budget, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetConfig {
    /// `namespace/name` of the `LLMBudget`.
    pub id: String,
    /// Route ids counted; the namespace's routes when the scope names none.
    pub routes: Vec<String>,
    /// Teams counted (the team of the request's client key); empty means every team.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Client key ids (`namespace/secret`) counted; empty means every key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// The limit in USD.
    pub limit: Decimal,
    /// The period.
    pub period: PeriodConfig,
    /// What happens at the limit.
    pub action: ActionConfig,
    /// Alert thresholds in percent, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_thresholds: Vec<u32>,
    /// Report only.
    pub shadow_mode: bool,
}

/// A budget period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PeriodConfig {
    /// Calendar day in `time_zone`.
    #[serde(rename_all = "camelCase")]
    Daily {
        /// IANA zone name.
        time_zone: String,
    },
    /// Calendar week (from Monday) in `time_zone`.
    #[serde(rename_all = "camelCase")]
    Weekly {
        /// IANA zone name.
        time_zone: String,
    },
    /// Calendar month in `time_zone`.
    #[serde(rename_all = "camelCase")]
    Monthly {
        /// IANA zone name.
        time_zone: String,
    },
    /// Trailing window.
    #[serde(rename_all = "camelCase")]
    Rolling {
        /// Window length.
        window_ms: u64,
    },
}

/// What a budget does at its limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ActionConfig {
    /// Refuse with 429.
    Reject,
    /// Serve from another route.
    Downgrade {
        /// The route id to use instead.
        route: String,
    },
    /// Only alert.
    Alert,
}

impl GatewayConfig {
    /// An empty config of the current version.
    pub fn empty() -> Self {
        Self {
            version: CONFIG_VERSION,
            providers: Vec::new(),
            routes: Vec::new(),
            budgets: Vec::new(),
            client_keys: Vec::new(),
            keyed_namespaces: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// The deterministic text written to the ConfigMap: same config, same bytes. Compact,
    /// because a ConfigMap holds at most 1 MiB (pipe it through `jq` to read it).
    pub fn to_json(&self) -> Result<String, ConfigError> {
        let mut text = serde_json::to_string(self).map_err(ConfigError::Serialize)?;
        text.push('\n');
        Ok(text)
    }

    /// Parses and fully checks a config, as the gateway does before swapping it in.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_str(text).map_err(ConfigError::Parse)?;
        if versioned.version != CONFIG_VERSION {
            return Err(ConfigError::Version {
                found: versioned.version,
                supported: CONFIG_VERSION,
            });
        }
        let config: GatewayConfig = serde_json::from_str(text).map_err(ConfigError::Parse)?;
        config.validate()?;
        Ok(config)
    }

    /// The SHA-256 of [`Self::to_json`], hex: how the operator tells which config a pod serves.
    pub fn hash(&self) -> Result<String, ConfigError> {
        Ok(hash_text(&self.to_json()?))
    }
}

/// The hex SHA-256 of a config file's text.
pub fn hash_text(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The inverse of [`gateway_secret_key`]: `(namespace, secret, key)`.
pub fn parse_gateway_secret_key(gateway_key: &str) -> Option<(&str, &str, &str)> {
    let (namespace, rest) = gateway_key.split_once("__")?;
    let (secret, key) = rest.split_once("__")?;
    (!namespace.is_empty() && !secret.is_empty() && !key.is_empty())
        .then_some((namespace, secret, key))
}
