//! State shared by the config task, the gateway poller and the status controllers.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Client,
    core::DeserializeGuard,
    runtime::{events::Recorder, reflector::Store},
};
use tokio::sync::{Notify, watch};
use tollgate_crds::{
    LLMBudget, LLMProvider, LLMRoute, catalog::PriceCatalogue, conditions::Condition,
};

use super::{gateways::GatewayView, outcome::Outcome, secrets::SecretWatches};
use crate::{metrics::Metrics, settings::Settings};

/// Reflector stores of one kind: one per watched namespace, or one for all. They hold
/// every object, readable or not ([`DeserializeGuard`]): one object the operator cannot
/// read must not stall its kind's watch.
pub struct Stores<K: kube::Resource + 'static>
where
    K::DynamicType: std::hash::Hash + Eq,
{
    /// The stores.
    pub stores: Vec<Store<DeserializeGuard<K>>>,
}

impl<K> Stores<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// Every readable object in every store (copies: the stores hold guards).
    pub fn all(&self) -> Vec<Arc<K>> {
        self.stores
            .iter()
            .flat_map(Store::state)
            .filter_map(|guard| guard.0.as_ref().ok().map(|k| Arc::new(k.clone())))
            .collect()
    }

    /// How many objects cannot be read.
    pub fn unreadable(&self) -> usize {
        self.stores
            .iter()
            .flat_map(Store::state)
            .filter(|guard| guard.0.is_err())
            .count()
    }

    /// Waits until every store has finished its first list.
    pub async fn ready(&self) {
        for store in &self.stores {
            wait_ready(store).await;
        }
    }
}

/// Waits until `store` has finished its first list. `Store::wait_until_ready` wakes only
/// the most recent of several concurrent waiters (and the controller already waits on the
/// same store), so this checks without registering and sleeps between checks.
pub async fn wait_ready<K>(store: &Store<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    use futures_util::FutureExt;
    while store.wait_until_ready().now_or_never().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything the loops share.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The flags.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Prices for models whose spec gives none.
    pub catalogue: &'static PriceCatalogue,
    /// Watched `LLMProvider`s.
    pub providers: Stores<LLMProvider>,
    /// Watched `LLMRoute`s.
    pub routes: Stores<LLMRoute>,
    /// Watched `LLMBudget`s.
    pub budgets: Stores<LLMBudget>,
    /// Gateway pods.
    pub pods: Store<Pod>,
    /// The referenced Secrets.
    pub secrets: Arc<SecretWatches>,
    /// What the config task last wrote, for the watches on it (`own_objects.rs`).
    pub own: super::own_objects::Desired,
    /// Client-key Secrets, hashed (`client_keys.rs`).
    pub client_keys: Arc<super::client_keys::ClientKeys>,
    /// The latest compile-and-write round.
    pub outcome: ArcSwapOption<Outcome>,
    /// What the gateway pods serve; `None` until they were first asked, so that no status
    /// claims "no gateway pods" before anyone looked.
    pub view: ArcSwapOption<GatewayView>,
    /// Inputs changed: the config task recompiles.
    pub inputs_changed: Arc<Notify>,
    /// Pods changed or a config was written: the poller asks the pods now.
    pub poll_now: Arc<Notify>,
    /// Bumped whenever status may have to change: the controllers reconcile everything.
    pub status_trigger: watch::Sender<u64>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Consecutive failures per object, for requeue backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The conditions last written per object uid, with the generation and when: a
    /// reconcile can run before the watch delivers our own write, and must not write (or
    /// announce) it twice. Entries are trusted for [`WRITTEN_TTL`].
    pub written: Mutex<HashMap<String, Written>>,
    /// Unreadable objects already reported, by uid, with the generation reported.
    pub unreadable_reported: Mutex<HashMap<String, Option<i64>>>,
    /// Set once the first config has been written.
    configured: AtomicBool,
}

/// A status write the watch may not have delivered yet.
pub struct Written {
    /// The object's generation then.
    pub generation: Option<i64>,
    /// The conditions written.
    pub conditions: Vec<Condition>,
    /// When.
    pub at: std::time::Instant,
}

/// How long a remembered status write is preferred over the (possibly stale) cache.
pub const WRITTEN_TTL: Duration = Duration::from_secs(30);

/// Requeue backoff after errors: 5 s doubling up to 5 min.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

impl Context {
    /// Assembles the context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        catalogue: &'static PriceCatalogue,
        stores: (Stores<LLMProvider>, Stores<LLMRoute>, Stores<LLMBudget>),
        pods: Store<Pod>,
        inputs_changed: Arc<Notify>,
        poll_now: Arc<Notify>,
        recorder: Recorder,
    ) -> Self {
        let secrets = Arc::new(SecretWatches::new(client.clone(), inputs_changed.clone()));
        Self {
            client,
            settings,
            metrics,
            catalogue,
            providers: stores.0,
            routes: stores.1,
            budgets: stores.2,
            pods,
            secrets,
            own: super::own_objects::Desired::default(),
            client_keys: Arc::new(super::client_keys::ClientKeys::new(inputs_changed.clone())),
            outcome: ArcSwapOption::empty(),
            view: ArcSwapOption::empty(),
            inputs_changed,
            poll_now,
            status_trigger: watch::channel(0).0,
            recorder,
            failures: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
            unreadable_reported: Mutex::new(HashMap::new()),
            configured: AtomicBool::new(false),
        }
    }

    /// Asks the controllers to re-check every object.
    pub fn trigger_status(&self) {
        self.status_trigger.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The delay before retrying `key` after another failure.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        backoff(*n)
    }

    /// Forgets `key`'s failures.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(key);
    }

    /// Drops remembered status writes the watch has surely delivered by now (and those of
    /// deleted objects), so the map does not grow with churn.
    pub fn forget_old_writes(&self) {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, w| w.at.elapsed() < WRITTEN_TTL);
    }

    /// Marks the first config as written.
    pub fn set_configured(&self) {
        self.configured.store(true, Ordering::Release);
    }

    /// Whether the first config has been written.
    pub fn configured(&self) -> bool {
        self.configured.load(Ordering::Acquire)
    }
}

/// Exponential backoff for the `n`th consecutive failure (n ≥ 1).
pub fn backoff(n: u32) -> Duration {
    let factor = 2u32.saturating_pow(n.saturating_sub(1).min(16));
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
