//! Tollgate's gateway: an OpenAI-compatible API in front of LLM providers.

pub mod error;
pub mod mock_upstream;
pub mod providers;
pub mod stream;
pub mod wire;
