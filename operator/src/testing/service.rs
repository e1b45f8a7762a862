//! The tower `Service` that `kube::Client` talks to: decodes each request, records writes,
//! applies injected failures, and dispatches to the store or to a watch stream.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use kube::client::Body;
use serde_json::{Value, json};

use super::{
    KindInfo, RecordedRequest, Shared,
    error::ApiError,
    request::{Query, Target},
    store::{ObjKey, Write, WriteMode},
    watch,
};

/// The response body type: a full JSON body or a streaming watch.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// What `kube::Client::new` is given; cheap to clone, all state is in [`Shared`].
#[derive(Clone)]
pub(crate) struct FakeService {
    pub(crate) shared: Arc<Shared>,
}

// === impl FakeService ===

impl tower::Service<Request<Body>> for FakeService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(handle(&shared, req).await) })
    }
}

async fn handle(shared: &Arc<Shared>, req: Request<Body>) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    if let Some(err) = shared.record_and_check(RecordedRequest {
        method: parts.method.clone(),
        path: path.clone(),
        query: query.clone(),
    }) {
        return json_response(err.code, &err.to_status());
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let err = ApiError::bad_request(format!("reading the request body failed: {err}"));
            return json_response(err.code, &err.to_status());
        }
    };
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let call = Call {
        method: parts.method,
        path,
        content_type,
        body: bytes,
    };
    match dispatch(shared, call, query.as_deref()) {
        Ok(Reply::Json(code, value)) => json_response(code, &value),
        Ok(Reply::Watch(body)) => Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap_or_else(|_| Response::new(empty())),
        Err(err) => json_response(err.code, &err.to_status()),
    }
}

struct Call {
    method: Method,
    path: String,
    content_type: String,
    body: Bytes,
}

enum Reply {
    Json(u16, Value),
    Watch(ResponseBody),
}

fn dispatch(shared: &Arc<Shared>, call: Call, raw_query: Option<&str>) -> Result<Reply, ApiError> {
    let target = Target::parse(&call.path)?;
    let query = Query::parse(raw_query)?;
    let kind = shared
        .kind_for(&target.group, &target.version, &target.plural)
        .ok_or_else(|| ApiError::no_route(&call.path))?
        .clone();
    let ns = target.namespace.as_deref();
    let scope_ok = if kind.namespaced {
        ns.is_some() || (target.name.is_none() && call.method == Method::GET)
    } else {
        ns.is_none()
    };
    if !scope_ok {
        return Err(ApiError::no_route(&call.path));
    }
    let name = target.name.as_deref();
    let mut state = shared.lock();
    let store = &mut state.store;
    let reply = match (&call.method, name) {
        (&Method::GET, None) if query.watch => {
            return watch::start(store, &kind, ns, &query, shared.max_watch).map(Reply::Watch);
        }
        (&Method::GET, None) => {
            let items: Vec<Value> = store
                .list(&kind, ns)
                .filter(|o| query.selects(o))
                .cloned()
                .collect();
            json!({
                "apiVersion": kind.api_version(),
                "kind": format!("{}List", kind.kind),
                "metadata": {"resourceVersion": store.rv.to_string()},
                "items": items,
            })
        }
        (&Method::GET, Some(name)) => store.get(&ObjKey::new(&kind, ns, name))?,
        (&Method::POST, None) => {
            let body = parse_json(&call.body)?;
            check_namespace(&body, ns)?;
            let created = store.create(write(&kind, ns, "", body, WriteMode::Replace, &query))?;
            return Ok(Reply::Json(201, created));
        }
        (&Method::PUT, Some(name)) => {
            let body = parse_json(&call.body)?;
            check_namespace(&body, ns)?;
            let mut w = write(&kind, ns, name, body, WriteMode::Replace, &query);
            w.status = target.status;
            store.write(w)?
        }
        (&Method::PATCH, Some(name)) => {
            let mode = patch_mode(&call.content_type)?;
            let body = parse_json(&call.body)?;
            let existed = store.get(&ObjKey::new(&kind, ns, name)).is_ok();
            let mut w = write(&kind, ns, name, body, mode, &query);
            w.status = target.status;
            let out = store.write(w)?;
            if !existed {
                return Ok(Reply::Json(201, out));
            }
            out
        }
        (&Method::DELETE, Some(name)) if !target.status => {
            store.delete(&ObjKey::new(&kind, ns, name), query.dry_run)?
        }
        (method, _) => return Err(ApiError::method_not_allowed(method.as_str())),
    };
    Ok(Reply::Json(200, reply))
}

fn write<'a>(
    kind: &'a KindInfo,
    namespace: Option<&'a str>,
    name: &'a str,
    body: Value,
    mode: WriteMode,
    query: &'a Query,
) -> Write<'a> {
    Write {
        kind,
        namespace,
        name,
        body,
        mode,
        status: false,
        field_manager: query.field_manager.as_deref(),
        dry_run: query.dry_run,
    }
}

fn patch_mode(content_type: &str) -> Result<WriteMode, ApiError> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "application/apply-patch+yaml" => Ok(WriteMode::Apply),
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            Ok(WriteMode::Merge)
        }
        other => Err(ApiError::unsupported_media(other)),
    }
}

/// Bodies must be JSON (kube always sends JSON, also for apply); YAML apply bodies are not
/// supported.
fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

fn check_namespace(body: &Value, ns: Option<&str>) -> Result<(), ApiError> {
    match (
        body.pointer("/metadata/namespace").and_then(Value::as_str),
        ns,
    ) {
        (Some(b), Some(u)) if !b.is_empty() && b != u => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn empty() -> ResponseBody {
    Full::new(Bytes::new()).boxed_unsync()
}

fn json_response(code: u16, value: &Value) -> Response<ResponseBody> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .unwrap_or_else(|_| Response::new(empty()))
}
