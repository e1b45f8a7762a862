//! Embeddings (`POST /v1/embeddings`): the route's backends in priority order, then its
//! fallbacks (rules do not apply).

use bytes::Bytes;
use http::HeaderMap;

use super::{Answer, JsonAnswer, Operation, call::Clock};
use crate::{
    error::GatewayError,
    failure::Failure,
    metrics::TokenCounts,
    providers::{Adapter, RequestError, Target, UpstreamRequest},
    routing::{self, Plan, RouteRuntime},
    upstream::UpstreamResponse,
    wire::openai::EmbeddingsRequest,
};

/// The embeddings operation.
pub struct Embeddings;

impl Operation for Embeddings {
    const NAME: &'static str = "embeddings";
    type Request = EmbeddingsRequest;

    fn model(req: &EmbeddingsRequest) -> &str {
        &req.model
    }

    fn check(_req: &EmbeddingsRequest) -> Result<(), GatewayError> {
        Ok(())
    }

    fn prompt_bytes(_req: &EmbeddingsRequest) -> u64 {
        0
    }

    fn prompt_tokens(_req: &EmbeddingsRequest) -> u64 {
        0
    }

    fn plan<'a>(
        route: &'a RouteRuntime,
        _req: &EmbeddingsRequest,
        _headers: &HeaderMap,
        _prompt_tokens: u64,
    ) -> Plan<'a> {
        routing::plan_default(route)
    }

    fn translate(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        adapter.embeddings_request(target, req)
    }

    async fn receive(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
        upstream: UpstreamResponse,
        mut clock: Clock,
    ) -> Result<Answer, Failure> {
        let bytes = clock.wait(upstream.bytes(clock.deadlines.total)).await?;
        let mut answer = adapter.embeddings_response(target, &bytes)?;
        answer.encode_as(req.encoding_format.as_deref());
        let body = serde_json::to_vec(&answer)
            .map_err(|e| Failure::protocol(format!("answer cannot be encoded: {e}")))?;
        Ok(Answer::Json(JsonAnswer {
            body: Bytes::from(body),
            tokens: Some(TokenCounts {
                input: answer.usage.prompt_tokens,
                ..TokenCounts::default()
            }),
            total_tokens: None,
            model: answer.model,
            clock,
        }))
    }

    fn cache_key(req: &EmbeddingsRequest, out: &mut sha2::Sha256) -> bool {
        crate::cache::key::embeddings(req, out)
    }
}
