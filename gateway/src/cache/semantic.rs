//! The semantic cache: an answer stored for a similar prompt is served when the cosine
//! similarity of the prompts' embeddings reaches the route's threshold.
//!
//! Scope: a prompt is compared only with prompts stored under the same route, team (or key),
//! format and *context* — the conversation before the last user message and every parameter
//! (see [`super::key::chat_semantic`]) — so a similar question under another system prompt or
//! temperature never matches. Within a scope the search is brute force over at most
//! `maxEntries` unit vectors (a dot product each; see the bench for its cost).
//!
//! The index lives in this process (Redis's vector search needs a module Debian's
//! redis-server lacks): each replica learns its own prompts, while the answers themselves are
//! shared through Redis when it is configured. Scopes are held in a moka cache bounded by
//! the bytes of their vectors.

#![allow(
    clippy::disallowed_types,
    reason = "one lock per scope, held for a search or an insert over a bounded list, never across an await"
)]

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use moka::sync::Cache as Moka;
use serde::Deserialize;
use tokio::time::Instant;

use super::key::Key;
use crate::{
    error::GatewayError,
    pipeline::{Shared, embeddings::Embeddings},
    wire::openai::{EmbeddingsInput, EmbeddingsRequest},
};

/// Largest embeddings answer read back (a 3072-dimension float vector is ~70 KB as JSON).
const MAX_EMBEDDING_BODY: usize = 4 << 20;

/// One remembered prompt.
struct Item {
    vector: Box<[f32]>,
    answer: Key,
    expires_ms: u64,
}

/// The prompts of one scope, oldest first.
#[derive(Default)]
struct Scope {
    items: VecDeque<Item>,
}

impl Scope {
    fn bytes(&self) -> u64 {
        self.items
            .iter()
            .map(|i| (i.vector.len() * 4 + 48) as u64)
            .sum::<u64>()
            + 64
    }
}

/// Remembered prompts, per scope.
pub struct Index {
    scopes: Moka<Key, Arc<Mutex<Scope>>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("scopes", &self.scopes.entry_count())
            .finish()
    }
}

/// A unit vector, or `None` for a zero or non-finite one.
pub fn normalized(v: &[f32]) -> Option<Box<[f32]>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm.is_finite() && norm > 0.0).then(|| v.iter().map(|x| x / norm).collect())
}

