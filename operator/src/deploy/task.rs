//! The deployment task: watch the managed objects, re-apply any that are missing or
//! drifted, and report the gateway rollout.

use std::{fmt::Debug, sync::Arc};

use futures_util::{FutureExt, StreamExt, future::BoxFuture};
use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::Deployment, autoscaling::v2::HorizontalPodAutoscaler, core::v1::Service,
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DynamicObject, Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Notify;

use super::{
    Target, autoscaler, deployment, disruption, monitor,
    rollout::{Rollout, rollout},
    selector_labels, service,
    settings::GatewayDeployment,
};
use crate::{
    reconcile::context::{Context, backoff, wait_ready},
    settings::FIELD_MANAGER,
};

/// A namespaced built-in kind the task manages.
trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Managed for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Runs until dropped. Does nothing unless the settings name a gateway deployment.
pub async fn run(ctx: Arc<Context>) {
    let Some(spec) = ctx.settings.deployment.clone() else {
        // Not managing the gateway: stay idle (the operator's loops must not end).
        return std::future::pending().await;
    };
    let Some(selector) = selector_labels(&ctx.settings.pod_selector) else {
        // Settings::from_args refuses this combination; nothing to manage.
        tracing::error!("the gateway pod selector is not equality-only; not managing the gateway");
        return std::future::pending().await;
    };
    let namespace = ctx.settings.gateway.namespace.clone();
    let mut target = Target {
        objects: ctx.settings.gateway.clone(),
        selector,
        owner: None,
    };
    let changed = Arc::new(Notify::new());
    let labels = target.managed_selector();
    let (deployments, d) = reflect::<Deployment>(&ctx, &namespace, &labels, &changed);
    let (services, s) = reflect::<Service>(&ctx, &namespace, &labels, &changed);
    let (budgets, b) = reflect::<PodDisruptionBudget>(&ctx, &namespace, &labels, &changed);
    // Watched even when not configured: one left from earlier settings is removed.
    let (autoscalers, a) = reflect::<HorizontalPodAutoscaler>(&ctx, &namespace, &labels, &changed);
    let drivers = futures_util::future::join_all(vec![d, s, b, a]);
    let work = async {
        wait_ready(&deployments).await;
        wait_ready(&services).await;
        wait_ready(&budgets).await;
        wait_ready(&autoscalers).await;
        let mut state = TaskState::default();
        loop {
            if target.owner.is_none() {
                target.owner = owner(&ctx, &spec).await;
            }
            let stores = Stores {
                deployments: &deployments,
                services: &services,
                budgets: &budgets,
                autoscalers: &autoscalers,
            };
            let failed = round(&ctx, &spec, &target, &stores, &mut state).await;
            state.failures = if failed {
                state.failures.saturating_add(1)
            } else {
                0
            };
            let wait = if failed {
                backoff(state.failures)
            } else {
                ctx.settings.timings.resync
            };
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            tokio::time::sleep(ctx.settings.timings.debounce).await;
        }
    };
    tokio::select! {
        _ = drivers => tracing::error!("the gateway deployment watches ended"),
        () = work => {}
    }
}

/// What the task remembers between rounds.
#[derive(Default)]
struct TaskState {
    failures: u32,
    rollout: Option<Rollout>,
    monitor_warned: bool,
}

struct Stores<'a> {
    deployments: &'a Store<Deployment>,
    services: &'a Store<Service>,
    budgets: &'a Store<PodDisruptionBudget>,
    autoscalers: &'a Store<HorizontalPodAutoscaler>,
}

