//! The respond stage: the client's response for an answer, with the `x-tollgate-*`
//! headers that say how it was served.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};

use super::{
    encode::{StreamEncoder, StreamHooks},
    settle::Settle,
    stream::{ClientStream, StreamReader},
};

/// How a request was served, for the `x-tollgate-*` headers.
#[derive(Clone, Copy, Debug)]
pub struct Served<'a> {
    /// Route id.
    pub route: &'a str,
    /// Provider id.
    pub provider: &'a str,
    /// Provider model.
    pub model: &'a str,
    /// Attempts sent upstream, retries and this one included.
    pub attempts: usize,
    /// Whether a fallback answered.
    pub fallback: bool,
    /// The rule that chose the backends.
    pub rule: Option<&'a str>,
}

impl Served<'_> {
    /// Adds the `x-tollgate-*` headers.
    pub fn headers(&self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        set("x-tollgate-route", self.route);
        set("x-tollgate-provider", self.provider);
        set("x-tollgate-model", self.model);
        headers.insert("x-tollgate-attempts", HeaderValue::from(self.attempts));
        headers.insert(
            "x-tollgate-fallback",
            HeaderValue::from_static(if self.fallback { "true" } else { "false" }),
        );
        if let Some(rule) = self.rule
            && let Ok(v) = HeaderValue::from_str(rule)
        {
            headers.insert("x-tollgate-rule", v);
        }
    }
}

/// A JSON answer, with its cost in `x-tollgate-cost-usd` when the usage is known.
pub fn json(
    body: Bytes,
    served: &Served<'_>,
    cost: Option<rust_decimal::Decimal>,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    if let Some(v) = cost.and_then(|c| HeaderValue::from_str(&super::pays::cost_header(c)).ok()) {
        h.insert("x-tollgate-cost-usd", v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    served.headers(h);
    response
}

/// A stream answer, as server-sent events in the encoder's format.
pub fn stream(
    reader: StreamReader,
    encoder: Box<dyn StreamEncoder>,
    hooks: StreamHooks,
    settle: Settle,
    served: &Served<'_>,
) -> Response<Body> {
    let stream = ClientStream::new(reader, encoder, hooks, settle);
    let mut response = Response::new(Body::from_stream(stream.into_stream()));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    served.headers(h);
    response
}
