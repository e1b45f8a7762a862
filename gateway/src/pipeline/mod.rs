//! The attempt pipeline: one path every request takes, whatever the operation (chat as JSON
//! or as a stream, embeddings; later Anthropic Messages and Responses ingress, images).
//! An [`Operation`] says what differs — how to parse, plan, translate and receive; the
//! pipeline owns the order and everything around it.
//!
//! Stages, in order (the `HOOK` lines are where later features plug in):
//!
//! 1. **admit** — the snapshot, the route for the requested model, the operation's own
//!    checks, who is calling (client key, team) and the route's rate limits
//!    ([`crate::limits`]), before any work is spent on the request.
//! 2. **size** — the prompt's size: a byte bound first (free), an estimate of its tokens only
//!    when a rule, a key's token quota or a context window needs it (`routing::tokens`,
//!    O(bytes), bounded).
//! 3. **plan** — the backends in the order to try (`routing::plan`). The cache lookup
//!    (`crate::cache`) runs just before it, after identity: a stored answer returns without
//!    an upstream call and without reserving budget. Budget check + reservation (refuse
//!    or reserve the request's estimated cost) go after planning, when the candidate models
//!    and so their prices are known. HOOK guardrails on the prompt go here too.
//! 4. **walk** — the next backend and key ([`walk`]): health, quotas, windows, retries,
//!    fallback, panic mode.
//! 5. **translate** — the adapter's upstream request; an adapter that cannot express the
//!    request refuses, and the walk skips that backend.
//! 6. **call** — send over the backend's transport ([`call`]), classify a non-2xx answer.
//! 7. **receive** — the body (JSON) or the stream up to its first chunk ([`stream`]);
//!    until then a failure may still fall back.
//! 8. **report** — the outcome to the walk (health, attempt metrics, retry decisions).
//! 9. **respond / settle** — the answer with the `x-tollgate-*` headers ([`respond`]); its
//!    metrics, overhead and quota correction ([`settle`]) at once for JSON, at the end for
//!    a stream. HOOK guardrails on the response (per chunk for streams) go here; the cache
//!    stores a JSON answer here and a stream through its frame tap.

pub mod call;
pub mod chat;
pub mod embeddings;
pub mod encode;
pub mod guard;
pub mod messages;
pub mod passthrough;
pub mod pays;
pub mod respond;
pub mod responses;
pub mod settle;
pub mod stream;
pub mod walk;

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;

use self::{
    call::{Clock, Deadlines},
    respond::Served,
    settle::Settle,
    stream::StreamReader,
    walk::{PromptSize, Walk},
};
use crate::{
    config::ConfigState,
    error::GatewayError,
    failure::Failure,
    guardrails::{self, PromptText},
    metrics::{Metrics, RequestLabels, TokenCounts},
    providers::{Adapter, RequestError, Target, UpstreamRequest},
    resilience::health::HealthSettings,
    routing::{Plan, RouteRuntime},
    upstream::UpstreamResponse,
};

/// What every request's pipeline reads.
#[derive(Debug)]
pub struct Shared {
    /// The config.
    pub config: Arc<ConfigState>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest accepted request body.
    pub max_body: usize,
    /// Ejection thresholds and cooldowns.
    pub health_settings: HealthSettings,
    /// Budgets and usage records.
    pub pays: Arc<pays::Pays>,
    /// The response cache.
    pub cache: Arc<crate::cache::Cache>,
}

