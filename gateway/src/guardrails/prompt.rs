//! The prompt check, at the plan stage, before any provider is called: the token limit,
//! then every prompt rule over every text part the operation exposes. A `block` refuses the
//! request; `redact` hands back a rewritten copy, which is what the providers then get;
//! `flag` only records.

use std::sync::Arc;

use super::{Fired, MAX_PROMPT_TOKENS, RouteGuardrails, Stage, Violation, scan::Verdict};
use crate::{error::GatewayError, metrics::Metrics};

/// How a request shows its prompt's text parts (`Operation::prompt_text_mut`).
pub type PromptTexts<R> = for<'r> fn(&'r mut R) -> Option<Vec<super::PromptText<'r>>>;

/// What the prompt check needs to know about one request.
pub struct PromptSide<'a, R, T: FnOnce() -> u64> {
    /// The request.
    pub req: &'a R,
    /// Its text parts.
    pub texts: PromptTexts<R>,
    /// Its estimated tokens (called only with `maxPromptTokens`).
    pub tokens: T,
    /// The operation's name, for the refusal of one that cannot show its prompt.
    pub operation: &'static str,
}

/// Prompts with more text than this (bytes) are scanned on the blocking pool, so a large
/// prompt never holds an async worker; smaller ones are scanned in place (at the measured
/// 40+ MB/s of a full rule set, 64 KiB takes about a millisecond or two).
pub const INLINE_SCAN_BYTES: usize = 64 * 1024;

/// Checks the prompt of `side.req` against the route's guardrails. `Ok(Some(copy))`: the
/// redacted request to send instead; `Ok(None)`: send the request as it is.
pub async fn check_prompt<R, T>(
    guard: Option<&Arc<RouteGuardrails>>,
    side: PromptSide<'_, R, T>,
    route: &str,
    metrics: &Metrics,
    fired: &Fired,
) -> Result<Option<R>, GatewayError>
where
    R: Clone + Send + 'static,
    T: FnOnce() -> u64,
{
    let Some(guard) = guard else {
        return Ok(None);
    };
    let PromptSide {
        req,
        texts,
        tokens,
        operation,
    } = side;
    if let Some(max) = guard.max_prompt_tokens
        && tokens() > u64::from(max)
    {
        super::metrics::fired(
            metrics,
            route,
            guard,
            fired,
            1 << MAX_PROMPT_TOKENS,
            Stage::Prompt,
        );
        return Err(violation(guard, MAX_PROMPT_TOKENS, Stage::Prompt));
    }
    if guard.prompt.is_none() {
        return Ok(None);
    }
    let mut copy = req.clone();
    let Some(size) =
        texts(&mut copy).map(|parts| parts.iter().map(|p| p.text.len()).sum::<usize>())
    else {
        return Err(GatewayError::BadRequest {
            message: format!(
                "the route's guardrails cannot check {operation} requests, so they are refused"
            ),
            param: None,
        });
    };
    let scan_guard = Arc::clone(guard);
    let (copy, verdict, changed) = if size > INLINE_SCAN_BYTES {
        tokio::task::spawn_blocking(move || scan(&scan_guard, copy, texts))
            .await
            .map_err(|_| GatewayError::Internal("the guardrail scan did not finish"))?
    } else {
        scan(&scan_guard, copy, texts)
    };
    super::metrics::fired(metrics, route, guard, fired, verdict.fired, Stage::Prompt);
    if let Some(id) = verdict.blocked {
        return Err(violation(guard, id, Stage::Prompt));
    }
    Ok(changed.then_some(copy))
}

/// Scans (and redacts) every text part of `req`; stops at the first block.
fn scan<R>(guard: &RouteGuardrails, mut req: R, texts: PromptTexts<R>) -> (R, Verdict, bool) {
    let mut verdict = Verdict::default();
    let mut changed = false;
    if let Some(scanner) = &guard.prompt {
        for part in texts(&mut req).unwrap_or_default() {
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
