//! Anthropic Messages (`POST /v1/messages`) and token counting
//! (`POST /v1/messages/count_tokens`), routed by `model` like chat completions, to any
//! backend:
//! - Anthropic backends get the client's body with only `model` replaced, and their answer
//!   passes back unchanged ([`raw`]); nothing is lost, fields added later included.
//! - Every other backend gets the request as a chat request ([`to_chat`]) through its
//!   adapter, and its answer comes back as an Anthropic `message` ([`answer`]) or Anthropic
//!   stream events ([`encoder`]).
//!
//! Metrics, cost, budgets and usage records count a message as `chat` (the OpenTelemetry
//! GenAI operation name for a chat completion, whatever its wire format), so dashboards and
//! budgets see one operation whichever door a client uses. Errors on this door are
//! Anthropic-shaped.

pub mod answer;
pub mod encoder;
pub mod guard;
pub mod raw;
pub mod to_chat;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, header};
use tokio::time::Instant;
use tollgate_crds::config::ProviderType;

use self::{encoder::AnthropicEncoder, raw::AnthropicEvents};
use super::{
    Answer, JsonAnswer, Operation, Shared, StreamAnswer,
    call::Clock,
    passthrough::{RawEncoder, RawStream},
    pays,
    settle::token_counts,
    stream::StreamReader,
};
use crate::{
    error::GatewayError,
    failure::Failure,
    guardrails::PromptText,
    providers::{Adapter, RequestError, Target, UpstreamRequest},
    routing::{self, Plan, RouteRuntime, tokens},
    upstream::UpstreamResponse,
    wire::{
        anthropic::{Block, InputContent, InputRole, MessagesBody, MessagesRequest, System},
        openai::{ChatRequest, Content, ContentPart, ImageUrl, Message, Role},
    },
};

/// The Messages operation.
pub struct Messages;

/// Keeps the client's `anthropic-version` and `anthropic-beta` for Anthropic backends.
fn keep_forwarded_headers(req: &mut MessagesRequest, headers: &HeaderMap) {
    for name in raw::FORWARDED_HEADERS {
        for value in headers.get_all(name) {
            req.forward_headers
                .push((HeaderName::from_static(name), value.clone()));
        }
    }
}

fn check_messages(body: &MessagesBody) -> Result<(), GatewayError> {
    if body.messages.is_empty() {
        return Err(GatewayError::BadRequest {
            message: "messages: at least one message is required".into(),
            param: Some("messages".into()),
        });
    }
    Ok(())
}

impl Operation for Messages {
    const NAME: &'static str = "chat";
    type Request = MessagesRequest;

    fn model(req: &MessagesRequest) -> &str {
        &req.body.model
    }

    fn check(req: &MessagesRequest) -> Result<(), GatewayError> {
        check_messages(&req.body)?;
        if req.body.max_tokens.is_none() {
            return Err(GatewayError::BadRequest {
                message: "max_tokens: Field required".into(),
                param: Some("max_tokens".into()),
            });
        }
        Ok(())
    }

    fn prompt_bytes(req: &MessagesRequest) -> u64 {
        req.raw.get().len() as u64
    }

    fn prompt_tokens(req: &MessagesRequest) -> u64 {
        estimate_tokens(&req.body)
    }

    fn max_output_tokens(req: &MessagesRequest) -> Option<u64> {
        req.body.max_tokens.map(u64::from)
    }

