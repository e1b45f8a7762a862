//! Watches the gateway ConfigMap and Secret the config task writes, so that a deletion or an
//! edit by someone else is repaired at once instead of at the next resync. Each watch is
//! field-selected on the one object's name. The watch delivers the operator's own writes
//! too; those wake nothing: an event wakes the config task only when the object is gone or
//! differs from what the config task last wrote, so no write loop can start (and a wake
//! writes only what differs from the live object).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use futures_util::{StreamExt, future};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Resource,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;

use super::{apply, context::Context};

/// What the config task last wrote (or found already right); `None` before its first
/// write, when there is nothing to repair yet.
#[derive(Default)]
pub struct Desired {
    /// The gateway ConfigMap.
    pub config_map: ArcSwapOption<ConfigMap>,
    /// The gateway Secret.
    pub secret: ArcSwapOption<Secret>,
}

/// Runs both watches until dropped.
pub async fn run(ctx: Arc<Context>) {
    let names = &ctx.settings.gateway;
    future::join(
        watch::<ConfigMap>(&ctx, &names.config_map, |ctx, live| {
            ctx.own
                .config_map
                .load()
                .as_deref()
                .map(|want| live.is_some_and(|l| apply::same_config_map(l, want)))
        }),
        watch::<Secret>(&ctx, &names.secret, |ctx, live| {
            ctx.own
                .secret
                .load()
                .as_deref()
                .map(|want| live.is_some_and(|l| apply::same_secret(l, want)))
        }),
    )
    .await;
}

/// Watches the object `name` in the gateway namespace. `current(ctx, live)` says whether
/// the live object (`None`: absent) is what the config task wrote; `None` when it has not
/// written yet.
async fn watch<K>(
    ctx: &Arc<Context>,
    name: &str,
    current: impl Fn(&Context, Option<&K>) -> Option<bool>,
) where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ctx.settings.gateway.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let kind = K::kind(&());
    let mut events = watcher(api, config).default_backoff().boxed();
    // During a (re)list: whether the object was listed.
    let mut listed = false;
    while let Some(event) = events.next().await {
        let live = match event {
            Ok(watcher::Event::Init) => {
                listed = false;
                continue;
            }
            Ok(watcher::Event::InitApply(object)) => {
                listed = true;
                Some(object)
            }
            Ok(watcher::Event::InitDone) if listed => continue,
            Ok(watcher::Event::InitDone | watcher::Event::Delete(_)) => None,
            Ok(watcher::Event::Apply(object)) => Some(object),
            Err(e) => {
                tracing::warn!(kind = %kind, name, error = %e, "cannot watch the gateway's object");
                continue;
            }
        };
        if current(ctx, live.as_ref()) == Some(false) {
            tracing::info!(
                kind = %kind,
                name,
                deleted = live.is_none(),
                "the gateway's object was changed or deleted by someone else; repairing"
            );
            ctx.metrics.repaired(&kind.to_lowercase());
            ctx.inputs_changed.notify_one();
        }
    }
}
