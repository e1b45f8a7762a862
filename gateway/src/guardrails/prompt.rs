//! The prompt check, at the plan stage, before any provider is called: the token limit,
//! then every prompt rule over every text part the operation exposes. A `block` refuses the
//! request; `redact` hands back a rewritten copy, which is what the providers then get;
//! `flag` only records.

use std::sync::Arc;

use super::{Fired, MAX_PROMPT_TOKENS, RouteGuardrails, Stage, Violation, scan::Verdict};
use crate::{error::GatewayError, metrics::Metrics, pipeline::Operation};

/// Prompts with more text than this (bytes) are scanned on the blocking pool, so a large
/// prompt never holds an async worker; smaller ones are scanned in place (at the measured
/// 40+ MB/s of a full rule set, 64 KiB takes about a millisecond or two).
pub const INLINE_SCAN_BYTES: usize = 64 * 1024;

/// Checks the prompt of `req` against the route's guardrails. `Ok(Some(copy))`: the
/// redacted request to send instead; `Ok(None)`: send `req` as it is.
pub async fn check_prompt<O: Operation>(
    guard: Option<&Arc<RouteGuardrails>>,
    req: &O::Request,
    prompt_tokens: u64,
    route: &str,
    metrics: &Metrics,
    fired: &Fired,
) -> Result<Option<O::Request>, GatewayError> {
    let Some(guard) = guard else {
        return Ok(None);
    };
    if let Some(max) = guard.max_prompt_tokens {
        let tokens = if prompt_tokens > 0 {
            prompt_tokens
        } else {
            O::prompt_tokens(req)
        };
        if tokens > u64::from(max) {
            metrics
                .guardrails
                .fired(route, guard, fired, 1 << MAX_PROMPT_TOKENS, Stage::Prompt);
            return Err(violation(guard, MAX_PROMPT_TOKENS, Stage::Prompt));
        }
    }
    if guard.prompt.is_none() {
        return Ok(None);
    }
    let mut copy = req.clone();
    let Some(size) = O::prompt_text_mut(&mut copy)
        .map(|parts| parts.iter().map(|p| p.text.len()).sum::<usize>())
    else {
        return Err(GatewayError::BadRequest {
            message: format!(
                "the route's guardrails cannot check {} requests, so they are refused",
                O::NAME
            ),
            param: None,
        });
    };
    let scan_guard = Arc::clone(guard);
    let (copy, verdict, changed) = if size > INLINE_SCAN_BYTES {
        tokio::task::spawn_blocking(move || scan::<O>(&scan_guard, copy))
            .await
            .map_err(|_| GatewayError::Internal("the guardrail scan did not finish"))?
    } else {
        scan::<O>(&scan_guard, copy)
    };
    metrics
        .guardrails
        .fired(route, guard, fired, verdict.fired, Stage::Prompt);
    if let Some(id) = verdict.blocked {
        return Err(violation(guard, id, Stage::Prompt));
    }
    Ok(changed.then_some(copy))
}

/// Scans (and redacts) every text part of `req`; stops at the first block.
fn scan<O: Operation>(guard: &RouteGuardrails, mut req: O::Request) -> (O::Request, Verdict, bool) {
    let mut verdict = Verdict::default();
    let mut changed = false;
    if let Some(scanner) = &guard.prompt {
        for part in O::prompt_text_mut(&mut req).unwrap_or_default() {
            changed |= scanner.check_text(part.text, part.instructions, &guard.names, &mut verdict);
            if verdict.blocked.is_some() {
                break;
            }
        }
    }
    (req, verdict, changed)
}

/// The refusal for rule `id`.
pub fn violation(guard: &RouteGuardrails, id: usize, stage: Stage) -> GatewayError {
    GatewayError::ContentPolicy(Violation {
        rule: guard
            .names
            .get(id)
            .map_or_else(String::new, |n| n.to_string()),
        stage,
    })
}
