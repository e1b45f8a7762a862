//! The Responses door (`POST /v1/responses`): OpenAI's Responses API onto every backend.
//!
//! OpenAI and Azure OpenAI backends run it themselves ([`passthrough`]). Every other backend
//! gets the request translated into the gateway's chat request ([`to_chat`]), which its own
//! adapter then translates as for chat completions; the answer comes back as a `response`
//! object ([`answer`]) or as Responses stream events ([`encoder`]). Routing, budgets, cost,
//! metrics and the usage log are the pipeline's, exactly as for chat.
//!
//! Conversation state for translated backends is the gateway's ([`store`]): once the caller
//! is known, [`Operation::prepare`] loads the conversation `previous_response_id` names (in
//! the caller's scope), and the answer is stored under its new id when `store` is not false.
//!
//! Route guardrails see the prompt and the answer through [`texts`]; a redacted copy is
//! translated again (`Operation::redacted`), and a JSON answer is stored once checked
//! ([`Operation::answered`]).

pub mod answer;
pub mod encoder;
pub mod passthrough;
pub mod raw;
pub mod store;
pub mod texts;
pub mod to_chat;

use std::sync::OnceLock;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};
use tollgate_crds::config::ProviderType;

use self::{
    encoder::{ResponsesEncoder, SaveTo},
    store::{ResponseStore, Stored},
};
use super::{
    Answer, JsonAnswer, Operation, Shared, StreamAnswer, call::Clock, settle::token_counts,
};
use crate::{
    error::GatewayError,
    failure::Failure,
    guardrails::PromptText,
    identity::Identity,
    pipeline::stream::StreamReader,
    providers::{Adapter, RequestError, Target, UpstreamRequest},
    routing::{self, Plan, RouteRuntime, tokens},
    upstream::UpstreamResponse,
    wire::{
        openai::ChatRequest,
        responses::{ResponseObject, ResponsesRequest},
    },
};

/// Anthropic thinking budget (tokens) per `reasoning.effort`.
fn thinking_budget(effort: &str) -> u32 {
    match effort {
        "minimal" | "low" => 1024,
        "medium" => 4096,
        _ => 16384,
    }
}

/// The Responses operation.
pub struct Responses;

/// A Responses request and what the pipeline learned about it once the caller was known.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(from = "ResponsesRequest")]
pub struct ResponsesCall {
    /// The client's request.
    pub body: ResponsesRequest,
    prepared: OnceLock<Prepared>,
}

impl From<ResponsesRequest> for ResponsesCall {
    fn from(body: ResponsesRequest) -> Self {
        Self {
            body,
            prepared: OnceLock::new(),
        }
    }
}

/// Set by [`Operation::prepare`].
#[derive(Clone, Debug)]
struct Prepared {
    /// `resp_…`, chosen before any attempt so every attempt answers under one id.
    id: String,
    created_at: i64,
    /// Where the answer is stored (`None` when `store: false`).
    store: Option<ResponseStore>,
    /// The earlier conversation (`previous_response_id`'s), before this request's input.
    earlier: Vec<Value>,
    /// `previous_response_id` named a response this gateway has not stored for the caller.
    previous_missing: bool,
    /// The request as a chat request (the refusal when it cannot be one).
    chat: Result<ChatRequest, RequestError>,
}

impl ResponsesCall {
    fn prepared(&self) -> Result<&Prepared, RequestError> {
        self.prepared
            .get()
            .ok_or_else(|| RequestError::new("the request was not prepared", None))
    }

    /// Translates the request once, continuing `history`, under response id `id`.
    fn prepare_with(
        &self,
        id: String,
        created_at: i64,
        store: Option<ResponseStore>,
        earlier: Vec<Value>,
        previous_missing: bool,
    ) {
        let chat = to_chat::to_chat(&self.body, &earlier);
        let _ = self.prepared.set(Prepared {
            id,
            created_at,
            store,
            earlier,
            previous_missing,
            chat,
        });
    }

    /// What is stored with the answer: the earlier conversation, then this input.
    fn history(&self, prepared: &Prepared) -> Vec<Value> {
        let mut history = prepared.earlier.clone();
        if let Some(input) = &self.body.input {
            history.extend(input.items());
        }
        history
    }

    fn chat(&self) -> Option<&ChatRequest> {
        self.prepared.get().and_then(|p| p.chat.as_ref().ok())
    }
}