/// One pass: ensure every object, then report the rollout. Returns whether a write failed.
async fn round(
    ctx: &Context,
    spec: &GatewayDeployment,
    target: &Target,
    stores: &Stores<'_>,
    state: &mut TaskState,
) -> bool {
    let mut failed = false;
    let mut repaired = Vec::new();
    let mut removed = Vec::new();
    let mut note = |kind: &str, name: &str, result: Result<Written, kube::Error>| match result {
        Ok(Written::Repaired) => repaired.push(format!("{kind} {name}")),
        Ok(Written::Removed) => removed.push(format!("{kind} {name}")),
        Ok(_) => {}
        Err(e) => {
            failed = true;
            tracing::warn!(kind, name, error = %e, "cannot apply a gateway object; retrying");
        }
    };
    let d = deployment::deployment(spec, target);
    note(
        "Deployment",
        &spec.name,
        ensure(ctx, stores.deployments, &d, "deployment").await,
    );
    let api = service::api_service(spec, target);
    note(
        "Service",
        &spec.name,
        ensure(ctx, stores.services, &api, "service").await,
    );
    let admin = service::admin_service(spec, target);
    let admin_name = spec.admin_service_name();
    note(
        "Service",
        &admin_name,
        ensure(ctx, stores.services, &admin, "service").await,
    );
    match disruption::disruption_budget(spec, target) {
        Some(pdb) => note(
            "PodDisruptionBudget",
            &spec.name,
            ensure(ctx, stores.budgets, &pdb, "poddisruptionbudget").await,
        ),
        None => note(
            "PodDisruptionBudget",
            &spec.name,
            remove(ctx, stores.budgets, target, &spec.name).await,
        ),
    }
    match autoscaler::autoscaler(spec, target) {
        Some(hpa) => note(
            "HorizontalPodAutoscaler",
            &spec.name,
            ensure(ctx, stores.autoscalers, &hpa, "horizontalpodautoscaler").await,
        ),
        // A leftover autoscaler would keep resizing the Deployment against the settings.
        None => note(
            "HorizontalPodAutoscaler",
            &spec.name,
            remove(ctx, stores.autoscalers, target, &spec.name).await,
        ),
    }
    if let Some(sm) = monitor::service_monitor(spec, target) {
        match ensure_monitor(ctx, &sm).await {
            Ok(_) => state.monitor_warned = false,
            Err(e) if !state.monitor_warned => {
                // Most often the Prometheus Operator's CRD is not installed: say so once.
                state.monitor_warned = true;
                tracing::warn!(error = %e, "cannot apply the ServiceMonitor");
                let live = stores.deployments.get(&key(target, &spec.name));
                publish(
                    ctx,
                    live.as_deref(),
                    EventType::Warning,
                    "ServiceMonitorFailed",
                    format!("cannot apply ServiceMonitor {}: {e}", spec.name),
                )
                .await;
            }
            Err(_) => {}
        }
    }

    let live = stores.deployments.get(&key(target, &spec.name));
    if !repaired.is_empty() {
        tracing::info!(objects = ?repaired, "gateway objects differed from the settings; re-applied");
        publish(
            ctx,
            live.as_deref(),
            EventType::Normal,
            "DriftRepaired",
            format!(
                "re-applied {} to match the gateway settings",
                repaired.join(", ")
            ),
        )
        .await;
    }
    if !removed.is_empty() {
        tracing::info!(objects = ?removed, "gateway objects the settings no longer ask for; deleted");
        publish(
            ctx,
            live.as_deref(),
            EventType::Normal,
            "Removed",
            format!(
                "deleted {}: the gateway settings no longer ask for it",
                removed.join(", ")
            ),
        )
        .await;
    }
    if let Some(live) = live {
        report_rollout(ctx, &live, state).await;
    }
    failed
}

/// Records the rollout state; an Event when it changes.
async fn report_rollout(ctx: &Context, live: &Deployment, state: &mut TaskState) {
    let now = rollout(live);
    let status = live.status.clone().unwrap_or_default();
    ctx.metrics.set_rollout(
        now.state(),
        live.spec.replicas.unwrap_or(1),
        status.updated_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    );
    let changed = state
        .rollout
        .as_ref()
        .is_none_or(|r| r.state() != now.state());
    if !changed {
        state.rollout = Some(now);
        return;
    }
    let first = state.rollout.is_none();
    let event = match &now {
        // At start-up a finished rollout is not news.
        Rollout::Complete { .. } if first => None,
        Rollout::Complete { available } => Some((
            EventType::Normal,
            "RolloutComplete",
            format!("{available} gateway pod(s) run the current template"),
        )),
        Rollout::Progressing { updated, desired } => Some((
            EventType::Normal,
            "RolloutProgressing",
            format!("{updated} of {desired} gateway pod(s) run the current template"),
        )),
        Rollout::Stalled { message } => {
            Some((EventType::Warning, "RolloutStalled", message.clone()))
        }
    };
    tracing::info!(state = now.state(), "gateway rollout");
    if let Some((kind, reason, note)) = event {
        publish(ctx, Some(live), kind, reason, note).await;
    }
    state.rollout = Some(now);
}

