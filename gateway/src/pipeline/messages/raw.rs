//! Anthropic passthrough: the client's body goes to an Anthropic backend with only `model`
//! replaced, its answer comes back unchanged (JSON as it is, streams event by event via
//! [`crate::pipeline::passthrough`]); the gateway only reads the usage.
//!
//! Headers: the provider's configured headers win, then the client's `anthropic-version`
//! and `anthropic-beta` (betas such as extended cache TTLs or interleaved thinking need
//! them), then the adapter's default `anthropic-version`.

use serde::Deserialize;

use crate::{
    failure::{Failure, FailureKind},
    pipeline::passthrough::{RawFormat, Seen},
    providers::{
        RequestError, Target, UpstreamRequest,
        anthropic::{AnthropicUsage, ErrorFields},
        quote,
    },
    stream::sse::SseEvent,
    wire::{anthropic::MessagesRequest, openai::Usage},
};

/// Client headers an Anthropic backend receives.
pub const FORWARDED_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// The upstream request: the client's body, `model` replaced, to `path` of the provider.
pub fn passthrough_request(
    target: &Target<'_>,
    req: &MessagesRequest,
    path: &str,
) -> Result<UpstreamRequest, RequestError> {
    let body = req
        .with_model(target.model)
        .map_err(|e| RequestError::new(format!("request cannot be encoded: {e}"), None))?;
    crate::providers::anthropic::upstream_request(target, path, body, &req.forward_headers)
}

#[derive(Deserialize)]
struct MessageUsage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// The model and usage of an Anthropic `message` body.
pub fn read_message(body: &[u8]) -> Result<(Option<String>, Option<Usage>), Failure> {
    let m: MessageUsage = serde_json::from_slice(body).map_err(|e| {
        Failure::protocol(format!(
            "unreadable Anthropic message ({e}): {}",
            quote(body)
        ))
    })?;
    Ok((m.model, m.usage.map(AnthropicUsage::to_openai)))
}

/// What the reader looks at in an event; everything else is skipped unread.
#[derive(Deserialize)]
struct EventFields {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<MessageUsage>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
    #[serde(default)]
    error: Option<ErrorFields>,
}

/// Reads an Anthropic Messages stream for the pipeline: usage from `message_start` and
/// `message_delta` (cumulative counts), content from `content_block_delta`, the end from
/// `message_stop`, an in-band `error` event as the failure it names.
#[derive(Debug, Default)]
pub struct AnthropicEvents {
    usage: Option<AnthropicUsage>,
}

impl AnthropicEvents {
    fn merge(&mut self, usage: Option<AnthropicUsage>) {
        if let Some(u) = usage {
            self.usage
                .get_or_insert_with(AnthropicUsage::default)
                .merge(u);
        }
    }
}

impl RawFormat for AnthropicEvents {
    fn event(&mut self, event: &SseEvent) -> Result<Seen, Failure> {
        let fields: EventFields = serde_json::from_str(&event.data).map_err(|e| {
            Failure::protocol(format!(
                "unreadable Anthropic stream event ({e}): {}",
                quote(event.data.as_bytes())
            ))
        })?;
        Ok(match event.event.as_deref().unwrap_or(&fields.kind) {
            "message_start" => {
                self.merge(fields.message.and_then(|m| m.usage));
                Seen::Meta
            }
            "message_delta" => {
                self.merge(fields.usage);
                Seen::Meta
            }
            "content_block_delta" => Seen::Content,
            "message_stop" => Seen::End,
            "error" => {
                let failure = match fields.error {
                    Some(e) => Failure {
                        kind: e.kind().unwrap_or(FailureKind::Server),
                        status: None,
                        message: e.describe(),
                        retry_after: None,
                    },
                    None => Failure::new(FailureKind::Server, "Anthropic sent an error event"),
                };
                Seen::Error(failure)
            }
            _ => Seen::Meta,
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_openai)
    }
}
