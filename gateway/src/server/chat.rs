//! `POST /v1/chat/completions`: plan the backends, try them in order (falling back on
//! failures another backend may not have), answer as JSON or as a stream.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, header};
use tokio::time::Instant;

use super::{
    AppState, body,
    call::{Deadlines, call},
    sse,
    walk::Walk,
};
use crate::{
    error::GatewayError,
    metrics::{RequestLabels, TokenCounts},
    providers::{Failure, StreamTranslator, Target},
    routing,
    wire::openai::{ChatRequest, Usage},
};

/// What the client is told about how its request was served.
#[derive(Clone, Debug)]
pub struct Served {
    /// Route id.
    pub route: String,
    /// Provider id.
    pub provider: String,
    /// Provider model.
    pub model: String,
    /// Attempts made.
    pub attempts: usize,
    /// Whether a fallback answered.
    pub fallback: bool,
    /// The rule that chose the backends.
    pub rule: Option<String>,
}

impl Served {
    /// Adds the `x-tollgate-*` headers.
    pub fn headers(&self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        set("x-tollgate-route", &self.route);
        set("x-tollgate-provider", &self.provider);
        set("x-tollgate-model", &self.model);
        set("x-tollgate-attempts", &self.attempts.to_string());
        set(
            "x-tollgate-fallback",
            if self.fallback { "true" } else { "false" },
        );
        if let Some(rule) = &self.rule {
            set("x-tollgate-rule", rule);
        }
    }
}

/// Token counts as metered, from OpenAI-shaped usage.
pub fn token_counts(u: &Usage) -> TokenCounts {
    let cached = u.cached();
    let reasoning = u.reasoning();
    TokenCounts {
        input: u.prompt_tokens.saturating_sub(cached),
        output: u.completion_tokens.saturating_sub(reasoning),
        cached_input: cached,
        reasoning,
    }
}

/// The handler.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = body::request_id(request.headers());
    let result = serve(&app, request, &request_id, started).await;
    body::finish("chat", &request_id, result)
}

