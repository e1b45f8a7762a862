//! Serving a stored answer, and recording a stream to store it.
//!
//! A stream is replayed as the frames the first client was sent, byte for byte (chunk ids and
//! `created` included: the answer is the same answer). One frame differs: the cost comment
//! before `[DONE]` (`: x-tollgate-cost-usd=…`) is recorded as `0`, since a hit costs nothing.

use std::convert::Infallible;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use rust_decimal::{Decimal, prelude::ToPrimitive};

use super::{
    CACHE_HEADER, ToStore,
    entry::{Entry, Format},
};
use crate::{
    identity::Identity,
    pipeline::{Operation, Shared, encode::FrameTap, respond::Served},
    routing::RouteRuntime,
    usage::UsageRecord,
};

/// The cost comment the stream encoders send before the end marker.
const COST_COMMENT: &[u8] = b": x-tollgate-cost-usd=";
const ZERO_COST_COMMENT: &[u8] = b": x-tollgate-cost-usd=0\n\n";

/// The response for a stored answer; counts the hit and writes its usage record.
pub(super) fn hit<O: Operation>(
    shared: &Shared,
    route: &RouteRuntime,
    identity: &Identity,
    entry: &Entry,
    kind: &'static str,
    request_id: &str,
) -> Response<Body> {
    let team = identity.team.as_deref().unwrap_or("");
    shared.metrics.cache.hit(
        &route.id,
        kind,
        team,
        entry.cost_usd.to_f64().unwrap_or(0.0),
    );
    if shared.pays.usage.enabled() {
        shared.pays.usage.record(
            &UsageRecord {
                record: "usage",
                time: jiff::Timestamp::now().to_string(),
                request_id,
                key_id: identity.key_id.as_deref(),
                team: identity.team.as_deref(),
                route: &route.id,
                provider: &entry.provider,
                model: &entry.model,
                operation: O::NAME,
                tokens: None,
                cost_usd: Some(Decimal::ZERO),
                latency_ms: 0,
                status: "ok",
                cache: Some(if kind == "semantic" {
                    "semantic-hit"
                } else {
                    "hit"
                }),
                cost_saved_usd: Some(entry.cost_usd),
            },
            &shared.metrics,
        );
    }
    let served = Served {
        route: &route.id,
        provider: &entry.provider,
        model: &entry.model,
        attempts: 0,
        fallback: false,
        rule: None,
    };
    let mut response = match entry.format {
        Format::Json => {
            let body = entry.parts.first().cloned().unwrap_or_default();
            crate::pipeline::respond::json(body, &served, Some(Decimal::ZERO))
        }
        Format::Stream => {
            let frames = entry.parts.clone().into_iter().map(Ok::<_, Infallible>);
            let mut r = Response::new(Body::from_stream(futures_util::stream::iter(frames)));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-tollgate-cost-usd", HeaderValue::from_static("0"));
            served.headers(h);
            r
        }
    };
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    response
}

/// Records a stream's frames; stores them when the stream ended complete and fitted.
pub(super) struct Recorder {
    store: Option<ToStore>,
    provider: String,
    model: String,
    frames: Vec<Bytes>,
    bytes: u64,
    cost: Option<Decimal>,
}

impl Recorder {
    pub(super) fn new(store: ToStore, served: &Served<'_>) -> Self {
        Self {
            store: Some(store),
            provider: served.provider.to_owned(),
            model: served.model.to_owned(),
            frames: Vec::new(),
            bytes: 0,
            cost: None,
        }
    }
}

impl FrameTap for Recorder {
    fn frame(&mut self, frame: &Bytes) {
        let Some(store) = &self.store else {
            return;
        };
        self.bytes += frame.len() as u64;
        if self.bytes > store.max_bytes {
            store.metrics.cache.not_stored(&store.route, "too-large");
            self.store = None;
            self.frames = Vec::new();
            return;
        }
        if let Some(cost) = frame.strip_prefix(COST_COMMENT) {
            self.cost = std::str::from_utf8(cost)
                .ok()
                .and_then(|c| c.trim().parse().ok());
            self.frames.push(Bytes::from_static(ZERO_COST_COMMENT));
        } else {
            self.frames.push(frame.clone());
        }
    }

    fn end(&mut self, complete: bool) {
        let Some(store) = self.store.take() else {
            return;
        };
        if !complete {
            store.metrics.cache.not_stored(&store.route, "incomplete");
            return;
        }
        let frames = std::mem::take(&mut self.frames);
        store.store(
            Format::Stream,
            &self.provider,
            &self.model,
            self.cost,
            frames,
        );
    }
}
