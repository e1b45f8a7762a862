//! Gemini's `generateContent`, `streamGenerateContent`, `embedContent` and
//! `batchEmbedContents`, as the mock answers them. Request fields are read in either JSON
//! spelling Google accepts (`systemInstruction` or `system_instruction`).

use std::sync::Arc;

use axum::{
    Extension,
    extract::{Path, State},
    response::Response,
};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{
    Api, Inbound, Shared, begin,
    reply::{self, DEFAULT_DIMENSIONS, MAX_DIMENSIONS},
    stream::{self, Streamed},
};

/// An error in Google's `{"error": {code, message, status}}` shape, with a `RetryInfo` detail
/// when a retry delay is sent.
pub(crate) fn error(status: StatusCode, message: &str, retry_after: Option<u64>) -> Response {
    let code = status.as_u16();
    let name = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    };
    let mut err = json!({"code": code, "message": message, "status": name});
    if let Some(secs) = retry_after {
        err["details"] = json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{secs}s")}]);
    }
    stream::error(
        status,
        &json!({"error": err}),
        retry_after,
        HeaderMap::new(),
    )
}

/// `POST /v1beta/models/{model}:{action}`.
pub(crate) async fn dispatch(
    State(shared): State<Arc<Shared>>,
    Path(model_action): Path<String>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    let Some((model, action)) = model_action.rsplit_once(':') else {
        let message = format!(
            "mock upstream: no method in `{model_action}` (expected MODEL:generateContent)"
        );
        return error(StatusCode::NOT_FOUND, &message, None);
    };
    match action {
        "generateContent" => generate(&shared, &inbound, model, Mode::Unary).await,
        "streamGenerateContent" => {
            let sse = inbound
                .request
                .query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
            generate(
                &shared,
                &inbound,
                model,
                if sse { Mode::Sse } else { Mode::JsonArray },
            )
            .await
        }
        "embedContent" | "batchEmbedContents" => {
            embed(&shared, &inbound, action == "batchEmbedContents").await
        }
        other => error(
            StatusCode::NOT_FOUND,
            &format!("mock upstream: unknown method `{other}`"),
            None,
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unary,
    Sse,
    JsonArray,
}

/// `value[camel]`, else `value[snake]`.
fn field<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value.get(camel).or_else(|| value.get(snake))
}

async fn generate(shared: &Shared, inbound: &Inbound, model: &str, mode: Mode) -> Response {
    let knobs = match begin(Api::Gemini, shared, inbound).await {
        Ok(knobs) => knobs,
        Err(response) => return response,
    };
    let body = inbound.body();
    let Some(contents) = body
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        let message = "* GenerateContentRequest.contents: contents is not specified";
        return error(StatusCode::BAD_REQUEST, message, None);
    };
    let system = field(body, "systemInstruction", "system_instruction");
    let prompt = reply::prompt_tokens(&[system, body.get("contents")]);
    let usage = |candidates: u64| {
        json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]})
    };
    let response_id = format!("mock{}", inbound.number);
    let response = |parts: Value, finish: Option<&str>, usage: Value| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": response_id})
    };
    // (parts of the whole answer, stream pieces before the last, finish reason, output tokens)
    let (pieces, last, finish, output): (Vec<Value>, Value, &str, u64) =
        match pick_tool(body, contents) {
            Some((name, schema)) => {
                let args = reply::arguments(schema);
                let tokens =
                    reply::tokens(name.chars().count() + args.to_string().chars().count()) + 4;
                (
                    Vec::new(),
                    json!({"functionCall": {"name": name, "args": args}}),
                    "STOP",
                    tokens,
                )
            }
            None => {
                let limit = field(body, "generationConfig", "generation_config")
                    .and_then(|c| field(c, "maxOutputTokens", "max_output_tokens"))
                    .and_then(Value::as_u64);
                let (text, truncated) = reply::truncate(&knobs.reply, limit);
                let mut words = reply::pieces(&text);
                let last = words.pop().unwrap_or_default();
                let finish = if truncated { "MAX_TOKENS" } else { "STOP" };
                let pieces = words.into_iter().map(|w| json!({"text": w})).collect();
                (
                    pieces,
                    json!({"text": last}),
                    finish,
                    reply::tokens(text.chars().count()),
                )
            }
        };
    if mode == Mode::Unary {
        let mut text = String::new();
        for piece in pieces.iter().chain([&last]) {
            text.push_str(
                piece
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        }
        let parts = if last.get("functionCall").is_some() {
            json!([last])
        } else {
            json!([{"text": text}])
        };
        let value = response(parts, Some(finish), usage(output));
        return stream::json(
            StatusCode::OK,
            &value,
            knobs.disconnect_after.is_some(),
            HeaderMap::new(),
        );
    }
    let mut so_far = 0;
    let mut chunks: Vec<Value> = Vec::new();
    for piece in pieces {
        so_far += piece
            .get("text")
            .and_then(Value::as_str)
            .map_or(0, |t| t.chars().count());
        chunks.push(response(json!([piece]), None, usage(reply::tokens(so_far))));
    }
    chunks.push(response(json!([last]), Some(finish), usage(output)));
    let count = chunks.len();
    let streamed = match mode {
        Mode::Sse => Streamed::sse(
            chunks
                .iter()
                .map(|c| stream::sse_frame(None, &c.to_string(), true))
                .collect(),
        ),
        _ => Streamed {
            content_type: "application/json; charset=UTF-8",
            frames: chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let open = if i == 0 { "[" } else { ",\r\n" };
                    let close = if i + 1 == count { "]" } else { "" };
                    Bytes::from(format!("{open}{c}{close}"))
                })
                .collect(),
        },
    };
    streamed.into_response(knobs.chunk_delay, knobs.disconnect_after, HeaderMap::new())
}

