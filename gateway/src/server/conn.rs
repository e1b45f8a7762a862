//! Serving connections ourselves instead of `axum::serve`, so that a client cannot hold a
//! connection forever: a bounded number of connections, a deadline for the request head
//! (slowloris), for the request body, and for an idle keep-alive connection; at shutdown,
//! connections without a request in flight (idle or half-sent) close at once while
//! in-flight requests and streams drain.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, watch},
    task::JoinSet,
    time::{Instant, Sleep},
};
use tower::ServiceExt;

/// How long a client may take, and how many connections it may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the first byte of a request head to its end.
    pub header_read: Duration,
    /// From the end of the head to the end of the request body.
    pub body_read: Duration,
    /// A connection with no request in flight and no new bytes is closed after this.
    pub idle: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(60),
            idle: Duration::from_secs(90),
            max_connections: 4096,
        }
    }
}

/// The request body took longer than the body-read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Accepts on `listener` until `stop` turns true, then waits until every connection has
/// closed (idle and half-sent ones close at once; in-flight requests finish).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Keep-alive, head and idle deadlines are enforced below, not by hyper.
    builder.http1().keep_alive(true);
    let max = limits.max_connections.max(1);
    let mut connections = JoinSet::new();
    let stop_connections = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept(), if connections.len() < max => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(
                        stream,
                        router.clone(),
                        builder.clone(),
                        limits.clone(),
                        stop_connections.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection: hyper serves it while a watchdog closes it when a deadline passes with
/// no request in flight.
async fn connection(
    stream: TcpStream,
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let body_read = limits.body_read;
    let service_activity = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let guard = InFlight::begin(Arc::clone(&service_activity));
        let req = req.map(|body| Body::new(TimedBody::new(body, body_read)));
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(Guarded {
                    inner: body,
                    _guard: guard,
                })
            }))
        }
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = activity.changed.notified() => {}
            _ = sleep_until(deadline) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return; // dropping the connection closes the socket
                }
            }
            _ = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
        if stopping && activity.nothing_to_drain() {
            return;
        }
    }
}

/// Resolves once shutdown begins (or the gateway is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// No head byte has arrived since the last request ended.
const NO_HEAD: u64 = u64::MAX;

/// What a connection is doing, shared by its socket, its requests and its watchdog.
#[derive(Debug)]
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// Requests answered so far.
    answered: AtomicUsize,
    /// Milliseconds after `born` when the connection last became idle.
    idle_since: AtomicU64,
    /// Milliseconds after `born` when the first byte of the next head arrived, or `NO_HEAD`.
    head_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NO_HEAD),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// When the watchdog closes the connection; `None` while a request is in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::Acquire);
        let (since, limit) = if head == NO_HEAD {
            (self.idle_since.load(Ordering::Acquire), limits.idle)
        } else {
            (head, limits.header_read)
        };
        Some(self.born + Duration::from_millis(since) + limit)
    }

    /// At shutdown: no request in flight, and the connection is fresh or half-way through
    /// a request head. (An idle keep-alive connection that answered before may still be
    /// writing its last response; hyper closes it once written, as keep-alive is off.)
    fn nothing_to_drain(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && (self.answered.load(Ordering::Acquire) == 0
                || self.head_since.load(Ordering::Acquire) != NO_HEAD)
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == NO_HEAD
        {
            self.head_since.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }
}

/// Counts a request as in flight until its response body is done or dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(NO_HEAD, Ordering::Release);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.answered.fetch_add(1, Ordering::AcqRel);
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.idle_since.store(a.now_ms(), Ordering::Release);
        }
        a.changed.notify_one();
    }
}

/// The socket, noting when bytes of a new request head arrive.
#[derive(Debug)]
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The request body, failing with [`BodyTimeout`] when it is not complete by the deadline.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout(self.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in flight.
struct Guarded {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