async fn serve(
    app: &Arc<AppState>,
    request: Request,
    request_id: &str,
    started: Instant,
) -> Result<Response, GatewayError> {
    let snapshot = app.config.snapshot().ok_or(GatewayError::NotReady)?;
    let (parts, raw) = request.into_parts();
    let req: ChatRequest = body::json(&parts.headers, raw, app.max_body).await?;
    if req.messages.is_empty() {
        return Err(GatewayError::BadRequest {
            message: "messages must contain at least one message".into(),
            param: Some("messages".into()),
        });
    }
    let route = snapshot
        .route(&req.model)
        .ok_or_else(|| GatewayError::ModelNotFound(req.model.clone()))?;
    let plan = routing::plan(route, &req, &parts.headers);
    if plan.backends.is_empty() {
        return Err(GatewayError::NoBackend {
            model: req.model.clone(),
            why: format!(
                "no backend of route {} resolved; see the LLMRoute's conditions",
                route.config.id
            ),
        });
    }
    let created = jiff::Timestamp::now().as_second();
    let mut waited = Duration::ZERO;
    // Count prompt tokens only when something needs them: a per-key token quota, or a
    // context window the prompt might not fit (a token is at least one byte, so a prompt
    // of fewer bytes than every window fits without counting).
    let prompt_bytes = routing::tokens::prompt_bytes(&req);
    let needs_tokens = plan.backends.iter().any(|b| {
        snapshot.provider(&b.provider).is_some_and(|p| {
            p.config
                .limits
                .as_ref()
                .is_some_and(|l| l.tokens_per_minute.is_some())
                || p.context_window(&b.model)
                    .is_some_and(|w| u64::from(w) < prompt_bytes)
        })
    });
    let estimated = if needs_tokens {
        routing::tokens::prompt_tokens(&req)
    } else {
        0
    };
    let mut walk = Walk::new(app, &snapshot, &plan, route, estimated);
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
        let upstream_req = provider.adapter.chat_request(&target, &req)?;
        let deadlines = Deadlines::new(backend, started);
        let served = Served {
            route: route.config.id.clone(),
            provider: backend.provider.clone(),
            model: backend.model.clone(),
            attempts: pick.attempt,
            fallback: pick.fallback,
            rule: plan.rule.map(str::to_owned),
        };
        let labels = RequestLabels::new(
            "chat",
            provider.config.provider_type,
            &req.model,
            &backend.model,
            &route.config.id,
        );
        let attempt = async {
            let mut response = call(
                &snapshot,
                provider,
                backend,
                upstream_req,
                request_id,
                &deadlines,
                &mut waited,
            )
            .await?;
            if req.is_stream() {
                // Read until the first chunk is ready: until then nothing has reached the
                // client, so a failure may still fall back.
                let mut translator = provider.adapter.stream(&target);
                let mut first = Vec::new();
                while first.is_empty() {
                    let t = Instant::now();
                    let piece = response.chunk(deadlines.first_byte).await;
                    waited += t.elapsed();
                    match piece? {
                        Some(bytes) => first = translator.feed(&bytes)?,
                        None => {
                            first = translator.finish()?;
                            break;
                        }
                    }
                }
                Ok(Answer::Stream(Box::new((response, translator, first))))
            } else {
                let t = Instant::now();
                let bytes = response.bytes(deadlines.total).await;
                waited += t.elapsed();
                Ok(Answer::Json(
                    provider.adapter.chat_response(&target, &bytes?)?,
                ))
            }
        };
        let outcome: Result<Answer, Failure> = attempt.await;
        walk.report(&pick, outcome.as_ref().map(|_| ()));
        match outcome {
            Ok(Answer::Json(answer)) => {
                let elapsed = started.elapsed();
                let mut labels = labels;
                labels.gen_ai_response_model = answer.model.clone();
                if let (Some(quota), Some(usage)) =
                    (provider.quota(pick.key), answer.usage.as_ref())
                {
                    quota.settle(Instant::now(), estimated, usage.total_tokens);
                }
                app.metrics.request(
                    &labels,
                    elapsed.as_secs_f64(),
                    answer.usage.as_ref().map(token_counts),
                );
                app.metrics.overhead(
                    "chat",
                    &route.config.id,
                    elapsed.saturating_sub(waited).as_secs_f64(),
                );
                let mut response = axum::Json(answer).into_response();
                served.headers(response.headers_mut());
                return Ok(response);
            }
            Ok(Answer::Stream(started_stream)) => {
                let (upstream, translator, first) = *started_stream;
                let stream = sse::ChatStream::new(sse::StreamParts {
                    upstream,
                    translator,
                    first,
                    deadlines,
                    include_usage: req.include_usage(),
                    metrics: Arc::clone(&app.metrics),
                    labels,
                    started,
                    waited,
                    provider: backend.provider.clone(),
                    health: Arc::clone(&pick.health),
                    health_settings: app.health_settings.clone(),
                    quota: provider.quota(pick.key).map(|_| {
                        (
                            Arc::clone(&snapshot),
                            backend.provider.clone(),
                            pick.key,
                            estimated,
                        )
                    }),
                });
                let mut response = Response::new(Body::from_stream(stream.into_stream()));
                let h = response.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                );
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                served.headers(h);
                return Ok(response);
            }
            Err(failure) => {
                tracing::info!(
                    request_id,
                    provider = %backend.provider,
                    model = %backend.model,
                    kind = failure.kind.as_str(),
                    status = failure.status,
                    error = %failure.safe_message(),
                    "attempt failed"
                );
                let mut failed = labels;
                failed.error_type = failure.kind.as_str();
                app.metrics
                    .request(&failed, started.elapsed().as_secs_f64(), None);
            }
        }
    }
    let attempts = walk.attempts();
    Err(walk.into_failure().map_or_else(
        || GatewayError::NoBackend {
            model: req.model.clone(),
            why: if attempts == 0 {
                "no provider of the route is loaded".into()
            } else {
                "every backend failed".into()
            },
        },
        GatewayError::Upstream,
    ))
}

/// A successful attempt.
enum Answer {
    Json(crate::wire::openai::ChatResponse),
    /// Boxed: translators differ a lot in size.
    Stream(
        Box<(
            crate::upstream::UpstreamResponse,
            crate::providers::AnyStream,
            Vec<crate::wire::openai::ChatChunk>,
        )>,
    ),
}
