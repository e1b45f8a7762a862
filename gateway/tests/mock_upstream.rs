//! The mock upstream over real loopback HTTP: each API's wire format, the tool-call answers,
//! and every knob, flag and header. Every request has a timeout and every test a deadline.
#![allow(clippy::expect_used)] // a broken mock or request should fail the test loudly

use std::{future::Future, time::Duration};

use base64::Engine as _;
use futures_util::StreamExt as _;
use pretty_assertions::assert_eq;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tollgate_gateway::mock_upstream::{self, DEFAULT_REPLY, Knobs, MockServer};

const DEADLINE: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("test finished within its deadline")
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A running mock and one client for it (building a client loads the platform's roots).
struct Fixture {
    server: MockServer,
    client: Client,
}

impl std::ops::Deref for Fixture {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

async fn mock(knobs: Knobs) -> Fixture {
    Fixture {
        server: mock_upstream::spawn(knobs)
            .await
            .expect("mock upstream binds"),
        client: client(),
    }
}

async fn post(server: &Fixture, path: &str, body: Value, headers: &[(&str, &str)]) -> Response {
    let mut request = server
        .client
        .post(format!("{}{path}", server.url()))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

async fn json_of(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// The `data:` payloads (and event names) of a complete SSE body, with either line end.
fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(payload) = line.strip_prefix("data: ") {
                    data.push_str(payload);
                }
            }
            (event, data)
        })
        .collect()
}

fn data_json(events: &[(Option<String>, String)]) -> Vec<Value> {
    events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| serde_json::from_str(d).expect("JSON data"))
        .collect()
}

/// Reads a body chunk by chunk; returns the bytes read and whether the body ended in an error.
async fn read_until_end(response: Response) -> (String, bool) {
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    while let Some(item) = body.next().await {
        match item {
            Ok(bytes) => text.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8_lossy(&text).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), false)
}

fn weather_tools_openai() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    ])
}

#[tokio::test]
async fn openai_chat_completion_and_what_was_sent() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let body = json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello to the whole world"}]});
        let response = post(
            &server,
            "/v1/chat/completions",
            body.clone(),
            &[("authorization", "Bearer sk-test")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-request-id"], "req_mock1");
        let v = json_of(response).await;
        assert_eq!(v["id"], "chatcmpl-mock1");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "gpt-4o-mini");
        assert!(v["created"].as_i64().is_some_and(|t| t > 1_600_000_000));
        let choice = &v["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], "stop");
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["message"]["content"], DEFAULT_REPLY);
        // "Be brief." (9) + "Say hello to the whole world" (28) = 37 chars → 10 tokens.
        let usage = &v["usage"];
        assert_eq!(usage["prompt_tokens"], 10);
        assert_eq!(usage["completion_tokens"], DEFAULT_REPLY.len().div_ceil(4));
        assert_eq!(usage["total_tokens"], 10 + DEFAULT_REPLY.len().div_ceil(4));
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);

        assert_eq!(server.requests(), 1);
        let sent = server.last_request().expect("recorded");
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.headers["authorization"], "Bearer sk-test");
        assert_eq!(sent.body, body);
    })
    .await;
}

#[tokio::test]
async fn openai_stream_with_and_without_usage() {
    bounded(async {
        let server = mock(Knobs {
            reply: "one two three".into(),
            ..Knobs::default()
        })
        .await;
        let request = |include: bool| {
            json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": include},
                "messages": [{"role": "user", "content": "12345678"}]})
        };
        let response = post(&server, "/v1/chat/completions", request(true), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/event-stream")
        );
        let events = sse_events(&response.text().await.expect("body"));
        assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
        let chunks = data_json(&events);
        assert_eq!(chunks.len(), 6, "role, 3 words, finish, usage: {chunks:#?}");
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["id"], "chatcmpl-mock1");
            assert!(
                c.get("usage").is_some(),
                "every chunk has usage (null but the last)"
            );
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[0]["usage"], Value::Null);
        let text: String = chunks[1..4]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .expect("content")
            })
            .collect();
        assert_eq!(text, "one two three");
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[5]["choices"], json!([]));
        assert_eq!(chunks[5]["usage"]["prompt_tokens"], 2);
        assert_eq!(chunks[5]["usage"]["completion_tokens"], 4);
        assert_eq!(
            chunks[5]["usage"]["prompt_tokens_details"]["cached_tokens"],
            0
        );

        let response = post(&server, "/v1/chat/completions", request(false), &[]).await;
        let events = sse_events(&response.text().await.expect("body"));
        let chunks = data_json(&events);
        assert_eq!(chunks.len(), 5, "no usage chunk unless asked");
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    })
    .await;
}

