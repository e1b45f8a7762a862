//! The gateway's Deployment, Services, PodDisruptionBudget and (optionally) HPA and
//! ServiceMonitor, built from the settings file ([`settings`]) and kept in place by
//! server-side apply: each object is written when it is missing or when a field the
//! settings set differs (drift is repaired), and never otherwise. The pod template holds
//! nothing derived from the compiled config, so a config change never restarts pods; an
//! image or settings change rolls them. Rollout progress shows as Events on the gateway
//! Deployment and as metrics.

pub mod autoscaler;
pub mod deployment;
pub mod disruption;
pub mod monitor;
pub mod rollout;
pub mod service;
pub mod settings;
mod task;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;

use self::settings::GatewayDeployment;
pub use self::task::run;
use crate::render::GatewayObjects;

/// The label marking objects this operator manages.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "tollgate-operator");

/// Where the managed objects go and what ties them together.
#[derive(Clone, Debug)]
pub struct Target {
    /// Namespace and the ConfigMap and Secret the pods mount.
    pub objects: GatewayObjects,
    /// The pod labels the Deployment selects (from `--gateway-pod-selector`, so the poller
    /// finds exactly these pods).
    pub selector: BTreeMap<String, String>,
    /// The operator's Deployment, when it can own the objects.
    pub owner: Option<OwnerReference>,
}

impl Target {
    /// Labels of every managed object.
    pub fn labels(&self, s: &GatewayDeployment) -> BTreeMap<String, String> {
        let mut labels = s.labels.clone();
        labels.extend(self.selector.clone());
        labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
        labels
    }

    /// Metadata of a managed object called `name`.
    pub fn metadata(&self, s: &GatewayDeployment, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.objects.namespace.clone()),
            labels: Some(self.labels(s)),
            annotations: (!s.annotations.is_empty()).then(|| s.annotations.clone()),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    /// The label selector (string form) matching every managed object.
    pub fn managed_selector(&self) -> String {
        self.selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(std::iter::once(format!(
                "{}={}",
                MANAGED_BY.0, MANAGED_BY.1
            )))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Every object the operator keeps for `s`, as JSON (for `examples/gateway_objects.rs` and
/// schema checks in CI).
pub fn objects(s: &GatewayDeployment, target: &Target) -> Vec<Value> {
    let mut out = vec![
        serde_json::to_value(deployment::deployment(s, target)),
        serde_json::to_value(service::api_service(s, target)),
        serde_json::to_value(service::admin_service(s, target)),
    ];
    if let Some(pdb) = disruption::disruption_budget(s, target) {
        out.push(serde_json::to_value(pdb));
    }
    if let Some(hpa) = autoscaler::autoscaler(s, target) {
        out.push(serde_json::to_value(hpa));
    }
    if let Some(sm) = monitor::service_monitor(s, target) {
        out.push(serde_json::to_value(sm));
    }
    out.into_iter().filter_map(Result::ok).collect()
}

/// The labels of an equality-only selector (`a=b,c==d`); `None` for set-based or `!=`
/// terms, which cannot be turned into pod labels.
pub fn selector_labels(selector: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if term.contains("!=") || term.contains(' ') || term.contains('(') {
            return None;
        }
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.contains('=') {
            return None;
        }
        labels.insert(k.to_owned(), v.to_owned());
    }
    (!labels.is_empty()).then_some(labels)
}

/// Whether `live` already holds every field of `desired` (server defaults and fields of
/// other managers are ignored). Lists must match element by element.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => contains(lv, dv),
            None => dv.is_null() || dv.as_object().is_some_and(serde_json::Map::is_empty),
        }),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        // The API server canonicalizes quantities ("0.5" is stored as "500m").
        (Value::String(l), Value::String(d)) => {
            l == d || matches!((quantity(l), quantity(d)), (Some(a), Some(b)) if a == b)
        }
        (l, d) => l == d,
    }
}

/// A resource quantity (`500m`, `1.5Gi`, `2e3`) in milli-units, when `text` is one.
fn quantity(text: &str) -> Option<i128> {
    const SUFFIXES: [(&str, i128); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let (number, scale_milli) = if let Some(n) = text.strip_suffix('m') {
        (n, 1)
    } else if let Some((n, factor)) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
    {
        (n, factor * 1000)
    } else {
        (text, 1000)
    };
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || number.is_empty() || number.starts_with('+') {
        return None;
    }
    // Rounded to milli-units, as the API server does for CPU and memory.
    Some((value * scale_milli as f64).round() as i128)
}

#[cfg(test)]
mod unit_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equality_selectors_become_labels() {
        let labels = selector_labels(
            "app.kubernetes.io/name=tollgate, app.kubernetes.io/component==gateway",
        );
        assert_eq!(
            labels,
            Some(BTreeMap::from([
                ("app.kubernetes.io/component".into(), "gateway".into()),
                ("app.kubernetes.io/name".into(), "tollgate".into()),
            ]))
        );
        assert_eq!(selector_labels("app in (a,b)"), None);
        assert_eq!(selector_labels("app!=x"), None);
        assert_eq!(selector_labels(" "), None);
    }

    #[test]
    fn contains_ignores_defaults_but_not_changed_fields() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        let live = json!({"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "x": 1}, "status": {}});
        assert!(contains(&live, &desired));
        let drifted = json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}});
        assert!(!contains(&drifted, &desired));
        let extra_port = json!({"spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 81}]}});
        assert!(!contains(&extra_port, &desired));
    }

    #[test]
    fn canonicalized_quantities_are_no_drift() {
        let desired = json!({"cpu": "0.5", "memory": "1Gi", "image": "gw:1"});
        assert!(contains(
            &json!({"cpu": "500m", "memory": "1024Mi", "image": "gw:1"}),
            &desired
        ));
        assert!(!contains(
            &json!({"cpu": "600m", "memory": "1Gi", "image": "gw:1"}),
            &desired
        ));
        assert!(!contains(
            &json!({"cpu": "500m", "memory": "1Gi", "image": "gw:2"}),
            &desired
        ));
    }
}
