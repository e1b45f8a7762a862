//! Chat completions (`POST /v1/chat/completions`), answered as JSON or as a stream.

use http::HeaderMap;

use super::{
    Answer, JsonAnswer, Operation, StreamAnswer, call::Clock, encode::OpenAiChatEncoder,
    settle::token_counts, stream::StreamReader,
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

    fn max_output_tokens(req: &ChatRequest) -> Option<u64> {
        req.output_limit().map(u64::from)
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
            let reader = StreamReader::open(upstream, adapter.stream(target), clock).await?;
            return Ok(Answer::Stream(Box::new(StreamAnswer {
                reader,
                encoder: Box::new(OpenAiChatEncoder::new(req.include_usage())),
            })));
        }
        let bytes = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
        let answer = adapter.chat_answer(target, bytes)?;
        Ok(Answer::Json(JsonAnswer {
            body: answer.body,
            tokens: answer.usage.as_ref().map(token_counts),
            total_tokens: answer.usage.as_ref().map(|u| u.total_tokens),
            model: answer.model,
            clock,
        }))
    }

    fn cache_key(req: &ChatRequest, out: &mut sha2::Sha256) -> bool {
        crate::cache::key::chat(req, out)
    }

    fn semantic_prompt(req: &ChatRequest, context: &mut sha2::Sha256) -> Option<String> {
        crate::cache::key::chat_semantic(req, context)
    }
}
