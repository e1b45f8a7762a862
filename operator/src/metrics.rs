//! The operator's Prometheus metrics (served on `/metrics`).

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label: which reconcile loop (`LLMProvider`, `LLMRoute`, `LLMBudget`, or `config`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The loop.
    pub kind: String,
}

/// Label: which gateway object was written.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabel {
    /// `configmap` or `secret`.
    pub object: String,
}

/// Label: a problem reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The condition reason.
    pub reason: String,
}

/// Label: a gateway pod state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PodStateLabel {
    /// `programmed`, `pending`, `rejected` or `unreachable`.
    pub state: String,
}

/// All metrics, registered once.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    duration: Family<KindLabel, Histogram>,
    writes: Family<ObjectLabel, Counter>,
    drift: Family<ObjectLabel, Counter>,
    config_bytes: Gauge,
    problems: Family<ReasonLabel, Gauge>,
    pods: Family<PodStateLabel, Gauge>,
    leader: Gauge,
    rollout: Family<PodStateLabel, Gauge>,
    gateway_replicas: Family<PodStateLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate_operator");
        let reconciles = Family::<KindLabel, Counter>::default();
        let errors = Family::<KindLabel, Counter>::default();
        let duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let writes = Family::<ObjectLabel, Counter>::default();
        let drift = Family::<ObjectLabel, Counter>::default();
        registry.register(
            "config_drift",
            "Times the gateway ConfigMap or Secret was found changed or deleted by someone else (then repaired)",
            drift.clone(),
        );
        let config_bytes = Gauge::default();
        let problems = Family::<ReasonLabel, Gauge>::default();
        let pods = Family::<PodStateLabel, Gauge>::default();
        let leader = Gauge::default();
        let rollout = Family::<PodStateLabel, Gauge>::default();
        let gateway_replicas = Family::<PodStateLabel, Gauge>::default();
        registry.register(
            "gateway_rollout",
            "1 for the managed gateway Deployment's rollout state (progressing, complete, stalled)",
            rollout.clone(),
        );
        registry.register(
            "gateway_replicas",
            "Pods of the managed gateway Deployment: desired, updated (current template), available",
            gateway_replicas.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles run, by kind (config = compile and apply)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed and were requeued, by kind",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            duration.clone(),
        );
        registry.register(
            "config_writes",
            "Writes of the gateway's objects (ConfigMap, Secret, and the managed Deployment, Services, ...)",
            writes.clone(),
        );
        registry.register(
            "config_bytes",
            "Bytes of the gateway config as written to the ConfigMap (gzip-compressed when the text is over 1 MiB)",
            config_bytes.clone(),
        );
        registry.register(
            "problems",
            "Current problems found by compile, by reason",
            problems.clone(),
        );
        registry.register(
            "gateway_pods",
            "Ready gateway pods by what they report",
            pods.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            writes,
            drift,
            config_bytes,
            problems,
            pods,
            leader,
            rollout,
            gateway_replicas,
        }
    }

    /// Records one reconcile of `kind` that took `elapsed`, failed or not.
    pub fn reconciled(&self, kind: &str, elapsed: Duration, failed: bool) {
        let label = KindLabel {
            kind: kind.to_owned(),
        };
        self.reconciles.get_or_create(&label).inc();
        self.duration
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.errors.get_or_create(&label).inc();
        }
    }

    /// Records that the gateway's `configmap` or `secret` was changed or deleted by someone
    /// else.
    pub fn repaired(&self, object: &str) {
        self.drift
            .get_or_create(&ObjectLabel {
                object: object.to_owned(),
            })
            .inc();
    }

    /// Records a write of the gateway's `configmap` or `secret`.
    pub fn wrote(&self, object: &str) {
        self.writes
            .get_or_create(&ObjectLabel {
                object: object.to_owned(),
            })
            .inc();
    }

    /// Sets the compiled config's size.
    pub fn config_size(&self, bytes: usize) {
        self.config_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Replaces the problem counts.
    pub fn set_problems<'a>(&self, reasons: impl IntoIterator<Item = &'a str>) {
        self.problems.clear();
        for reason in reasons {
            self.problems
                .get_or_create(&ReasonLabel {
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }

    /// Replaces the gateway pod counts.
    pub fn set_pods(&self, counts: &[(&str, usize)]) {
        for (state, n) in counts {
            self.pods
                .get_or_create(&PodStateLabel {
                    state: (*state).to_owned(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The managed gateway Deployment's rollout state and pod counts.
    pub fn set_rollout(&self, state: &str, desired: i32, updated: i32, available: i32) {
        for s in crate::deploy::rollout::Rollout::STATES {
            self.rollout
                .get_or_create(&PodStateLabel {
                    state: s.to_owned(),
                })
                .set(i64::from(s == state));
        }
        for (s, n) in [
            ("desired", desired),
            ("updated", updated),
            ("available", available),
        ] {
            self.gateway_replicas
                .get_or_create(&PodStateLabel {
                    state: s.to_owned(),
                })
                .set(i64::from(n));
        }
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counts_by_kind() {
        let m = Metrics::new();
        m.reconciled("LLMRoute", Duration::from_millis(3), false);
        m.reconciled("LLMRoute", Duration::from_millis(3), true);
        m.wrote("configmap");
        m.set_problems(["SecretNotFound", "SecretNotFound", "Invalid"]);
        m.set_leader(true);
        let text = m.encode();
        assert!(
            text.contains(r#"tollgate_operator_reconciles_total{kind="LLMRoute"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"tollgate_operator_reconcile_errors_total{kind="LLMRoute"} 1"#));
        assert!(text.contains(r#"tollgate_operator_config_writes_total{object="configmap"} 1"#));
        assert!(text.contains(r#"tollgate_operator_problems{reason="SecretNotFound"} 2"#));
        assert!(text.contains("tollgate_operator_leader 1"));
    }
}
