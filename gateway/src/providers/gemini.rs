// NOTE TO WHOEVER IMPLEMENTS THIS MODULE IN THE CURRENT CHANGE: first read /tmp/helper-common.md
// (conventions, required tests, and the private-copy workflow: work in /tmp/work-NAME, copy only
// your own files back, never commit). The lead removes this note.
//! Placeholder, being replaced by the full Gemini adapter in this change.

use http::{HeaderMap, StatusCode};

use super::{
    Failure, ProviderAdapter, RequestError, StreamTranslator, Target, UpstreamRequest,
    classify_status, quote,
};
use crate::wire::openai::{ChatChunk, ChatRequest, ChatResponse};

/// The Gemini adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gemini;

/// Translates a Gemini stream.
#[derive(Debug, Default)]
pub struct GeminiStream;

impl StreamTranslator for GeminiStream {
    fn feed(&mut self, _bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        Err(Failure::protocol("not built"))
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        Err(Failure::protocol("not built"))
    }
}

impl ProviderAdapter for Gemini {
    type Stream = GeminiStream;

    fn chat_request(
        &self,
        _target: &Target<'_>,
        _req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        Err(RequestError::new("not built", None))
    }

    fn chat_response(&self, _target: &Target<'_>, _body: &[u8]) -> Result<ChatResponse, Failure> {
        Err(Failure::protocol("not built"))
    }

    fn error(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Failure {
        Failure {
            kind: classify_status(status),
            status: Some(status.as_u16()),
            message: quote(body),
            retry_after: None,
        }
    }

    fn stream(&self, _target: &Target<'_>) -> Self::Stream {
        GeminiStream
    }
}