#[tokio::test]
async fn openai_tool_calls_plain_and_streamed() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let messages = json!([{"role": "user", "content": "Weather in Paris?"}]);
        let body = json!({"model": "gpt-4o", "messages": messages, "tools": weather_tools_openai()});
        let v = json_of(post(&server, "/v1/chat/completions", body, &[]).await).await;
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["id"], "call_mock1");
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("string")).expect("JSON");
        assert_eq!(args, json!({"city": "mock", "unit": "celsius"}));

        let body = json!({"model": "gpt-4o", "messages": messages, "tools": weather_tools_openai(), "stream": true});
        let events = sse_events(&post(&server, "/v1/chat/completions", body, &[]).await.text().await.expect("body"));
        let chunks = data_json(&events);
        let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(first["index"], 0);
        assert_eq!(first["id"], "call_mock2");
        assert_eq!(first["type"], "function");
        assert_eq!(first["function"], json!({"name": "get_weather", "arguments": ""}));
        let mut arguments = String::new();
        for c in &chunks[1..chunks.len() - 1] {
            let piece = &c["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(piece["index"], 0);
            assert!(piece.get("id").is_none());
            arguments.push_str(piece["function"]["arguments"].as_str().expect("fragment"));
        }
        assert!(chunks.len() > 3, "arguments arrive in several fragments");
        assert_eq!(serde_json::from_str::<Value>(&arguments).expect("JSON"), json!({"city": "mock", "unit": "celsius"}));
        assert_eq!(chunks.last().expect("finish")["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));

        // A named tool choice picks that tool; "none" and a tool result get text.
        let named = json!({"model": "m", "messages": messages, "tools": weather_tools_openai(),
            "tool_choice": {"type": "function", "function": {"name": "get_time"}}});
        let v = json_of(post(&server, "/v1/chat/completions", named, &[]).await).await;
        assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_time");
        assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{}");
        let none = json!({"model": "m", "messages": messages, "tools": weather_tools_openai(), "tool_choice": "none"});
        let v = json_of(post(&server, "/v1/chat/completions", none, &[]).await).await;
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let answered = json!({"model": "m", "tools": weather_tools_openai(), "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]});
        let v = json_of(post(&server, "/v1/chat/completions", answered, &[]).await).await;
        assert_eq!(v["choices"][0]["message"]["content"], DEFAULT_REPLY);
    })
    .await;
}

#[tokio::test]
async fn openai_limits_validation_and_azure() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let body = json!({"model": "m", "max_completion_tokens": 2, "messages": [{"role": "user", "content": "hi"}]});
        let v = json_of(post(&server, "/v1/chat/completions", body, &[]).await).await;
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["choices"][0]["message"]["content"], DEFAULT_REPLY[..8]);
        assert_eq!(v["usage"]["completion_tokens"], 2);

        let response = post(&server, "/v1/chat/completions", json!({"messages": []}), &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let v = json_of(response).await;
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        let response = server
            .client
            .post(format!("{}/v1/chat/completions", server.url()))
            .body("not json")
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(server.last_request().expect("recorded").body, json!("not json"));

        let azure = "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21";
        let response = post(&server, azure, json!({"messages": [{"role": "user", "content": "hi"}]}), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let v = json_of(response).await;
        assert_eq!(v["model"], "my-gpt");
        assert_eq!(v["choices"][0]["message"]["content"], DEFAULT_REPLY);
        let sent = server.last_request().expect("recorded");
        assert_eq!(sent.path, "/openai/deployments/my-gpt/chat/completions");
        assert_eq!(sent.query.as_deref(), Some("api-version=2024-10-21"));
        let azure_embed = "/openai/deployments/emb/embeddings?api-version=2024-10-21";
        let v = json_of(post(&server, azure_embed, json!({"input": "x"}), &[]).await).await;
        assert_eq!(v["model"], "emb");
    })
    .await;
}

