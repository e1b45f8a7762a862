//! The `mock` provider type: a documented TEST DOUBLE that answers in-process, with no
//! network and no API key, for local runs and application developers' own CI.
//!
//! It speaks OpenAI's wire format internally, so a mock answer goes through the same
//! translation, streaming, metering and metrics path as a real provider's. Answers are
//! deterministic:
//! - text: `Hello from Tollgate's mock provider. You said: <last user text, 200 chars max>`;
//! - when the request offers tools (and `tool_choice` is not `"none"`) and the last message
//!   is not a tool result: one call to the first tool (or the one `tool_choice` names) with
//!   arguments `{}`; after a tool result: `The tool returned: <result, 200 chars max>`;
//! - usage: about one token per four characters of message text, plus three per message.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::{
    Failure, ProviderAdapter, RequestError, Target, UpstreamRequest,
    openai::{OpenAI, OpenAIStream, json_request},
};
use crate::wire::openai::{
    ChatChunk, ChatRequest, ChatResponse, Choice, Delta, EmbeddingsRequest, EmbeddingsResponse,
    FunctionCall, FunctionCallDelta, ResponseMessage, Role, ToolCall, ToolCallDelta, Usage,
};

/// The URL scheme the upstream client answers in-process.
pub const MOCK_SCHEME: &str = "mock://";

/// The mock adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mock;

impl ProviderAdapter for Mock {
    type Stream = OpenAIStream;

    fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let mut upstream = req.clone();
        upstream.model = target.model.to_owned();
        let body =
            serde_json::to_vec(&upstream).map_err(|e| RequestError::new(e.to_string(), None))?;
        json_request(
            format!("{MOCK_SCHEME}chat/{}/{}", target.request_id, target.created),
            target.provider,
            None,
            body,
        )
    }

    fn chat_response(&self, target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure> {
        OpenAI.chat_response(target, body)
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        OpenAI.error(status, headers, body)
    }

    fn stream(&self, target: &Target<'_>) -> Self::Stream {
        OpenAI.stream(target)
    }

    fn embeddings_request(
        &self,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let mut upstream = req.clone();
        upstream.model = target.model.to_owned();
        let body =
            serde_json::to_vec(&upstream).map_err(|e| RequestError::new(e.to_string(), None))?;
        json_request(
            format!(
                "{MOCK_SCHEME}embeddings/{}/{}",
                target.request_id, target.created
            ),
            target.provider,
            None,
            body,
        )
    }

    fn embeddings_response(
        &self,
        target: &Target<'_>,
        body: &[u8],
    ) -> Result<EmbeddingsResponse, Failure> {
        OpenAI.embeddings_response(target, body)
    }
}

/// Answers a `mock://` request in-process: the HTTP status and the body in pieces (one
/// piece per SSE event when streaming), exactly as an OpenAI server would send them.
pub fn respond(url: &str, body: &[u8]) -> (StatusCode, Vec<Bytes>) {
    let Some(rest) = url.strip_prefix(MOCK_SCHEME) else {
        return error(StatusCode::NOT_FOUND, "not a mock URL");
    };
    let mut parts = rest.splitn(3, '/');
    let (kind, request_id, created) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().and_then(|c| c.parse().ok()).unwrap_or(0),
    );
    match kind {
        "chat" => match serde_json::from_slice::<ChatRequest>(body) {
            Ok(req) => chat(&req, request_id, created),
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                &format!("mock: unreadable request: {e}"),
            ),
        },
        "embeddings" => match serde_json::from_slice::<EmbeddingsRequest>(body) {
            Ok(req) => embeddings(&req),
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                &format!("mock: unreadable request: {e}"),
            ),
        },
        _ => error(StatusCode::NOT_FOUND, "mock: unknown endpoint"),
    }
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Vec<Bytes>) {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    (status, vec![Bytes::from(body.to_string())])
}

/// About one token per four characters, at least one.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

enum Answer {
    Text(String),
    Tool { name: String },
}

fn answer(req: &ChatRequest) -> Answer {
    let last = req.messages.last();
    if let Some(m) = last.filter(|m| m.role == Role::Tool) {
        return Answer::Text(format!(
            "The tool returned: {}",
            truncate(&m.text_content(), 200)
        ));
    }
    let choice = req.tool_choice.as_ref();
    let tools_allowed = choice.and_then(Value::as_str) != Some("none");
    if let Some(tools) = req
        .tools
        .as_ref()
        .filter(|t| !t.is_empty() && tools_allowed)
    {
        let named = choice
            .and_then(|c| c.pointer("/function/name"))
            .and_then(Value::as_str);
        let name = named
            .or_else(|| tools.first().map(|t| t.function.name.as_str()))
            .unwrap_or_default();
        return Answer::Tool {
            name: name.to_owned(),
        };
    }
    let said = req.last_user_text();
    Answer::Text(format!(
        "Hello from Tollgate's mock provider. You said: {}",
        truncate(&said, 200)
    ))
}

