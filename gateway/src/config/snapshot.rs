//! One loaded configuration with everything resolved for the hot path: provider adapters and
//! their secrets, route lookup by model name and alias, compiled rule patterns, and HTTP
//! clients per connect timeout. Built once per reload; requests only read it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use regex::Regex;
use tollgate_crds::config::{
    Credential, GatewayConfig, ProviderConfig, RouteConfig, RuleConfig, WeightedBackend,
};

use crate::{
    providers::{Adapter, Secret, SecretString},
    resilience::{quota::KeyQuota, retry::RetryBudget},
    routing::balance::BackendSet,
};

/// Why a config cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A key the config names is not in the Secret.
    #[error("provider {provider}: secret key {key} is missing from the mounted Secret")]
    MissingSecret {
        /// Provider id.
        provider: String,
        /// Gateway-Secret key.
        key: String,
    },
    /// A secret is not text.
    #[error("secret key {0} is not valid UTF-8")]
    NotUtf8(String),
    /// A rule pattern does not compile (the compile function prevents this; a hand-edited config may not).
    #[error("route {route} rule {rule}: {error}")]
    Pattern {
        /// Route id.
        route: String,
        /// Rule name.
        rule: String,
        /// The regex error.
        error: regex::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A provider ready to use.
#[derive(Debug)]
pub struct ProviderRuntime {
    /// Its config.
    pub config: ProviderConfig,
    /// Its adapter.
    pub adapter: Adapter,
    secrets: Vec<Secret>,
    quotas: Vec<KeyQuota>,
    next: AtomicUsize,
}

impl ProviderRuntime {
    /// How many keys the provider has.
    pub fn key_count(&self) -> usize {
        self.secrets.len()
    }

    /// Where the next request starts looking for a key (round robin).
    pub fn next_key(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Key `i`, if the provider has keys.
    pub fn secret(&self, i: usize) -> Option<&Secret> {
        self.secrets.get(i)
    }

    /// The model's context window, when its `LLMProvider` states one.
    pub fn context_window(&self, model: &str) -> Option<u32> {
        self.config
            .models
            .iter()
            .find(|m| m.name == model)
            .and_then(|m| m.context_window)
    }

    /// Key `i`'s quota, when the provider sets `limits`.
    pub fn quota(&self, i: usize) -> Option<&KeyQuota> {
        self.quotas.get(i)
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
    /// Its backends, grouped and scheduled.
    pub set: BackendSet,
}

/// A route ready to use.
#[derive(Debug)]
pub struct RouteRuntime {
    /// The route.
    pub config: RouteConfig,
    /// Its rules, compiled.
    pub rules: Vec<RuleRuntime>,
    /// Its default backends, grouped and scheduled.
    pub set: BackendSet,
    /// Caps retries at `retry.budgetPercent` of its requests.
    pub budget: RetryBudget,
}

/// One immutable configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// The config as loaded.
    pub config: GatewayConfig,
    /// Its hash (the operator compares it with the ConfigMap's).
    pub hash: String,
    /// A fingerprint of the config and the secret files it was built from.
    pub fingerprint: u64,
    providers: HashMap<String, ProviderRuntime>,
    routes: Vec<RouteRuntime>,
    by_model: HashMap<String, usize>,
    clients: HashMap<u64, reqwest::Client>,
}

impl Snapshot {
    /// Resolves `config` against the Secret's files. `previous` lends its HTTP clients, so
    /// a reload keeps warm connection pools.
    pub fn build(
        config: GatewayConfig,
        secret_files: &BTreeMap<String, Vec<u8>>,
        previous: Option<&Snapshot>,
    ) -> Result<Self, SnapshotError> {
        let hash = config.hash().unwrap_or_default();
        let fingerprint = fingerprint(&config, secret_files);
        let mut providers = HashMap::with_capacity(config.providers.len());
        for p in &config.providers {
            let secrets = p
                .credentials
                .iter()
                .map(|c| secret(&p.id, c, secret_files))
                .collect::<Result<Vec<_>, _>>()?;
            let now = tokio::time::Instant::now();
            let quotas = match &p.limits {
                Some(l) => (0..secrets.len().max(1))
                    .map(|_| KeyQuota::new(l.requests_per_minute, l.tokens_per_minute, now))
                    .collect(),
                None => Vec::new(),
            };
            providers.insert(
                p.id.clone(),
                ProviderRuntime {
                    config: p.clone(),
                    adapter: Adapter::for_type(p.provider_type),
                    secrets,
                    quotas,
                    next: AtomicUsize::new(0),
                },
            );
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut by_model = HashMap::new();
        let mut clients = HashMap::new();
        for (i, r) in config.routes.iter().enumerate() {
            for name in std::iter::once(&r.model).chain(&r.aliases) {
                by_model.insert(name.clone(), i);
            }
            for b in r.all_backends() {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    clients.entry(b.timeouts.connect_ms)
                {
                    let client = match previous.and_then(|p| p.clients.get(&b.timeouts.connect_ms))
                    {
                        Some(c) => c.clone(),
                        None => {
                            crate::upstream::client(Duration::from_millis(b.timeouts.connect_ms))
                                .map_err(SnapshotError::Client)?
                        }
                    };
                    slot.insert(client);
                }
            }
            routes.push(RouteRuntime {
                set: backend_set(&r.backends),
                budget: RetryBudget::new(r.retry.budget_percent),
                config: r.clone(),
                rules: r
                    .rules
                    .iter()
                    .map(|rule| compile_rule(&r.id, rule))
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(Self {
            config,
            hash,
            fingerprint,
            providers,
            routes,
            by_model,
            clients,
        })
    }

    /// The route serving `model` (by name or alias).
    pub fn route(&self, model: &str) -> Option<&RouteRuntime> {
        self.by_model.get(model).and_then(|i| self.routes.get(*i))
    }

    /// A provider by id.
    pub fn provider(&self, id: &str) -> Option<&ProviderRuntime> {
        self.providers.get(id)
    }

    /// The HTTP client for a connect timeout (every timeout in the config has one).
    pub fn client(&self, connect_ms: u64) -> Option<&reqwest::Client> {
        self.clients.get(&connect_ms)
    }

    /// The health identity of every backend and key this config can use.
    pub fn backend_ids(&self) -> std::collections::HashSet<String> {
        let mut ids = std::collections::HashSet::new();
        for r in &self.routes {
            for b in r.config.all_backends() {
                let keys = self
                    .providers
                    .get(&b.provider)
                    .map_or(1, |p| p.key_count().max(1));
                ids.extend((0..keys).map(|k| backend_id(b, k)));
            }
        }
        ids
    }

    /// Every model name and alias served, sorted.
    pub fn model_names(&self) -> Vec<(&str, &RouteConfig)> {
        let mut names: Vec<(&str, &RouteConfig)> = self
            .by_model
            .iter()
            .filter_map(|(n, i)| self.routes.get(*i).map(|r| (n.as_str(), &r.config)))
            .collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        names
    }
}

fn backend_set(backends: &[WeightedBackend]) -> BackendSet {
    let pairs: Vec<(u32, u32)> = backends.iter().map(|b| (b.weight, b.priority)).collect();
    BackendSet::new(&pairs)
}

fn compile_rule(route: &str, rule: &RuleConfig) -> Result<RuleRuntime, SnapshotError> {
    let err = |error| SnapshotError::Pattern {
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
        set: backend_set(&rule.backends),
        config: rule.clone(),
        pattern,
        header_patterns,
    })
}

fn secret(
    provider: &str,
    credential: &Credential,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Secret, SnapshotError> {
    let read = |key: &str| -> Result<SecretString, SnapshotError> {
        let bytes = files.get(key).ok_or_else(|| SnapshotError::MissingSecret {
            provider: provider.to_owned(),
            key: key.to_owned(),
        })?;
        let text =
            std::str::from_utf8(bytes).map_err(|_| SnapshotError::NotUtf8(key.to_owned()))?;
        // `kubectl create secret --from-file` keeps a trailing newline; keys never end in one.
        Ok(SecretString::new(text.trim_end_matches(['\n', '\r'])))
    };
    Ok(match credential {
        Credential::ApiKey { secret_key } => Secret::ApiKey(read(secret_key)?),
        Credential::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        } => Secret::Aws {
            access_key_id: read(access_key_id)?,
            secret_access_key: read(secret_access_key)?,
            session_token: session_token.as_deref().map(read).transpose()?,
        },
    })
}

/// The health identity of a backend with one key: provider, key index and model.
pub fn backend_id(backend: &tollgate_crds::config::BackendConfig, key: usize) -> String {
    format!("{}#{key}/{}", backend.provider, backend.model)
}

/// A fingerprint of a config and secret files: equal inputs give equal fingerprints, so a
/// re-check that finds nothing new skips building a snapshot (a rotated key changes it).
pub fn fingerprint(config: &GatewayConfig, secret_files: &BTreeMap<String, Vec<u8>>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    config.hash().unwrap_or_default().hash(&mut h);
    secret_files.hash(&mut h);
    h.finish()
}
