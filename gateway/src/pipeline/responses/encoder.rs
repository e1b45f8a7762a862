//! The Responses door's stream: translated chat chunks written as Responses SSE events
//! (`event: <type>` + `data: <json>`), each with its `sequence_number`, in the documented
//! order:
//!
//! `response.created`, `response.in_progress`, then per output item
//! `response.output_item.added`, for a message `response.content_part.added`,
//! `response.output_text.delta`… `response.output_text.done`, `response.content_part.done`,
//! for a function call `response.function_call_arguments.delta`…
//! `response.function_call_arguments.done`, then `response.output_item.done`; finally
//! `response.completed` (or `response.incomplete` when the output limit or a content filter
//! cut the answer), carrying the whole response with its usage.
//!
//! An item stays open until other output begins (reasoning, text, the next tool call), so
//! items never interleave (providers stream one call after the other). Reasoning text becomes a `reasoning` item sent whole (added, then
//! done). A failure after the stream started ends it with `response.failed` (the response
//! with `status: failed` and its `error`) and then an `error` event, never
//! `response.completed`: SDKs raise instead of taking a cut answer as complete.

use std::collections::VecDeque;

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{
    answer::{self, item_id},
    store::{ResponseStore, Stored},
};
use crate::{
    error::GatewayError,
    failure::Failure,
    pipeline::encode::StreamEncoder,
    wire::{
        openai::{ChatChunk, ToolCallDelta, Usage},
        responses::{OutputContent, OutputItem, ResponseObject},
    },
};

/// Where a finished stream's response is stored.
pub struct SaveTo {
    /// The caller's store.
    pub store: ResponseStore,
    /// The conversation before the response's output.
    pub history: Vec<Value>,
}

/// Writes chat chunks as Responses events.
pub struct ResponsesEncoder {
    response: ResponseObject,
    started: bool,
    sequence: u64,
    /// Output indexes of the open items.
    open: Vec<usize>,
    /// (chat tool-call index, output index) of every call so far.
    calls: Vec<(u32, usize)>,
    finish_reason: Option<String>,
    save: Option<SaveTo>,
}

impl ResponsesEncoder {
    /// An encoder answering with `template` (an `in_progress` response without output).
    pub fn new(template: ResponseObject, save: Option<SaveTo>) -> Self {
        Self {
            response: template,
            started: false,
            sequence: 0,
            open: Vec::new(),
            calls: Vec::new(),
            finish_reason: None,
            save,
        }
    }

    fn event(&mut self, kind: &str, mut body: Value, out: &mut VecDeque<Bytes>) {
        if let Value::Object(fields) = &mut body {
            fields.insert("type".into(), Value::String(kind.to_owned()));
            fields.insert("sequence_number".into(), Value::from(self.sequence));
        }
        self.sequence += 1;
        let json = serde_json::to_string(&body).unwrap_or_default();
        out.push_back(Bytes::from(format!("event: {kind}\ndata: {json}\n\n")));
    }

    fn snapshot(&self) -> Value {
        serde_json::to_value(&self.response).unwrap_or_default()
    }

    fn start(&mut self, out: &mut VecDeque<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.snapshot();
        self.event("response.created", json!({"response": response}), out);
        let response = self.snapshot();
        self.event("response.in_progress", json!({"response": response}), out);
    }

    fn item_json(&self, index: usize) -> Value {
        self.response
            .output
            .get(index)
            .and_then(|item| serde_json::to_value(item).ok())
            .unwrap_or_default()
    }

