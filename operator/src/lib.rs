//! Tollgate's operator: reconciles `LLMProvider`, `LLMRoute` and `LLMBudget` into the
//! gateway's ConfigMap and Secret ([`reconcile`]), writes their status, manages the gateway
//! Deployment and Services ([`deploy`]), and renders the config objects offline ([`render`]).

pub mod api_client;
pub mod deploy;
pub mod fit;
pub mod health;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod reconcile;
pub mod render;
pub mod run;
pub mod settings;

/// An in-memory Kubernetes API (list, watch, apply, status) for controller tests.
#[cfg(test)]
pub mod testing;