fn usage_for(req: &ChatRequest, completion: &str) -> Usage {
    let prompt: u64 = req
        .messages
        .iter()
        .map(|m| estimate_tokens(&m.text_content()) + 3)
        .sum();
    Usage::new(prompt, estimate_tokens(completion), 0, 0)
}

fn chat(req: &ChatRequest, request_id: &str, created: i64) -> (StatusCode, Vec<Bytes>) {
    let id = format!("chatcmpl-mock-{request_id}");
    let model = req.model.as_str();
    let answer = answer(req);
    let (text, call) = match &answer {
        Answer::Text(t) => (Some(t.clone()), None),
        Answer::Tool { name } => (
            None,
            Some(ToolCall {
                id: format!("call_mock_{request_id}"),
                kind: "function".into(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: "{}".into(),
                },
            }),
        ),
    };
    let usage = usage_for(req, text.as_deref().unwrap_or("{}"));
    let finish = if call.is_some() { "tool_calls" } else { "stop" };
    if !req.is_stream() {
        let response = ChatResponse {
            id,
            object: "chat.completion".into(),
            created,
            model: model.to_owned(),
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage {
                    role: "assistant".into(),
                    content: text,
                    tool_calls: call.map(|c| vec![c]),
                    rest: Map::new(),
                },
                finish_reason: Some(finish.into()),
                rest: Map::new(),
            }],
            usage: Some(usage),
            rest: Map::new(),
        };
        return (
            StatusCode::OK,
            vec![Bytes::from(
                serde_json::to_vec(&response).unwrap_or_default(),
            )],
        );
    }
    let mut chunks = Vec::new();
    let role = Delta {
        role: Some("assistant".into()),
        ..Delta::default()
    };
    match (&text, &call) {
        (Some(t), _) => {
            let mut first = true;
            for piece in t.split_inclusive(' ') {
                let mut d = if first {
                    role.clone()
                } else {
                    Delta::default()
                };
                first = false;
                d.content = Some(piece.to_owned());
                chunks.push(ChatChunk::delta(&id, model, created, d, None));
            }
        }
        (None, Some(c)) => {
            let mut d = role.clone();
            d.tool_calls = Some(vec![ToolCallDelta {
                index: 0,
                id: Some(c.id.clone()),
                kind: Some("function".into()),
                function: Some(FunctionCallDelta {
                    name: Some(c.function.name.clone()),
                    arguments: Some(String::new()),
                }),
            }]);
            chunks.push(ChatChunk::delta(&id, model, created, d, None));
            let args = Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: 0,
                    function: Some(FunctionCallDelta {
                        name: None,
                        arguments: Some(c.function.arguments.clone()),
                    }),
                    ..ToolCallDelta::default()
                }]),
                ..Delta::default()
            };
            chunks.push(ChatChunk::delta(&id, model, created, args, None));
        }
        (None, None) => {}
    }
    chunks.push(ChatChunk::delta(
        &id,
        model,
        created,
        Delta::default(),
        Some(finish.into()),
    ));
    // Always, like a real upstream asked for `include_usage` (the OpenAI adapter always asks):
    // the pipeline meters it and strips it when the client did not ask.
    chunks.push(ChatChunk::usage(&id, model, created, usage));
    let mut frames: Vec<Bytes> = chunks
        .iter()
        .map(|c| crate::stream::sse::data_frame(&serde_json::to_vec(c).unwrap_or_default()))
        .collect();
    frames.push(Bytes::from_static(crate::stream::sse::DONE_FRAME));
    (StatusCode::OK, frames)
}

/// Most inputs one embeddings request may carry (OpenAI's limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

