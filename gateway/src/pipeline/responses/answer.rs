//! The `response` object for a translated backend's answer: the request's settings echoed,
//! the chat answer's message as output items, its usage in the Responses shape.
//!
//! Output items: reasoning text (`reasoning_content`, from Anthropic thinking or Gemini
//! thoughts) → a `reasoning` item; text → one `message` item with an `output_text` part;
//! each tool call → a `function_call` item (its `call_id` is the provider's call id). Status:
//! `finish_reason` `length` → `incomplete` (`max_output_tokens`), `content_filter` →
//! `incomplete` (`content_filter`), anything else → `completed`.

use serde_json::{Value, json};

use crate::wire::{
    openai::{ChatResponse, Usage},
    responses::{OutputContent, OutputItem, ResponseObject, ResponseUsage, ResponsesRequest},
};

/// Item ids derive from the response id and the item's output index (`resp_X` → `rs_X_0`,
/// `msg_X_1`, `fc_X_2`), so an answer is reproducible from its id.
pub fn item_id(response_id: &str, prefix: &str, index: usize) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}_{index}")
}

/// The response object for `req` before any output: `in_progress`, no usage.
pub fn template(req: &ResponsesRequest, id: &str, created_at: i64, model: &str) -> ResponseObject {
    let mut text_format = req
        .text
        .as_ref()
        .and_then(|t| t.get("format"))
        .filter(|f| !f.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"type": "text"}));
    if let Some(format) = text_format
        .as_object_mut()
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
    {
        // The schema requires both; OpenAI's defaults.
        format.entry("description").or_insert(Value::Null);
        format.entry("strict").or_insert(Value::Bool(false));
    }
    let rest_str = |key: &str| req.rest.get(key).and_then(Value::as_str).map(str::to_owned);
    ResponseObject {
        id: id.to_owned(),
        object: "response".into(),
        created_at,
        completed_at: None,
        status: "in_progress".into(),
        incomplete_details: None,
        model: model.to_owned(),
        previous_response_id: req.previous_response_id.clone(),
        instructions: req.instructions.clone(),
        output: Vec::new(),
        error: None,
        tools: req
            .tools
            .iter()
            .flatten()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t.get("name").cloned().unwrap_or(Value::Null),
                    "description": t.get("description").cloned().unwrap_or(Value::Null),
                    "parameters": t.get("parameters").cloned().unwrap_or(Value::Null),
                    "strict": t.get("strict").cloned().unwrap_or(Value::Bool(true)),
                })
            })
            .collect(),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        truncation: "disabled".into(),
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        text: json!({"format": text_format}),
        top_p: req.top_p.unwrap_or(1.0),
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        top_logprobs: 0,
        temperature: req.temperature.unwrap_or(1.0),
        reasoning: json!({"effort": req.reasoning_effort(), "summary": null}),
        user: req.user.clone(),
        usage: None,
        max_output_tokens: req.max_output_tokens,
        max_tool_calls: None,
        store: req.stores(),
        background: false,
        service_tier: "default".into(),
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        safety_identifier: rest_str("safety_identifier"),
        prompt_cache_key: rest_str("prompt_cache_key"),
    }
}

/// Sets the final status from the chat `finish_reason`, the usage and `completed_at`.
pub fn finish(
    response: &mut ResponseObject,
    finish_reason: Option<&str>,
    usage: Option<&Usage>,
    now: i64,
) {
    let incomplete = match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    response.status = if incomplete.is_some() {
        "incomplete"
    } else {
        "completed"
    }
    .into();
    response.incomplete_details = incomplete.map(|reason| json!({"reason": reason}));
    response.usage = usage.map(ResponseUsage::from_chat);
    response.completed_at = incomplete.is_none().then_some(now);
    let item_status = if incomplete.is_some() {
        "incomplete"
    } else {
        "completed"
    };
    for item in &mut response.output {
        match item {
            OutputItem::Message { status, .. } | OutputItem::FunctionCall { status, .. } => {
                *status = item_status.into();
            }
            OutputItem::Reasoning { .. } => {}
        }
    }
}

/// The response object for a complete chat answer.
pub fn from_chat(
    req: &ResponsesRequest,
    id: &str,
    created_at: i64,
    chat: &ChatResponse,
    now: i64,
) -> ResponseObject {
    let mut response = template(req, id, created_at, &chat.model);
    let choice = chat.choices.first();
    if let Some(message) = choice.map(|c| &c.message) {
        if let Some(thinking) = message
            .rest
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            response.output.push(OutputItem::Reasoning {
                id: item_id(id, "rs", response.output.len()),
                summary: Vec::new(),
                content: vec![OutputContent::ReasoningText {
                    text: thinking.to_owned(),
                }],
            });
        }
        if let Some(text) = message.content.as_deref().filter(|t| !t.is_empty()) {
            response.output.push(OutputItem::Message {
                id: item_id(id, "msg", response.output.len()),
                status: "completed".into(),
                role: "assistant".into(),
                content: vec![OutputContent::text(text)],
            });
        }
        for call in message.tool_calls.iter().flatten() {
            response.output.push(OutputItem::FunctionCall {
                id: item_id(id, "fc", response.output.len()),
                call_id: call.id.clone(),
                name: call.function.name.clone(),
                arguments: call.function.arguments.clone(),
                status: "completed".into(),
            });
        }
    }
    finish(
        &mut response,
        choice.and_then(|c| c.finish_reason.as_deref()),
        chat.usage.as_ref(),
        now,
    );
    response
}
