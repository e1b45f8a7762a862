//! **A test double, not a provider.** The mock upstream is a small HTTP server that answers in
//! the wire formats of OpenAI, Azure OpenAI, Anthropic and Gemini with canned text, so the
//! gateway's tests, the README quickstart and the benchmark can exercise real HTTP, real
//! streaming and real failures without any network access, account or API key. It never calls
//! a model: every answer is made up from the request and the [`Knobs`]. It checks no
//! credentials (it records them, see [`MockServer::last_request`]); bind it to loopback.
//!
//! Run it with `tollgate-gateway mock-upstream --listen 127.0.0.1:9999 [KNOBS]`, or in a test
//! with [`spawn`], which serves on `127.0.0.1:0` until the [`MockServer`] is dropped.
//!
//! # Endpoints
//! Each answers exactly like the real API for the subset below; `GET /healthz` says `ok`.
//! - OpenAI: `POST /v1/chat/completions` (a `chat.completion`, or with `stream: true` SSE
//!   `chat.completion.chunk`s: role first, one chunk per word, the `finish_reason` chunk, a
//!   usage chunk with `choices: []` only when `stream_options.include_usage` is true, then
//!   `data: [DONE]`), and `POST /v1/embeddings` (`encoding_format` `float` or `base64`,
//!   `dimensions`, default 8). Azure: the same under
//!   `POST /openai/deployments/{deployment}/chat/completions` and `…/embeddings`; the
//!   `api-version` query is ignored and the deployment is the model when the body has none.
//! - OpenAI Responses: `POST /v1/responses` (Azure: `POST /openai/v1/responses`), a
//!   `response` object or its SSE event sequence; stateless (`previous_response_id` is
//!   echoed), see `responses.rs`.
//! - Anthropic: `POST /v1/messages`, a `message` or the full SSE event sequence
//!   (`message_start`, `content_block_start`, `ping`, `content_block_delta`…,
//!   `content_block_stop`, `message_delta`, `message_stop`). `model`, `max_tokens` and
//!   `messages` are required, as upstream. `POST /v1/messages/count_tokens` answers
//!   `{"input_tokens": N}` with the prompt estimate below.
//! - Gemini: `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent` (SSE with
//!   `\r\n` line ends when `alt=sse`, else a streamed JSON array), `:embedContent` and
//!   `:batchEmbedContents` (also under `/v1/models/…`). Stream chunks carry cumulative
//!   `usageMetadata`; the last one has the last text, `finishReason` and the full usage.
//!
//! The reply is the `--reply` text, one stream chunk per word. It is cut to the request's
//! output limit (`max_completion_tokens`/`max_tokens`, `max_tokens`,
//! `generationConfig.maxOutputTokens`) with finish reason `length` / `max_tokens` /
//! `MAX_TOKENS`. When the request offers tools (and the tool choice is not none), the answer
//! is one call to the first tool (or the one the tool choice names) with arguments that fill the
//! schema's required properties with placeholders (`"mock"`, 0, false, [], the first enum
//! value), streamed in each API's tool-call shape: finish reason `tool_calls` / `tool_use` /
//! `STOP`. A request whose last message is a tool result gets text, so agent loops end.
//!
//! Tokens are estimated as ⌈characters / 4⌉ of the text in the messages (at least 1 for the
//! prompt); cached and reasoning tokens are always 0. Ids are derived from the request number:
//! `chatcmpl-mock{n}`, `call_mock{n}`, `msg_mock{n}`, `toolu_mock{n}`, `req_mock{n}`.
//!
//! # Knobs
//! Every knob is a command-line flag (the default for every request) and an `x-mock-*`
//! request header that overrides it for one request; `none` clears an optional knob. Durations
//! are `200ms`, `2s`, `1.5s` or `1m`, and a bare number is milliseconds (so the `…-ms` headers
//! take plain milliseconds).
//!
//! | flag | header | effect |
//! | --- | --- | --- |
//! | `--latency D` | `x-mock-latency-ms` | wait before the first byte of any answer |
//! | `--chunk-delay D` | `x-mock-chunk-delay-ms` | wait between two stream chunks |
//! | `--status CODE` | `x-mock-status` | answer with this 400–599 status and an error body in the called API's format |
//! | `--retry-after S` | `x-mock-retry-after` | send `Retry-After: S` with every error |
//! | `--failure-rate R` | `x-mock-failure-rate` | request n fails when ⌊n·R⌋ > ⌊(n−1)·R⌋ (0.5: every 2nd), with `--status` or 503 |
//! | `--disconnect-after N` | `x-mock-disconnect-after` | abort the connection after N stream chunks, before the end marker; a non-streamed body is cut halfway |
//! | `--reply TEXT` | `x-mock-reply` | the reply text |
//!
//! `n` counts every request the server received, from 1, whatever its path. A malformed knob
//! header is answered with 400 naming it. Every answer carries `x-mock-request-number: n`.

