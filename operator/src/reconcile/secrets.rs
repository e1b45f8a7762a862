//! Watches exactly the Secrets that providers reference: one watch per Secret, selected by
//! `metadata.name`, started and stopped as providers change. The operator never caches
//! every Secret in the cluster, and users need not label their Secrets.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use tokio::{sync::Notify, task::JoinHandle};
use tollgate_crds::{LLMProvider, compile::SecretIndex, manifests::secret_values};

use crate::settings::SecretPolicy;

/// `(namespace, name)` of a Secret.
pub type SecretId = (String, String);

/// What a watch has seen of its Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// The first list has not finished (since the given instant).
    Pending(Instant),
    /// The Secret's values, or `None` when it does not exist (or cannot be read).
    Known(Option<BTreeMap<String, Vec<u8>>>),
}

struct Slot {
    seen: Seen,
    task: JoinHandle<()>,
}

/// The referenced Secrets and their live values.
pub struct SecretWatches {
    client: Client,
    slots: Mutex<BTreeMap<SecretId, Slot>>,
    changed: Arc<Notify>,
}

impl SecretWatches {
    /// No watches yet; `changed` is notified whenever a watched Secret changes.
    pub fn new(client: Client, changed: Arc<Notify>) -> Self {
        Self {
            client,
            slots: Mutex::new(BTreeMap::new()),
            changed,
        }
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<SecretId, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts watches for Secrets newly in `wanted` and stops those no longer in it.
    pub fn watch_exactly(self: &Arc<Self>, wanted: &BTreeSet<SecretId>) {
        let mut slots = self.slots();
        slots.retain(|id, slot| {
            let keep = wanted.contains(id);
            if !keep {
                slot.task.abort();
                tracing::debug!(namespace = %id.0, name = %id.1, "stopped watching Secret");
            }
            keep
        });
        for id in wanted {
            if !slots.contains_key(id) {
                tracing::debug!(namespace = %id.0, name = %id.1, "watching Secret");
                let task =
                    tokio::spawn(watch(Arc::downgrade(self), self.client.clone(), id.clone()));
                slots.insert(
                    id.clone(),
                    Slot {
                        seen: Seen::Pending(Instant::now()),
                        task,
                    },
                );
            }
        }
    }

    /// Whether any watch is still doing its first list, for at most `grace`.
    pub fn pending(&self, grace: Duration) -> bool {
        self.slots()
            .values()
            .any(|s| matches!(s.seen, Seen::Pending(since) if since.elapsed() < grace))
    }

    /// Which keys exist in the watched Secrets, for compile.
    pub fn index(&self) -> SecretIndex {
        let mut index = SecretIndex::default();
        for ((ns, name), slot) in self.slots().iter() {
            if let Seen::Known(Some(values)) = &slot.seen {
                index.insert(ns, name, values.keys().cloned());
            }
        }
        index
    }

    /// The value of `key` in Secret `namespace/name`, if watched and present.
    pub fn value(&self, namespace: &str, name: &str, key: &str) -> Option<Vec<u8>> {
        let slots = self.slots();
        match &slots.get(&(namespace.to_owned(), name.to_owned()))?.seen {
            Seen::Known(Some(values)) => values.get(key).cloned(),
            _ => None,
        }
    }

    fn set(&self, id: &SecretId, seen: Seen) {
        let changed = match self.slots().get_mut(id) {
            Some(slot) if slot.seen != seen => {
                slot.seen = seen;
                true
            }
            _ => false,
        };
        if changed {
            self.changed.notify_one();
        }
    }
}

/// Follows one Secret. Holds the registry weakly, so dropping it ends every watch.
async fn watch(registry: Weak<SecretWatches>, client: Client, id: SecretId) {
    let api: Api<Secret> = Api::namespaced(client, &id.0);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", id.1));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut listing: Option<BTreeMap<String, Vec<u8>>> = None;
    while let Some(event) = events.next().await {
        let Some(this) = registry.upgrade() else {
            return;
        };
        match event {
            Ok(watcher::Event::Init) => listing = None,
            Ok(watcher::Event::InitApply(s)) => listing = Some(secret_values(&s)),
            Ok(watcher::Event::InitDone) => this.set(&id, Seen::Known(listing.take())),
            Ok(watcher::Event::Apply(s)) => this.set(&id, Seen::Known(Some(secret_values(&s)))),
            Ok(watcher::Event::Delete(_)) => this.set(&id, Seen::Known(None)),
            Err(e) => {
                // Typically RBAC: the Secret cannot be read, so it counts as missing until
                // a retry succeeds (the watcher backs off and retries).
                tracing::warn!(namespace = %id.0, name = %id.1, error = %e, "cannot watch Secret");
                let first = matches!(
                    this.slots().get(&id).map(|s| &s.seen),
                    Some(Seen::Pending(_))
                );
                if first {
                    this.set(&id, Seen::Known(None));
                }
            }
        }
    }
}

impl Drop for SecretWatches {
    fn drop(&mut self) {
        for slot in self.slots().values() {
            slot.task.abort();
        }
    }
}

/// The Secrets `providers` reference whose namespace `policy` permits, and the namespaces
/// of providers it does not (for `RefNotPermitted`).
pub fn referenced(
    providers: &[Arc<LLMProvider>],
    policy: &SecretPolicy,
) -> (BTreeSet<SecretId>, BTreeSet<String>) {
    let mut wanted = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for p in providers {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let Some(auth) = &p.spec.auth else { continue };
        let names = auth
            .secret_refs
            .iter()
            .map(|r| r.name.clone())
            .chain(auth.aws.iter().map(|a| a.secret_name.clone()));
        if policy.permits(&ns) {
            wanted.extend(names.map(|n| (ns.clone(), n)));
        } else if names.count() > 0 {
            forbidden.insert(ns);
        }
    }
    (wanted, forbidden)
}
