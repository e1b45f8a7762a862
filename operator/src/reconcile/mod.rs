//! The operator's reconcile loops, wired together:
//!
//! - reflectors on the three kinds (all namespaces, or one per watched namespace) feed the
//!   per-kind status [`controller`]s and wake the [`config`] task;
//! - the config task compiles everything, writes the gateway's ConfigMap and Secret
//!   ([`apply`]) and starts/stops the field-selected [`secrets`] watches; watches on its
//!   own ConfigMap and Secret ([`own_objects`]) wake it when someone else changes them;
//! - the [`poller`] asks gateway pods what they serve ([`gateways`]);
//! - the controllers turn the [`outcome`] and the pods' reports into [`status`].

mod admin_http;
pub mod apply;
pub mod client_keys;
pub mod config;
pub mod context;
pub mod controller;
pub mod gateways;
pub mod outcome;
pub mod own_objects;
pub mod poller;
pub mod secrets;
pub mod spend;
pub mod status;
pub mod unreadable;
pub mod within_budget;

#[cfg(test)]
mod tests;

use std::{future::Future, pin::Pin, sync::Arc};

use futures_util::{FutureExt, StreamExt, TryStreamExt, future::BoxFuture, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    core::DeserializeGuard,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        events::{Recorder, Reporter},
        reflector::{self, Store},
        watcher,
    },
};
use tokio::{sync::Notify, task::JoinSet};
use tollgate_crds::catalog::PriceCatalogue;

use self::{
    context::{Context, Stores},
    controller::Tracked,
};
use crate::{metrics::Metrics, settings::Settings};

/// Why the loops cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The built-in price catalogue is broken (a build defect).
    #[error("the built-in price catalogue cannot be read: {0}")]
    Catalogue(String),
}

/// The running loops: poll [`Operator::run`] to drive them; dropping it stops them.
pub struct Operator {
    /// Shared state (for readiness and tests).
    pub context: Arc<Context>,
    tasks: Vec<BoxFuture<'static, ()>>,
}

impl Operator {
    /// Builds every loop (nothing runs until [`Operator::run`] is polled).
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        reporter: Reporter,
    ) -> Result<Self, StartError> {
        let catalogue =
            PriceCatalogue::builtin().map_err(|e| StartError::Catalogue(e.to_string()))?;
        let inputs_changed = Arc::new(Notify::new());
        let poll_now = Arc::new(Notify::new());
        let namespaces = settings.watch_namespaces.clone();

        let (providers, provider_streams) = reflect(&client, &namespaces, &inputs_changed);
        let (routes, route_streams) = reflect(&client, &namespaces, &inputs_changed);
        let (budgets, budget_streams) = reflect(&client, &namespaces, &inputs_changed);
        let (pods, pod_stream) = reflect_pods(&client, &settings, &poll_now);

        let recorder = Recorder::new(client.clone(), reporter);
        let context = Arc::new(Context::new(
            client,
            settings,
            metrics,
            catalogue,
            (providers, routes, budgets),
            pods,
            inputs_changed,
            poll_now,
            recorder,
        ));

        let mut tasks: Vec<BoxFuture<'static, ()>> = vec![
            config::run(context.clone()).boxed(),
            own_objects::run(context.clone()).boxed(),
            poller::run(context.clone()).boxed(),
            spend::run(context.clone()).boxed(),
            crate::deploy::run(context.clone()).boxed(),
            pod_stream,
            client_keys::run(
                context.client.clone(),
                context.settings.client_key_namespaces(),
                context.client_keys.clone(),
            )
            .boxed(),
        ];
        tasks.extend(controllers(&context, provider_streams));
        tasks.extend(controllers(&context, route_streams));
        tasks.extend(controllers(&context, budget_streams));
        Ok(Self { context, tasks })
    }

    /// Runs every loop, each as its own task, until `shutdown` resolves; then stops them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        for task in self.tasks {
            tasks.spawn(task);
        }
        tokio::select! {
            _ = tasks.join_next() => tracing::error!("an operator loop ended unexpectedly"),
            () = shutdown => tracing::info!("operator loops stopping"),
        }
        tasks.shutdown().await;
    }
}

