//! OpenAI's (and Azure OpenAI's) chat completions and embeddings, as the mock answers them.

use std::sync::Arc;

use axum::{
    Extension,
    extract::{Path, State},
    response::Response,
};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{
    Api, Inbound, Shared, begin,
    reply::{self, DEFAULT_DIMENSIONS, MAX_DIMENSIONS},
    stream::{self, Streamed},
};

/// Characters per streamed tool-argument fragment.
const ARGUMENT_FRAGMENT: usize = 8;

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(
    State(shared): State<Arc<Shared>>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    chat_completion(&shared, &inbound, None).await
}

/// `POST /openai/deployments/{deployment}/chat/completions`.
pub(crate) async fn azure_chat(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    chat_completion(&shared, &inbound, Some(deployment)).await
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    embed(&shared, &inbound, None).await
}

/// `POST /openai/deployments/{deployment}/embeddings`.
pub(crate) async fn azure_embeddings(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    embed(&shared, &inbound, Some(deployment)).await
}

/// An error in OpenAI's `{"error": {message, type, param, code}}` shape.
pub(crate) fn error(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    retry_after: Option<u64>,
    n: u64,
) -> Response {
    let (kind, code) = match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        404 => ("invalid_request_error", Some("model_not_found")),
        // OpenAI names the exhausted limit (`requests` or `tokens`) as the type.
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    stream::error(status, &body, retry_after, request_id(n))
}

fn request_id(n: u64) -> HeaderMap {
    stream::one_header("x-request-id", &format!("req_mock{n}"))
}

/// What the assistant answers.
enum Answer {
    Text { text: String, truncated: bool },
    Tool { name: String, arguments: String },
}

async fn chat_completion(
    shared: &Shared,
    inbound: &Inbound,
    deployment: Option<String>,
) -> Response {
    let n = inbound.number;
    let knobs = match begin(Api::OpenAi, shared, inbound).await {
        Ok(knobs) => knobs,
        Err(response) => return response,
    };
    let body = inbound.body();
    let bad =
        |message: &str, param: &str| error(StatusCode::BAD_REQUEST, message, Some(param), None, n);
    let model = match (body.get("model").and_then(Value::as_str), deployment) {
        (Some(model), _) => model.to_owned(),
        (None, Some(deployment)) => deployment,
        (None, None) => return bad("you must provide a model parameter", "model"),
    };
    let Some(messages) = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return bad("'messages' must be a non-empty array", "messages");
    };
    let prompt = reply::prompt_tokens(&[body.get("messages")]);
    let answer = match pick_tool(body, messages) {
        Some((name, schema)) => Answer::Tool {
            name,
            arguments: reply::arguments(schema).to_string(),
        },
        None => {
            let limit = body
                .get("max_completion_tokens")
                .or_else(|| body.get("max_tokens"))
                .and_then(Value::as_u64);
            let (text, truncated) = reply::truncate(&knobs.reply, limit);
            Answer::Text { text, truncated }
        }
    };
    let completion = match &answer {
        Answer::Text { text, .. } => reply::tokens(text.chars().count()),
        Answer::Tool { name, arguments } => {
            reply::tokens(name.chars().count() + arguments.chars().count()) + 4
        }
    };
    let ids = Ids {
        id: format!("chatcmpl-mock{n}"),
        call: format!("call_mock{n}"),
        created: reply::unix_now(),
        model,
    };
    if body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let usage = include_usage.then(|| usage(prompt, completion));
        let frames = chunks(&ids, &answer, usage);
        Streamed::sse(frames).into_response(
            knobs.chunk_delay,
            knobs.disconnect_after,
            request_id(n),
        )
    } else {
        let (message, finish) = match &answer {
            Answer::Text { text, truncated } => (
                json!({"role": "assistant", "content": text, "refusal": null, "annotations": []}),
                if *truncated { "length" } else { "stop" },
            ),
            Answer::Tool { name, arguments } => (
                json!({"role": "assistant", "content": null, "refusal": null, "annotations": [],
                    "tool_calls": [{"id": ids.call, "type": "function",
                        "function": {"name": name, "arguments": arguments}}]}),
                "tool_calls",
            ),
        };
        let value = json!({
            "id": ids.id,
            "object": "chat.completion",
            "created": ids.created,
            "model": ids.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage(prompt, completion),
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        });
        stream::json(
            StatusCode::OK,
            &value,
            knobs.disconnect_after.is_some(),
            request_id(n),
        )
    }
}

