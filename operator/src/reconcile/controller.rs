//! The per-kind status controllers (kube-runtime `Controller`s): each object's conditions
//! are computed from the latest compile outcome and the gateway pods' reports, written only
//! when they changed, and announced with Events.

use std::{fmt::Debug, sync::Arc, time::Instant};

use jiff::Timestamp;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    core::DeserializeGuard,
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;
use tollgate_crds::{
    LLMBudget, LLMProvider, LLMRoute,
    compile::{Kind, object_ref},
    conditions::Condition,
};

use super::{
    context::{Context, WRITTEN_TTL, Written},
    status,
};
use crate::settings::STATUS_FIELD_MANAGER;

/// One of the three kinds, as the status controller sees it.
pub trait Tracked:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The kind.
    const KIND: Kind;
    /// The stored conditions.
    fn conditions(&self) -> &[Condition];
    /// The stored `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// The status count field of the kind's counted printer column: its name, the count
    /// the spec gives, and the stored value.
    fn count(&self) -> Option<(&'static str, i64, Option<i64>)>;
}

macro_rules! tracked {
    ($t:ty, $kind:expr, $count:expr) => {
        impl Tracked for $t {
            const KIND: Kind = $kind;
            fn conditions(&self) -> &[Condition] {
                self.status
                    .as_ref()
                    .map_or(&[], |s| s.conditions.as_slice())
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
            fn count(&self) -> Option<(&'static str, i64, Option<i64>)> {
                let count: fn(&Self) -> Option<(&'static str, i64, Option<i64>)> = $count;
                count(self)
            }
        }
    };
}

fn len(items: usize) -> i64 {
    i64::try_from(items).unwrap_or(i64::MAX)
}

tracked!(LLMProvider, Kind::LLMProvider, |p| Some((
    "modelCount",
    len(p.spec.models.len()),
    p.status.as_ref().and_then(|s| s.model_count)
)));
tracked!(LLMRoute, Kind::LLMRoute, |r| Some((
    "backendCount",
    len(r.spec.backends.len()),
    r.status.as_ref().and_then(|s| s.backend_count)
)));
tracked!(LLMBudget, Kind::LLMBudget, |_| None);

/// Why a status reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Writing status failed.
    #[error("writing status failed: {0}")]
    Status(#[source] kube::Error),
}

/// Reconciles one object's status; an object the operator cannot read is reported instead
/// ([`unreadable`](super::unreadable)).
pub async fn reconcile<K: Tracked>(
    object: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let uid = key(&*object);
    let result = match &object.0 {
        Ok(object) => {
            ctx.unreadable_reported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&uid);
            reconcile_status(object, &ctx).await
        }
        Err(invalid) => super::unreadable::report(&*object, invalid, &uid, &ctx).await,
    };
    ctx.metrics
        .reconciled(K::KIND.as_str(), started.elapsed(), result.is_err());
    if result.is_ok() {
        ctx.succeeded(&uid);
    }
    result
}

/// Requeues a failed object with exponential backoff.
pub fn error_policy<K: Tracked>(
    object: Arc<DeserializeGuard<K>>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.failed(&key(&*object));
    tracing::warn!(
        kind = K::KIND.as_str(),
        namespace = %object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        error = %error,
        retry_in_seconds = delay.as_secs(),
        "reconcile failed"
    );
    Action::requeue(delay)
}

fn key<K: Resource>(object: &K) -> String {
    object.uid().unwrap_or_else(|| {
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    })
}

async fn reconcile_status<K: Tracked>(object: &K, ctx: &Context) -> Result<Action, ReconcileError> {
    let Some(outcome) = ctx.outcome.load_full() else {
        // No config compiled yet; the config task triggers us when there is.
        return Ok(Action::await_change());
    };
    let object_ref = object_ref(K::KIND, object);
    let (namespace, name) = (object_ref.namespace.clone(), object_ref.name.clone());
    let generation = object.meta().generation;
    if !outcome.covers(&object_ref, generation) {
        // The config task has not compiled this generation yet; it triggers us when done.
        return Ok(Action::await_change());
    }
    let Some(view) = ctx.view.load_full() else {
        // The gateway pods have not been asked yet; the poller triggers us when they have.
        return Ok(Action::await_change());
    };
    let mut desired = status::desired(&object_ref, generation, &outcome, &view, Timestamp::now());
    if let Some(budget) = (object as &dyn std::any::Any).downcast_ref::<tollgate_crds::LLMBudget>()
    {
        let within = super::within_budget::condition(budget, generation, Timestamp::now());
        desired.retain(|c| c.type_ != within.type_);
        desired.push(within);
    }

    let uid = key(object);
    let (mut conditions, just_written) = {
        let written = ctx
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match written.get(&uid) {
            Some(w) if w.generation == generation && w.at.elapsed() < WRITTEN_TTL => {
                (w.conditions.clone(), true)
            }
            _ => (object.conditions().to_vec(), false),
        }
    };
    let (changed, transitions) = status::merge(&mut conditions, desired);
    let count = object.count();
    let count_current = count.is_none_or(|(_, want, stored)| stored == Some(want));
    if !changed && (just_written || (object.observed_generation() == generation && count_current)) {
        return Ok(Action::await_change());
    }

    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    // Server-side apply: this manager owns exactly these fields; what others write into
    // status (the spend task's fields, another tool's condition type) stays.
    let mut patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": {
            "observedGeneration": generation,
            "conditions": conditions,
        }
    });
    if let Some((field, value, _)) = count {
        patch["status"][field] = json!(value);
    }
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(ReconcileError::Status)?;
    ctx.written
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            uid,
            Written {
                generation,
                conditions,
                at: Instant::now(),
            },
        );

    for t in &transitions {
        let c = &t.condition;
        tracing::info!(
            kind = K::KIND.as_str(),
            namespace = %namespace,
            name = %name,
            condition = %c.type_,
            status = ?c.status,
            reason = %c.reason,
            message = %c.message,
            "condition changed"
        );
        if let Some((warning, reason, note)) = t.event() {
            let event = Event {
                type_: if warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: reason.to_owned(),
                // Event notes are limited to 1 kB.
                note: Some(status::clip(note, 1024)),
                action: "Reconcile".to_owned(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
                // An Event is best effort; the condition carries the same information.
                tracing::warn!(namespace = %namespace, name = %name, error = %e, "cannot record Event");
            }
        }
    }
    Ok(Action::await_change())
}