#[tokio::test]
async fn openai_embeddings_are_deterministic() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let body = json!({"model": "text-embedding-3-small", "input": ["hello world", "goodbye", "hello world"]});
        let v = json_of(post(&server, "/v1/embeddings", body, &[]).await).await;
        assert_eq!(v["object"], "list");
        assert_eq!(v["model"], "text-embedding-3-small");
        let data = v["data"].as_array().expect("data");
        assert_eq!(data.len(), 3);
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d["object"], "embedding");
            assert_eq!(d["index"], i);
            assert_eq!(d["embedding"].as_array().expect("floats").len(), 8);
        }
        assert_eq!(data[0]["embedding"], data[2]["embedding"]);
        assert_ne!(data[0]["embedding"], data[1]["embedding"]);
        // 11 chars → 3 tokens, 7 → 2, 11 → 3.
        assert_eq!(v["usage"], json!({"prompt_tokens": 8, "total_tokens": 8}));

        let body = json!({"model": "e", "input": "hello world", "encoding_format": "base64", "dimensions": 4});
        let v = json_of(post(&server, "/v1/embeddings", body, &[]).await).await;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().expect("base64 string"))
            .expect("valid base64");
        assert_eq!(raw.len(), 4 * 4);
        let floats: Vec<f32> =
            raw.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let norm: f32 = floats.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);

        let v = json_of(post(&server, "/v1/embeddings", json!({"model": "e", "input": [[1, 2, 3]]}), &[]).await).await;
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        let response = post(&server, "/v1/embeddings", json!({"model": "e", "input": []}), &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json_of(response).await["error"]["param"], "input");
    })
    .await;
}

fn anthropic_request(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
        "system": "Be brief.", "messages": [{"role": "user", "content": "Say hello to the whole world"}]})
}

#[tokio::test]
async fn anthropic_messages_plain_and_streamed() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let response = post(
            &server,
            "/v1/messages",
            anthropic_request(false),
            &[("x-api-key", "k")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["request-id"], "req_mock1");
        let v = json_of(response).await;
        assert_eq!(v["id"], "msg_mock1");
        assert_eq!(v["type"], "message");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["model"], "claude-sonnet-4-5");
        assert_eq!(
            v["content"],
            json!([{"type": "text", "text": DEFAULT_REPLY}])
        );
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(v["stop_sequence"], Value::Null);
        assert_eq!(v["usage"]["input_tokens"], 10);
        assert_eq!(v["usage"]["output_tokens"], DEFAULT_REPLY.len().div_ceil(4));
        assert_eq!(v["usage"]["cache_read_input_tokens"], 0);
        assert_eq!(
            server.last_request().expect("recorded").headers["x-api-key"],
            "k"
        );

        let text = post(&server, "/v1/messages", anthropic_request(true), &[])
            .await
            .text()
            .await
            .expect("body");
        let events = sse_events(&text);
        let names: Vec<&str> = events
            .iter()
            .map(|(e, _)| e.as_deref().expect("named event"))
            .collect();
        let words = DEFAULT_REPLY.split(' ').count();
        let mut expected = vec!["message_start", "content_block_start", "ping"];
        expected.extend(std::iter::repeat_n("content_block_delta", words));
        expected.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(names, expected);
        let data = data_json(&events);
        for ((name, _), d) in events.iter().zip(&data) {
            assert_eq!(
                d["type"].as_str(),
                name.as_deref(),
                "data type matches the event name"
            );
        }
        assert_eq!(data[0]["message"]["usage"]["input_tokens"], 10);
        assert_eq!(data[0]["message"]["content"], json!([]));
        assert_eq!(
            data[1]["content_block"],
            json!({"type": "text", "text": ""})
        );
        let streamed: String = data[3..3 + words]
            .iter()
            .map(|d| d["delta"]["text"].as_str().expect("text"))
            .collect();
        assert_eq!(streamed, DEFAULT_REPLY);
        let delta = &data[data.len() - 2];
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(
            delta["usage"]["output_tokens"],
            DEFAULT_REPLY.len().div_ceil(4)
        );

        let mut short = anthropic_request(false);
        short["max_tokens"] = json!(3);
        let v = json_of(post(&server, "/v1/messages", short, &[]).await).await;
        assert_eq!(v["stop_reason"], "max_tokens");
        let mut missing = anthropic_request(false);
        missing
            .as_object_mut()
            .expect("object")
            .remove("max_tokens");
        let response = post(&server, "/v1/messages", missing, &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let v = json_of(response).await;
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .expect("message")
                .contains("max_tokens")
        );
    })
    .await;
}

