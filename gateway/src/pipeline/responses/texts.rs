//! The Responses door's text for the route guardrails: every text part the model reads in a
//! request (`instructions`, the stored conversation `previous_response_id` loaded for a
//! translated backend, then `input`), and the `output_text` of a `response` object.
//!
//! Items are JSON values (see `wire::responses`): text is found where `to_chat` reads it —
//! a message's string content or its `input_text`/`output_text`/`text`/`refusal` parts, a
//! `function_call`'s arguments and a `function_call_output`'s output (a string or text
//! parts). Other item types carry no text a translated backend reads (they are refused).

use serde_json::Value;

use super::ResponsesCall;
use crate::{guardrails::PromptText, wire::responses::Input};

/// Every text part of the prompt, mutably, instructions marked.
pub fn prompt(call: &mut ResponsesCall) -> Vec<PromptText<'_>> {
    let ResponsesCall { body, prepared } = call;
    let mut out = Vec::new();
    if let Some(text) = body.instructions.as_mut() {
        out.push(PromptText {
            text,
            instructions: true,
        });
    }
    if let Some(prepared) = prepared.get_mut() {
        for item in &mut prepared.earlier {
            item_texts(item, &mut out);
        }
    }
    match &mut body.input {
        Some(Input::Text(text)) => out.push(PromptText {
            text,
            instructions: false,
        }),
        Some(Input::Items(items)) => {
            for item in items {
                item_texts(item, &mut out);
            }
        }
        None => {}
    }
    out
}

/// The text of one input item.
fn item_texts<'a>(item: &'a mut Value, out: &mut Vec<PromptText<'a>>) {
    let Value::Object(fields) = item else {
        return;
    };
    let kind = fields
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => {
            let instructions = matches!(
                fields.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            );
            if let Some(content) = fields.get_mut("content") {
                parts(content, instructions, out);
            }
        }
        "function_call" => {
            if let Some(Value::String(text)) = fields.get_mut("arguments") {
                out.push(PromptText {
                    text,
                    instructions: false,
                });
            }
        }
        "function_call_output" => {
            if let Some(output) = fields.get_mut("output") {
                parts(output, false, out);
            }
        }
        _ => {}
    }
}

/// A string, or the text of a list of content parts.
fn parts<'a>(content: &'a mut Value, instructions: bool, out: &mut Vec<PromptText<'a>>) {
    match content {
        Value::String(text) => out.push(PromptText { text, instructions }),
        Value::Array(parts) => {
            for part in parts {
                let Value::Object(part) = part else { continue };
                let key = match part.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => "text",
                    Some("refusal") => "refusal",
                    _ => continue,
                };
                if let Some(Value::String(text)) = part.get_mut(key) {
                    out.push(PromptText { text, instructions });
                }
            }
        }
        _ => {}
    }
}

/// The `output_text` parts of a `response` object's message items (`None`: not one).
pub fn answer(body: &mut Value) -> Option<Vec<&mut String>> {
    let output = body.get_mut("output")?.as_array_mut()?;
    let mut out = Vec::new();
    for item in output {
        let Some(Value::Array(content)) = item.get_mut("content") else {
            continue;
        };
        for part in content {
            if part.get("type").and_then(Value::as_str) != Some("output_text") {
                continue;
            }
            if let Some(Value::String(text)) = part.get_mut("text") {
                out.push(text);
            }
        }
    }
    Some(out)
}
