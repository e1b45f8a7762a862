//! The shape of the gateway deployment the operator manages, read from a settings file
//! (`--gateway-settings`, mounted from the Helm values or the kustomize ConfigMap). The file
//! is read once at start; the chart rolls the operator when it changes.

use std::{collections::BTreeMap, path::Path};

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use serde::{Deserialize, Serialize};

/// The settings file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayDeployment {
    /// Name of the Deployment, Services, PodDisruptionBudget, HPA and ServiceMonitor.
    #[serde(default = "default_name")]
    pub name: String,
    /// The operator's own Deployment (in its namespace): owner of every managed object, so
    /// deleting the operator removes them. Ignored when the gateway runs in another
    /// namespace (owner references cannot cross namespaces).
    #[serde(default)]
    pub owner: Option<String>,
    /// The gateway image (`repository:tag` or `repository@digest`).
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    /// Secrets for pulling the image.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// Pod count (ignored while `autoscaling` is set: the HPA owns it).
    #[serde(default = "default_replicas")]
    pub replicas: i32,
    /// Container resources.
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    /// Node placement.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Node placement.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Node placement.
    #[serde(default)]
    pub affinity: Option<Affinity>,
    /// Spread pods over zones and nodes (`ScheduleAnyway`).
    #[serde(default = "yes")]
    pub topology_spread: bool,
    /// `priorityClassName` of the pods.
    #[serde(default)]
    pub priority_class_name: Option<String>,
    /// Labels added to every managed object and the pods.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to every managed object.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Annotations added to the pods only.
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// The container port of the OpenAI-compatible API.
    #[serde(default = "default_api_port")]
    pub api_port: i32,
    /// The container port of `/metrics`, `/healthz`, `/readyz` and `/config/status`.
    #[serde(default = "default_admin_port")]
    pub admin_port: i32,
    /// Seconds a terminating pod keeps serving before its listener closes, so Service
    /// endpoints drop it first.
    #[serde(default = "default_pre_stop")]
    pub pre_stop_delay_seconds: i64,
    /// Seconds between SIGTERM and SIGKILL: the pre-stop delay plus the drain.
    #[serde(default = "default_grace")]
    pub termination_grace_period_seconds: i64,
    /// Gateway log format (`json` or `text`).
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// The Service apps call.
    #[serde(default)]
    pub service: ServiceSettings,
    /// The PodDisruptionBudget.
    #[serde(default)]
    pub disruption_budget: DisruptionSettings,
    /// A HorizontalPodAutoscaler; none when absent.
    #[serde(default)]
    pub autoscaling: Option<AutoscalingSettings>,
    /// A Prometheus Operator ServiceMonitor on the admin Service; none when absent.
    #[serde(default)]
    pub service_monitor: Option<ServiceMonitorSettings>,
}

/// The API Service.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettings {
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(rename = "type", default = "default_service_type")]
    pub type_: String,
    /// The Service port apps call.
    #[serde(default = "default_service_port")]
    pub port: i32,
    /// Annotations of the API Service (load balancer options).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            type_: default_service_type(),
            port: default_service_port(),
            annotations: BTreeMap::new(),
        }
    }
}

/// The PodDisruptionBudget.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisruptionSettings {
    /// Whether to manage one.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Pods a voluntary disruption may take at once.
    #[serde(default = "one")]
    pub max_unavailable: i32,
}

impl Default for DisruptionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_unavailable: 1,
        }
    }
}

/// The HorizontalPodAutoscaler.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoscalingSettings {
    /// Fewest pods.
    pub min_replicas: i32,
    /// Most pods.
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of requests) to aim for.
    #[serde(default = "default_cpu_target")]
    pub target_cpu_utilization_percent: i32,
}

/// The ServiceMonitor.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMonitorSettings {
    /// Scrape interval.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Labels the Prometheus instance selects ServiceMonitors by.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_name() -> String {
    "tollgate-gateway".into()
}
fn default_replicas() -> i32 {
    2
}
fn yes() -> bool {
    true
}
fn one() -> i32 {
    1
}
fn default_api_port() -> i32 {
    8080
}
fn default_admin_port() -> i32 {
    9090
}
fn default_pre_stop() -> i64 {
    5
}
fn default_grace() -> i64 {
    40
}
fn default_log_format() -> String {
    "json".into()
}
fn default_service_type() -> String {
    "ClusterIP".into()
}
fn default_service_port() -> i32 {
    80
}
fn default_cpu_target() -> i32 {
    70
}
fn default_interval() -> String {
    "30s".into()
}

