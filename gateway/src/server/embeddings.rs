//! `POST /v1/embeddings`: the route's backends in priority order, then its fallbacks.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use tokio::time::Instant;

use super::{
    AppState, body,
    call::{Deadlines, call},
    chat::Served,
    walk::Walk,
};
use crate::{
    error::GatewayError,
    metrics::{RequestLabels, TokenCounts},
    providers::Target,
    routing,
    wire::openai::EmbeddingsRequest,
};

/// The handler.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = body::request_id(request.headers());
    let result = serve(&app, request, &request_id, started).await;
    body::finish("embeddings", &request_id, result)
}

async fn serve(
    app: &Arc<AppState>,
    request: Request,
    request_id: &str,
    started: Instant,
) -> Result<Response, GatewayError> {
    let snapshot = app.config.snapshot().ok_or(GatewayError::NotReady)?;
    let (parts, raw) = request.into_parts();
    let req: EmbeddingsRequest = body::json(&parts.headers, raw, app.max_body).await?;
    let route = snapshot
        .route(&req.model)
        .ok_or_else(|| GatewayError::ModelNotFound(req.model.clone()))?;
    let plan = routing::plan_default(route);
    let created = jiff::Timestamp::now().as_second();
    let mut waited = Duration::ZERO;
    let mut walk = Walk::new(app, &snapshot, &plan, route, 0);
    let deadline = walk.deadline(started);
    while let Some(pick) = walk.next(deadline).await {
        let (backend, provider) = (pick.backend, pick.provider);
        let target = Target {
            provider: &provider.config,
            model: &backend.model,
            secret: pick.secret,
            request_id,
            created,
        };
        let upstream_req = provider.adapter.embeddings_request(&target, &req)?;
        let deadlines = Deadlines::new(backend, started);
        let mut labels = RequestLabels::new(
            "embeddings",
            provider.config.provider_type,
            &req.model,
            &backend.model,
            &route.config.id,
        );
        let attempt = async {
            let response = call(
                &snapshot,
                provider,
                backend,
                upstream_req,
                request_id,
                &deadlines,
                &mut waited,
            )
            .await?;
            let t = Instant::now();
            let bytes = response.bytes(deadlines.total).await;
            waited += t.elapsed();
            provider.adapter.embeddings_response(&target, &bytes?)
        };
        let outcome = attempt.await;
        walk.report(&pick, outcome.as_ref().map(|_| ()));
        match outcome {
            Ok(mut answer) => {
                answer.encode_as(req.encoding_format.as_deref());
                let elapsed = started.elapsed();
                labels.gen_ai_response_model = answer.model.clone();
                let tokens = TokenCounts {
                    input: answer.usage.prompt_tokens,
                    ..TokenCounts::default()
                };
                app.metrics
                    .request(&labels, elapsed.as_secs_f64(), Some(tokens));
                app.metrics.overhead(
                    "embeddings",
                    &route.config.id,
                    elapsed.saturating_sub(waited).as_secs_f64(),
                );
                let mut response = axum::Json(answer).into_response();
                Served {
                    route: route.config.id.clone(),
                    provider: backend.provider.clone(),
                    model: backend.model.clone(),
                    attempts: pick.attempt,
                    fallback: pick.fallback,
                    rule: None,
                }
                .headers(response.headers_mut());
                return Ok(response);
            }
            Err(failure) => {
                labels.error_type = failure.kind.as_str();
                app.metrics
                    .request(&labels, started.elapsed().as_secs_f64(), None);
            }
        }
    }
    let last = walk.into_failure();
    Err(last.map_or_else(
        || GatewayError::NoBackend {
            model: req.model.clone(),
            why: format!(
                "no backend of route {} resolved; see the LLMRoute's conditions",
                route.config.id
            ),
        },
        GatewayError::Upstream,
    ))
}