    fn add_item(&mut self, item: OutputItem, out: &mut VecDeque<Bytes>) -> usize {
        let index = self.response.output.len();
        self.response.output.push(item);
        self.open.push(index);
        let item = self.item_json(index);
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
            out,
        );
        index
    }

    /// The open item, when it is of the kind `is_kind` accepts.
    fn open_of(&self, is_kind: impl Fn(&OutputItem) -> bool) -> Option<usize> {
        match self.open.as_slice() {
            [index] => self
                .response
                .output
                .get(*index)
                .filter(|item| is_kind(item))
                .map(|_| *index),
            _ => None,
        }
    }

    fn reasoning(&mut self, text: &str, out: &mut VecDeque<Bytes>) {
        let index = match self.open_of(|i| matches!(i, OutputItem::Reasoning { .. })) {
            Some(index) => index,
            None => {
                self.close_all("completed", out);
                let id = item_id(&self.response.id, "rs", self.response.output.len());
                self.add_item(
                    OutputItem::Reasoning {
                        id,
                        summary: Vec::new(),
                        content: Vec::new(),
                    },
                    out,
                )
            }
        };
        if let Some(OutputItem::Reasoning { content, .. }) = self.response.output.get_mut(index) {
            match content.first_mut() {
                Some(OutputContent::ReasoningText { text: all }) => all.push_str(text),
                _ => content.push(OutputContent::ReasoningText {
                    text: text.to_owned(),
                }),
            }
        }
    }

    fn text(&mut self, delta: &str, out: &mut VecDeque<Bytes>) {
        let index = match self.open_of(|i| matches!(i, OutputItem::Message { .. })) {
            Some(index) => index,
            None => {
                self.close_all("completed", out);
                let id = item_id(&self.response.id, "msg", self.response.output.len());
                let index = self.add_item(
                    OutputItem::Message {
                        id: id.clone(),
                        status: "in_progress".into(),
                        role: "assistant".into(),
                        content: Vec::new(),
                    },
                    out,
                );
                let part = serde_json::to_value(OutputContent::text("")).unwrap_or_default();
                self.event(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                    out,
                );
                if let Some(OutputItem::Message { content, .. }) =
                    self.response.output.get_mut(index)
                {
                    content.push(OutputContent::text(""));
                }
                index
            }
        };
        let mut id = String::new();
        if let Some(OutputItem::Message {
            id: item, content, ..
        }) = self.response.output.get_mut(index)
        {
            id.clone_from(item);
            if let Some(OutputContent::OutputText { text, .. }) = content.first_mut() {
                text.push_str(delta);
            }
        }
        self.event(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
            out,
        );
    }

    fn tool_call(
        &mut self,
        call: &ToolCallDelta,
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), Failure> {
        let known = self
            .calls
            .iter()
            .find(|(c, _)| *c == call.index)
            .map(|(_, i)| *i);
        let index = match known {
            Some(index) if self.open.contains(&index) => index,
            Some(_) => {
                return Err(Failure::protocol(
                    "a tool call continued after other output began",
                ));
            }
            None => {
                self.close_all("completed", out);
                let position = self.response.output.len();
                let function = call.function.as_ref();
                let item = OutputItem::FunctionCall {
                    id: item_id(&self.response.id, "fc", position),
                    call_id: call
                        .id
                        .clone()
                        .unwrap_or_else(|| item_id(&self.response.id, "call", position)),
                    name: function.and_then(|f| f.name.clone()).unwrap_or_default(),
                    arguments: String::new(),
                    status: "in_progress".into(),
                };
                let index = self.add_item(item, out);
                self.calls.push((call.index, index));
                index
            }
        };
        let fragment = call
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty());
        if let Some(fragment) = fragment {
            let mut id = String::new();
            if let Some(OutputItem::FunctionCall {
                id: item,
                arguments,
                ..
            }) = self.response.output.get_mut(index)
            {
                id.clone_from(item);
                arguments.push_str(fragment);
            }
            self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": fragment}),
                out,
            );
        }
        Ok(())
    }

    /// Closes every open item with `status`, sending its `.done` events.
    fn close_all(&mut self, status: &str, out: &mut VecDeque<Bytes>) {
        for index in std::mem::take(&mut self.open) {
            let Some(item) = self.response.output.get_mut(index) else {
                continue;
            };
            let done: Vec<(&str, Value)> = match item {
                OutputItem::Message {
                    id,
                    status: s,
                    content,
                    ..
                } => {
                    *s = status.to_owned();
                    let part = content
                        .first()
                        .cloned()
                        .unwrap_or_else(|| OutputContent::text(""));
                    let text = match &part {
                        OutputContent::OutputText { text, .. } => text.clone(),
                        OutputContent::ReasoningText { text } => text.clone(),
                    };
                    vec![
                        (
                            "response.output_text.done",
                            json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                        ),
                        (
                            "response.content_part.done",
                            json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                        ),
                    ]
                }
                OutputItem::FunctionCall {
                    id,
                    status: s,
                    arguments,
                    ..
                } => {
                    *s = status.to_owned();
                    vec![(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "arguments": arguments}),
                    )]
                }
                OutputItem::Reasoning { .. } => Vec::new(),
            };
            for (kind, body) in done {
                self.event(kind, body, out);
            }
            let item = self.item_json(index);
            self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
                out,
            );
        }
    }
}

impl StreamEncoder for ResponsesEncoder {
    fn chunk(&mut self, chunk: &ChatChunk, out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        if !self.started {
            self.response.model.clone_from(&chunk.model);
            self.start(out);
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            let delta = &choice.delta;
            if let Some(r) = delta
                .rest
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                self.reasoning(r, out);
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(text, out);
            }
            for call in delta.tool_calls.iter().flatten() {
                self.tool_call(call, out)?;
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.clone());
            }
        }
        Ok(())
    }

    fn end(&mut self, usage: Option<&Usage>, cost: Option<Decimal>, out: &mut VecDeque<Bytes>) {
        self.start(out);
        let cut = matches!(
            self.finish_reason.as_deref(),
            Some("length" | "content_filter")
        );
        self.close_all(if cut { "incomplete" } else { "completed" }, out);
        let now = jiff::Timestamp::now().as_second();
        answer::finish(
            &mut self.response,
            self.finish_reason.as_deref(),
            usage,
            now,
        );
        if let Some(cost) = cost {
            out.push_back(Bytes::from(format!(
                ": x-tollgate-cost-usd={}\n\n",
                crate::pipeline::pays::cost_header(cost)
            )));
        }
        let kind = if self.response.status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        let response = self.snapshot();
        self.event(kind, json!({"response": response}), out);
        if let Some(save) = self.save.take() {
            save.store.save_soon(Stored {
                response: self.response.clone(),
                history: save.history,
            });
        }
    }

    fn fail(&mut self, failure: &Failure, out: &mut VecDeque<Bytes>) {
        self.start(out);
        let error = GatewayError::Upstream(failure.clone());
        let (_, kind, code) = error.parts();
        let message = error.body().error.message;
        let code = code.unwrap_or("upstream_error");
        for index in std::mem::take(&mut self.open) {
            if let Some(
                OutputItem::Message { status, .. } | OutputItem::FunctionCall { status, .. },
            ) = self.response.output.get_mut(index)
            {
                *status = "incomplete".into();
            }
        }
        self.response.status = "failed".into();
        self.response.error = Some(json!({"code": code, "message": message}));
        let response = self.snapshot();
        self.event("response.failed", json!({"response": response}), out);
        self.event(
            "error",
            json!({"error": {"type": kind, "code": code, "message": message, "param": null}}),
            out,
        );
    }
}
