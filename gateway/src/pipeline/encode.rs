//! The client's side of a stream: what the pipeline does with translated chunks between
//! the upstream reader ([`super::stream::StreamReader`]) and the response body.
//!
//! Three seams, each a small trait so a feature plugs in without touching the reader:
//! - [`ChunkFilter`] rewrites or holds back chunks before they are encoded (response
//!   guardrails redact here, across chunk boundaries).
//! - [`StreamEncoder`] writes chunks in the wire format of the door the client came in by
//!   (OpenAI chat SSE here; Anthropic Messages and Responses events for their doors).
//! - [`FrameTap`] sees every frame sent and how the stream ended (the response cache records
//!   a stream here, to replay it byte for byte).
//!
//! One dynamic call per chunk and per frame: noise next to the JSON encoding of a chunk.

use std::collections::VecDeque;

use bytes::Bytes;
use rust_decimal::Decimal;

use crate::{
    error::GatewayError,
    failure::Failure,
    stream::sse::{DONE_FRAME, data_frame},
    wire::openai::{ChatChunk, Usage},
};

/// Rewrites the stream's chunks before they are encoded.
pub trait ChunkFilter: Send + 'static {
    /// Takes one chunk and pushes what may go out now (it may hold text back). An error
    /// ends the client's stream with that failure.
    fn chunk(&mut self, chunk: ChatChunk, out: &mut Vec<ChatChunk>) -> Result<(), Failure>;

    /// The upstream ended cleanly: pushes what was held back.
    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Failure>;
}

/// Writes the client's stream in the wire format of its door.
pub trait StreamEncoder: Send + 'static {
    /// Encodes one chunk as zero or more frames.
    fn chunk(&mut self, chunk: &ChatChunk, out: &mut VecDeque<Bytes>) -> Result<(), Failure>;

    /// The stream ended cleanly: the closing frames. `cost` is the answer's cost when the
    /// usage is known.
    fn end(&mut self, usage: Option<&Usage>, cost: Option<Decimal>, out: &mut VecDeque<Bytes>);

    /// The stream failed after it started: the frames that tell the client so (never a
    /// clean end marker, so SDKs raise instead of treating a cut answer as complete).
    fn fail(&mut self, failure: &Failure, out: &mut VecDeque<Bytes>);
}

/// Sees what the client was sent.
pub trait FrameTap: Send + 'static {
    /// One frame, as sent.
    fn frame(&mut self, frame: &Bytes);

    /// The stream is over: `complete` only after a clean end marker was sent (not after a
    /// failure or a client disconnect).
    fn end(&mut self, complete: bool);
}

/// What a stream passes through besides its encoder, set by the pipeline per request.
#[derive(Default)]
pub struct StreamHooks {
    /// Applied in order.
    pub filters: Vec<Box<dyn ChunkFilter>>,
    /// Sees every frame.
    pub tap: Option<Box<dyn FrameTap>>,
}

/// OpenAI chat completion chunks as SSE (`data: {chunk}`), ending with `[DONE]`.
#[derive(Debug)]
pub struct OpenAiChatEncoder {
    include_usage: bool,
}

impl OpenAiChatEncoder {
    /// `include_usage`: whether the client asked for the usage-only last chunk.
    pub fn new(include_usage: bool) -> Self {
        Self { include_usage }
    }
}

impl StreamEncoder for OpenAiChatEncoder {
    fn chunk(&mut self, chunk: &ChatChunk, out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
        if usage_only && !self.include_usage {
            return Ok(());
        }
        let json = serde_json::to_vec(chunk)
            .map_err(|e| Failure::protocol(format!("chunk cannot be encoded: {e}")))?;
        out.push_back(data_frame(&json));
        Ok(())
    }

    fn end(&mut self, _usage: Option<&Usage>, cost: Option<Decimal>, out: &mut VecDeque<Bytes>) {
        // The cost is known only now: an SSE comment just before `[DONE]` (headers left
        // long ago; clients ignore comments).
        if let Some(cost) = cost {
            out.push_back(Bytes::from(format!(
                ": x-tollgate-cost-usd={}\n\n",
                super::pays::cost_header(cost)
            )));
        }
        out.push_back(Bytes::from_static(DONE_FRAME));
    }

    fn fail(&mut self, failure: &Failure, out: &mut VecDeque<Bytes>) {
        let body = GatewayError::Upstream(failure.clone()).body();
        let json = serde_json::to_vec(&body).unwrap_or_default();
        out.push_back(data_frame(&json));
    }
}