    fn plan<'a>(
        route: &'a RouteRuntime,
        req: &MessagesRequest,
        headers: &HeaderMap,
        prompt_tokens: u64,
    ) -> Plan<'a> {
        if route.rules.is_empty() {
            return routing::plan_default(route);
        }
        routing::plan(route, &routing_view(&req.body), headers, prompt_tokens)
    }

    fn translate(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &MessagesRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        match adapter {
            // A passthrough stream skips the chunk filters that check answers.
            Adapter::Anthropic(_) if req.is_stream() && target.answers_checked => {
                Err(RequestError::new(
                    "the route's guardrails check answers, which an Anthropic backend's \
                     stream on /v1/messages cannot pass through; ask without `stream`",
                    Some("stream"),
                ))
            }
            Adapter::Anthropic(_) => raw::passthrough_request(target, req, "/v1/messages"),
            _ => {
                let chat = to_chat::to_chat(&req.body, target.provider.provider_type)?;
                adapter.chat_request(target, &chat)
            }
        }
    }

    async fn receive(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &MessagesRequest,
        upstream: UpstreamResponse,
        mut clock: Clock,
    ) -> Result<Answer, Failure> {
        let passthrough = matches!(adapter, Adapter::Anthropic(_));
        if req.is_stream() {
            let (reader, encoder): (_, Box<dyn super::encode::StreamEncoder>) = if passthrough {
                let raw = RawStream::new(Box::new(AnthropicEvents::default()));
                (
                    StreamReader::open_raw(upstream, raw, clock).await?,
                    Box::new(RawEncoder::new(answer::error_event)),
                )
            } else {
                (
                    StreamReader::open(upstream, adapter.stream(target), clock).await?,
                    Box::new(AnthropicEncoder::new(target.request_id, target.model)),
                )
            };
            return Ok(Answer::Stream(Box::new(StreamAnswer { reader, encoder })));
        }
        let bytes = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
        let (body, model, usage) = if passthrough {
            let (model, usage) = raw::read_message(&bytes)?;
            (bytes, model, usage)
        } else {
            let chat = adapter.chat_response(target, &bytes)?;
            let usage = chat.usage.clone();
            let message = answer::message(chat)?;
            let body = serde_json::to_vec(&message)
                .map_err(|e| Failure::protocol(format!("answer cannot be encoded: {e}")))?;
            (Bytes::from(body), Some(message.model), usage)
        };
        Ok(Answer::Json(JsonAnswer {
            body,
            model: model.unwrap_or_else(|| target.model.to_owned()),
            tokens: usage.as_ref().map(token_counts),
            total_tokens: usage.as_ref().map(|u| u.total_tokens),
            clock,
        }))
    }

    fn headers(req: &mut MessagesRequest, headers: &HeaderMap) {
        keep_forwarded_headers(req, headers);
    }

    fn error_response(e: GatewayError) -> axum::response::Response {
        answer::error_response(e)
    }

    fn cache_key(req: &MessagesRequest, out: &mut sha2::Sha256) -> bool {
        crate::cache::key::messages(req, out)
    }

    fn prompt_text_mut(req: &mut MessagesRequest) -> Option<Vec<PromptText<'_>>> {
        Some(guard::prompt_texts(&mut req.body))
    }

    fn redacted(req: &mut MessagesRequest) -> Result<(), GatewayError> {
        guard::rebuild_raw(req)
    }

    fn answer_text_mut(body: &mut serde_json::Value) -> Option<Vec<&mut String>> {
        guard::answer_texts(body)
    }
}

/// Token counting forwarded to an Anthropic backend (see [`count_tokens`]).
pub struct CountTokens;

impl Operation for CountTokens {
    const NAME: &'static str = "count_tokens";
    type Request = MessagesRequest;

    fn model(req: &MessagesRequest) -> &str {
        &req.body.model
    }

    fn check(req: &MessagesRequest) -> Result<(), GatewayError> {
        check_messages(&req.body)
    }

    // Counting is free and generates nothing: no window, quota or budget estimate applies.
    fn prompt_bytes(_req: &MessagesRequest) -> u64 {
        0
    }

    fn prompt_tokens(_req: &MessagesRequest) -> u64 {
        0
    }

    fn max_output_tokens(_req: &MessagesRequest) -> Option<u64> {
        Some(0)
    }

    fn plan<'a>(
        route: &'a RouteRuntime,
        _req: &MessagesRequest,
        _headers: &HeaderMap,
        _prompt_tokens: u64,
    ) -> Plan<'a> {
        routing::plan_default(route)
    }

    fn translate(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &MessagesRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        match adapter {
            Adapter::Anthropic(_) => {
                raw::passthrough_request(target, req, "/v1/messages/count_tokens")
            }
            _ => Err(RequestError::new(
                "token counting is forwarded only to Anthropic backends",
                Some("model"),
            )),
        }
    }

    async fn receive(
        _adapter: &Adapter,
        target: &Target<'_>,
        _req: &MessagesRequest,
        upstream: UpstreamResponse,
        mut clock: Clock,
    ) -> Result<Answer, Failure> {
        let body = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
        #[derive(serde::Deserialize)]
        struct Count {
            #[allow(dead_code, reason = "read only to check the answer's shape")]
            input_tokens: u64,
        }
        serde_json::from_slice::<Count>(&body)
            .map_err(|e| Failure::protocol(format!("unreadable count_tokens answer ({e})")))?;
        Ok(Answer::Json(JsonAnswer {
            body,
            model: target.model.to_owned(),
            tokens: None,
            total_tokens: None,
            clock,
        }))
    }

    fn headers(req: &mut MessagesRequest, headers: &HeaderMap) {
        keep_forwarded_headers(req, headers);
    }

    fn error_response(e: GatewayError) -> axum::response::Response {
        answer::error_response(e)
    }

    // The prompt goes to Anthropic to be counted: the same checks as a message.
    fn prompt_text_mut(req: &mut MessagesRequest) -> Option<Vec<PromptText<'_>>> {
        Some(guard::prompt_texts(&mut req.body))
    }

    fn redacted(req: &mut MessagesRequest) -> Result<(), GatewayError> {
        guard::rebuild_raw(req)
    }
}