#[tokio::test]
async fn anthropic_tool_use_plain_and_streamed() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let tools = json!([{"name": "get_weather", "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
        let mut body = anthropic_request(false);
        body["tools"] = tools.clone();
        let v = json_of(post(&server, "/v1/messages", body.clone(), &[]).await).await;
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["content"], json!([{"type": "tool_use", "id": "toolu_mock1", "name": "get_weather", "input": {"city": "mock"}}]));

        body["stream"] = json!(true);
        let events = sse_events(&post(&server, "/v1/messages", body.clone(), &[]).await.text().await.expect("body"));
        let data = data_json(&events);
        assert_eq!(data[1]["content_block"], json!({"type": "tool_use", "id": "toolu_mock2", "name": "get_weather", "input": {}}));
        let partial: String = data
            .iter()
            .filter(|d| d["type"] == "content_block_delta")
            .map(|d| {
                assert_eq!(d["delta"]["type"], "input_json_delta");
                d["delta"]["partial_json"].as_str().expect("partial").to_owned()
            })
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&partial).expect("JSON"), json!({"city": "mock"}));
        assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "tool_use");
        assert_eq!(events.last().and_then(|(e, _)| e.as_deref()), Some("message_stop"));

        body["stream"] = json!(false);
        body["tool_choice"] = json!({"type": "none"});
        let v = json_of(post(&server, "/v1/messages", body.clone(), &[]).await).await;
        assert_eq!(v["stop_reason"], "end_turn");
        body["tool_choice"] = json!({"type": "auto"});
        body["messages"] = json!([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "cold"}]}]);
        let v = json_of(post(&server, "/v1/messages", body, &[]).await).await;
        assert_eq!(v["content"][0]["type"], "text");
    })
    .await;
}

fn gemini_request() -> Value {
    json!({"systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say hello to the whole world"}]}]})
}

