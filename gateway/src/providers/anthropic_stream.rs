//! The Anthropic stream translator: SSE events of the 2023-06-01 format into OpenAI chunks.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::{AnthropicUsage, ErrorFields, JSON_TOOL_PREFIX, finish_reason};
use crate::{
    providers::{Failure, FailureKind, StreamTranslator, Target, quote},
    stream::sse::SseDecoder,
    wire::openai::{ChatChunk, Delta, FunctionCallDelta, ToolCallDelta},
};

/// Most content blocks one streamed message may open.
const MAX_STREAM_BLOCKS: usize = 4096;

/// Event names of the 2023-06-01 stream format; others are skipped.
const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: AnthropicUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorFields,
    },
}

#[derive(Deserialize)]
struct TypeTag {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct StartMessage {
    id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    /// Signatures, citations and delta types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What an open content block streams into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    Text,
    /// A tool call, with its index among the message's calls.
    Tool(u32),
    /// The `json_schema` answer tool: its input streams as content.
    Json,
    Thinking,
    Skipped,
}

/// Translates an Anthropic Messages stream into OpenAI chunks.
#[derive(Debug)]
pub struct AnthropicStream {
    decoder: SseDecoder,
    id: String,
    model: String,
    created: i64,
    started: bool,
    done: bool,
    role_sent: bool,
    blocks: HashMap<u32, BlockKind>,
    tool_calls: u32,
    json_answer: bool,
    stop_reason: Option<String>,
    usage: AnthropicUsage,
}

impl AnthropicStream {
    pub(super) fn new(target: &Target<'_>) -> Self {
        Self {
            decoder: SseDecoder::new(),
            id: format!("chatcmpl-{}", target.request_id),
            model: target.model.to_owned(),
            created: target.created,
            started: false,
            done: false,
            role_sent: false,
            blocks: HashMap::new(),
            tool_calls: 0,
            json_answer: false,
            stop_reason: None,
            usage: AnthropicUsage::default(),
        }
    }

    fn push(&mut self, out: &mut Vec<ChatChunk>, mut delta: Delta, finish: Option<&str>) {
        if !self.role_sent {
            delta.role = Some("assistant".to_owned());
            self.role_sent = true;
        }
        out.push(ChatChunk::delta(
            &self.id,
            &self.model,
            self.created,
            delta,
            finish.map(str::to_owned),
        ));
    }

    fn text(&mut self, out: &mut Vec<ChatChunk>, text: String) {
        if !text.is_empty() {
            let delta = Delta {
                content: Some(text),
                ..Delta::default()
            };
            self.push(out, delta, None);
        }
    }

    fn reasoning(&mut self, out: &mut Vec<ChatChunk>, text: String) {
        if !text.is_empty() {
            let mut delta = Delta::default();
            delta
                .rest
                .insert("reasoning_content".to_owned(), Value::String(text));
            self.push(out, delta, None);
        }
    }

    fn tool_call(&mut self, out: &mut Vec<ChatChunk>, call: ToolCallDelta) {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        };
        self.push(out, delta, None);
    }

