//! One loaded configuration with everything resolved for the hot path: providers with their
//! keys and quotas, backends with their health and HTTP client, routes by model name and
//! alias with compiled rules. Built once per reload, off the hot path; requests only read it.
//!
//! State that must outlive a reload is taken over from the previous snapshot by identity:
//! HTTP clients (warm pools) by connect timeout, health by (provider, key, model), quotas
//! by (provider, key) while the provider's limits are unchanged. What the new config no
//! longer names is dropped with the old snapshot, so nothing needs pruning.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use tollgate_crds::config::{BackendConfig, Credential, GatewayConfig, ProviderType, RouteConfig};

use crate::{
    backend::{Backend, Key, Provider, Transport, health_id},
    providers::{Adapter, Secret, SecretString, mock},
    resilience::{
        health::{BackendHealth, HealthView},
        quota::KeyQuota,
    },
    routing::{PatternError, RouteRuntime},
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
    /// A rule pattern does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
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
    providers: HashMap<String, Arc<Provider>>,
    routes: Vec<RouteRuntime>,
    by_model: HashMap<String, usize>,
    clients: HashMap<u64, reqwest::Client>,
    health: BTreeMap<String, Arc<BackendHealth>>,
    /// Client keys of this config: a rotated Secret takes effect with the next snapshot.
    pub keys: crate::identity::KeyTable,
}

impl Snapshot {
    /// Resolves `config` against the Secret's files. `previous` hands over its HTTP clients,
    /// health and quotas (see the module docs).
    pub fn build(
        config: GatewayConfig,
        secret_files: &BTreeMap<String, Vec<u8>>,
        previous: Option<&Snapshot>,
    ) -> Result<Self, SnapshotError> {
        let hash = config.hash().unwrap_or_default();
        let fingerprint = fingerprint(&config, secret_files);
        let now = tokio::time::Instant::now();
        let mut providers = HashMap::with_capacity(config.providers.len());
        for p in &config.providers {
            let secrets = p
                .credentials
                .iter()
                .map(|c| secret(&p.id, c, secret_files))
                .collect::<Result<Vec<_>, _>>()?;
            let before = previous
                .and_then(|s| s.providers.get(&p.id))
                .filter(|old| old.config.limits == p.limits);
            let key_count = secrets.len().max(1);
            let mut secrets = secrets.into_iter();
            let keys = (0..key_count)
                .map(|i| Key {
                    secret: secrets.next(),
                    quota: p.limits.as_ref().map(|l| {
                        before
                            .and_then(|old| old.keys.get(i))
                            .and_then(|k| k.quota.clone())
                            .unwrap_or_else(|| {
                                Arc::new(
                                    KeyQuota::new(l.requests_per_minute, l.tokens_per_minute, now)
                                        .shared_as(format!("pq:{}#{i}", p.id)),
                                )
                            })
                    }),
                })
                .collect();
            providers.insert(
                p.id.clone(),
                Arc::new(Provider::new(
                    p.clone(),
                    Adapter::for_type(p.provider_type),
                    keys,
                )),
            );
        }
        let mut clients = HashMap::new();
        let mut health = BTreeMap::new();
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut by_model = HashMap::new();
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
            let mut resolve =
                |b: &BackendConfig| resolve_backend(b, &providers, &clients, &mut health, previous);
            routes.push(RouteRuntime::compile(r, &mut resolve)?);
        }
        let tpm = |r: &RouteRuntime| {
            r.config
                .rate_limits
                .iter()
                .any(|l| l.tokens_per_minute.is_some())
        };
        if routes
            .iter()
            .any(|r| r.rules_count_tokens || r.token_quota || tpm(r))
        {
            // Exact counts need the tokenizer's tables: load them here, off the hot path.
            crate::routing::tokens::load_tokenizer();
        }
        let keys = crate::identity::KeyTable::new(&config);
        Ok(Self {
            keys,
            config,
            hash,
            fingerprint,
            providers,
            routes,
            by_model,
            clients,
            health,
        })
    }

    /// The route with id `id` (`namespace/name`), e.g. a budget's `downgradeTo`.
    pub fn route_by_id(&self, id: &str) -> Option<&RouteRuntime> {
        self.routes.iter().find(|r| r.config.id == id)
    }

    /// The route serving `model` (by name or alias).
    pub fn route(&self, model: &str) -> Option<&RouteRuntime> {
        self.by_model.get(model).and_then(|i| self.routes.get(*i))
    }

    /// Every backend's (provider, key, model) health, sorted by id, for `/debug/backends`.
    pub fn health_views(&self, now: tokio::time::Instant) -> Vec<HealthView> {
        self.health.values().map(|h| h.view(now)).collect()
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

/// The handle of one backend: its provider, and one health per key, shared by every place
/// the config names the same (provider, key, model) and taken over from `previous`.
fn resolve_backend(
    b: &BackendConfig,
    providers: &HashMap<String, Arc<Provider>>,
    clients: &HashMap<u64, reqwest::Client>,
    health: &mut BTreeMap<String, Arc<BackendHealth>>,
    previous: Option<&Snapshot>,
) -> Option<Arc<Backend>> {
    let provider = Arc::clone(providers.get(&b.provider)?);
    let transport = if provider.config.provider_type == ProviderType::Mock {
        Transport::InProcess(mock::respond)
    } else {
        Transport::Http(clients.get(&b.timeouts.connect_ms)?.clone())
    };
    let healths = (0..provider.keys.len())
        .map(|k| {
            let id = health_id(b, k);
            let h = health.entry(id).or_insert_with_key(|id| {
                previous
                    .and_then(|p| p.health.get(id))
                    .map_or_else(|| Arc::new(BackendHealth::new(id.clone())), Arc::clone)
            });
            Arc::clone(h)
        })
        .collect();
    let model = provider.config.models.iter().find(|m| m.name == b.model);
    Some(Arc::new(Backend {
        context_window: model.and_then(|m| m.context_window),
        pricing: model.map(|m| m.pricing.clone()),
        config: b.clone(),
        provider,
        health: healths,
        transport,
    }))
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

/// A fingerprint of a config and secret files: equal inputs give equal fingerprints, so a
/// re-check that finds nothing new skips building a snapshot (a rotated key changes it).
pub fn fingerprint(config: &GatewayConfig, secret_files: &BTreeMap<String, Vec<u8>>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    config.hash().unwrap_or_default().hash(&mut h);
    secret_files.hash(&mut h);
    h.finish()
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