#[tokio::test]
async fn gemini_generate_stream_and_json_array() {
    bounded(async {
        let server = mock(Knobs {
            reply: "alpha beta gamma".into(),
            ..Knobs::default()
        })
        .await;
        let path = "/v1beta/models/gemini-2.5-flash:generateContent";
        let response = post(&server, path, gemini_request(), &[("x-goog-api-key", "g")]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let v = json_of(response).await;
        let candidate = &v["candidates"][0];
        assert_eq!(
            candidate["content"],
            json!({"parts": [{"text": "alpha beta gamma"}], "role": "model"})
        );
        assert_eq!(candidate["finishReason"], "STOP");
        assert_eq!(candidate["index"], 0);
        assert_eq!(v["usageMetadata"]["promptTokenCount"], 10);
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 4);
        assert_eq!(v["usageMetadata"]["totalTokenCount"], 14);
        assert_eq!(v["modelVersion"], "gemini-2.5-flash");
        assert_eq!(
            server.last_request().expect("recorded").headers["x-goog-api-key"],
            "g"
        );

        let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
        let response = post(&server, path, gemini_request(), &[]).await;
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/event-stream")
        );
        let text = response.text().await.expect("body");
        assert!(text.contains("\r\n\r\n"), "Google frames SSE with CRLF");
        let chunks = data_json(&sse_events(&text));
        assert_eq!(chunks.len(), 3);
        let streamed: String = chunks
            .iter()
            .map(|c| {
                c["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .expect("text")
            })
            .collect();
        assert_eq!(streamed, "alpha beta gamma");
        assert!(
            chunks[..2]
                .iter()
                .all(|c| c["candidates"][0].get("finishReason").is_none())
        );
        assert_eq!(chunks[0]["usageMetadata"]["promptTokenCount"], 10);
        let last = &chunks[2];
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 4);
        assert_eq!(last["usageMetadata"]["totalTokenCount"], 14);

        // Without alt=sse Google streams one JSON array.
        let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
        let array = json_of(post(&server, path, gemini_request(), &[]).await).await;
        assert_eq!(array.as_array().expect("array").len(), 3);
        assert_eq!(array[2]["candidates"][0]["finishReason"], "STOP");

        let mut short = gemini_request();
        short["generationConfig"] = json!({"maxOutputTokens": 1});
        let v = json_of(post(&server, "/v1beta/models/g:generateContent", short, &[]).await).await;
        assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
        let response = post(
            &server,
            "/v1beta/models/g:generateContent",
            json!({"contents": []}),
            &[],
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            json_of(response).await["error"]["status"],
            "INVALID_ARGUMENT"
        );
    })
    .await;
}

#[tokio::test]
async fn gemini_function_calls_and_embeddings() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let mut body = gemini_request();
        body["tools"] = json!([{"functionDeclarations": [{"name": "get_weather",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}]);
        let v = json_of(post(&server, "/v1beta/models/g:generateContent", body.clone(), &[]).await).await;
        assert_eq!(v["candidates"][0]["content"]["parts"], json!([{"functionCall": {"name": "get_weather", "args": {"city": "mock"}}}]));
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        let text = post(&server, "/v1beta/models/g:streamGenerateContent?alt=sse", body.clone(), &[])
            .await
            .text()
            .await
            .expect("body");
        let chunks = data_json(&sse_events(&text));
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
        body["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
        let v = json_of(post(&server, "/v1beta/models/g:generateContent", body, &[]).await).await;
        assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], DEFAULT_REPLY);

        let one = json!({"content": {"parts": [{"text": "hello"}]}});
        let v = json_of(post(&server, "/v1beta/models/text-embedding-004:embedContent", one.clone(), &[]).await).await;
        assert_eq!(v["embedding"]["values"].as_array().expect("values").len(), 8);
        let batch = json!({"requests": [one.clone(), {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 3}]});
        let v = json_of(post(&server, "/v1beta/models/e:batchEmbedContents", batch, &[]).await).await;
        assert_eq!(v["embeddings"][0], json!({"values": v["embeddings"][0]["values"]}));
        assert_eq!(v["embeddings"][1]["values"].as_array().expect("values").len(), 3);
        let v2 = json_of(post(&server, "/v1beta/models/e:embedContent", one, &[]).await).await;
        assert_eq!(v2["embedding"]["values"], v["embeddings"][0]["values"]);
    })
    .await;
}

