//! Client keys: a watch on the Secrets labelled `tollgate.dev/client-key=true` (in every
//! watched namespace). Key values are hashed as each Secret arrives and dropped; only the
//! hashes, team, routes and expiry are kept, and only they reach the gateway config. Any
//! change (a rotation is an update of the Secret) wakes the config task.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use std::sync::Arc;
use tokio::sync::{Notify, watch as signal};
use tollgate_crds::{
    config::ClientKeyConfig,
    keys::{CLIENT_KEY_SELECTOR, ClientKeySecret, KeyProblem, compile_client_keys},
};

type Keyed = BTreeMap<(String, String), ClientKeySecret>;

/// The client-key Secrets seen so far, hashed.
pub struct ClientKeys {
    seen: Mutex<BTreeMap<usize, Keyed>>,
    changed: Arc<Notify>,
    synced: signal::Sender<usize>,
}

impl ClientKeys {
    /// Nothing seen yet; `changed` is notified on every change.
    pub fn new(changed: Arc<Notify>) -> Self {
        Self {
            seen: Mutex::new(BTreeMap::new()),
            changed,
            synced: signal::channel(0).0,
        }
    }

    fn seen(&self) -> MutexGuard<'_, BTreeMap<usize, Keyed>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once each of the `watches` watches has listed its Secrets once, so the first
    /// compile never drops a namespace's key requirement for a moment.
    pub async fn ready(&self, watches: usize) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|n| *n >= watches).await;
    }

    /// The keys and keyed namespaces for the gateway config, and the refused Secrets.
    pub fn compiled(&self) -> (Vec<ClientKeyConfig>, Vec<String>, Vec<KeyProblem>) {
        let secrets: Vec<ClientKeySecret> = self
            .seen()
            .values()
            .flat_map(|watch| watch.values().cloned())
            .collect();
        compile_client_keys(&secrets)
    }

    fn set(&self, watch: usize, keyed: Keyed) {
        self.seen().insert(watch, keyed);
        self.changed.notify_one();
    }

    fn apply(&self, watch: usize, secret: &Secret) {
        let s = ClientKeySecret::from_secret(secret);
        self.seen()
            .entry(watch)
            .or_default()
            .insert((s.namespace.clone(), s.name.clone()), s);
        self.changed.notify_one();
    }

    fn delete(&self, watch: usize, secret: &Secret) {
        let s = ClientKeySecret::from_secret(secret);
        if let Some(keyed) = self.seen().get_mut(&watch) {
            keyed.remove(&(s.namespace, s.name));
        }
        self.changed.notify_one();
    }
}

/// How many watches [`run`] starts for `namespaces` (one for all, or one per namespace).
pub fn watch_count(namespaces: &[String]) -> usize {
    namespaces.len().max(1)
}

/// Watches the labelled Secrets until dropped: one watch for all namespaces, or one per
/// watched namespace.
pub async fn run(client: Client, namespaces: Vec<String>, keys: Arc<ClientKeys>) {
    let apis: Vec<Api<Secret>> = if namespaces.is_empty() {
        vec![Api::all(client)]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let watches = apis.into_iter().enumerate().map(|(i, api)| {
        let keys = Arc::clone(&keys);
        async move {
            let mut staged = Keyed::new();
            let mut stream = watcher(api, watcher::Config::default().labels(CLIENT_KEY_SELECTOR))
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Init) => staged.clear(),
                    Ok(watcher::Event::InitApply(s)) => {
                        let s = ClientKeySecret::from_secret(&s);
                        staged.insert((s.namespace.clone(), s.name.clone()), s);
                    }
                    Ok(watcher::Event::InitDone) => {
                        keys.set(i, std::mem::take(&mut staged));
                        keys.synced.send_modify(|n| *n += 1);
                    }
                    Ok(watcher::Event::Apply(s)) => keys.apply(i, &s),
                    Ok(watcher::Event::Delete(s)) => keys.delete(i, &s),
                    Err(e) => tracing::warn!(error = %e, "cannot watch client-key Secrets"),
                }
            }
        }
    });
    futures_util::future::join_all(watches).await;
}
