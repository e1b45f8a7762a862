//! OpenAI's (and Azure OpenAI's v1) Responses API, as the mock answers it: a `response`
//! object, or with `stream: true` the event sequence (`response.created`,
//! `response.in_progress`, `response.output_item.added`, `response.content_part.added`, one
//! `response.output_text.delta` per word, `…text.done`, `…content_part.done`,
//! `…output_item.done`, `response.completed`; a tool call streams its arguments in
//! `response.function_call_arguments.delta` fragments). The mock keeps no state: it echoes
//! `previous_response_id`, answers the last user text, and after a `function_call_output`
//! says what the tool returned.

use std::sync::Arc;

use axum::{Extension, extract::State, response::Response};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::{
    Api, Inbound, Shared, begin, openai,
    reply::{self},
    stream::{self, Streamed},
};

/// Characters per streamed tool-argument fragment.
const ARGUMENT_FRAGMENT: usize = 8;

/// `POST /v1/responses` and `POST /openai/v1/responses`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    let n = inbound.number;
    let knobs = match begin(Api::OpenAi, &shared, &inbound).await {
        Ok(knobs) => knobs,
        Err(response) => return response,
    };
    let body = inbound.body();
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return openai::error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'model'.",
            Some("model"),
            None,
            n,
        );
    };
    let items: Vec<Value> = match body.get("input") {
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let prompt = reply::prompt_tokens(&[body.get("input"), body.get("instructions")]);
    let id = format!("resp_mock{n}");
    let last = items.last();
    let tool_result = last
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call_output"))
        .and_then(|i| i.get("output"))
        .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned));
    let tool = body
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        })
        .filter(|_| body.get("tool_choice").and_then(Value::as_str) != Some("none"));
    let (item, completion) = match (tool_result, tool) {
        (None, Some(tool)) => {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            let arguments = reply::arguments(tool.get("parameters")).to_string();
            let tokens = reply::tokens(name.len() + arguments.len()) + 4;
            let item = json!({"type": "function_call", "id": format!("fc_mock{n}"),
                "call_id": format!("call_mock{n}"), "name": name, "arguments": arguments,
                "status": "completed"});
            (item, tokens)
        }
        (result, _) => {
            let text = match result {
                Some(r) => format!("The tool returned: {r}"),
                None => knobs.reply.clone(),
            };
            let tokens = reply::tokens(text.chars().count());
            let item = json!({"type": "message", "id": format!("msg_mock{n}"), "status": "completed",
                "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]});
            (item, tokens)
        }
    };
    let usage = json!({"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion});
    // Echoed as OpenAI does: function tools with every field, defaults filled in.
    let tools: Vec<Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| match t.get("type").and_then(Value::as_str) {
            Some("function") => json!({"type": "function", "name": t.get("name"),
                "description": t.get("description"), "parameters": t.get("parameters"),
                "strict": t.get("strict").cloned().unwrap_or(json!(true))}),
            _ => t.clone(),
        })
        .collect();
    let now = reply::unix_now();
    let response = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": now,
            "completed_at": if status == "completed" { json!(now) } else { Value::Null },
            "status": status, "incomplete_details": null, "model": model,
            "previous_response_id": body.get("previous_response_id").cloned().unwrap_or(Value::Null),
            "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
            "output": output, "error": null,
            "tools": tools,
            "tool_choice": body.get("tool_choice").cloned().unwrap_or_else(|| json!("auto")),
            "truncation": "disabled", "parallel_tool_calls": true,
            "text": {"format": {"type": "text"}}, "top_p": 1.0, "presence_penalty": 0.0,
            "frequency_penalty": 0.0, "top_logprobs": 0, "temperature": 1.0,
            "reasoning": {"effort": null, "summary": null}, "user": null, "usage": usage,
            "max_output_tokens": body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
            "max_tool_calls": null, "store": body.get("store").cloned().unwrap_or(json!(true)),
            "background": false, "service_tier": "default",
            "metadata": body.get("metadata").cloned().unwrap_or_else(|| json!({})),
            "safety_identifier": null, "prompt_cache_key": null,
        })
    };
    let headers = stream::one_header("x-request-id", &format!("req_mock{n}"));
    if !body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let value = response("completed", vec![item], usage);
        return stream::json(
            StatusCode::OK,
            &value,
            knobs.disconnect_after.is_some(),
            headers,
        );
    }
    let mut events: Vec<(String, Value)> = vec![
        (
            "response.created".into(),
            json!({"response": response("in_progress", vec![], Value::Null)}),
        ),
        (
            "response.in_progress".into(),
            json!({"response": response("in_progress", vec![], Value::Null)}),
        ),
    ];
    let item_id = item.get("id").cloned().unwrap_or(Value::Null);
    let mut added = item.clone();
    added["status"] = json!("in_progress");
    if item.get("type").and_then(Value::as_str) == Some("function_call") {
        added["arguments"] = json!("");
        events.push((
            "response.output_item.added".into(),
            json!({"output_index": 0, "item": added}),
        ));
        let arguments = item
            .get("arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for fragment in reply::fragments(arguments, ARGUMENT_FRAGMENT) {
            events.push((
                "response.function_call_arguments.delta".into(),
                json!({"item_id": item_id, "output_index": 0, "delta": fragment}),
            ));
        }
        events.push((
            "response.function_call_arguments.done".into(),
            json!({"item_id": item_id, "output_index": 0, "arguments": arguments}),
        ));
    } else {
        added["content"] = json!([]);
        events.push((
            "response.output_item.added".into(),
            json!({"output_index": 0, "item": added}),
        ));
        let part = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
        events.push((
            "response.content_part.added".into(),
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
        ));
        let text = item
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for piece in reply::pieces(text) {
            events.push(("response.output_text.delta".into(),
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []})));
        }
        events.push(("response.output_text.done".into(),
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []})));
        let part = item.pointer("/content/0").cloned().unwrap_or(Value::Null);
        events.push((
            "response.content_part.done".into(),
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
        ));
    }
    events.push((
        "response.output_item.done".into(),
        json!({"output_index": 0, "item": item.clone()}),
    ));
    events.push((
        "response.completed".into(),
        json!({"response": response("completed", vec![item], usage)}),
    ));
    let frames: Vec<Bytes> = events
        .into_iter()
        .enumerate()
        .map(|(i, (kind, mut data))| {
            data["type"] = json!(kind);
            data["sequence_number"] = json!(i);
            stream::sse_frame(Some(&kind), &data.to_string(), false)
        })
        .collect();
    Streamed::sse(frames).into_response(knobs.chunk_delay, knobs.disconnect_after, headers)
}