#[tokio::test]
async fn forced_status_in_each_apis_error_format_with_retry_after() {
    bounded(async {
        let server = mock(Knobs {
            status: Some(429),
            retry_after: Some(7),
            ..Knobs::default()
        })
        .await;
        let r = post(
            &server,
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            &[],
        )
        .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "7");
        let v = json_of(r).await;
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(v["error"]["type"], "requests");
        assert_eq!(v["error"]["param"], Value::Null);
        assert!(v["error"]["message"].is_string());

        let r = post(&server, "/v1/messages", anthropic_request(false), &[]).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "7");
        let v = json_of(r).await;
        assert_eq!(
            (v["type"].as_str(), v["error"]["type"].as_str()),
            (Some("error"), Some("rate_limit_error"))
        );
        let r = post(
            &server,
            "/v1/messages",
            anthropic_request(true),
            &[("x-mock-status", "529")],
        )
        .await;
        assert_eq!(r.status().as_u16(), 529);
        assert_eq!(json_of(r).await["error"]["type"], "overloaded_error");

        let r = post(
            &server,
            "/v1beta/models/g:generateContent",
            gemini_request(),
            &[],
        )
        .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let v = json_of(r).await;
        assert_eq!(v["error"]["code"], 429);
        assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(v["error"]["details"][0]["retryDelay"], "7s");
        let headers = [("x-mock-status", "503"), ("x-mock-retry-after", "none")];
        let r = post(
            &server,
            "/v1beta/models/g:generateContent",
            gemini_request(),
            &headers,
        )
        .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get("retry-after").is_none());
        assert_eq!(json_of(r).await["error"]["status"], "UNAVAILABLE");
        let r = post(
            &server,
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            &[("x-mock-status", "500")],
        )
        .await;
        assert_eq!(json_of(r).await["error"]["type"], "server_error");

        // A header clears the server-wide status for one request.
        let r = post(
            &server,
            "/v1/messages",
            anthropic_request(false),
            &[("x-mock-status", "none")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        // A malformed knob header is refused, naming the header.
        let r = post(
            &server,
            "/v1/messages",
            anthropic_request(false),
            &[("x-mock-status", "200")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            json_of(r).await["error"]["message"]
                .as_str()
                .expect("message")
                .contains("x-mock-status")
        );
    })
    .await;
}

#[tokio::test]
async fn failure_rate_fails_every_kth_request() {
    bounded(async {
        let server = mock(Knobs {
            failure_rate: Some(0.5),
            ..Knobs::default()
        })
        .await;
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(
                post(&server, "/v1/chat/completions", body.clone(), &[])
                    .await
                    .status()
                    .as_u16(),
            );
        }
        assert_eq!(statuses, vec![200, 503, 200, 503, 200, 503]);
        let headers = [("x-mock-failure-rate", "0.25"), ("x-mock-status", "502")];
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let r = post(&server, "/v1/chat/completions", body.clone(), &headers).await;
            statuses.push(r.status().as_u16());
        }
        // Requests 7..=10: only 8 crosses a multiple of 4.
        assert_eq!(statuses, vec![200, 502, 200, 200]);
        assert_eq!(server.requests(), 10);
    })
    .await;
}

#[tokio::test]
async fn disconnect_cuts_each_stream_before_its_end_marker() {
    bounded(async {
        let server = mock(Knobs {
            disconnect_after: Some(2),
            ..Knobs::default()
        })
        .await;
        let body =
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]});
        let r = post(&server, "/v1/chat/completions", body, &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let (text, cut) = read_until_end(r).await;
        assert!(cut, "the body ends in an error, not a clean end");
        assert!(!text.contains("[DONE]"));
        assert_eq!(
            sse_events(&text).len(),
            2,
            "exactly the first 2 chunks arrived: {text}"
        );

        let (text, cut) =
            read_until_end(post(&server, "/v1/messages", anthropic_request(true), &[]).await).await;
        assert!(cut);
        assert!(!text.contains("message_stop"));
        assert!(text.contains("message_start"));

        let headers = [("x-mock-disconnect-after", "1")];
        let path = "/v1beta/models/g:streamGenerateContent?alt=sse";
        let (text, cut) =
            read_until_end(post(&server, path, gemini_request(), &headers).await).await;
        assert!(cut);
        assert!(!text.contains("finishReason"));
        assert_eq!(sse_events(&text).len(), 1);

        // Past the end marker the cut still comes before it.
        let headers = [("x-mock-disconnect-after", "1000")];
        let (text, cut) =
            read_until_end(post(&server, "/v1/messages", anthropic_request(true), &headers).await)
                .await;
        assert!(cut);
        assert!(text.contains("message_delta") && !text.contains("message_stop"));

        // A non-streamed answer is cut halfway; a header turns the knob off.
        let r = post(&server, "/v1/messages", anthropic_request(false), &[]).await;
        assert!(r.json::<Value>().await.is_err());
        let r = post(
            &server,
            "/v1/messages",
            anthropic_request(false),
            &[("x-mock-disconnect-after", "none")],
        )
        .await;
        assert_eq!(json_of(r).await["type"], "message");
    })
    .await;
}

