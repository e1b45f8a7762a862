//! Provider key quotas (`LLMProvider` `spec.limits`) shared by every replica.
//!
//! Each credential keeps its in-process [`KeyQuota`] (exact for one gateway, and free to
//! check). With a shared store the walk also takes the request and its estimated tokens
//! from the credential's shared buckets (one state operation per attempt on a key with
//! limits), so N replicas together stay within the quota; a key the shared buckets refuse
//! is skipped like a key over its local quota, and remembered as full until its requests
//! bucket has room, so the following requests skip it without asking the state.
//!
//! The state failing degrades to the in-process quota alone (per replica, as without
//! Redis) whatever the fail mode: the provider's own 429s still protect it, and refusing
//! every request over a quota check would turn a Redis outage into a gateway outage.

use std::{sync::Arc, time::Duration};

use super::Limiter;
use crate::{resilience::quota::KeyQuota, state::BucketOp};

/// What the shared quota said about one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedQuota {
    /// Taken from the shared buckets: settle or release it.
    Taken,
    /// No room: skip the key; the requests bucket has room again after this long.
    Full(Duration),
    /// Not counted in shared state (none configured, or it failed): the local quota rules.
    Local,
}

fn ops(quota: &KeyQuota, tokens: i64, request: i64) -> Vec<BucketOp> {
    let (rpm, tpm) = quota.limits();
    let key = quota.shared_key();
    let mut ops = Vec::with_capacity(2);
    if let Some(rpm) = rpm.filter(|_| request != 0) {
        ops.push(BucketOp {
            key: format!("{key}:r"),
            per_minute: rpm,
            tokens: request,
        });
    }
    if let Some(tpm) = tpm.filter(|_| tokens != 0) {
        ops.push(BucketOp {
            key: format!("{key}:t"),
            per_minute: tpm,
            tokens,
        });
    }
    ops
}

impl Limiter {
    /// Whether provider key quotas count in shared state (a store every replica sees).
    pub fn shares_quotas(&self) -> bool {
        self.store.shared()
    }

    /// Takes one request and `tokens` from `quota`'s shared buckets.
    pub async fn take_quota(&self, quota: &KeyQuota, tokens: u64) -> SharedQuota {
        if !self.shares_quotas() || quota.shared_key().is_empty() {
            return SharedQuota::Local;
        }
        let now_ms = self.now_ms();
        let known_full = quota.shared_full_for(now_ms);
        if known_full > 0 {
            return SharedQuota::Full(Duration::from_millis(known_full));
        }
        let ops = ops(quota, i64::try_from(tokens).unwrap_or(i64::MAX), 1);
        if ops.is_empty() {
            return SharedQuota::Local;
        }
        match self.store.buckets_take(&ops, now_ms).await {
            Ok(taken) if taken.granted => SharedQuota::Taken,
            Ok(taken) => {
                let requests_wait = ops
                    .iter()
                    .zip(&taken.levels)
                    .filter(|(op, _)| op.key.ends_with(":r"))
                    .map(|(_, level)| level.ready_in_ms(1))
                    .max()
                    .unwrap_or(0);
                if requests_wait > 0 {
                    quota.shared_full_until(now_ms.saturating_add(requests_wait));
                }
                let wait = ops
                    .iter()
                    .zip(&taken.levels)
                    .map(|(op, level)| level.ready_in_ms(u64::try_from(op.tokens).unwrap_or(0)))
                    .max()
                    .unwrap_or(0);
                SharedQuota::Full(Duration::from_millis(wait.max(1)))
            }
            Err(e) => {
                self.metrics.limits.state_failure("provider_quota", "local");
                self.outage.failed("provider_quota", self.mode, &e);
                SharedQuota::Local
            }
        }
    }
}

/// Gives back to the shared buckets what a taken attempt that was never sent took.
pub fn release(limiter: &Arc<Limiter>, quota: &KeyQuota, tokens: u64) {
    adjust(
        limiter,
        ops(quota, i64::try_from(tokens).unwrap_or(i64::MAX), 1),
    );
}

/// Corrects the shared tokens bucket from the `estimated` tokens to the `actual` usage.
pub fn settle(limiter: &Arc<Limiter>, quota: &KeyQuota, estimated: u64, actual: u64) {
    if !limiter.shares_quotas() || quota.shared_key().is_empty() {
        return;
    }
    let delta = i64::try_from(estimated)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(actual).unwrap_or(i64::MAX));
    adjust(limiter, ops(quota, delta, 0));
}

fn adjust(limiter: &Arc<Limiter>, ops: Vec<BucketOp>) {
    if ops.is_empty() || !limiter.shares_quotas() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let limiter = Arc::clone(limiter);
    runtime.spawn(async move {
        if let Err(e) = limiter.store.buckets_adjust(&ops, limiter.now_ms()).await {
            limiter.outage.failed("provider_quota", limiter.mode, &e);
        }
    });
}