async fn publish(
    ctx: &Context,
    on: Option<&Deployment>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let Some(on) = on else { return };
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(crate::reconcile::status::clip(&note, 1024)),
        action: "Deploy".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &on.object_ref(&())).await {
        tracing::warn!(error = %e, "cannot record Event");
    }
}

/// What [`ensure`] did.
enum Written {
    Unchanged,
    Created,
    Repaired,
    Removed,
}

/// Deletes our object `name` of kind `K` if it exists (the reflector is label-selected, so
/// only objects this operator manages are ever seen).
async fn remove<K: Managed>(
    ctx: &Context,
    store: &Store<K>,
    target: &Target,
    name: &str,
) -> Result<Written, kube::Error> {
    if store.get(&key(target, name)).is_none() {
        return Ok(Written::Unchanged);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &target.objects.namespace);
    match api.delete(name, &kube::api::DeleteParams::default()).await {
        Ok(_) => Ok(Written::Removed),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Written::Unchanged),
        Err(e) => Err(e),
    }
}

fn key<K: Managed>(target: &Target, name: &str) -> ObjectRef<K> {
    ObjectRef::new(name).within(&target.objects.namespace)
}

/// Applies `desired` unless the live object already holds it.
async fn ensure<K: Managed>(
    ctx: &Context,
    store: &Store<K>,
    desired: &K,
    metric: &str,
) -> Result<Written, kube::Error> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let live = store.get(&ObjectRef::new(&name).within(&namespace));
    let want = serde_json::to_value(desired).unwrap_or_default();
    if let Some(live) = &live
        && super::contains(&serde_json::to_value(&**live).unwrap_or_default(), &want)
    {
        return Ok(Written::Unchanged);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await?;
    ctx.metrics.wrote(metric);
    Ok(if live.is_some() {
        Written::Repaired
    } else {
        Written::Created
    })
}

/// The ServiceMonitor has no watch (its CRD may be absent): read, compare, apply.
async fn ensure_monitor(ctx: &Context, desired: &DynamicObject) -> Result<Written, kube::Error> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &monitor::api_resource());
    let live = api.get_opt(&name).await?;
    let want = serde_json::to_value(desired).unwrap_or_default();
    if let Some(live) = &live
        && super::contains(&serde_json::to_value(live).unwrap_or_default(), &want)
    {
        return Ok(Written::Unchanged);
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await?;
    ctx.metrics.wrote("servicemonitor");
    Ok(if live.is_some() {
        Written::Repaired
    } else {
        Written::Created
    })
}

/// The operator's Deployment as owner, when configured and in the gateway's namespace.
async fn owner(ctx: &Context, spec: &GatewayDeployment) -> Option<OwnerReference> {
    let name = spec.owner.as_deref().filter(|n| !n.is_empty())?;
    if ctx.settings.operator_namespace != ctx.settings.gateway.namespace {
        return None;
    }
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    match api.get_opt(name).await {
        Ok(Some(d)) => d.controller_owner_ref(&()).map(|mut o| {
            // The operator's Deployment does not control these objects' lifecycles beyond
            // garbage collection; blockOwnerDeletion would need finalizer rights on it.
            o.controller = Some(false);
            o.block_owner_deletion = None;
            o
        }),
        Ok(None) => {
            tracing::warn!(
                owner = name,
                "the owner Deployment does not exist; objects get no owner until it does"
            );
            None
        }
        Err(e) => {
            tracing::warn!(owner = name, error = %e, "cannot read the owner Deployment");
            None
        }
    }
}

/// A label-selected reflector in `namespace` that wakes `changed`.
fn reflect<K: Managed>(
    ctx: &Context,
    namespace: &str,
    labels: &str,
    changed: &Arc<Notify>,
) -> (Store<K>, BoxFuture<'static, ()>) {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let (reader, writer) = reflector::store();
    let changed = changed.clone();
    let driver = watcher(api, watcher::Config::default().labels(labels))
        .default_backoff()
        .reflect(writer)
        .for_each(move |event| {
            let changed = changed.clone();
            async move {
                match event {
                    Ok(_) => changed.notify_one(),
                    Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "cannot watch gateway objects"),
                }
            }
        })
        .boxed();
    (reader, driver)
}
