//! The HTTP servers: the OpenAI-compatible API and the admin listener, with graceful
//! shutdown (stop accepting, let in-flight requests and streams finish, bounded by a drain
//! timeout).

mod admin;
mod body;
mod budgets;
mod conn;
mod handle;
mod models;
mod responses;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    routing::{get, post},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use conn::{BodyTimeout, ConnectionLimits};

use crate::{
    config::{ConfigSource, ConfigState},
    metrics::Metrics,
    pipeline::{chat::Chat, embeddings::Embeddings, messages::Messages, responses::Responses},
    resilience::health::HealthSettings,
};

/// What the servers share: what the request pipeline reads.
pub type AppState = crate::pipeline::Shared;

/// How to run the gateway.
#[derive(Clone, Debug)]
pub struct Options {
    /// API address.
    pub listen: SocketAddr,
    /// Admin address.
    pub admin_listen: SocketAddr,
    /// Config source.
    pub source: ConfigSource,
    /// Longest wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
    /// Largest accepted request body.
    pub max_body: usize,
    /// Re-check the config source this often even without file events.
    pub recheck: Duration,
    /// Ejection thresholds and cooldowns.
    pub health: HealthSettings,
    /// Header, body and idle timeouts and the connection cap (per listener).
    pub limits: ConnectionLimits,
    /// Shared state, budget clock and usage records.
    pub pays: PaysOptions,
    /// The response cache's store and bounds.
    pub cache: crate::cache::CacheOptions,
}

/// Who-pays settings: where budget counters live, the clock, where usage records go.
#[derive(Clone, Debug)]
pub struct PaysOptions {
    /// In-process (default) or Redis.
    pub state: crate::state::StateSettings,
    /// Budget time (tests drive it).
    pub clock: crate::budget::WallClock,
    /// Usage records: off, stdout or a file.
    pub usage: crate::usage::UsageSink,
    /// What a request gets when the shared state cannot answer: served unchecked (open,
    /// the default) or 503 (closed). Rate limits, budgets and shared key quotas alike.
    pub on_state_failure: crate::state::FailMode,
}

impl Default for PaysOptions {
    fn default() -> Self {
        Self {
            state: crate::state::StateSettings::Memory,
            clock: crate::budget::WallClock::System,
            usage: crate::usage::UsageSink::Off,
            on_state_failure: crate::state::FailMode::Open,
        }
    }
}

/// The API routes.
pub fn api_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handle::handle::<Chat>))
        .route("/v1/embeddings", post(handle::handle::<Embeddings>))
        .route("/v1/messages", post(handle::handle::<Messages>))
        .route("/v1/messages/count_tokens", post(handle::count_tokens))
        .route("/v1/responses", post(handle::handle::<Responses>))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/models", get(models::handle))
        .fallback(models::not_found)
        .method_not_allowed_fallback(models::method_not_allowed)
        .with_state(state)
}

/// The admin routes.
pub fn admin_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(admin::metrics))
        .route("/config/status", get(admin::config_status))
        .route("/debug/backends", get(admin::backends))
        .route("/budgets", get(budgets::standings))
        .route("/budgets/seed", post(budgets::seed))
        .with_state(state)
}

/// A running gateway.
#[derive(Debug)]
pub struct Running {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the admin endpoints listen.
    pub admin_addr: SocketAddr,
    /// The shared state (tests read it).
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    servers: JoinHandle<()>,
    watcher: JoinHandle<()>,
    drain_timeout: Duration,
}

impl Running {
    /// Stops accepting, waits for in-flight requests up to the drain timeout.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.watcher.abort();
        let mut servers = self.servers;
        if tokio::time::timeout(self.drain_timeout, &mut servers)
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.drain_timeout, "drain timeout reached; closing remaining connections");
            // Dropping the servers' task sets drops every connection task with them.
            servers.abort();
        }
    }
}

/// Binds both listeners, starts watching the config, and serves.
pub async fn start(options: Options) -> std::io::Result<Running> {
    crate::install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let config = Arc::new(ConfigState::new());
    let store = crate::state::StateStore::new(&options.pays.state)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let budgets = crate::budget::Budgets::new(store, options.pays.clock.clone());
    let limits = Arc::new(crate::limits::Limiter::new(
        Arc::clone(&budgets.store),
        options.pays.clock.clone(),
        options.pays.on_state_failure,
        Arc::clone(&metrics),
    ));
    let pays = Arc::new(crate::pipeline::pays::Pays {
        budgets,
        usage: crate::usage::UsageLog::start(&options.pays.usage, Arc::clone(&metrics))?,
        limits,
    });
    let cache = crate::cache::Cache::new(
        &options.cache,
        &options.pays.state,
        options.pays.clock.clone(),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let state = Arc::new(AppState {
        config: Arc::clone(&config),
        metrics: Arc::clone(&metrics),
        max_body: options.max_body,
        health_settings: options.health.clone(),
        pays,
        cache: Arc::new(cache),
    });
    let api = TcpListener::bind(options.listen).await?;
    let admin = TcpListener::bind(options.admin_listen).await?;
    let (api_addr, admin_addr) = (api.local_addr()?, admin.local_addr()?);
    // Load the first config before accepting requests, so a valid config is served at once.
    crate::config::watch::reload(&options.source, &config, &metrics).await;
    let watcher =
        crate::config::watch::spawn(options.source.clone(), config, metrics, options.recheck);
    let (stop, stopped) = watch::channel(false);
    let api_server = conn::serve(
        api,
        api_router(Arc::clone(&state)),
        options.limits.clone(),
        stopped.clone(),
    );
    let admin_server = conn::serve(
        admin,
        admin_router(Arc::clone(&state)),
        options.limits.clone(),
        stopped,
    );
    let servers = tokio::spawn(async move {
        tokio::join!(api_server, admin_server);
    });
    tracing::info!(%api_addr, %admin_addr, "tollgate-gateway listening");
    Ok(Running {
        api_addr,
        admin_addr,
        state,
        stop,
        servers,
        watcher,
        drain_timeout: options.drain_timeout,
    })
}
