//! Tollgate's API: the `LLMProvider`, `LLMRoute` and `LLMBudget` custom resources, their
//! generated CRDs, and the compiled gateway-config contract shared by operator and gateway.

pub mod budget;
pub mod catalog;
pub mod common;
pub mod compile;
pub mod conditions;
pub mod config;
pub mod crdgen;
pub mod guardrails;
pub mod keys;
pub mod manifests;
#[cfg(unix)]
pub mod mount;
pub mod period;
pub mod provider;
pub mod route;

pub use budget::{LLMBudget, LLMBudgetSpec, LLMBudgetStatus};
pub use provider::{LLMProvider, LLMProviderSpec, LLMProviderStatus};
pub use route::{LLMRoute, LLMRouteSpec, LLMRouteStatus};

/// The API group of every Tollgate kind.
pub const GROUP: &str = "llm.tollgate.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
