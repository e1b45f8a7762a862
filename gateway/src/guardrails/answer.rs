//! The answer check for JSON answers: the text the operation exposes in the body, checked
//! before the body is returned. A `block` replaces the answer with the error; `redact`
//! re-encodes the body with the text replaced; `flag` returns it untouched.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    Fired, RouteGuardrails, Stage,
    prompt::{INLINE_SCAN_BYTES, violation},
    scan::Verdict,
};
use crate::{error::GatewayError, metrics::Metrics};

/// How an answer body shows its text (`Operation::answer_text_mut`).
pub type AnswerTexts = fn(&mut serde_json::Value) -> Option<Vec<&mut String>>;

/// Checks a JSON answer body; returns the body to send.
pub async fn check_answer(
    guard: Option<&Arc<RouteGuardrails>>,
    body: Bytes,
    texts: AnswerTexts,
    route: &str,
    metrics: &Metrics,
    fired: &Fired,
) -> Result<Bytes, GatewayError> {
    let Some(guard) = guard.filter(|g| g.response.is_some()) else {
        return Ok(body);
    };
    let scan_guard = Arc::clone(guard);
    let size = body.len();
    let work = move || scan(&scan_guard, body, texts);
    let (body, verdict) = if size > INLINE_SCAN_BYTES {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| GatewayError::Internal("the guardrail scan did not finish"))?
    } else {
        work()
    }?;
    super::metrics::fired(metrics, route, guard, fired, verdict.fired, Stage::Response);
    if let Some(id) = verdict.blocked {
        return Err(violation(guard, id, Stage::Response));
    }
    Ok(body)
}

fn scan(
    guard: &RouteGuardrails,
    body: Bytes,
    texts: AnswerTexts,
) -> Result<(Bytes, Verdict), GatewayError> {
    let mut verdict = Verdict::default();
    let Some(scanner) = guard.response.as_deref() else {
        return Ok((body, verdict));
    };
    let unreadable = || GatewayError::Internal("the answer could not be checked by the guardrails");
    let mut value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| unreadable())?;
    let mut changed = false;
    for text in texts(&mut value).ok_or_else(unreadable)? {
        changed |= scanner.check_text(text, false, &guard.names, &mut verdict);
        if verdict.blocked.is_some() {
            return Ok((body, verdict));
        }
    }
    if !changed {
        return Ok((body, verdict));
    }
    let encoded = serde_json::to_vec(&value).map_err(|_| unreadable())?;
    Ok((Bytes::from(encoded), verdict))
}