/// One kind of request the pipeline serves.
pub trait Operation: Send + Sync + 'static {
    /// The metrics' `gen_ai.operation.name` (`chat`, `embeddings`, `count_tokens`).
    const NAME: &'static str;
    /// The client's request (`Clone`: prompt guardrails redact a copy).
    type Request: DeserializeOwned + Clone + Send + Sync + 'static;

    /// The model (route name or alias) asked for.
    fn model(req: &Self::Request) -> &str;

    /// Checks the operation's own rules before any routing.
    fn check(req: &Self::Request) -> Result<(), GatewayError>;

    /// An upper bound of the prompt's tokens that costs nothing to compute (0 when the
    /// operation has no prompt that windows or quotas apply to).
    fn prompt_bytes(req: &Self::Request) -> u64;

    /// An estimate of the prompt's tokens (called only when something needs it).
    fn prompt_tokens(req: &Self::Request) -> u64;

    /// The most output tokens the request allows (`max_tokens`), for budget reservations.
    fn max_output_tokens(_req: &Self::Request) -> Option<u64> {
        None
    }

    /// The backends to try, in order.
    fn plan<'a>(
        route: &'a RouteRuntime,
        req: &Self::Request,
        headers: &HeaderMap,
        prompt_tokens: u64,
    ) -> Plan<'a>;

    /// The upstream request for one attempt; `Err` when this adapter cannot express it.
    fn translate(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &Self::Request,
    ) -> Result<UpstreamRequest, RequestError>;

    /// Reads a successful upstream answer: the whole body, or a stream to its first chunk.
    fn receive(
        adapter: &Adapter,
        target: &Target<'_>,
        req: &Self::Request,
        upstream: UpstreamResponse,
        clock: Clock,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send;

    /// Keeps what the operation needs from the client's headers (the Messages door keeps
    /// `anthropic-version` and `anthropic-beta` for Anthropic backends). Called once, before
    /// the pipeline.
    fn headers(_req: &mut Self::Request, _headers: &HeaderMap) {}

    /// The client's response for a failed request, in the door's dialect (OpenAI JSON unless
    /// the door says otherwise).
    fn error_response(e: GatewayError) -> axum::response::Response {
        axum::response::IntoResponse::into_response(e)
    }

    /// Writes the request's canonical form for the response cache (every field that
    /// changes the answer, not the model name nor labels like `user`; see `cache::key`).
    /// `false`: this operation is never cached.
    fn cache_key(_req: &Self::Request, _out: &mut sha2::Sha256) -> bool {
        false
    }

    /// For the semantic cache: writes the request's context (all but the prompt compared by
    /// meaning) and returns that prompt's text. `None`: no semantic matching.
    fn semantic_prompt(_req: &Self::Request, _context: &mut sha2::Sha256) -> Option<String> {
        None
    }

    /// Every text part of the prompt a provider will read, mutably (guardrails redact in
    /// place, on a copy), each marked whether it is the application's own instructions.
    /// `None`: this operation cannot show its prompt, so a route with prompt guardrails
    /// refuses it rather than pass it unchecked.
    fn prompt_text_mut(_req: &mut Self::Request) -> Option<Vec<PromptText<'_>>> {
        None
    }

    /// Called on the copy whose text the prompt guardrails rewrote, before it is sent: an
    /// operation that also keeps the client's body (the Messages door's passthrough)
    /// rewrites it here.
    fn redacted(_req: &mut Self::Request) -> Result<(), GatewayError> {
        Ok(())
    }

    /// The answer's text in a JSON answer body as the client gets it, mutably. `None`: this
    /// operation cannot show it, so a route that checks answers refuses to return it.
    fn answer_text_mut(_body: &mut serde_json::Value) -> Option<Vec<&mut String>> {
        None
    }

    /// The JSON answer exactly as the client gets it (after the answer guardrails), once it
    /// is final: the Responses door stores it here for `previous_response_id` and `GET`.
    fn answered(_req: &Self::Request, _body: &Bytes) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Runs once the caller is known, before the request is sized and planned (the
    /// Responses door loads the stored conversation `previous_response_id` names here). The
    /// request keeps what it learns in a cell of its own.
    fn prepare(
        _shared: &Shared,
        _identity: &crate::identity::Identity,
        _req: &Self::Request,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send {
        async { Ok(()) }
    }
}

/// A successful attempt's answer.
pub enum Answer {
    /// A complete JSON answer.
    Json(JsonAnswer),
    /// A stream whose first chunk is ready. Boxed: translators differ a lot in size.
    Stream(Box<StreamAnswer>),
}

/// A stream answer: the upstream reader and how the client's door encodes it.
pub struct StreamAnswer {
    /// The upstream stream, read to its first chunk.
    pub reader: StreamReader,
    /// The client's wire format.
    pub encoder: Box<dyn encode::StreamEncoder>,
}

/// A JSON answer, encoded for the client.
pub struct JsonAnswer {
    /// The body.
    pub body: Bytes,
    /// The model that answered, for metrics.
    pub model: String,
    /// Tokens as metered.
    pub tokens: Option<TokenCounts>,
    /// Total tokens, to correct the key's token quota.
    pub total_tokens: Option<u64>,
    /// The attempt's clock.
    pub clock: Clock,
}

/// Serves one parsed request through every stage (see the module docs). The caller parses
/// the body and turns the error into the client's response.
pub async fn serve<O: Operation>(
    shared: &Shared,
    mut req: O::Request,
    headers: &HeaderMap,
    request_id: &str,
    started: Instant,
) -> Result<http::Response<axum::body::Body>, GatewayError> {
    O::headers(&mut req, headers);
    let span = tracing::info_span!("request", request_id, operation = O::NAME);
    run::<O>(shared, &req, headers, request_id, started)
        .instrument(span)
        .await
}

async fn run<O: Operation>(
    shared: &Shared,
    req: &O::Request,
    headers: &HeaderMap,
    request_id: &str,
    started: Instant,
) -> Result<http::Response<axum::body::Body>, GatewayError> {
    // 1. admit.
    O::check(req)?;
    let snapshot = shared.config.snapshot().ok_or(GatewayError::NotReady)?;
    let model = O::model(req);
    let mut route = snapshot
        .route(model)
        .ok_or_else(|| GatewayError::ModelNotFound(model.to_owned()))?;
    let identity = pays::identify(&shared.pays, &snapshot, headers, &route.config.id)?;
    let limited = crate::limits::admit(&shared.pays.limits, &route.config, &identity, || {
        O::prompt_tokens(req).saturating_add(O::max_output_tokens(req).unwrap_or(0))
    })
    .await?;
    O::prepare(shared, &identity, req).await?;
    // HOOK cache lookup: a stored answer returns here, before any budget is reserved.
    let mut cache =
        match crate::cache::lookup::<O>(shared, route, &identity, req, headers, request_id).await {
            crate::cache::Lookup::Hit(response) => return Ok(limited.headers.on(response)),
            crate::cache::Lookup::Miss(pending) => pending,
        };
    // 2. size, 3. plan, then the budgets in scope reserve the estimate; a full `downgrade`
    // budget sends the request once to its cheaper route.
    let mut downgraded = false;
    let (prompt, plan, reservations) = loop {
        let prompt = size::<O>(route, req);
        let plan = O::plan(route, req, headers, prompt.tokens);
        let budgets = pays::budgets_for(&snapshot, &route.config.id, &identity);
        if budgets.is_empty() {
            break (prompt, plan, Vec::new());
        }
        let tokens = if prompt.tokens > 0 {
            prompt.tokens
        } else {
            O::prompt_tokens(req)
        };
        let estimate = pays::estimate_for(&plan, tokens, O::max_output_tokens(req));
        match pays::admit(&shared.pays, &shared.metrics, &budgets, estimate).await? {
            pays::Decision::Serve(r) => break (prompt, plan, r),
            pays::Decision::Downgrade { budget, route: to } => {
                route = match snapshot.route_by_id(&to) {
                    Some(r) if !downgraded => r,
                    _ => return Err(GatewayError::BudgetExceeded { budget }),
                };
                downgraded = true;
            }
        }
    };
    let fired = guardrails::Fired::new(route.guardrails.clone());
    let mut bill = Some(pays::Bill {
        pays: Arc::clone(&shared.pays),
        identity,
        reservations,
        request_id: request_id.to_owned(),
        limits: limited.ticket,
        cache: cache.usage_label(),
        guardrails: fired.clone(),
    });
    // Prompt guardrails: may refuse, or rewrite the prompt (`req` is then the redacted copy).
    let checks = route.guardrails.as_ref();
    let route_id = &route.config.id;
    let checked = guard::prompt::<O>(shared, checks, req, prompt.tokens, route_id, &fired).await;
    let redacted = checked.inspect_err(|_| bill.take().map_or((), pays::Bill::release))?;
    let req = redacted.as_ref().unwrap_or(req);
    if plan.backends.is_empty() {
        if let Some(b) = bill.take() {
            b.release();
        }
        return Err(GatewayError::NoBackend {
            model: model.to_owned(),
            why: format!(
                "no backend of route {} resolved; see the LLMRoute's conditions",
                route.config.id
            ),
        });
    }
    let created = jiff::Timestamp::now().as_second();
    let mut walk = Walk::new(
        &plan,
        route,
        &shared.health_settings,
        &shared.metrics,
        prompt,
        started,
    )
    .sharing_quotas(&shared.pays.limits);
    let mut waited = std::time::Duration::ZERO;
    // 4. walk.
    while let Some(pick) = walk.next().await {
        let backend = pick.backend;
        let adapter = &backend.provider.adapter;
        let target = Target {
            provider: &backend.provider.config,
            model: &backend.config.model,
            secret: pick.secret,
            request_id,
            created,
            answers_checked: checks.is_some_and(|g| g.response.is_some()),
        };
        // 5. translate.
        let upstream_req = match O::translate(adapter, &target, req) {
            Ok(r) => r,
            Err(refusal) => {
                walk.refused(pick, refusal);
                continue;
            }
        };
        // 6. call, 7. receive.
        let mut clock = Clock {
            deadlines: Deadlines::new(backend, started),
            waited,
        };
        let outcome = match call::call(backend, upstream_req, request_id, &mut clock).await {
            Ok(response) => O::receive(adapter, &target, req, response, clock).await,
            Err(f) => Err(f),
        };
        // 8. report, 9. respond.
        let answer = match outcome {
            Ok(answer) => answer,
            Err(failure) => {
                waited = clock.waited;
                tracing::info!(
                    provider = %backend.config.provider,
                    model = %backend.config.model,
                    kind = failure.kind.as_str(),
                    status = failure.status,
                    error = %failure.safe_message(),
                    "attempt failed"
                );
                let mut labels = labels::<O>(route, backend, model);
                labels.error_type = failure.kind.as_str();
                shared
                    .metrics
                    .request(&labels, started.elapsed().as_secs_f64(), None);
                walk.failed(&pick, failure);
                continue;
            }
        };
        walk.succeeded(&pick);
        let served = Served {
            route: &route.config.id,
            provider: &backend.config.provider,
            model: &backend.config.model,
            attempts: pick.attempt,
            fallback: pick.fallback,
            rule: plan.rule,
        };
        let mut settle = Settle {
            metrics: Arc::clone(&shared.metrics),
            labels: labels::<O>(route, backend, model),
            started,
            backend: Arc::clone(backend),
            health: Arc::clone(pick.health),
            settings: shared.health_settings.clone(),
            quota: pick.quota.map(|q| (Arc::clone(q), prompt.tokens)),
            fallback: pick.fallback,
            route: Arc::clone(&route.id),
            span: tracing::Span::current(),
            bill: bill.take(),
        };
        let response = match answer {
            Answer::Json(json) => {
                settle.labels.gen_ai_response_model = json.model;
                let busy = started.elapsed().saturating_sub(json.clock.waited);
                let body = guard::answer::<O>(shared, checks, json.body, route_id, &fired).await;
                let error = body.as_ref().err().map(GatewayError::metric_label);
                let cost = settle.finish(error, json.total_tokens, json.tokens, busy);
                let body = body?;
                O::answered(req, &body).await;
                cache.store_json(&served, &body, cost);
                respond::json(body, &served, cost)
            }
            Answer::Stream(answer) => {
                let StreamAnswer { reader, encoder } = *answer;
                let mut hooks = encode::StreamHooks {
                    tap: cache.tap(&served),
                    ..Default::default()
                };
                hooks
                    .filters
                    .extend(guard::stream_filter(shared, checks, &route.id, &fired));
                respond::stream(reader, encoder, hooks, settle, &served)
            }
        };
        return Ok(limited.headers.on(cache.mark(response)));
    }
    if let Some(b) = bill.take() {
        b.release();
    }
    Err(walk.into_error(model))
}

/// The size stage: tokens are estimated only when a rule, a token quota or a context window
/// the byte bound may overflow needs them.
fn size<O: Operation>(route: &RouteRuntime, req: &O::Request) -> PromptSize {
    let bytes = O::prompt_bytes(req);
    if bytes == 0 {
        return PromptSize::default();
    }
    let needed = route.needs_prompt_tokens(bytes);
    PromptSize {
        tokens: if needed { O::prompt_tokens(req) } else { 0 },
    }
}

fn labels<O: Operation>(
    route: &RouteRuntime,
    backend: &crate::backend::Backend,
    model: &str,
) -> RequestLabels {
    RequestLabels::new(
        O::NAME,
        backend.provider.config.provider_type,
        model,
        &backend.config.model,
        &route.config.id,
    )
}