#[tokio::test]
async fn disconnect_over_http2_resets_the_stream() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let h2 = Client::builder()
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let body =
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]});
        let url = format!("{}/v1/chat/completions", server.url());
        let r = h2
            .post(&url)
            .json(&body)
            .header("x-mock-disconnect-after", "3")
            .send()
            .await
            .expect("sent");
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        let (text, cut) = read_until_end(r).await;
        assert!(cut && !text.contains("[DONE]"));
        // The connection stays usable for the next stream.
        let r = h2.post(&url).json(&body).send().await.expect("sent");
        let (text, cut) = read_until_end(r).await;
        assert!(!cut && text.ends_with("data: [DONE]\n\n"));
    })
    .await;
}

#[tokio::test]
async fn latency_and_chunk_delay_hold_bytes_back() {
    bounded(async {
        // A huge latency makes a short client timeout fire; the header lifts it per request.
        let server = mock(Knobs {
            latency: Duration::from_secs(60),
            ..Knobs::default()
        })
        .await;
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let url = format!("{}/v1/chat/completions", server.url());
        let err = server
            .client
            .post(&url)
            .timeout(Duration::from_millis(300))
            .json(&body)
            .send()
            .await
            .expect_err("held back by the latency");
        assert!(err.is_timeout(), "{err}");
        let r = post(
            &server,
            "/v1/chat/completions",
            body.clone(),
            &[("x-mock-latency-ms", "0")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);

        // With a huge chunk delay the first chunk still arrives at once: chunks are flushed one
        // by one, not buffered until the end.
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let headers = [("x-mock-latency-ms", "0"), ("x-mock-chunk-delay-ms", "60s")];
        let r = post(&server, "/v1/chat/completions", streamed, &headers).await;
        let mut chunks = r.bytes_stream();
        let first = tokio::time::timeout(Duration::from_secs(10), chunks.next())
            .await
            .expect("first chunk before the delay")
            .expect("a chunk")
            .expect("bytes");
        assert!(String::from_utf8_lossy(&first).contains("\"role\":\"assistant\""));
        let second = tokio::time::timeout(Duration::from_millis(300), chunks.next()).await;
        assert!(
            second.is_err(),
            "the second chunk waits for the chunk delay"
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_paths_health_and_shutdown() {
    bounded(async {
        let server = mock(Knobs::default()).await;
        let r = post(&server, "/v1/completions", json!({}), &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["x-mock-request-number"], "1");
        assert_eq!(json_of(r).await["error"]["type"], "invalid_request_error");
        let r = post(&server, "/v1beta/models/g:countTokens", json!({}), &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(json_of(r).await["error"]["status"], "NOT_FOUND");
        let r = server
            .client
            .get(format!("{}/healthz", server.url()))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.text().await.expect("body"), "ok");
        assert_eq!(server.requests(), 3);
        assert_eq!(server.recorded().len(), 3);
        assert_eq!(server.recorded()[0].path, "/v1/completions");

        let url = server.url();
        server.server.shutdown().await;
        let err = Client::new()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .expect_err("stopped");
        assert!(err.is_connect(), "{err}");
    })
    .await;
}

#[tokio::test]
async fn router_serves_without_spawn() {
    bounded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = mock_upstream::router(Knobs {
            reply: "routed".into(),
            ..Knobs::default()
        });
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let v: Value = client()
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        assert_eq!(v["choices"][0]["message"]["content"], "routed");
        task.abort();
    })
    .await;
}