/// The tool to call, when the request offers function tools, its tool choice is not `none`
/// and its last message is not a tool result: the named one, else the first.
fn pick_tool<'a>(body: &'a Value, messages: &[Value]) -> Option<(String, Option<&'a Value>)> {
    let name_of = |f: &Value| f.get("name").and_then(Value::as_str).map(str::to_owned);
    let functions: Vec<(String, &Value)> = body
        .get("tools")?
        .as_array()?
        .iter()
        .filter_map(|t| t.get("function"))
        .filter_map(|f| Some((name_of(f)?, f)))
        .collect();
    let wanted = match body.get("tool_choice") {
        Some(Value::String(choice)) if choice == "none" => return None,
        Some(choice) => choice.pointer("/function/name").and_then(Value::as_str),
        None => None,
    };
    if messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool")
    {
        return None;
    }
    let (name, function) = wanted
        .and_then(|w| functions.iter().find(|(name, _)| name == w))
        .or_else(|| functions.first())?;
    Some((name.clone(), function.get("parameters")))
}

struct Ids {
    id: String,
    call: String,
    created: i64,
    model: String,
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

/// The SSE chunks of a streamed answer, ending with `data: [DONE]`. With `usage`, every chunk
/// has `"usage": null` and a usage chunk with no choices comes before `[DONE]`.
fn chunks(ids: &Ids, answer: &Answer, usage: Option<Value>) -> Vec<Bytes> {
    let with_usage = usage.is_some();
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut c = json!({
            "id": ids.id, "object": "chat.completion.chunk", "created": ids.created, "model": ids.model,
            "service_tier": "default", "system_fingerprint": "fp_mock", "choices": choices,
        });
        if with_usage {
            c["usage"] = usage.cloned().unwrap_or(Value::Null);
        }
        stream::sse_frame(None, &c.to_string(), false)
    };
    let delta = |delta: Value, finish: Option<&str>| {
        chunk(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            None,
        )
    };
    let mut frames = Vec::new();
    let finish = match answer {
        Answer::Text { text, truncated } => {
            frames.push(delta(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ));
            for piece in reply::pieces(text) {
                frames.push(delta(json!({"content": piece}), None));
            }
            if *truncated { "length" } else { "stop" }
        }
        Answer::Tool { name, arguments } => {
            frames.push(delta(
                json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{"index": 0,
                    "id": ids.call, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            for fragment in reply::fragments(arguments, ARGUMENT_FRAGMENT) {
                frames.push(delta(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}),
                    None,
                ));
            }
            "tool_calls"
        }
    };
    frames.push(delta(json!({}), Some(finish)));
    if let Some(usage) = &usage {
        frames.push(chunk(json!([]), Some(usage)));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

async fn embed(shared: &Shared, inbound: &Inbound, deployment: Option<String>) -> Response {
    let n = inbound.number;
    let knobs = match begin(Api::OpenAi, shared, inbound).await {
        Ok(knobs) => knobs,
        Err(response) => return response,
    };
    let body = inbound.body();
    let bad =
        |message: &str, param: &str| error(StatusCode::BAD_REQUEST, message, Some(param), None, n);
    let model = match (body.get("model").and_then(Value::as_str), deployment) {
        (Some(model), _) => model.to_owned(),
        (None, Some(deployment)) => deployment,
        (None, None) => return bad("you must provide a model parameter", "model"),
    };
    let Some(inputs) = body.get("input").and_then(inputs) else {
        return bad(
            "'input' must be a non-empty string, array of strings, or array of token arrays",
            "input",
        );
    };
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => match d
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
        {
            Some(d) => d,
            None => {
                return bad(
                    &format!("'dimensions' must be between 1 and {MAX_DIMENSIONS}"),
                    "dimensions",
                );
            }
        },
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return bad(
                "'encoding_format' must be 'float' or 'base64'",
                "encoding_format",
            );
        }
    };
    let tokens: u64 = inputs.iter().map(|i| i.tokens).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = reply::embedding(&input.bytes, dims);
            let embedding = if base64 {
                let raw: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(raw))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let value = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    stream::json(
        StatusCode::OK,
        &value,
        knobs.disconnect_after.is_some(),
        request_id(n),
    )
}

struct Input {
    bytes: Vec<u8>,
    tokens: u64,
}

/// The inputs of an embeddings request: a string, strings, a token array or token arrays.
fn inputs(input: &Value) -> Option<Vec<Input>> {
    let text = |s: &str| Input {
        bytes: s.as_bytes().to_vec(),
        tokens: reply::tokens(s.chars().count()).max(1),
    };
    let token_array = |items: &[Value]| {
        let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
        ids.filter(|ids| !ids.is_empty()).map(|ids| Input {
            bytes: ids.iter().flat_map(|id| id.to_le_bytes()).collect(),
            tokens: ids.len() as u64,
        })
    };
    let out = match input {
        Value::String(s) if !s.is_empty() => vec![text(s)],
        Value::Array(items) if items.first().is_some_and(Value::is_number) => {
            vec![token_array(items)?]
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Some(text(s)),
                Value::Array(ids) => token_array(ids),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(out)
}
