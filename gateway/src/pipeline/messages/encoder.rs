//! Chat chunks (from any non-Anthropic backend) as Anthropic Messages stream events:
//! `message_start`, then one content block at a time — `thinking` (`thinking_delta`),
//! `text` (`text_delta`), `tool_use` (`input_json_delta`) — each opened by
//! `content_block_start` and closed by `content_block_stop` when the next kind begins,
//! then `message_delta` (stop reason, usage) and `message_stop` after a clean end only.
//! A failure after the start is an `error` event, never a `message_stop`, so SDKs raise.
//! No `ping`s: the gateway forwards what the backend sends as it comes, and its own idle
//! timeout ends a silent upstream.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::answer::{AnthropicUsageOut, error_event, message_id, reasoning, stop_reason};
use crate::{
    failure::Failure,
    pipeline::encode::StreamEncoder,
    wire::openai::{ChatChunk, ToolCallDelta, Usage},
};

/// The kind of the open content block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its index among the chat answer's calls.
    Tool(u32),
}

/// Writes chat chunks as Anthropic events.
#[derive(Debug)]
pub struct AnthropicEncoder {
    id: String,
    model: String,
    started: bool,
    open: Option<Open>,
    /// Index of the next content block.
    next_block: u32,
    /// Chat tool-call indexes already given a block.
    tools_seen: HashSet<u32>,
    stop: &'static str,
    usage: Option<Usage>,
}

/// `event: NAME` and `data: JSON`.
fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl AnthropicEncoder {
    /// An encoder whose `message_start` uses `id` and `model` until a chunk names them.
    pub fn new(id: &str, model: &str) -> Self {
        Self {
            id: message_id(id),
            model: model.to_owned(),
            started: false,
            open: None,
            next_block: 0,
            tools_seen: HashSet::new(),
            stop: "end_turn",
            usage: None,
        }
    }

    fn start(&mut self, out: &mut VecDeque<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": AnthropicUsageOut::default(),
        });
        out.push_back(event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        ));
    }

    fn close(&mut self, out: &mut VecDeque<Bytes>) {
        if self.open.take().is_some() {
            let index = self.next_block - 1;
            out.push_back(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// Opens a block of `kind` unless it is the open one.
    fn ensure(&mut self, kind: Open, block: Value, out: &mut VecDeque<Bytes>) {
        if self.open == Some(kind) {
            return;
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(kind);
        out.push_back(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
    }

    fn delta(&self, delta: Value, out: &mut VecDeque<Bytes>) {
        let index = self.next_block - 1;
        out.push_back(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }

    fn text(&mut self, text: &str, out: &mut VecDeque<Bytes>) {
        self.ensure(Open::Text, json!({"type": "text", "text": ""}), out);
        self.delta(json!({"type": "text_delta", "text": text}), out);
    }

    fn tool(&mut self, call: &ToolCallDelta, out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        if self.open != Some(Open::Tool(call.index)) {
            if !self.tools_seen.insert(call.index) {
                return Err(Failure::protocol(
                    "the backend interleaved tool calls, which Anthropic events cannot carry",
                ));
            }
            let name = call.function.as_ref().and_then(|f| f.name.clone());
            let id = call
                .id
                .clone()
                .unwrap_or_else(|| format!("toolu_{}_{}", self.id, call.index));
            self.ensure(
                Open::Tool(call.index),
                json!({"type": "tool_use", "id": id, "name": name.unwrap_or_default(), "input": {}}),
                out,
            );
        }
        if let Some(args) = call
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            self.delta(
                json!({"type": "input_json_delta", "partial_json": args}),
                out,
            );
        }
        Ok(())
    }
}

impl StreamEncoder for AnthropicEncoder {
    fn chunk(&mut self, chunk: &ChatChunk, out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        if !self.started {
            if !chunk.id.is_empty() {
                self.id = message_id(&chunk.id);
            }
            if !chunk.model.is_empty() {
                self.model.clone_from(&chunk.model);
            }
            self.start(out);
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            let d = &choice.delta;
            if let Some(r) = reasoning(&d.rest) {
                self.ensure(
                    Open::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    out,
                );
                self.delta(json!({"type": "thinking_delta", "thinking": r}), out);
            }
            if let Some(text) = d.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(text, out);
            }
            if let Some(refusal) = d.rest.get("refusal").and_then(Value::as_str) {
                self.text(refusal, out);
                self.stop = "refusal";
            }
            for call in d.tool_calls.iter().flatten() {
                self.tool(call, out)?;
            }
            if let Some(finish) = &choice.finish_reason
                && self.stop != "refusal"
            {
                self.stop = stop_reason(Some(finish));
            }
        }
        Ok(())
    }

    fn end(&mut self, usage: Option<&Usage>, cost: Option<Decimal>, out: &mut VecDeque<Bytes>) {
        self.start(out);
        self.close(out);
        let usage = usage
            .or(self.usage.as_ref())
            .map(AnthropicUsageOut::from)
            .unwrap_or_default();
        out.push_back(event(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop, "stop_sequence": null},
                "usage": usage}),
        ));
        if let Some(cost) = cost {
            out.push_back(Bytes::from(format!(
                ": x-tollgate-cost-usd={}\n\n",
                crate::pipeline::pays::cost_header(cost)
            )));
        }
        out.push_back(event("message_stop", &json!({"type": "message_stop"})));
    }

    fn fail(&mut self, failure: &Failure, out: &mut VecDeque<Bytes>) {
        out.push_back(error_event(failure));
    }
}

#[cfg(test)]
#[path = "encoder_tests.rs"]
mod tests;
