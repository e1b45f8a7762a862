//! Wire formats of the gateway's own API.

pub mod anthropic;
pub mod openai;
pub mod responses;
