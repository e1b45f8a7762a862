//! The guardrails' seams in the pipeline: an operation's prompt and answer text handed to
//! [`crate::guardrails`], and its stream filter plugged in as a [`ChunkFilter`].

use std::sync::Arc;

use bytes::Bytes;

use super::{Operation, Shared, encode::ChunkFilter};
use crate::{
    error::GatewayError,
    failure::Failure,
    guardrails::{self, Fired, RouteGuardrails, StreamGuard, prompt::PromptSide},
    wire::openai::ChatChunk,
};

/// The prompt check (plan stage): `Ok(Some(copy))` is the redacted request to send instead.
pub async fn prompt<O: Operation>(
    shared: &Shared,
    guard: Option<&Arc<RouteGuardrails>>,
    req: &O::Request,
    prompt_tokens: u64,
    route: &str,
    fired: &Fired,
) -> Result<Option<O::Request>, GatewayError> {
    let side = PromptSide {
        req,
        texts: O::prompt_text_mut,
        tokens: || {
            if prompt_tokens > 0 {
                prompt_tokens
            } else {
                O::prompt_tokens(req)
            }
        },
        operation: O::NAME,
    };
    let mut redacted = guardrails::check_prompt(guard, side, route, &shared.metrics, fired).await?;
    if let Some(copy) = &mut redacted {
        O::redacted(copy)?;
    }
    Ok(redacted)
}

/// The check of a JSON answer: the body to send.
pub async fn answer<O: Operation>(
    shared: &Shared,
    guard: Option<&Arc<RouteGuardrails>>,
    body: Bytes,
    route: &str,
    fired: &Fired,
) -> Result<Bytes, GatewayError> {
    guardrails::check_answer(
        guard,
        body,
        O::answer_text_mut,
        route,
        &shared.metrics,
        fired,
    )
    .await
}

/// The stream filter of a route whose guardrails check answers.
pub fn stream_filter(
    shared: &Shared,
    guard: Option<&Arc<RouteGuardrails>>,
    route: &Arc<str>,
    fired: &Fired,
) -> Option<Box<dyn ChunkFilter>> {
    let filter = StreamGuard::new(guard, fired, &shared.metrics, route)?;
    Some(Box::new(filter))
}

impl ChunkFilter for StreamGuard {
    fn chunk(&mut self, chunk: ChatChunk, out: &mut Vec<ChatChunk>) -> Result<(), Failure> {
        StreamGuard::chunk(self, chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Failure> {
        StreamGuard::finish(self, out)
    }
}