/// `POST /v1/messages/count_tokens`: forwarded to Anthropic when the route's first backend
/// is Anthropic (its count is exact), else the gateway's local estimate (the same one rules
/// and quotas use), marked `x-tollgate-token-count: estimate`. The client key is checked
/// either way.
pub async fn count_tokens(
    shared: &Shared,
    req: MessagesRequest,
    headers: &HeaderMap,
    request_id: &str,
    started: Instant,
) -> Result<Response<Body>, GatewayError> {
    CountTokens::check(&req)?;
    let snapshot = shared.config.snapshot().ok_or(GatewayError::NotReady)?;
    let model = req.body.model.as_str();
    let route = snapshot
        .route(model)
        .ok_or_else(|| GatewayError::ModelNotFound(model.to_owned()))?;
    let first = route.list.backends.first();
    if first.is_some_and(|b| b.provider.config.provider_type == ProviderType::Anthropic) {
        return super::serve::<CountTokens>(shared, req, headers, request_id, started).await;
    }
    pays::identify(&shared.pays, &snapshot, headers, &route.config.id)?;
    let count = estimate_tokens(&req.body);
    let body = serde_json::to_vec(&serde_json::json!({ "input_tokens": count })).map_err(|e| {
        GatewayError::BadRequest {
            message: format!("count cannot be encoded: {e}"),
            param: None,
        }
    })?;
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-tollgate-token-count",
        HeaderValue::from_static("estimate"),
    );
    if let Ok(v) = HeaderValue::from_str(&route.config.id) {
        h.insert("x-tollgate-route", v);
    }
    Ok(response)
}

/// Tokens of a request's prompt, estimated locally: system, message text, tool calls and
/// results, tool definitions, plus the chat format's per-message overhead; images and
/// documents are not counted (their cost depends on the provider).
pub fn estimate_tokens(body: &MessagesBody) -> u64 {
    const PER_MESSAGE: u64 = 3;
    let mut total = 3;
    let mut add = |text: &str| total += tokens::count(text);
    match &body.system {
        Some(System::Text(t)) => add(t),
        Some(System::Blocks(blocks)) => blocks.iter().for_each(|b| block_text(b, &mut add)),
        None => {}
    }
    for m in &body.messages {
        match &m.content {
            InputContent::Text(t) => add(t),
            InputContent::Blocks(blocks) => blocks.iter().for_each(|b| block_text(b, &mut add)),
        }
    }
    for t in body.tools.iter().flatten() {
        add(&t.name);
        add(t.description.as_deref().unwrap_or_default());
        if let Some(schema) = &t.input_schema {
            add(&schema.to_string());
        }
    }
    total + PER_MESSAGE * body.messages.len() as u64
}

fn block_text(block: &Block, add: &mut impl FnMut(&str)) {
    match block {
        Block::Text { text, .. } => add(text),
        Block::Thinking { thinking, .. } => add(thinking),
        Block::ToolUse { name, input, .. } => {
            add(name);
            add(&input.to_string());
        }
        Block::ToolResult {
            content: Some(InputContent::Text(t)),
            ..
        } => add(t),
        Block::ToolResult {
            content: Some(InputContent::Blocks(inner)),
            ..
        } => inner.iter().for_each(|b| block_text(b, add)),
        _ => {}
    }
}

/// What routing rules read (the last user text, whether tools or images are present), as
/// a chat request; built only for routes with rules.
fn routing_view(body: &MessagesBody) -> ChatRequest {
    let mut has_images = false;
    let mut last_user = String::new();
    for m in body.messages.iter().filter(|m| m.role == InputRole::User) {
        match &m.content {
            InputContent::Text(t) => last_user.clone_from(t),
            InputContent::Blocks(blocks) => {
                has_images |= blocks.iter().any(|b| matches!(b, Block::Image { .. }));
                let texts: Vec<&str> = blocks
                    .iter()
                    .filter_map(|b| match b {
                        Block::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                if !texts.is_empty() {
                    last_user = texts.join("\n");
                }
            }
        }
    }
    let mut parts = vec![ContentPart::Text { text: last_user }];
    if has_images {
        parts.push(ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: String::new(),
                detail: None,
            },
        });
    }
    let tools = body.tools.as_ref().filter(|t| !t.is_empty()).map(|defs| {
        defs.iter()
            .map(|t| crate::wire::openai::Tool {
                kind: "function".to_owned(),
                function: crate::wire::openai::FunctionDef {
                    name: t.name.clone(),
                    description: None,
                    parameters: None,
                    strict: None,
                },
            })
            .collect()
    });
    ChatRequest {
        model: body.model.clone(),
        messages: vec![Message {
            content: Some(Content::Parts(parts)),
            ..Message::text(Role::User, "")
        }],
        tools,
        ..ChatRequest::default()
    }
}