/// A settings file that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentSettingsError {
    /// The file cannot be read.
    #[error("cannot read the gateway settings file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("the gateway settings file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (names the field).
        message: String,
    },
    /// A value is out of range.
    #[error("gateway settings: {field}: {message}")]
    Invalid {
        /// The field path.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl GatewayDeployment {
    /// Reads and checks the settings file.
    pub fn load(path: &Path) -> Result<Self, DeploymentSettingsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| DeploymentSettingsError::Read {
                path: path.display().to_string(),
                source,
            })?;
        Self::parse(&text).map_err(|e| match e {
            DeploymentSettingsError::Parse { message, .. } => DeploymentSettingsError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks settings text (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, DeploymentSettingsError> {
        let settings: Self =
            serde_saphyr::from_str(text).map_err(|e| DeploymentSettingsError::Parse {
                path: "<text>".into(),
                message: e.to_string(),
            })?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), DeploymentSettingsError> {
        let invalid = |field, message: &str| {
            Err(DeploymentSettingsError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if self.image.trim().is_empty() {
            return invalid("image", "must name the gateway image");
        }
        if !is_dns_label(&self.name) {
            return invalid("name", "must be a DNS label (lowercase, digits, '-')");
        }
        if self.replicas < 0 {
            return invalid("replicas", "must not be negative");
        }
        for (field, port) in [
            ("apiPort", self.api_port),
            ("adminPort", self.admin_port),
            ("service.port", self.service.port),
        ] {
            if !(1..=65535).contains(&port) {
                return invalid(field, "must be a port number (1-65535)");
            }
        }
        if self.api_port == self.admin_port {
            return invalid("adminPort", "must differ from apiPort");
        }
        if !matches!(
            self.service.type_.as_str(),
            "ClusterIP" | "NodePort" | "LoadBalancer"
        ) {
            return invalid(
                "service.type",
                "must be ClusterIP, NodePort or LoadBalancer",
            );
        }
        if self.pre_stop_delay_seconds < 0
            || self.termination_grace_period_seconds < self.pre_stop_delay_seconds
        {
            return invalid(
                "terminationGracePeriodSeconds",
                "must be at least preStopDelaySeconds (which must not be negative)",
            );
        }
        if !matches!(self.log_format.as_str(), "json" | "text") {
            return invalid("logFormat", "must be json or text");
        }
        if self.disruption_budget.max_unavailable < 1 {
            return invalid("disruptionBudget.maxUnavailable", "must be at least 1");
        }
        if let Some(a) = &self.autoscaling
            && (a.min_replicas < 1 || a.max_replicas < a.min_replicas)
        {
            return invalid(
                "autoscaling.maxReplicas",
                "needs 1 <= minReplicas <= maxReplicas",
            );
        }
        Ok(())
    }

    /// The replica count the Deployment asks for (none under an HPA).
    pub fn deployment_replicas(&self) -> Option<i32> {
        self.autoscaling.is_none().then_some(self.replicas)
    }

    /// Name of the admin (metrics) Service.
    pub fn admin_service_name(&self) -> String {
        format!("{}-admin", self.name)
    }
}

fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_fill_everything_but_the_image() {
        let s = GatewayDeployment::parse("image: tollgate/gateway:1").unwrap();
        assert_eq!(s.name, "tollgate-gateway");
        assert_eq!(s.replicas, 2);
        assert_eq!((s.api_port, s.admin_port, s.service.port), (8080, 9090, 80));
        assert!(s.disruption_budget.enabled && s.topology_spread);
        assert_eq!(s.deployment_replicas(), Some(2));
    }

    #[test]
    fn errors_name_the_field() {
        let e = |text: &str| {
            GatewayDeployment::parse(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            e("image: ''"),
            "gateway settings: image: must name the gateway image"
        );
        assert!(
            e("image: x\nreplica: 3").contains("replica"),
            "{}",
            e("image: x\nreplica: 3")
        );
        assert_eq!(
            e("image: x\nservice: {type: Ingress}"),
            "gateway settings: service.type: must be ClusterIP, NodePort or LoadBalancer"
        );
        assert_eq!(
            e("image: x\nautoscaling: {minReplicas: 3, maxReplicas: 2}"),
            "gateway settings: autoscaling.maxReplicas: needs 1 <= minReplicas <= maxReplicas"
        );
        assert_eq!(
            e("image: x\nadminPort: 8080"),
            "gateway settings: adminPort: must differ from apiPort"
        );
    }

    #[test]
    fn an_autoscaler_owns_the_replica_count() {
        let s = GatewayDeployment::parse(
            "image: x\nreplicas: 5\nautoscaling: {minReplicas: 2, maxReplicas: 6}",
        )
        .unwrap();
        assert_eq!(s.deployment_replicas(), None);
    }
}