fn embeddings(req: &EmbeddingsRequest) -> (StatusCode, Vec<Bytes>) {
    let Some(texts) = req.input.texts() else {
        return error(
            StatusCode::BAD_REQUEST,
            "mock: token-array input is not supported",
        );
    };
    // OpenAI's own bound. Unbounded, a 1 MB body of tiny inputs became ~500 MB of answer.
    if texts.len() > MAX_EMBEDDING_INPUTS {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "mock: input has {} items; at most {MAX_EMBEDDING_INPUTS} are allowed",
                texts.len()
            ),
        );
    }
    let dims = req.dimensions.unwrap_or(64).clamp(1, 256) as usize;
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector(t, dims)}))
        .collect();
    let tokens: u64 = texts.iter().map(|t| estimate_tokens(t)).sum();
    let body = json!({"object": "list", "data": data, "model": req.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    (StatusCode::OK, vec![Bytes::from(body.to_string())])
}

/// A deterministic unit-length vector: each lower-cased word of the text adds ±1 to one
/// dimension (feature hashing with FNV-1a), so texts sharing most words land close together
/// (what semantic-cache tests need) and texts sharing none are nearly orthogonal.
fn vector(text: &str, dims: usize) -> Vec<f64> {
    let mut raw = vec![0.0f64; dims];
    let words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    for word in words {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 29;
        let sign = if h & (1 << 40) == 0 { 1.0 } else { -1.0 };
        raw[(h % dims as u64) as usize] += sign;
    }
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::EPSILON);
    raw.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::StreamTranslator;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn run(req: &ChatRequest) -> (StatusCode, Vec<Bytes>) {
        chat(req, "r1", 1_700_000_000)
    }

    #[test]
    fn answers_are_deterministic_with_realistic_usage() {
        let req =
            request(json!({"model": "m", "messages": [{"role": "user", "content": "Say hello"}]}));
        let (status, body) = run(&req);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(run(&req).1, body);
        let r: ChatResponse = serde_json::from_slice(&body[0]).unwrap();
        assert_eq!(
            r.choices[0].message.content.as_deref(),
            Some("Hello from Tollgate's mock provider. You said: Say hello")
        );
        let usage = r.usage.unwrap();
        assert_eq!(usage.prompt_tokens, 3 + 3);
        assert_eq!(
            usage.total_tokens,
            usage.prompt_tokens + usage.completion_tokens
        );
    }

    #[test]
    fn tools_get_called_and_results_acknowledged() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
        let r: ChatResponse = serde_json::from_slice(&run(&request(json!({"model": "m", "messages": [{"role": "user", "content": "weather?"}], "tools": tools}))).1[0]).unwrap();
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            r.choices[0].message.tool_calls.as_ref().unwrap()[0]
                .function
                .name,
            "get_weather"
        );
        let after = request(json!({"model": "m", "tools": tools, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}));
        let r: ChatResponse = serde_json::from_slice(&run(&after).1[0]).unwrap();
        assert_eq!(
            r.choices[0].message.content.as_deref(),
            Some("The tool returned: sunny")
        );
    }

    #[test]
    fn streams_are_valid_openai_sse_ending_in_done() {
        let req = request(
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi there"}]}),
        );
        let (_, frames) = run(&req);
        let bytes: Vec<u8> = frames.concat();
        let mut s = OpenAIStream::default();
        let mut chunks = s.feed(&bytes).unwrap();
        chunks.extend(s.finish().unwrap());
        let text: String = chunks
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(
            text,
            "Hello from Tollgate's mock provider. You said: hi there"
        );
        assert_eq!(
            chunks[0].choices[0].delta.role.as_deref(),
            Some("assistant")
        );
        assert!(chunks.last().unwrap().usage.is_some());
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let req: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "e", "input": ["a", "b"]})).unwrap();
        let (_, body) = embeddings(&req);
        let r: EmbeddingsResponse = serde_json::from_slice(&body[0]).unwrap();
        assert_eq!(r.data.len(), 2);
        let v: Vec<f64> = serde_json::from_value(r.data[0].embedding.clone()).unwrap();
        assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_ne!(r.data[0].embedding, r.data[1].embedding);
    }

    fn cosine(a: &str, b: &str) -> f64 {
        let (x, y) = (vector(a, 64), vector(b, 64));
        x.iter().zip(&y).map(|(p, q)| p * q).sum()
    }

    #[test]
    fn texts_sharing_most_words_land_close_and_others_far() {
        let q = "What is the capital of France?";
        assert!((cosine(q, "what is the capital of france") - 1.0).abs() < 1e-9);
        let near = cosine(q, "Please, what is the capital of France?");
        assert!(near > 0.9, "{near}");
        let far = cosine(q, "Write a haiku about autumn leaves");
        assert!(far < 0.5, "{far}");
    }
}
