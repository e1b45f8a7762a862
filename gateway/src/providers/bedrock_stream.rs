//! ConverseStream answers (AWS event-stream frames) → OpenAI chunks.

use serde::Deserialize;
use serde_json::Value;

use super::{ErrorBody, UsageIn, classify_error, error_name, finish_reason, response_id};
use crate::providers::{Failure, FailureKind, StreamTranslator, Target, quote};
use crate::stream::eventstream::{EventStreamDecoder, Message as Frame, header_str};
use crate::wire::openai::{ChatChunk, Delta, FunctionCallDelta, ToolCallDelta, Usage};

/// Translates a ConverseStream answer (event-stream frames) into OpenAI chunks. The state is
/// boxed to keep [`crate::providers::AnyStream`] small.
#[derive(Debug)]
pub struct BedrockStream(Box<State>);

#[derive(Debug)]
struct State {
    decoder: EventStreamDecoder,
    id: String,
    model: String,
    created: i64,
    role_sent: bool,
    /// The tool calls so far, in OpenAI index order.
    tools: Vec<ToolBlock>,
    stopped: bool,
    usage: Option<Usage>,
    usage_sent: bool,
}

/// A tool call's content block.
#[derive(Debug)]
struct ToolBlock {
    /// Bedrock's `contentBlockIndex`.
    block: u32,
    /// The OpenAI tool-call index.
    index: u32,
    /// Whether any argument text was sent.
    has_args: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStartIn {
    content_block_index: u32,
    start: StartIn,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIn {
    tool_use: Option<ToolStartIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStartIn {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDeltaIn {
    content_block_index: u32,
    delta: DeltaIn,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaIn {
    text: Option<String>,
    tool_use: Option<ToolDeltaIn>,
    reasoning_content: Option<ReasoningDeltaIn>,
}

#[derive(Deserialize)]
struct ToolDeltaIn {
    input: String,
}

#[derive(Deserialize)]
struct ReasoningDeltaIn {
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStopIn {
    content_block_index: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStopIn {
    stop_reason: String,
}

#[derive(Deserialize)]
struct MetadataIn {
    usage: UsageIn,
}

fn payload<'de, T: Deserialize<'de>>(event: &str, frame: &'de Frame) -> Result<T, Failure> {
    serde_json::from_slice(frame.payload()).map_err(|e| {
        Failure::protocol(format!(
            "malformed Bedrock {event} event ({e}): {}",
            quote(frame.payload())
        ))
    })
}

impl BedrockStream {
    pub(super) fn new(target: &Target<'_>) -> Self {
        Self(Box::new(State {
            decoder: EventStreamDecoder::new(),
            id: response_id(target),
            model: target.model.to_owned(),
            created: target.created,
            role_sent: false,
            tools: Vec::new(),
            stopped: false,
            usage: None,
            usage_sent: false,
        }))
    }
}

impl State {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        let frames = self
            .decoder
            .feed(bytes)
            .map_err(|e| Failure::protocol(e.to_string()))?;
        let mut out = Vec::new();
        for frame in &frames {
            self.on_frame(frame, &mut out)?;
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        if self.decoder.has_partial() {
            return Err(Failure::protocol(
                "the Bedrock stream was cut inside an event-stream frame",
            ));
        }
        if !self.stopped {
            return Err(Failure::protocol(
                "the Bedrock stream ended before messageStop",
            ));
        }
        let mut out = Vec::new();
        self.usage_chunk(&mut out);
        Ok(out)
    }

    /// The tool call in Bedrock content block `block`.
    fn tool(&mut self, block: u32) -> Option<&mut ToolBlock> {
        self.tools.iter_mut().find(|t| t.block == block)
    }

    fn chunk(&mut self, mut delta: Delta, finish_reason: Option<&str>) -> ChatChunk {
        if !self.role_sent {
            self.role_sent = true;
            delta.role = Some("assistant".into());
        }
        ChatChunk::delta(
            &self.id,
            &self.model,
            self.created,
            delta,
            finish_reason.map(str::to_owned),
        )
    }

    fn tool_chunk(&mut self, piece: ToolCallDelta) -> ChatChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![piece]),
                ..Delta::default()
            },
            None,
        )
    }

    fn usage_chunk(&mut self, out: &mut Vec<ChatChunk>) {
        if let Some(usage) = self
            .usage
            .clone()
            .filter(|_| self.stopped && !self.usage_sent)
        {
            self.usage_sent = true;
            out.push(ChatChunk::usage(&self.id, &self.model, self.created, usage));
        }
    }

    fn on_frame(&mut self, frame: &Frame, out: &mut Vec<ChatChunk>) -> Result<(), Failure> {
        match header_str(frame, ":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = header_str(frame, ":exception-type").unwrap_or("unknown");
                let message = serde_json::from_slice::<ErrorBody>(frame.payload())
                    .ok()
                    .and_then(|b| b.text().map(str::to_owned));
                let message = message.unwrap_or_else(|| quote(frame.payload()));
                return Err(stream_failure(kind, &message));
            }
            Some("error") => {
                let code = header_str(frame, ":error-code").unwrap_or("unknown");
                return Err(stream_failure(
                    code,
                    header_str(frame, ":error-message").unwrap_or(""),
                ));
            }
            other => {
                return Err(Failure::protocol(format!(
                    "unexpected Bedrock event-stream message type {other:?}"
                )));
            }
        }
        let event = header_str(frame, ":event-type")
            .ok_or_else(|| Failure::protocol("Bedrock event without :event-type"))?;
        match event {
            "messageStart" => {}
            "contentBlockStart" => {
                let start: BlockStartIn = payload(event, frame)?;
                if let Some(tool) = start.start.tool_use {
                    let index = u32::try_from(self.tools.len())
                        .map_err(|_| Failure::protocol("too many tool calls"))?;
                    self.tools.push(ToolBlock {
                        block: start.content_block_index,
                        index,
                        has_args: false,
                    });
                    let piece = ToolCallDelta {
                        index,
                        id: Some(tool.tool_use_id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(tool.name),
                            arguments: Some(String::new()),
                        }),
                    };
                    out.push(self.tool_chunk(piece));
                }
            }
            "contentBlockDelta" => {
                let d: BlockDeltaIn = payload(event, frame)?;
                if let Some(text) = d.delta.text.filter(|t| !t.is_empty()) {
                    out.push(self.chunk(
                        Delta {
                            content: Some(text),
                            ..Delta::default()
                        },
                        None,
                    ));
                }
                if let Some(text) = d
                    .delta
                    .reasoning_content
                    .and_then(|r| r.text)
                    .filter(|t| !t.is_empty())
                {
                    let mut delta = Delta::default();
                    delta
                        .rest
                        .insert("reasoning_content".into(), Value::String(text));
                    out.push(self.chunk(delta, None));
                }
                if let Some(tool) = d.delta.tool_use {
                    let call = self.tool(d.content_block_index).ok_or_else(|| {
                        Failure::protocol(format!(
                            "Bedrock tool input for unknown content block {}",
                            d.content_block_index
                        ))
                    })?;
                    if !tool.input.is_empty() {
                        call.has_args = true;
                        let index = call.index;
                        out.push(self.tool_chunk(args_piece(index, tool.input)));
                    }
                }
            }
            "contentBlockStop" => {
                let stop: BlockStopIn = payload(event, frame)?;
                // A call without input still needs valid JSON arguments.
                if let Some(call) = self.tool(stop.content_block_index)
                    && !call.has_args
                {
                    call.has_args = true;
                    let index = call.index;
                    out.push(self.tool_chunk(args_piece(index, "{}".into())));
                }
            }
            "messageStop" => {
                let stop: MessageStopIn = payload(event, frame)?;
                self.stopped = true;
                out.push(self.chunk(Delta::default(), Some(finish_reason(&stop.stop_reason))));
                self.usage_chunk(out);
            }
            "metadata" => {
                let meta: MetadataIn = payload(event, frame)?;
                self.usage = Some(meta.usage.to_openai());
                self.usage_chunk(out);
            }
            _ => {}
        }
        Ok(())
    }
}

fn args_piece(index: u32, arguments: String) -> ToolCallDelta {
    ToolCallDelta {
        index,
        id: None,
        kind: None,
        function: Some(FunctionCallDelta {
            name: None,
            arguments: Some(arguments),
        }),
    }
}

/// A mid-stream exception or error frame as a [`Failure`].
fn stream_failure(error_type: &str, message: &str) -> Failure {
    let kind = classify_error(Some(error_name(error_type)), message, FailureKind::Server);
    Failure::new(kind, quote(format!("{error_type}: {message}").as_bytes()))
}

impl StreamTranslator for BedrockStream {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        self.0.feed(bytes)
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        self.0.finish()
    }
}

#[cfg(test)]
#[path = "bedrock_stream_tests.rs"]
mod tests;
