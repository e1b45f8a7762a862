//! Chat completions (`POST /v1/chat/completions`), answered as JSON or as a stream.

use bytes::Bytes;
use http::HeaderMap;

use super::{
    Answer, JsonAnswer, Operation, call::Clock, settle::token_counts, stream::StreamReader,
};
use crate::{
    error::GatewayError,
    failure::Failure,
    providers::{Adapter, RequestError, Target, UpstreamRequest},
    routing::{self, Plan, RouteRuntime, tokens},
    upstream::UpstreamResponse,
    wire::openai::ChatRequest,
};

/// The chat operation.
pub struct Chat;

impl Operation for Chat {
    const NAME: &'static str = "chat";
    type Request = ChatRequest;

    fn model(req: &ChatRequest) -> &str {
        &req.model
    }

    fn check(req: &ChatRequest) -> Result<(), GatewayError> {
        if req.messages.is_empty() {
            return Err(GatewayError::BadRequest {
                message: "messages must contain at least one message".into(),
                param: Some("messages".into()),
            });
        }
        Ok(())
    }

    fn prompt_bytes(req: &ChatRequest) -> u64 {
        tokens::prompt_bytes(req)
    }

    fn prompt_tokens(req: &ChatRequest) -> u64 {
        tokens::prompt_tokens(req)
    }

    fn plan<'a>(
        route: &'a RouteRuntime,
        req: &ChatRequest,
        headers: &HeaderMap,
        prompt_tokens: u64,
    ) -> Plan<'a> {
        routing::plan(route, req, headers, prompt_tokens)
    }

    fn translate(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        adapter.chat_request(target, req)
    }

    async fn receive(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &ChatRequest,
        upstream: UpstreamResponse,
        mut clock: Clock,
    ) -> Result<Answer, Failure> {
        if req.is_stream() {
            let reader =
                StreamReader::open(upstream, adapter.stream(target), clock, req.include_usage())
                    .await?;
            return Ok(Answer::Stream(Box::new(reader)));
        }
        let bytes = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
        let answer = adapter.chat_response(target, &bytes)?;
        let body = serde_json::to_vec(&answer)
            .map_err(|e| Failure::protocol(format!("answer cannot be encoded: {e}")))?;
        Ok(Answer::Json(JsonAnswer {
            body: Bytes::from(body),
            tokens: answer.usage.as_ref().map(token_counts),
            total_tokens: answer.usage.as_ref().map(|u| u.total_tokens),
            model: answer.model,
            clock,
        }))
    }
}