    fn on_event(
        &mut self,
        name: Option<&str>,
        data: &str,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), Failure> {
        let unreadable = |e: serde_json::Error| {
            Failure::protocol(format!(
                "unreadable Anthropic stream event ({e}): {}",
                quote(data.as_bytes())
            ))
        };
        let name = match name {
            Some(name) => name.to_owned(),
            None => {
                serde_json::from_str::<TypeTag>(data)
                    .map_err(unreadable)?
                    .kind
            }
        };
        if !KNOWN_EVENTS.contains(&name.as_str()) {
            return Ok(());
        }
        let event: Event = serde_json::from_str(data).map_err(unreadable)?;
        match event {
            Event::Ping => return Ok(()),
            Event::Error { error } => {
                return Err(Failure {
                    kind: error.kind().unwrap_or(FailureKind::Server),
                    status: None,
                    message: error.describe(),
                    retry_after: None,
                });
            }
            _ if self.done => {
                return Err(Failure::protocol(format!(
                    "Anthropic sent {name} after message_stop"
                )));
            }
            Event::MessageStart { message } => {
                if self.started {
                    return Err(Failure::protocol("Anthropic sent a second message_start"));
                }
                self.started = true;
                self.id = message.id;
                if let Some(model) = message.model {
                    self.model = model;
                }
                self.usage.merge(message.usage);
                return Ok(());
            }
            _ if !self.started => {
                return Err(Failure::protocol(format!(
                    "Anthropic sent {name} before message_start"
                )));
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => self.start_block(index, content_block, out)?,
            Event::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out)?,
            Event::ContentBlockStop { index } => {
                if !self.blocks.contains_key(&index) {
                    return Err(Failure::protocol(format!(
                        "Anthropic stopped content block {index}, which it never started"
                    )));
                }
            }
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                self.usage.merge(usage);
            }
            Event::MessageStop => {
                self.done = true;
                let json_only = self.json_answer && self.tool_calls == 0;
                let finish = finish_reason(self.stop_reason.as_deref(), json_only);
                self.push(out, Delta::default(), Some(finish));
                out.push(ChatChunk::usage(
                    &self.id,
                    &self.model,
                    self.created,
                    self.usage.to_openai(),
                ));
            }
        }
        Ok(())
    }

    fn start_block(
        &mut self,
        index: u32,
        block: StartBlock,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), Failure> {
        if self.blocks.contains_key(&index) {
            return Err(Failure::protocol(format!(
                "Anthropic started content block {index} twice"
            )));
        }
        if self.blocks.len() >= MAX_STREAM_BLOCKS {
            return Err(Failure::protocol(format!(
                "Anthropic opened more than {MAX_STREAM_BLOCKS} content blocks"
            )));
        }
        let kind = match block {
            StartBlock::Text { text } => {
                self.text(out, text);
                BlockKind::Text
            }
            StartBlock::ToolUse { name, .. } if name.starts_with(JSON_TOOL_PREFIX) => {
                self.json_answer = true;
                BlockKind::Json
            }
            StartBlock::ToolUse { id, name } => {
                let index = self.tool_calls;
                self.tool_calls += 1;
                self.tool_call(
                    out,
                    ToolCallDelta {
                        index,
                        id: Some(id),
                        kind: Some("function".to_owned()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(String::new()),
                        }),
                    },
                );
                BlockKind::Tool(index)
            }
            StartBlock::Thinking { thinking } => {
                self.reasoning(out, thinking);
                BlockKind::Thinking
            }
            StartBlock::Other => BlockKind::Skipped,
        };
        self.blocks.insert(index, kind);
        Ok(())
    }

    fn block_delta(
        &mut self,
        index: u32,
        delta: BlockDelta,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), Failure> {
        let kind = *self.blocks.get(&index).ok_or_else(|| {
            Failure::protocol(format!(
                "Anthropic sent a delta for content block {index}, which it never started"
            ))
        })?;
        match (kind, delta) {
            (BlockKind::Skipped, _) | (_, BlockDelta::Other) => {}
            (BlockKind::Text, BlockDelta::TextDelta { text })
            | (BlockKind::Json, BlockDelta::InputJsonDelta { partial_json: text }) => {
                self.text(out, text);
            }
            (BlockKind::Tool(index), BlockDelta::InputJsonDelta { partial_json }) => {
                if !partial_json.is_empty() {
                    let call = ToolCallDelta {
                        index,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(partial_json),
                        }),
                        ..ToolCallDelta::default()
                    };
                    self.tool_call(out, call);
                }
            }
            (BlockKind::Thinking, BlockDelta::ThinkingDelta { thinking }) => {
                self.reasoning(out, thinking);
            }
            _ => {
                return Err(Failure::protocol(format!(
                    "Anthropic sent a delta that does not match content block {index} ({kind:?})"
                )));
            }
        }
        Ok(())
    }
}

impl StreamTranslator for AnthropicStream {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        let events = self
            .decoder
            .feed(bytes)
            .map_err(|e| Failure::protocol(e.to_string()))?;
        let mut out = Vec::new();
        for event in events {
            self.on_event(event.event.as_deref(), &event.data, &mut out)?;
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(Failure::protocol(
                "the Anthropic stream ended before message_stop",
            ))
        }
    }
}

#[cfg(test)]
#[path = "anthropic_stream_tests.rs"]
mod tests;
