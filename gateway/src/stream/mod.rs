//! Stream framings.

pub mod sse;
