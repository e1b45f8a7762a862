//! Wire formats of the gateway's own API.

pub mod openai;
pub mod responses;
