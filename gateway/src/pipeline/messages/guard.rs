//! What route guardrails read on the Messages door: every text the model reads in a
//! request (the system prompt as instructions, text blocks, tool results, the string values
//! of tool calls' `input`), the text blocks of an answer, and — after a redaction — the
//! client's body rebuilt so an Anthropic backend, which gets that body rather than the typed
//! view, receives the redacted text too.
//!
//! Thinking blocks are not read: Anthropic checks their signatures, so they cannot be
//! redacted, and they are the model's own earlier output. Documents, images and other block
//! types are not read either.

use serde_json::{Map, Value, value::RawValue};

use crate::{
    error::GatewayError,
    guardrails::PromptText,
    wire::anthropic::{Block, InputContent, MessagesBody, MessagesRequest, System},
};

/// The prompt's text parts of the typed view, in the order [`rebuild_raw`] walks the body.
pub fn prompt_texts(body: &mut MessagesBody) -> Vec<PromptText<'_>> {
    let mut out = Vec::new();
    match &mut body.system {
        Some(System::Text(text)) => out.push(PromptText {
            text,
            instructions: true,
        }),
        Some(System::Blocks(blocks)) => {
            for b in blocks {
                block_texts(b, true, &mut out);
            }
        }
        None => {}
    }
    for m in &mut body.messages {
        content_texts(&mut m.content, false, &mut out);
    }
    out
}

fn content_texts<'a>(
    content: &'a mut InputContent,
    instructions: bool,
    out: &mut Vec<PromptText<'a>>,
) {
    match content {
        InputContent::Text(text) => out.push(PromptText { text, instructions }),
        InputContent::Blocks(blocks) => {
            for b in blocks {
                block_texts(b, instructions, out);
            }
        }
    }
}

fn block_texts<'a>(block: &'a mut Block, instructions: bool, out: &mut Vec<PromptText<'a>>) {
    match block {
        Block::Text { text, .. } => out.push(PromptText { text, instructions }),
        Block::ToolUse { input, .. } => {
            let mut strings = Vec::new();
            value_strings(input, &mut strings);
            out.extend(strings.into_iter().map(|text| PromptText {
                text,
                instructions: false,
            }));
        }
        Block::ToolResult {
            content: Some(content),
            ..
        } => content_texts(content, instructions, out),
        _ => {}
    }
}

/// Every string value (not key) in `v`, depth first in the map's order.
fn value_strings<'a>(v: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter_mut().for_each(|i| value_strings(i, out)),
        Value::Object(map) => map.values_mut().for_each(|i| value_strings(i, out)),
        _ => {}
    }
}

/// The same strings as [`prompt_texts`], found in the client's body as JSON. Each block is
/// classified by the typed [`Block`] itself, so the two walks agree.
fn raw_texts<'a>(body: &'a mut Map<String, Value>, out: &mut Vec<&'a mut String>) {
    let mut system = None;
    let mut messages = None;
    for (key, value) in body.iter_mut() {
        match key.as_str() {
            "system" => system = Some(value),
            "messages" => messages = Some(value),
            _ => {}
        }
    }
    if let Some(system) = system {
        raw_content_texts(system, out);
    }
    for m in messages.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(content) = m.get_mut("content") {
            raw_content_texts(content, out);
        }
    }
}

fn raw_content_texts<'a>(content: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match content {
        Value::String(s) => out.push(s),
        Value::Array(blocks) => blocks.iter_mut().for_each(|b| raw_block_texts(b, out)),
        _ => {}
    }
}

fn raw_block_texts<'a>(block: &'a mut Value, out: &mut Vec<&'a mut String>) {
    let kind = serde_json::from_value::<Block>(block.clone());
    let Value::Object(fields) = block else {
        return;
    };
    match kind {
        Ok(Block::Text { .. }) => {
            if let Some(Value::String(text)) = fields.get_mut("text") {
                out.push(text);
            }
        }
        Ok(Block::ToolUse { .. }) => {
            if let Some(input) = fields.get_mut("input") {
                value_strings(input, out);
            }
        }
        Ok(Block::ToolResult { .. }) => {
            if let Some(content) = fields.get_mut("content") {
                raw_content_texts(content, out);
            }
        }
        _ => {}
    }
}

/// After a redaction of `req.body`: the client's body (`raw`) with the same texts replaced,
/// every other field kept, so a passthrough to Anthropic forwards the redacted prompt.
pub fn rebuild_raw(req: &mut MessagesRequest) -> Result<(), GatewayError> {
    let broken = || GatewayError::Internal("the redacted request could not be rebuilt");
    let mut raw: Map<String, Value> = serde_json::from_str(req.raw.get()).map_err(|_| broken())?;
    let mut targets = Vec::new();
    raw_texts(&mut raw, &mut targets);
    let texts = prompt_texts(&mut req.body);
    if texts.len() != targets.len() {
        return Err(broken());
    }
    for (target, redacted) in targets.into_iter().zip(texts) {
        target.clone_from(redacted.text);
    }
    let raw: Box<RawValue> = serde_json::value::to_raw_value(&raw).map_err(|_| broken())?;
    req.raw = raw;
    Ok(())
}

/// The text blocks of an Anthropic `message` body (what the client reads), mutably.
pub fn answer_texts(body: &mut Value) -> Option<Vec<&mut String>> {
    let content = body.get_mut("content")?.as_array_mut()?;
    Some(
        content
            .iter_mut()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| match b.get_mut("text") {
                Some(Value::String(s)) => Some(s),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "fixtures")]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_seen_and_a_redaction_reaches_the_raw_body() {
        let body = r#"{"model":"m","max_tokens":5,"x_keep":{"n":1.50},"system":[{"type":"text","text":"sys a@b.c","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"plain a@b.c"},{"role":"assistant","content":[{"type":"thinking","thinking":"t a@b.c","signature":"s"},{"type":"tool_use","id":"1","name":"mail","input":{"to":"a@b.c","n":2}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"1","content":[{"type":"text","text":"sent a@b.c"}]},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc"}}]}]}"#;
        let mut req: MessagesRequest = serde_json::from_str(body).unwrap();
        let texts: Vec<(String, bool)> = prompt_texts(&mut req.body)
            .into_iter()
            .map(|p| (p.text.clone(), p.instructions))
            .collect();
        assert_eq!(
            texts,
            [
                ("sys a@b.c".to_owned(), true),
                ("plain a@b.c".to_owned(), false),
                ("a@b.c".to_owned(), false),
                ("sent a@b.c".to_owned(), false),
            ]
        );
        for p in prompt_texts(&mut req.body) {
            *p.text = p.text.replace("a@b.c", "[EMAIL]");
        }
        rebuild_raw(&mut req).unwrap();
        let raw = req.raw.get();
        assert_eq!(raw.matches("[EMAIL]").count(), 4, "{raw}");
        assert!(raw.contains("t a@b.c"), "thinking is left alone: {raw}");
        let v: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(v["x_keep"]["n"], 1.5);
        assert_eq!(v["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(v["messages"][1]["content"][0]["signature"], "s");
    }
}
