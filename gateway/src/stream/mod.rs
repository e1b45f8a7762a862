//! Stream framings.

pub mod eventstream;
pub mod sse;