/// The chat request's refusal, naming the backend's provider type.
fn refusal(e: &RequestError, target: &Target<'_>) -> RequestError {
    RequestError {
        message: format!(
            "{} (provider type {})",
            e.message,
            target.provider.provider_type.as_str()
        ),
        param: e.param.clone(),
    }
}

/// `reasoning.effort` where the backend has an equivalent.
fn apply_effort(
    chat: &mut ChatRequest,
    effort: Option<&str>,
    target: &Target<'_>,
) -> Result<(), RequestError> {
    let Some(effort) = effort.filter(|e| *e != "none") else {
        return Ok(());
    };
    match target.provider.provider_type {
        ProviderType::OpenAICompatible | ProviderType::Gemini => {
            chat.rest
                .insert("reasoning_effort".into(), Value::String(effort.to_owned()));
        }
        ProviderType::Anthropic => {
            let mut budget = thinking_budget(effort);
            match chat.max_completion_tokens {
                Some(max) if max <= 1024 => {
                    return Err(RequestError::new(
                        "reasoning.effort needs max_output_tokens above 1024 on Anthropic backends (thinking takes at least 1024 tokens)",
                        Some("max_output_tokens"),
                    ));
                }
                Some(max) => budget = budget.min(max - 1),
                None => {
                    chat.max_completion_tokens =
                        Some(budget + crate::providers::anthropic::DEFAULT_MAX_TOKENS);
                }
            }
            chat.rest.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        ProviderType::Mock => {}
        other => {
            return Err(RequestError::new(
                format!(
                    "reasoning.effort is not translated for provider type {}",
                    other.as_str()
                ),
                Some("reasoning.effort"),
            ));
        }
    }
    Ok(())
}

impl Operation for Responses {
    /// Counted as chat, like every door's conversation (OpenTelemetry's operation name).
    const NAME: &'static str = "chat";
    type Request = ResponsesCall;

    fn model(req: &ResponsesCall) -> &str {
        &req.body.model
    }

    fn check(req: &ResponsesCall) -> Result<(), GatewayError> {
        let empty = match &req.body.input {
            None => true,
            Some(crate::wire::responses::Input::Items(items)) => items.is_empty(),
            Some(crate::wire::responses::Input::Text(_)) => false,
        };
        if empty && req.body.previous_response_id.is_none() {
            return Err(GatewayError::BadRequest {
                message: "input is required".into(),
                param: Some("input".into()),
            });
        }
        Ok(())
    }

    fn prompt_bytes(req: &ResponsesCall) -> u64 {
        match req.chat() {
            Some(chat) => tokens::prompt_bytes(chat),
            None => serde_json::to_vec(&req.body).map_or(0, |b| b.len() as u64),
        }
    }

    fn prompt_tokens(req: &ResponsesCall) -> u64 {
        match req.chat() {
            Some(chat) => tokens::prompt_tokens(chat),
            None => Self::prompt_bytes(req).div_ceil(4),
        }
    }

    fn max_output_tokens(req: &ResponsesCall) -> Option<u64> {
        req.body.max_output_tokens.map(u64::from)
    }

    fn plan<'a>(
        route: &'a RouteRuntime,
        req: &ResponsesCall,
        headers: &HeaderMap,
        prompt_tokens: u64,
    ) -> Plan<'a> {
        match req.chat() {
            Some(chat) => routing::plan(route, chat, headers, prompt_tokens),
            None => routing::plan(
                route,
                &ChatRequest {
                    model: req.body.model.clone(),
                    ..ChatRequest::default()
                },
                headers,
                prompt_tokens,
            ),
        }
    }

    fn translate(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &ResponsesCall,
    ) -> Result<UpstreamRequest, RequestError> {
        if passthrough::applies(target) {
            if req.body.is_stream() && target.answers_checked {
                // The upstream's events are forwarded raw, past the answer guardrails.
                return Err(RequestError::new(
                    format!(
                        "this route's guardrails check answers, and Responses streams from {} backends are forwarded as they come, unchecked: send `stream: false` on this route",
                        target.provider.provider_type.as_str()
                    ),
                    Some("stream"),
                ));
            }
            return passthrough::request(target, &req.body);
        }
        let prepared = req.prepared()?;
        if prepared.previous_missing {
            return Err(RequestError::new(
                format!(
                    "previous response `{}` was not found: this route's {} backends continue only responses the gateway stored for this client key (kept {} h)",
                    crate::error::clip(
                        req.body.previous_response_id.as_deref().unwrap_or_default(),
                        100
                    ),
                    target.provider.provider_type.as_str(),
                    store::TTL.as_secs() / 3600,
                ),
                Some("previous_response_id"),
            ));
        }
        let mut chat = prepared.chat.clone().map_err(|e| refusal(&e, target))?;
        chat.model = target.model.to_owned();
        apply_effort(&mut chat, req.body.reasoning_effort(), target)
            .map_err(|e| refusal(&e, target))?;
        adapter
            .chat_request(target, &chat)
            .map_err(|e| refusal(&e, target))
    }

    async fn receive(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &ResponsesCall,
        upstream: UpstreamResponse,
        mut clock: Clock,
    ) -> Result<Answer, Failure> {
        if passthrough::applies(target) {
            if req.body.is_stream() {
                return passthrough::receive_stream(upstream, clock).await;
            }
            return passthrough::receive_json(upstream, clock).await;
        }
        let prepared = req.prepared().map_err(|e| Failure::protocol(e.message))?;
        if req.body.is_stream() {
            let reader = StreamReader::open(upstream, adapter.stream(target), clock).await?;
            let template =
                answer::template(&req.body, &prepared.id, prepared.created_at, target.model);
            let save = prepared.store.clone().map(|store| SaveTo {
                store,
                history: req.history(prepared),
            });
            return Ok(Answer::Stream(Box::new(StreamAnswer {
                reader,
                encoder: Box::new(ResponsesEncoder::new(template, save)),
            })));
        }
        let bytes = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
        let chat = adapter.chat_response(target, &bytes)?;
        let now = jiff::Timestamp::now().as_second();
        let response = answer::from_chat(&req.body, &prepared.id, prepared.created_at, &chat, now);
        let body = serde_json::to_vec(&response)
            .map_err(|e| Failure::protocol(format!("answer cannot be encoded: {e}")))?;
        Ok(Answer::Json(JsonAnswer {
            body: Bytes::from(body),
            tokens: chat.usage.as_ref().map(token_counts),
            total_tokens: chat.usage.as_ref().map(|u| u.total_tokens),
            model: chat.model,
            clock,
        }))
    }

    fn prompt_text_mut(req: &mut ResponsesCall) -> Option<Vec<PromptText<'_>>> {
        Some(texts::prompt(req))
    }

    /// The redacted copy's chat request is translated again from its redacted texts.
    fn redacted(req: &mut ResponsesCall) -> Result<(), GatewayError> {
        let ResponsesCall { body, prepared } = req;
        if let Some(prepared) = prepared.get_mut() {
            prepared.chat = to_chat::to_chat(body, &prepared.earlier);
        }
        Ok(())
    }

    fn answer_text_mut(body: &mut Value) -> Option<Vec<&mut String>> {
        texts::answer(body)
    }

    /// Stores a translated backend's JSON answer as the client got it (redacted, when the
    /// route's guardrails redacted it). OpenAI's own answers (another id) live at OpenAI.
    async fn answered(req: &ResponsesCall, body: &Bytes) {
        let Some(prepared) = req.prepared.get() else {
            return;
        };
        let Some(store) = &prepared.store else {
            return;
        };
        match serde_json::from_slice::<ResponseObject>(body) {
            Ok(response) if response.id == prepared.id => {
                let history = req.history(prepared);
                store.save(&Stored { response, history }).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "answer not stored: unreadable"),
        }
    }

    async fn prepare(
        shared: &Shared,
        identity: &Identity,
        req: &ResponsesCall,
    ) -> Result<(), GatewayError> {
        let store = ResponseStore::new(&shared.pays, identity);
        let mut history = Vec::new();
        let mut previous_missing = false;
        if let Some(previous) = &req.body.previous_response_id {
            match store.load(previous).await {
                Ok(Some(stored)) => history = stored.conversation(),
                Ok(None) => previous_missing = true,
                Err(e) => {
                    tracing::warn!(error = %e, "stored responses unavailable");
                    previous_missing = true;
                }
            }
        }
        req.prepare_with(
            format!("resp_{}", uuid::Uuid::new_v4().simple()),
            jiff::Timestamp::now().as_second(),
            req.body.stores().then_some(store),
            history,
            previous_missing,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
