//! `encoding_format: "base64"` (what the OpenAI SDKs send by default) through a provider that
//! only answers floats: Gemini behind the mock upstream, over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};
use tollgate_gateway::mock_upstream::{Knobs, spawn};

#[tokio::test]
async fn gemini_embeddings_answer_base64_float32_when_asked() {
    let up = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&gemini_embeddings_route(&up.url())).await;
    let ask =
        |format: &str| json!({"model": "emb", "input": ["one", "two"], "encoding_format": format});

    let (status, _, body) = post(&g, "/v1/embeddings", ask("float")).await;
    assert_eq!(status, 200, "{body}");
    let floats: Value = serde_json::from_str(&body).unwrap();
    let (status, _, body) = post(&g, "/v1/embeddings", ask("base64")).await;
    assert_eq!(status, 200, "{body}");
    let encoded: Value = serde_json::from_str(&body).unwrap();

    for i in 0..2 {
        let expected: Vec<f32> = floats["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded["data"][i]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(decoded, expected, "input {i}");
    }
    g.shutdown().await;
}
