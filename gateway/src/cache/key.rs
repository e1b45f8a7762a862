//! Cache keys: a SHA-256 of the request's canonical form, prefixed by who may share it.
//!
//! The canonical form is the operation's own view of the request: every field that changes
//! the answer, in a fixed order, with JSON objects sorted by key (serde_json's map is a
//! `BTreeMap`), so field order and whitespace in the client's body do not matter. Left out:
//! the model name (the route is in the prefix, so aliases share answers), `user` and the
//! other fields that only label a request (`metadata`, `store`, `safety_identifier`,
//! `prompt_cache_key`), and `stream`/`stream_options`, which are replaced by the answer's
//! format — a stream and a JSON answer are stored apart, each replayed as it was sent.

use std::io::Write;

use serde::{Serialize, ser::SerializeMap};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::wire::openai::{ChatRequest, EmbeddingsRequest, Message, Role, Stop, Tool};

/// One stored answer's key, or one semantic scope's.
pub type Key = [u8; 32];

/// Fields of the request body that never change the answer.
const LABELS: [&str; 4] = ["metadata", "store", "safety_identifier", "prompt_cache_key"];

/// A hasher that starts with who shares the answer: route, scope (team or key), operation,
/// each length-prefixed so no two prefixes run together.
pub fn scoped(route: &str, scope: &str, operation: &str) -> Sha256 {
    let mut h = Sha256::new();
    for part in [route, scope, operation] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h
}

/// Writes serialized JSON straight into a hasher (no intermediate buffer).
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash_json<T: Serialize>(out: &mut Sha256, value: &T) -> bool {
    serde_json::to_writer(HashWriter(out), value).is_ok()
}

/// The pass-through fields, labels (and `user`, where it travels here) left out.
struct Rest<'a>(&'a Map<String, Value>);

impl Serialize for Rest<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !LABELS.contains(&k.as_str()) && k != "user" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ChatView<'a> {
    format: &'static str,
    messages: &'a [Message],
    tools: &'a Option<Vec<Tool>>,
    tool_choice: &'a Option<Value>,
    response_format: &'a Option<Value>,
    n: Option<u32>,
    stop: &'a Option<Stop>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<i64>,
    rest: Rest<'a>,
}

impl<'a> ChatView<'a> {
    fn of(req: &'a ChatRequest, messages: &'a [Message]) -> Self {
        Self {
            // The stored format; the usage chunk is part of a stream only when asked for.
            format: match (req.is_stream(), req.include_usage()) {
                (false, _) => "json",
                (true, false) => "sse",
                (true, true) => "sse+usage",
            },
            messages,
            tools: &req.tools,
            tool_choice: &req.tool_choice,
            response_format: &req.response_format,
            n: req.n,
            stop: &req.stop,
            max_tokens: req.max_tokens,
            max_completion_tokens: req.max_completion_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed,
            rest: Rest(&req.rest),
        }
    }
}

/// Writes a chat request's canonical form.
pub fn chat(req: &ChatRequest, out: &mut Sha256) -> bool {
    hash_json(out, &ChatView::of(req, &req.messages))
}

/// For the semantic cache: writes everything but the last message (the conversation before
/// it and the parameters) and returns that message's text, when it is a user's text.
pub fn chat_semantic(req: &ChatRequest, context: &mut Sha256) -> Option<String> {
    let (last, before) = req.messages.split_last()?;
    if last.role != Role::User {
        return None;
    }
    let text = last.text_content();
    if text.trim().is_empty() || !hash_json(context, &ChatView::of(req, before)) {
        return None;
    }
    Some(text)
}

#[derive(Serialize)]
struct EmbeddingsView<'a> {
    input: &'a crate::wire::openai::EmbeddingsInput,
    encoding_format: &'a Option<String>,
    dimensions: Option<u32>,
    rest: Rest<'a>,
}

/// Writes an embeddings request's canonical form (`user` travels in `rest` here).
pub fn embeddings(req: &EmbeddingsRequest, out: &mut Sha256) -> bool {
    hash_json(
        out,
        &EmbeddingsView {
            input: &req.input,
            encoding_format: &req.encoding_format,
            dimensions: req.dimensions,
            rest: Rest(&req.rest),
        },
    )
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
