//! `?watch=true`: a chunked body of newline-delimited watch events.
//!
//! The stream replays history after the requested resourceVersion (or synthesises ADDED
//! events for the current state when none is given or `sendInitialEvents` is set), then
//! follows the store's broadcast channel until a bounded timeout, so watchers re-watch as
//! they do against a real server. A version older than the retained history gets a 410
//! `ERROR` event, which makes kube's watcher re-list.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::stream;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::{Instant, sleep_until},
};

use super::{
    KindInfo,
    error::ApiError,
    request::Query,
    service::ResponseBody,
    store::{Event, EventType, Store},
};

/// What one watch selects: kind, namespace and selectors.
struct Filter {
    kind: KindInfo,
    namespace: Option<String>,
    query: Query,
}

impl Filter {
    /// The event type this watch sees for a change, if any. Selector-filtered watches turn
    /// "stopped matching" into DELETED and "started matching" into ADDED.
    fn project(&self, ev: &Event) -> Option<&'static str> {
        let k = &ev.key;
        if k.group != self.kind.group
            || k.version != self.kind.version
            || k.plural != self.kind.plural
        {
            return None;
        }
        if self.namespace.as_ref().is_some_and(|ns| *ns != k.namespace) {
            return None;
        }
        let now = self.query.selects(&ev.object);
        match ev.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => {
                let before = ev.old.as_ref().is_some_and(|o| self.query.selects(o));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "apiVersion": self.kind.api_version(),
            "kind": self.kind.kind,
            "metadata": meta,
        });
        line("BOOKMARK", &object)
    }
}

struct WatchState {
    filter: Filter,
    pending: VecDeque<Bytes>,
    rx: broadcast::Receiver<Arc<Event>>,
    deadline: Instant,
    /// Newest version this stream has accounted for, matching or not (for bookmarks).
    seen_rv: u64,
    done: bool,
}

/// Opens a watch. Called with the store locked, so subscribing and reading history are
/// atomic with respect to writes.
pub(crate) fn start(
    store: &Store,
    kind: &KindInfo,
    namespace: Option<&str>,
    query: &Query,
    max_timeout: Duration,
) -> Result<ResponseBody, ApiError> {
    let filter = Filter {
        kind: kind.clone(),
        namespace: namespace.map(str::to_owned),
        query: query.clone(),
    };
    let rx = store.events.subscribe();
    let mut pending = VecDeque::new();
    let mut done = false;
    let from = match query.resource_version.as_deref() {
        None | Some("" | "0") => None,
        Some(_) if query.send_initial_events => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    match from {
        None => {
            for obj in store.list(kind, namespace).filter(|o| query.selects(o)) {
                pending.push_back(line("ADDED", obj));
            }
            if query.send_initial_events {
                pending.push_back(filter.bookmark(store.rv, true));
            }
        }
        Some(rv) if rv < store.oldest_rv => {
            let gone = ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                store.oldest_rv
            ));
            pending.push_back(line("ERROR", &gone.to_status()));
            done = true;
        }
        Some(rv) => {
            for ev in store.history.iter().filter(|e| e.rv > rv) {
                if let Some(t) = filter.project(ev) {
                    pending.push_back(line(t, &ev.object));
                }
            }
        }
    }
    let timeout = query
        .timeout_seconds
        .filter(|s| *s > 0)
        .map_or(max_timeout, |s| Duration::from_secs(s).min(max_timeout));
    let state = WatchState {
        filter,
        pending,
        rx,
        deadline: Instant::now() + timeout,
        seen_rv: store.rv,
        done,
    };
    let frames = stream::unfold(state, next_frame);
    Ok(StreamBody::new(frames).boxed_unsync())
}

async fn next_frame(mut st: WatchState) -> Option<(Result<Frame<Bytes>, Infallible>, WatchState)> {
    if let Some(chunk) = st.pending.pop_front() {
        return Some((Ok(Frame::data(chunk)), st));
    }
    if st.done {
        return None;
    }
    loop {
        tokio::select! {
            () = sleep_until(st.deadline) => {
                st.done = true;
                if !st.filter.query.bookmarks {
                    return None;
                }
                // A closing bookmark lets a filtered watch resume from a current version.
                let chunk = st.filter.bookmark(st.seen_rv, false);
                return Some((Ok(Frame::data(chunk)), st));
            }
            received = st.rx.recv() => match received {
                Ok(ev) => {
                    if ev.rv <= st.seen_rv {
                        continue;
                    }
                    st.seen_rv = ev.rv;
                    if let Some(t) = st.filter.project(&ev) {
                        let chunk = line(t, &ev.object);
                        return Some((Ok(Frame::data(chunk)), st));
                    }
                }
                // A lagging or closed feed ends the stream; the client re-watches from its
                // last version, and history (or a 410) takes over.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
            },
        }
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}