/// The function to call, when the request declares functions, its function-calling mode is
/// not `NONE` and its last turn does not carry a function response: the first allowed one.
fn pick_tool<'a>(body: &'a Value, contents: &[Value]) -> Option<(String, Option<&'a Value>)> {
    let declarations: Vec<(&str, &Value)> = body
        .get("tools")?
        .as_array()?
        .iter()
        .filter_map(|t| {
            field(t, "functionDeclarations", "function_declarations").and_then(Value::as_array)
        })
        .flatten()
        .filter_map(|d| Some((d.get("name")?.as_str()?, d)))
        .collect();
    let config = field(body, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"));
    if config
        .and_then(|c| c.get("mode"))
        .and_then(Value::as_str)
        .is_some_and(|m| m.eq_ignore_ascii_case("none"))
    {
        return None;
    }
    let wanted = config
        .and_then(|c| field(c, "allowedFunctionNames", "allowed_function_names"))
        .and_then(|names| names.get(0))
        .and_then(Value::as_str);
    let answers_a_call = contents
        .last()
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .is_some_and(|parts| {
            parts
                .iter()
                .any(|p| field(p, "functionResponse", "function_response").is_some())
        });
    if answers_a_call {
        return None;
    }
    let (name, decl) = wanted
        .and_then(|w| declarations.iter().find(|(name, _)| *name == w))
        .or_else(|| declarations.first())?;
    let schema = field(decl, "parameters", "parameters")
        .or_else(|| field(decl, "parametersJsonSchema", "parameters_json_schema"));
    Some(((*name).to_owned(), schema))
}

async fn embed(shared: &Shared, inbound: &Inbound, batch: bool) -> Response {
    let knobs = match begin(Api::Gemini, shared, inbound).await {
        Ok(knobs) => knobs,
        Err(response) => return response,
    };
    let body = inbound.body();
    let one = |request: &Value| -> Result<Value, String> {
        let text: String = request
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .ok_or("content.parts is not specified")?
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        let dims = match field(request, "outputDimensionality", "output_dimensionality") {
            None => DEFAULT_DIMENSIONS,
            Some(d) => d
                .as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
                .ok_or(format!(
                    "outputDimensionality must be between 1 and {MAX_DIMENSIONS}"
                ))?,
        };
        Ok(json!({"values": reply::embedding(text.as_bytes(), dims)}))
    };
    let value = if batch {
        let Some(requests) = body
            .get("requests")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "* BatchEmbedContentsRequest.requests: requests is not specified",
                None,
            );
        };
        match requests.iter().map(one).collect::<Result<Vec<_>, _>>() {
            Ok(embeddings) => json!({"embeddings": embeddings}),
            Err(message) => return error(StatusCode::BAD_REQUEST, &message, None),
        }
    } else {
        match one(body) {
            Ok(embedding) => json!({"embedding": embedding}),
            Err(message) => return error(StatusCode::BAD_REQUEST, &message, None),
        }
    };
    stream::json(
        StatusCode::OK,
        &value,
        knobs.disconnect_after.is_some(),
        HeaderMap::new(),
    )
}