type ObjectStream<K> =
    Pin<Box<dyn stream::Stream<Item = Result<DeserializeGuard<K>, watcher::Error>> + Send>>;

/// A store and the reflector stream that fills it (driven by its controller).
type Reflected<K> = (Store<DeserializeGuard<K>>, ObjectStream<K>);

/// Reflectors for kind `K`: one for all namespaces, or one per watched namespace (one
/// store cannot hold several namespaces' lists, since each relist replaces it).
fn reflect<K: Tracked>(
    client: &Client,
    namespaces: &[String],
    changed: &Arc<Notify>,
) -> (Stores<K>, Vec<Reflected<K>>) {
    let apis: Vec<Api<DeserializeGuard<K>>> = if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let mut stores = Vec::new();
    let mut streams = Vec::new();
    for api in apis {
        let (reader, writer) = reflector::store();
        let changed = changed.clone();
        let mut generations = Generations::default();
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer)
            .inspect_ok(move |event| {
                if generations.changes_compile(event) {
                    changed.notify_one();
                }
            })
            .applied_objects()
            .boxed();
        stores.push(reader.clone());
        streams.push((reader, stream));
    }
    (Stores { stores }, streams)
}

/// The generation of every object a reflector has seen, so that only what compile reads
/// (the spec, which bumps the generation; objects appearing and going) wakes the config
/// task. Status writes (the operator's own, after every compile) do not: at 10,000 routes
/// each needless round costs seconds of CPU.
#[derive(Default)]
struct Generations(std::collections::HashMap<String, Option<i64>>);

impl Generations {
    fn changes_compile<K: kube::Resource>(&mut self, event: &watcher::Event<K>) -> bool {
        let key = |o: &K| {
            let m = o.meta();
            m.uid.clone().unwrap_or_else(|| {
                format!(
                    "{}/{}",
                    m.namespace.as_deref().unwrap_or_default(),
                    m.name.as_deref().unwrap_or_default()
                )
            })
        };
        match event {
            watcher::Event::Init => false,
            // A relist may have dropped objects deleted meanwhile.
            watcher::Event::InitDone => true,
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                let generation = o.meta().generation;
                self.0.insert(key(o), generation) != Some(generation)
            }
            watcher::Event::Delete(o) => {
                self.0.remove(&key(o));
                true
            }
        }
    }
}

/// A reflector on the gateway pods; the returned future drives it.
fn reflect_pods(
    client: &Client,
    settings: &Settings,
    changed: &Arc<Notify>,
) -> (Store<Pod>, BoxFuture<'static, ()>) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &settings.gateway.namespace);
    let (reader, writer) = reflector::store();
    let changed = changed.clone();
    let config = watcher::Config::default().labels(&settings.pod_selector);
    let driver = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |_| changed.notify_one())
        .for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "cannot watch gateway pods");
            }
        })
        .boxed();
    (reader, driver)
}

/// One status controller per store of kind `K`, re-checking everything on each trigger.
fn controllers<K: Tracked>(
    ctx: &Arc<Context>,
    streams: Vec<Reflected<K>>,
) -> Vec<BoxFuture<'static, ()>> {
    streams
        .into_iter()
        .map(|(store, stream)| {
            let trigger = stream::unfold(ctx.status_trigger.subscribe(), |mut rx| async move {
                rx.changed().await.ok()?;
                Some(((), rx))
            });
            let config = ControllerConfig::default().concurrency(ctx.settings.limits.concurrency);
            Controller::for_stream(stream, store)
                .with_config(config)
                .reconcile_all_on(trigger)
                .run(
                    controller::reconcile::<K>,
                    controller::error_policy::<K>,
                    ctx.clone(),
                )
                .for_each(|result| async move {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "controller event");
                    }
                })
                .boxed()
        })
        .collect()
}
