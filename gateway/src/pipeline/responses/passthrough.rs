//! OpenAI and Azure OpenAI backends run the Responses API themselves: the client's request
//! goes upstream whole (only `model` replaced by the backend's model, or Azure deployment),
//! and the answer comes back byte for byte. The gateway reads only what it meters: `model`
//! and `usage` of a JSON answer, the `response.completed` event's usage in a stream.
//!
//! - OpenAI: `POST {baseURL}/responses`, `Authorization: Bearer`.
//! - Streams: the upstream's events, whole, as they arrive ([`super::raw`] reads the usage
//!   from `response.completed` and the upstream's own `response.failed`/`error`).
//! - Azure OpenAI: `POST {baseURL}/openai/v1/responses` (the v1 API, which names the
//!   deployment in the body's `model` and takes no `api-version`), `api-key`.
//!
//! Built-in tools, `previous_response_id`, `background`, `conversation` and every other field
//! are OpenAI's to run; stored responses live at OpenAI, not in the gateway.

use bytes::Bytes;
use serde::Deserialize;
use tollgate_crds::config::ProviderType;

use super::raw::{NextSequence, ResponsesEvents, ResponsesRawEncoder};
use crate::{
    failure::{Failure, quote},
    pipeline::{
        Answer, JsonAnswer, StreamAnswer, call::Clock, passthrough::RawStream,
        settle::token_counts, stream::StreamReader,
    },
    providers::{RequestError, Target, UpstreamRequest, openai},
    upstream::UpstreamResponse,
    wire::responses::{ResponseUsage, ResponsesRequest},
};

/// Whether `target` runs the Responses API itself.
pub fn applies(target: &Target<'_>) -> bool {
    matches!(
        target.provider.provider_type,
        ProviderType::OpenAI | ProviderType::AzureOpenAI
    )
}

/// The upstream request: the client's body with the backend's model.
pub fn request(
    target: &Target<'_>,
    req: &ResponsesRequest,
) -> Result<UpstreamRequest, RequestError> {
    let p = target.provider;
    let base = p.base_url.as_deref().unwrap_or_default();
    let (url, model) = match (&p.azure, p.provider_type) {
        (Some(azure), ProviderType::AzureOpenAI) => (
            format!("{base}/openai/v1/responses"),
            azure
                .deployments
                .get(target.model)
                .map_or(target.model, String::as_str),
        ),
        _ => (format!("{base}/responses"), target.model),
    };
    let mut value = serde_json::to_value(req)
        .map_err(|e| RequestError::new(format!("request cannot be encoded: {e}"), None))?;
    if let serde_json::Value::Object(fields) = &mut value {
        fields.insert("model".into(), serde_json::Value::String(model.to_owned()));
    }
    let bytes = serde_json::to_vec(&value)
        .map_err(|e| RequestError::new(format!("request cannot be encoded: {e}"), None))?;
    openai::json_request(url, p, openai::auth(target), bytes)
}

/// What a JSON answer meters.
#[derive(Deserialize)]
struct Metered {
    model: String,
    #[serde(default)]
    usage: Option<ResponseUsage>,
}

/// Reads a JSON answer and passes it through untouched.
pub async fn receive_json(upstream: UpstreamResponse, mut clock: Clock) -> Result<Answer, Failure> {
    let body: Bytes = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
    let metered: Metered = serde_json::from_slice(&body).map_err(|e| {
        Failure::protocol(format!(
            "unreadable response object ({e}): {}",
            quote(&body)
        ))
    })?;
    let usage = metered.usage.as_ref().map(ResponseUsage::to_chat);
    Ok(Answer::Json(JsonAnswer {
        body,
        model: metered.model,
        tokens: usage.as_ref().map(token_counts),
        total_tokens: usage.as_ref().map(|u| u.total_tokens),
        clock,
    }))
}

/// Opens a stream to its first content event; its events go to the client unchanged.
pub async fn receive_stream(upstream: UpstreamResponse, clock: Clock) -> Result<Answer, Failure> {
    let next = NextSequence::default();
    let raw = RawStream::new(Box::new(ResponsesEvents::new(next.clone())));
    let reader = StreamReader::open_raw(upstream, raw, clock).await?;
    Ok(Answer::Stream(Box::new(StreamAnswer {
        reader,
        encoder: Box::new(ResponsesRawEncoder::new(next)),
    })))
}
