//! Tollgate's gateway: an OpenAI-compatible API in front of LLM providers.

pub mod backend;
pub mod budget;
pub mod cache;
pub mod config;
pub mod cost;
pub mod error;
pub mod failure;
pub mod guardrails;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod mock_upstream;
pub mod pipeline;
pub mod providers;
pub mod resilience;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod stream;
pub mod upstream;
pub mod usage;
pub mod wire;

/// Installs rustls' ring crypto provider once (a no-op when one is installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