#![allow(clippy::disallowed_types, reason = "a test double's request log")]

mod anthropic;
mod gemini;
mod knobs;
mod openai;
mod reply;
mod responses;
mod stream;

use std::{
    collections::VecDeque,
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinSet};

pub use knobs::{
    DEFAULT_REPLY, HEADER_CHUNK_DELAY, HEADER_DISCONNECT_AFTER, HEADER_FAILURE_RATE,
    HEADER_LATENCY, HEADER_REPLY, HEADER_RETRY_AFTER, HEADER_STATUS, Knobs, parse_duration,
};

/// Largest request body read; a larger one is answered with 413.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// How many recent requests [`MockServer::recorded`] keeps.
pub const RECORDED_REQUESTS: usize = 256;

/// Response header carrying the request's number `n` (see the knobs).
pub const HEADER_REQUEST_NUMBER: &str = "x-mock-request-number";

/// `tollgate-gateway mock-upstream`: where to listen, and the knobs.
#[derive(clap::Args, Clone, Debug)]
pub struct MockUpstreamArgs {
    /// Address to listen on (keep it on loopback: this is a test double).
    #[arg(long, default_value = "127.0.0.1:9999")]
    pub listen: SocketAddr,
    /// The failure knobs, defaults for every request.
    #[command(flatten)]
    pub knobs: Knobs,
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Method.
    pub method: Method,
    /// Path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Headers, as sent.
    pub headers: HeaderMap,
    /// The body as JSON; `Null` when empty, a JSON string holding the text when not JSON.
    pub body: Value,
}

/// A mock upstream serving in a background task; dropping it (or [`MockServer::shutdown`])
/// stops it and aborts its open connections.
#[derive(Debug)]
pub struct MockServer {
    /// Where it listens (`127.0.0.1` and a free port).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far, whatever their path or outcome.
    pub fn requests(&self) -> usize {
        usize::try_from(self.shared.count.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
    }

    /// The most recent request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.log().back().map(|r| RecordedRequest::clone(r))
    }

    /// The most recent requests, oldest first (at most [`RECORDED_REQUESTS`]).
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.shared
            .log()
            .iter()
            .map(|r| RecordedRequest::clone(r))
            .collect()
    }

    /// Stops serving and waits until the listener and every connection are closed.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The mock's routes with a fresh request counter, for serving with any server.
pub fn router(knobs: Knobs) -> Router {
    app(Arc::new(Shared::new(knobs)))
}

/// Serves the mock on `127.0.0.1:0` in a background task.
pub async fn spawn(knobs: Knobs) -> io::Result<MockServer> {
    spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), knobs).await
}

/// Serves the mock on `addr` in a background task (e.g. to bring a stopped one back).
pub async fn spawn_on(addr: SocketAddr, knobs: Knobs) -> io::Result<MockServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(knobs));
    let task = tokio::spawn(serve(listener, app(Arc::clone(&shared))));
    Ok(MockServer { addr, shared, task })
}

