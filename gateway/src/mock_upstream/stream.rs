//! Answers on the wire: JSON bodies, error bodies, and streams sent one chunk at a time with the
//! chunk delay, cut before their end marker when the disconnect knob says so.

use std::{io, time::Duration};

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;

/// Pause before cutting a stream, so the chunks already written reach the socket first.
const CUT_GRACE: Duration = Duration::from_millis(50);

/// One SSE event: `event: NAME` (when given) and `data: JSON`, ended by a blank line; `crlf`
/// ends lines with `\r\n` as Google's servers do.
pub(crate) fn sse_frame(event: Option<&str>, data: &str, crlf: bool) -> Bytes {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push_str(nl);
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str(nl);
    out.push_str(nl);
    Bytes::from(out)
}

/// A streamed answer: its content type and its chunks, the last one being the end marker.
pub(crate) struct Streamed {
    pub content_type: &'static str,
    pub frames: Vec<Bytes>,
}

impl Streamed {
    /// An SSE stream.
    pub fn sse(frames: Vec<Bytes>) -> Self {
        Self {
            content_type: "text/event-stream; charset=utf-8",
            frames,
        }
    }

    /// Sends the chunks one by one, `delay` apart. With `cut_after = Some(n)` only the first
    /// `n` chunks are sent (never the end marker) and then the connection is aborted.
    pub fn into_response(
        self,
        delay: Duration,
        cut_after: Option<usize>,
        headers: HeaderMap,
    ) -> Response {
        let last = self.frames.len().saturating_sub(1);
        let cut_at = cut_after.map(|n| n.min(last));
        let body = chunked_body(self.frames, delay, cut_at);
        let mut response = (StatusCode::OK, headers, body).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// A JSON answer. `cut` sends only the first half of the body and then aborts the connection.
pub(crate) fn json(status: StatusCode, value: &Value, cut: bool, headers: HeaderMap) -> Response {
    let bytes = Bytes::from(value.to_string());
    let body = if cut {
        let half = bytes.slice(..bytes.len() / 2);
        chunked_body(vec![half, Bytes::new()], Duration::ZERO, Some(1))
    } else {
        Body::from(bytes)
    };
    let mut response = (status, headers, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error answer with an optional `Retry-After`.
pub(crate) fn error(
    status: StatusCode,
    value: &Value,
    retry_after: Option<u64>,
    mut headers: HeaderMap,
) -> Response {
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    json(status, value, false, headers)
}

/// A header map holding one header, for request ids.
pub(crate) fn one_header(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
    headers
}

struct Chunks {
    frames: std::vec::IntoIter<Bytes>,
    sent: usize,
    delay: Duration,
    cut_at: Option<usize>,
    done: bool,
}

fn chunked_body(frames: Vec<Bytes>, delay: Duration, cut_at: Option<usize>) -> Body {
    let state = Chunks {
        frames: frames.into_iter(),
        sent: 0,
        delay,
        cut_at,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if s.cut_at == Some(s.sent) {
            // Let hyper flush what was written, then fail the body: hyper aborts the
            // connection (HTTP/1: no final chunk; HTTP/2: RST_STREAM) instead of ending it.
            tokio::time::sleep(CUT_GRACE).await;
            s.done = true;
            let err = io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "mock upstream: disconnect knob",
            );
            return Some((Err(err), s));
        }
        let frame = s.frames.next()?;
        if s.sent > 0 && !s.delay.is_zero() {
            tokio::time::sleep(s.delay).await;
        }
        s.sent += 1;
        Some((Ok::<Bytes, io::Error>(frame), s))
    });
    Body::from_stream(stream)
}
