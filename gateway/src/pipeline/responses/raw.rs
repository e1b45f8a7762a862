//! Responses streams from OpenAI and Azure, passed through byte for byte (see
//! [`crate::pipeline::passthrough`]). [`ResponsesEvents`] reads each event without changing
//! it: output deltas and new items are content; `response.completed` and
//! `response.incomplete` end the answer and carry its usage; `response.failed` and `error`
//! are the upstream's own failure (forwarded as they are). [`ResponsesRawEncoder`] adds only
//! the cost comment after a clean end and, when the stream fails without the upstream
//! saying so (a cut, a timeout), an `error` event numbered after the last event forwarded.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{
    error::GatewayError,
    failure::{Failure, quote},
    pipeline::{
        encode::StreamEncoder,
        passthrough::{RawFormat, Seen},
    },
    providers::openai::openai_error,
    stream::sse::SseEvent,
    wire::{
        openai::{ChatChunk, Usage},
        responses::ResponseUsage,
    },
};

/// The next `sequence_number` after the events forwarded so far (shared by the reader and
/// the encoder of one stream).
#[derive(Clone, Debug, Default)]
pub struct NextSequence(Arc<AtomicU64>);

/// Reads Responses events.
#[derive(Debug, Default)]
pub struct ResponsesEvents {
    usage: Option<Usage>,
    next: NextSequence,
}

impl ResponsesEvents {
    /// A reader counting sequence numbers into `next`.
    pub fn new(next: NextSequence) -> Self {
        Self { usage: None, next }
    }

    fn take_usage(&mut self, response: &Value) {
        if let Some(u) = response
            .get("usage")
            .and_then(|u| serde_json::from_value::<ResponseUsage>(u.clone()).ok())
        {
            self.usage = Some(u.to_chat());
        }
    }
}

/// A failure in OpenAI's error shape, classified like any OpenAI error.
fn failure(error: &Value) -> Failure {
    let body = json!({"error": error}).to_string();
    openai_error(StatusCode::OK, &HeaderMap::new(), body.as_bytes())
}

impl RawFormat for ResponsesEvents {
    fn event(&mut self, event: &SseEvent) -> Result<Seen, Failure> {
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            Failure::protocol(format!(
                "unreadable Responses event ({e}): {}",
                quote(event.data.as_bytes())
            ))
        })?;
        if let Some(n) = data.get("sequence_number").and_then(Value::as_u64) {
            self.next.0.store(n + 1, Ordering::Relaxed);
        }
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        Ok(match kind {
            "response.completed" | "response.incomplete" => {
                if let Some(response) = data.get("response") {
                    self.take_usage(response);
                }
                Seen::End
            }
            "response.failed" => {
                let response = data.get("response").cloned().unwrap_or_default();
                self.take_usage(&response);
                let error = response.get("error").cloned().unwrap_or_default();
                Seen::Error(failure(&json!({
                    "message": error.get("message").cloned().unwrap_or(json!("the response failed")),
                    "code": error.get("code").cloned().unwrap_or(Value::Null),
                    "type": "server_error",
                })))
            }
            // Open Responses nests the error; OpenAI's own `error` event is flat.
            "error" => Seen::Error(failure(data.get("error").unwrap_or(&data))),
            "response.output_item.added" => Seen::Content,
            k if k.ends_with(".delta") => Seen::Content,
            _ => Seen::Meta,
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

/// The Responses door's encoder for a passed-through stream.
#[derive(Debug)]
pub struct ResponsesRawEncoder {
    next: NextSequence,
}

impl ResponsesRawEncoder {
    /// An encoder numbering its error event after `next`.
    pub fn new(next: NextSequence) -> Self {
        Self { next }
    }
}

impl StreamEncoder for ResponsesRawEncoder {
    fn chunk(&mut self, _chunk: &ChatChunk, _out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        Err(Failure::protocol(
            "a translated chunk reached a passed-through Responses stream",
        ))
    }

    fn end(&mut self, _usage: Option<&Usage>, cost: Option<Decimal>, out: &mut VecDeque<Bytes>) {
        if let Some(cost) = cost {
            out.push_back(Bytes::from(format!(
                ": x-tollgate-cost-usd={}\n\n",
                crate::pipeline::pays::cost_header(cost)
            )));
        }
    }

    fn fail(&mut self, failure: &Failure, out: &mut VecDeque<Bytes>) {
        let error = GatewayError::Upstream(failure.clone());
        let (_, kind, code) = error.parts();
        let event = json!({
            "type": "error",
            "sequence_number": self.next.0.load(Ordering::Relaxed),
            "error": {"type": kind, "code": code.unwrap_or("upstream_error"),
                "message": error.body().error.message, "param": null},
        });
        out.push_back(Bytes::from(format!("event: error\ndata: {event}\n\n")));
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