/// Binds `args.listen` and serves until Ctrl-C or SIGTERM.
pub async fn run(args: MockUpstreamArgs) -> io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, knobs = ?args.knobs, "mock upstream (a test double) listening");
    tokio::select! {
        () = serve(listener, router(args.knobs)) => {}
        () = shutdown_signal() => tracing::info!("mock upstream stopping"),
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

/// Accepts connections until dropped; dropping it aborts every connection too.
async fn serve(listener: TcpListener, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    connections.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                            tracing::debug!(error = %e, "mock upstream connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "mock upstream: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// State shared by every request of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    knobs: Knobs,
    count: AtomicU64,
    log: Mutex<VecDeque<Arc<RecordedRequest>>>,
}

impl Shared {
    fn new(knobs: Knobs) -> Self {
        Self {
            knobs,
            count: AtomicU64::new(0),
            log: Mutex::new(VecDeque::new()),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<RecordedRequest>>> {
        // The lock only guards pushes and clones; a panic cannot leave it half-updated.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which API a path belongs to, for the shape of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Api {
    fn for_path(path: &str) -> Self {
        if path.starts_with("/v1/messages") {
            Self::Anthropic
        } else if path.starts_with("/v1beta/") || path.starts_with("/v1/models/") {
            Self::Gemini
        } else {
            Self::OpenAi
        }
    }

    /// An error answer in this API's format.
    pub fn error(
        self,
        status: StatusCode,
        message: &str,
        param: Option<&str>,
        retry_after: Option<u64>,
        n: u64,
    ) -> Response {
        match self {
            Self::OpenAi => openai::error(status, message, param, retry_after, n),
            Self::Anthropic => anthropic::error(status, message, retry_after, n),
            Self::Gemini => gemini::error(status, message, retry_after),
        }
    }
}

/// What the recording middleware hands to the handlers.
#[derive(Clone, Debug)]
pub(crate) struct Inbound {
    /// The request's number `n`, from 1.
    pub number: u64,
    /// The request as recorded.
    pub request: Arc<RecordedRequest>,
    /// Whether the body parsed as JSON.
    pub json: bool,
}

impl Inbound {
    /// The JSON body (an object once [`begin`] succeeded).
    pub fn body(&self) -> &Value {
        &self.request.body
    }
}

/// Common start of every API handler: applies the header knobs, waits the latency, fails the
/// request when the knobs say so, and refuses a body that is not a JSON object.
pub(crate) async fn begin(api: Api, shared: &Shared, inbound: &Inbound) -> Result<Knobs, Response> {
    let n = inbound.number;
    let effective = knobs::Effective::resolve(&shared.knobs, &inbound.request.headers)
        .map_err(|message| api.error(StatusCode::BAD_REQUEST, &message, None, None, n))?;
    if !effective.0.latency.is_zero() {
        tokio::time::sleep(effective.0.latency).await;
    }
    if let Some(status) = effective.failure(n) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let message = format!(
            "mock upstream: injected {} failure (request {n})",
            status.as_u16()
        );
        return Err(api.error(status, &message, None, effective.0.retry_after, n));
    }
    if !inbound.json || !inbound.body().is_object() {
        let message = "We could not parse the JSON body of your request: expected a JSON object.";
        return Err(api.error(StatusCode::BAD_REQUEST, message, None, None, n));
    }
    Ok(effective.0)
}

fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/embeddings", post(openai::embeddings))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(openai::azure_chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(openai::azure_embeddings),
        )
        .route("/v1/responses", post(responses::create))
        .route("/openai/v1/responses", post(responses::create))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1beta/models/{model_action}", post(gemini::dispatch))
        .route("/v1/models/{model_action}", post(gemini::dispatch))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), record))
        .with_state(shared)
}

async fn not_found(axum::Extension(inbound): axum::Extension<Inbound>) -> Response {
    let path = &inbound.request.path;
    let message = format!(
        "mock upstream: no such endpoint: {} {path}",
        inbound.request.method
    );
    Api::for_path(path).error(StatusCode::NOT_FOUND, &message, None, None, inbound.number)
}

/// Counts and records every request, and hands its parsed body to the handler.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let number = shared.count.fetch_add(1, Ordering::SeqCst) + 1;
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::debug!(error = %e, "mock upstream: request body unreadable or too large");
            None
        }
    };
    let parsed = bytes
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok());
    let json = parsed.is_some();
    let body = match (parsed, &bytes) {
        (Some(v), _) => v,
        (None, Some(b)) if b.is_empty() => Value::Null,
        (None, Some(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (None, None) => Value::Null,
    };
    let recorded = Arc::new(RecordedRequest {
        method: parts.method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body,
    });
    {
        let mut log = shared.log();
        if log.len() == RECORDED_REQUESTS {
            log.pop_front();
        }
        log.push_back(Arc::clone(&recorded));
    }
    let mut response = if bytes.is_none() {
        let message = format!(
            "mock upstream: request body unreadable or larger than {MAX_REQUEST_BYTES} bytes"
        );
        Api::for_path(&path).error(StatusCode::PAYLOAD_TOO_LARGE, &message, None, None, number)
    } else {
        let mut request = Request::from_parts(parts, Body::empty());
        request.extensions_mut().insert(Inbound {
            number,
            request: recorded,
            json,
        });
        next.run(request).await.into_response()
    };
    response
        .headers_mut()
        .insert(HEADER_REQUEST_NUMBER, HeaderValue::from(number));
    response
}
