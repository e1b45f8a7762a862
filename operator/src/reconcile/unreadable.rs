//! An object the operator cannot read must not stall its kind's watch (one bad object used
//! to fail every list, so nothing was compiled). It can pass the API server's schema and
//! still not fit the operator's types: a number beyond the Rust type's range (the CRDs carry
//! no `uint32` formats), or a field a newer CRD version gives a type this build does not
//! know. The stores keep it as an unreadable guard, compile leaves it out, and it is
//! reported once per generation: `Accepted=False` and `Ready=False` with reason
//! `Unreadable` and the parse error, a Warning Event, a log line, and
//! `tollgate_operator_problems{reason="Unreadable"}`.

use jiff::Timestamp;
use kube::{
    Api, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    core::{DeserializeGuard, error_boundary::InvalidObject},
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
};
use serde_json::json;
use tollgate_crds::conditions::{Condition, ConditionStatus, ConditionType};

use super::{
    context::Context,
    controller::{ReconcileError, Tracked},
    status::clip,
};
use crate::settings::STATUS_FIELD_MANAGER;

/// The condition and Event reason.
pub const UNREADABLE: &str = "Unreadable";

/// Reports `guard`, whose object could not be read (`invalid`), unless already reported
/// for its generation. `uid` keys the memory of what was reported.
pub async fn report<K: Tracked>(
    guard: &DeserializeGuard<K>,
    invalid: &InvalidObject,
    uid: &str,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let generation = invalid.metadata.generation;
    let reported = || {
        ctx.unreadable_reported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if reported().get(uid) == Some(&generation) {
        return Ok(Action::await_change());
    }
    let (namespace, name) = (guard.namespace().unwrap_or_default(), guard.name_any());
    let error = field_path_error::<K>(ctx, &namespace, &name)
        .await
        .unwrap_or_else(|| invalid.error.clone());
    tracing::warn!(
        kind = K::KIND.as_str(),
        namespace = %namespace,
        name = %name,
        error = %error,
        "cannot read the object; it is left out of the gateway config"
    );
    let message = clip(
        &format!(
            "The operator cannot read this object, so it is left out of the gateway config: {error}"
        ),
        1024,
    );
    let now = Timestamp::now();
    let conditions = [
        Condition::new(
            ConditionType::Accepted,
            ConditionStatus::False,
            UNREADABLE,
            message.clone(),
            generation,
            now,
        ),
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            UNREADABLE,
            format!("Accepted: {message}"),
            generation,
            now,
        ),
    ];
    // The response is read as a guard too: it is the same unreadable object.
    let api: Api<DeserializeGuard<K>> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": {"observedGeneration": generation, "conditions": conditions},
    });
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(ReconcileError::Status)?;
    let event = Event {
        type_: EventType::Warning,
        reason: UNREADABLE.to_owned(),
        note: Some(message),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &guard.object_ref(&())).await {
        tracing::warn!(namespace = %namespace, name = %name, error = %e, "cannot record Event");
    }
    reported().insert(uid.to_owned(), generation);
    Ok(Action::await_change())
}

/// The parse error with the path of the field that fails (`spec.backends[0].weight: …`),
/// from the stored object read untyped; `None` when it cannot be read.
async fn field_path_error<K: Tracked>(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Option<String> {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let raw = serde_json::to_value(api.get(name).await.ok()?).ok()?;
    match serde_path_to_error::deserialize::<_, K>(raw) {
        Ok(_) => None,
        Err(e) => {
            let path = e.path().to_string();
            Some(format!("{path}: {}", e.into_inner()))
        }
    }
}
