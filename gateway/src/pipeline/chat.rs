//! Chat completions (`POST /v1/chat/completions`), answered as JSON or as a stream.

use http::HeaderMap;

use super::{
    Answer, JsonAnswer, Operation, StreamAnswer, call::Clock, encode::OpenAiChatEncoder,
    settle::token_counts, stream::StreamReader,
};
use crate::{
    error::GatewayError,
    failure::Failure,
    guardrails::PromptText,
    providers::{Adapter, RequestError, Target, UpstreamRequest},
    routing::{self, Plan, RouteRuntime, tokens},
    upstream::UpstreamResponse,
    wire::openai::{ChatRequest, Content, ContentPart, Role},
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

    fn prompt_text_mut(req: &mut ChatRequest) -> Option<Vec<PromptText<'_>>> {
        let mut out = Vec::new();
        for m in &mut req.messages {
            let instructions = matches!(m.role, Role::System | Role::Developer);
            match &mut m.content {
                Some(Content::Text(text)) => out.push(PromptText { text, instructions }),
                Some(Content::Parts(parts)) => {
                    for part in parts {
                        if let ContentPart::Text { text } = part {
                            out.push(PromptText { text, instructions });
                        }
                    }
                }
                None => {}
            }
            for call in m.tool_calls.iter_mut().flatten() {
                out.push(PromptText {
                    text: &mut call.function.arguments,
                    instructions: false,
                });
            }
        }
        Some(out)
    }

    fn answer_text_mut(body: &mut serde_json::Value) -> Option<Vec<&mut String>> {
        let choices = body.get_mut("choices")?.as_array_mut()?;
        Some(
            choices
                .iter_mut()
                .filter_map(|c| match c.pointer_mut("/message/content") {
                    Some(serde_json::Value::String(s)) => Some(s),
                    _ => None,
                })
                .collect(),
        )
    }
}