impl Index {
    /// An index holding at most about `max_bytes` of vectors.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            scopes: Moka::builder()
                .max_capacity(max_bytes)
                .weigher(|_, s: &Arc<Mutex<Scope>>| {
                    let bytes = s.lock().unwrap_or_else(PoisonError::into_inner).bytes();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The stored answer whose prompt is most similar to `vector` (a unit vector), if its
    /// similarity reaches `threshold`, with that similarity.
    pub fn search(
        &self,
        scope: &Key,
        vector: &[f32],
        threshold: f64,
        now_ms: u64,
    ) -> Option<(Key, f32)> {
        let scope = self.scopes.get(scope)?;
        let scope = scope.lock().unwrap_or_else(PoisonError::into_inner);
        best(&scope.items, vector, now_ms).filter(|(_, s)| f64::from(*s) >= threshold)
    }

    /// Remembers a prompt whose answer is stored under `answer`; the oldest (and expired)
    /// prompts of the scope go first.
    pub fn insert(
        &self,
        scope: Key,
        vector: Box<[f32]>,
        answer: Key,
        expires_ms: u64,
        max_entries: usize,
        now_ms: u64,
    ) {
        let entry = self.scopes.get_with(scope, Arc::default);
        {
            let mut s = entry.lock().unwrap_or_else(PoisonError::into_inner);
            s.items
                .retain(|i| i.expires_ms > now_ms && i.answer != answer);
            while s.items.len() >= max_entries.max(1) {
                s.items.pop_front();
            }
            s.items.push_back(Item {
                vector,
                answer,
                expires_ms,
            });
        }
        // Inserted again so moka weighs the scope at its new size.
        self.scopes.insert(scope, entry);
    }
}

fn best(items: &VecDeque<Item>, vector: &[f32], now_ms: u64) -> Option<(Key, f32)> {
    items
        .iter()
        .filter(|i| i.expires_ms > now_ms && i.vector.len() == vector.len())
        .map(|i| (i.answer, dot(&i.vector, vector)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Eight independent sums, so the compiler can keep them in one SIMD register (a single
/// running sum must be added in order, which stops vectorisation).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Why the prompt could not be embedded (the request is then served without the semantic
/// cache, never refused for it).
#[derive(Debug, thiserror::Error)]
pub(super) enum EmbedError {
    /// The embedding route is gone from the config.
    #[error("embedding route {0} is not in the config")]
    NoRoute(String),
    /// The embeddings request failed (its own error: auth, budget, provider).
    #[error("embeddings request failed: {0}")]
    Request(#[from] GatewayError),
    /// The answer was not a usable embedding.
    #[error("embeddings answer unusable: {0}")]
    Answer(String),
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
}

/// The unit embedding of `text` from route `route_id`, through the same pipeline as a client's
/// `/v1/embeddings` request (the caller's key, the route's budgets, health and metrics).
pub(super) async fn embed(
    shared: &Shared,
    route_id: &str,
    text: &str,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Box<[f32]>, EmbedError> {
    let model = shared
        .config
        .snapshot()
        .and_then(|s| s.route_by_id(route_id).map(|r| r.config.model.clone()))
        .ok_or_else(|| EmbedError::NoRoute(route_id.to_owned()))?;
    let req = EmbeddingsRequest {
        model,
        input: EmbeddingsInput::One(text.to_owned()),
        encoding_format: None,
        dimensions: None,
        rest: serde_json::Map::new(),
    };
    let response = serve_embeddings(shared, req, headers, request_id).await?;
    if response.status() != StatusCode::OK {
        return Err(EmbedError::Answer(format!("status {}", response.status())));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_EMBEDDING_BODY)
        .collect()
        .await
        .map_err(|e| EmbedError::Answer(e.to_string()))?
        .to_bytes();
    let answer: EmbeddingsAnswer =
        serde_json::from_slice(&body).map_err(|e| EmbedError::Answer(e.to_string()))?;
    let first = answer
        .data
        .first()
        .ok_or_else(|| EmbedError::Answer("no embedding".to_owned()))?;
    normalized(&first.embedding).ok_or_else(|| EmbedError::Answer("zero vector".to_owned()))
}

/// Boxed: the embeddings pipeline contains this lookup itself (an embeddings route may be
/// cached too), and a boxed future breaks the type's recursion.
fn serve_embeddings<'a>(
    shared: &'a Shared,
    req: EmbeddingsRequest,
    headers: &'a HeaderMap,
    request_id: &'a str,
) -> Pin<Box<dyn Future<Output = Result<Response<Body>, GatewayError>> + Send + 'a>> {
    Box::pin(crate::pipeline::serve::<Embeddings>(
        shared,
        req,
        headers,
        request_id,
        Instant::now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Box<[f32]> {
        normalized(v).unwrap()
    }

    #[test]
    fn the_most_similar_prompt_above_the_threshold_is_found() {
        let index = Index::new(1 << 20);
        let scope = [1; 32];
        index.insert(scope, unit(&[1.0, 0.0, 0.0]), [10; 32], 1000, 10, 0);
        index.insert(scope, unit(&[0.0, 1.0, 0.0]), [20; 32], 1000, 10, 0);
        let near = unit(&[0.1, 1.0, 0.0]);
        let (answer, similarity) = index.search(&scope, &near, 0.9, 1).unwrap();
        assert_eq!(answer, [20; 32]);
        assert!(similarity > 0.99, "{similarity}");
        assert_eq!(index.search(&scope, &unit(&[0.0, 0.0, 1.0]), 0.9, 1), None);
        assert_eq!(index.search(&[2; 32], &near, 0.9, 1), None, "another scope");
    }

    #[test]
    fn expired_and_oldest_prompts_are_forgotten() {
        let index = Index::new(1 << 20);
        let scope = [1; 32];
        index.insert(scope, unit(&[1.0, 0.0]), [10; 32], 100, 2, 0);
        assert!(index.search(&scope, &unit(&[1.0, 0.0]), 0.9, 99).is_some());
        assert_eq!(index.search(&scope, &unit(&[1.0, 0.0]), 0.9, 100), None);
        for (i, v) in [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]].iter().enumerate() {
            index.insert(scope, unit(v), [i as u8; 32], 1000, 2, 0);
        }
        assert_eq!(
            index.search(&scope, &unit(&[1.0, 0.0]), 0.99, 1),
            None,
            "evicted"
        );
        assert!(index.search(&scope, &unit(&[0.0, 1.0]), 0.99, 1).is_some());
    }

    #[test]
    fn the_dot_product_covers_every_dimension() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b = vec![1.0f32; 19];
        assert_eq!(dot(&a, &b), (0..19).sum::<i32>() as f32);
    }

    #[test]
    fn zero_vectors_are_not_indexed() {
        assert!(normalized(&[0.0, 0.0]).is_none());
        assert!(normalized(&[f32::NAN, 1.0]).is_none());
    }
}
