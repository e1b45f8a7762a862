//! What the operator is told on its command line (each flag also reads an environment
//! variable, as Deployments usually set them), turned into checked [`Settings`].

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use clap::{Args, ValueEnum};

use crate::{
    deploy::{selector_labels, settings::GatewayDeployment},
    render::GatewayObjects,
};

/// `tollgate-operator run` flags.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespaces whose LLMProvider, LLMRoute and LLMBudget objects are watched,
    /// comma-separated. Empty: all namespaces.
    #[arg(
        long,
        env = "TOLLGATE_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub watch_namespaces: Vec<String>,
    /// The operator's own namespace (its Lease lives here; providers here may always use
    /// their Secrets).
    #[arg(long, env = "POD_NAMESPACE", default_value = "tollgate-system")]
    pub namespace: String,
    /// Where the gateway's ConfigMap and Secret are written and its pods run. Default: the
    /// operator's namespace.
    #[arg(long, env = "TOLLGATE_GATEWAY_NAMESPACE")]
    pub gateway_namespace: Option<String>,
    /// Name of the gateway's ConfigMap.
    #[arg(
        long,
        env = "TOLLGATE_CONFIG_MAP",
        default_value = "tollgate-gateway-config"
    )]
    pub config_map_name: String,
    /// Name of the gateway's Secret.
    #[arg(
        long,
        env = "TOLLGATE_GATEWAY_SECRET",
        default_value = "tollgate-gateway-keys"
    )]
    pub secret_name: String,
    /// Label selector of the gateway pods whose `/config/status` decides `Programmed`.
    #[arg(
        long,
        env = "TOLLGATE_GATEWAY_POD_SELECTOR",
        default_value = "app.kubernetes.io/name=tollgate,app.kubernetes.io/component=gateway"
    )]
    pub gateway_pod_selector: String,
    /// The gateway's admin port, used when a pod declares no container port named `admin`.
    #[arg(long, env = "TOLLGATE_GATEWAY_ADMIN_PORT", default_value_t = 9090)]
    pub gateway_admin_port: u16,
    /// Namespaces (besides the operator's own) whose providers may have their Secrets copied
    /// into the gateway Secret, comma-separated; `*` allows every namespace.
    #[arg(
        long,
        env = "TOLLGATE_SECRET_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub secret_namespaces: Vec<String>,
    /// Address serving `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "TOLLGATE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info,tollgate_operator=debug`).
    #[arg(long, env = "TOLLGATE_LOG", default_value = "info")]
    pub log_level: String,
    /// Log line format.
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Take a Lease before writing anything, so only one replica writes at a time.
    #[arg(long, env = "TOLLGATE_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the Lease, in the operator's namespace.
    #[arg(long, env = "TOLLGATE_LEASE_NAME", default_value = "tollgate-operator")]
    pub lease_name: String,
    /// How long a Lease holds without renewal.
    #[arg(long, env = "TOLLGATE_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// A settings file (YAML) describing the gateway Deployment, Services and
    /// PodDisruptionBudget the operator then creates and keeps in place (see
    /// docs/operations.md#gateway-settings). Without it the gateway is deployed by other means.
    #[arg(long, env = "TOLLGATE_GATEWAY_SETTINGS", value_name = "FILE")]
    pub gateway_settings: Option<std::path::PathBuf>,
    /// This replica's identity in the Lease. Default: the pod name, else the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Most Kubernetes API requests per second this replica sends (client-side limit, a
    /// burst of up to this many at once), so a large cluster or a crash loop cannot flood
    /// the API server.
    #[arg(long, env = "TOLLGATE_API_QPS", default_value_t = ApiLimits::default().qps)]
    pub api_qps: u32,
    /// Most objects of one kind whose status is reconciled at the same time.
    #[arg(long, env = "TOLLGATE_CONTROLLER_CONCURRENCY", default_value_t = ApiLimits::default().concurrency)]
    pub controller_concurrency: u16,
}

/// Log line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable lines (for a terminal).
    Text,
}

/// Which namespaces' Secrets may be copied into the gateway Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretPolicy {
    /// Any namespace (`--secret-namespaces='*'`, and the offline `render`).
    Any,
    /// Only these.
    Only(BTreeSet<String>),
}

impl SecretPolicy {
    /// `render --secret-namespaces`: `*` allows every namespace, otherwise only those named
    /// (name the operator's own namespace too, as the operator always allows it).
    pub fn from_names(values: &[String]) -> Result<Self, SettingsError> {
        let allowed = names(values, "secret-namespaces")?;
        Ok(if allowed.iter().any(|n| n == "*") {
            SecretPolicy::Any
        } else {
            SecretPolicy::Only(allowed.into_iter().collect())
        })
    }

    /// Whether credentials may be copied from `namespace`.
    pub fn permits(&self, namespace: &str) -> bool {
        match self {
            SecretPolicy::Any => true,
            SecretPolicy::Only(allowed) => allowed.contains(namespace),
        }
    }
}

/// Timings of the operator's loops; tests shorten them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long the config task waits after a change for more changes to arrive.
    pub debounce: Duration,
    /// How often the config is compiled and compared even without a change (repairs hand
    /// edits of the ConfigMap or Secret).
    pub resync: Duration,
    /// How long a newly referenced Secret's first list may take before compile treats it as
    /// missing.
    pub secret_sync_grace: Duration,
    /// Gateway pod polling while some pod lacks the newest config.
    pub poll_fast: Duration,
    /// Gateway pod polling once every pod has it.
    pub poll_slow: Duration,
    /// Timeout of one `/config/status` request.
    pub poll_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(100),
            resync: Duration::from_secs(300),
            secret_sync_grace: Duration::from_secs(10),
            poll_fast: Duration::from_secs(2),
            poll_slow: Duration::from_secs(10),
            poll_timeout: Duration::from_secs(2),
        }
    }
}

/// How hard the operator may use the Kubernetes API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Requests per second (and the burst) of the API client; at least 1.
    pub qps: u32,
    /// Reconciles of one kind running at once; at least 1.
    pub concurrency: u16,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            qps: 50,
            concurrency: 4,
        }
    }
}

/// Everything the controllers need to know, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watched namespaces; empty means all.
    pub watch_namespaces: Vec<String>,
    /// The operator's namespace.
    pub operator_namespace: String,
    /// The gateway's ConfigMap and Secret.
    pub gateway: GatewayObjects,
    /// Label selector of gateway pods.
    pub pod_selector: String,
    /// Fallback admin port of gateway pods.
    pub admin_port: u16,
    /// Cross-namespace credential policy.
    pub secrets: SecretPolicy,
    /// Loop timings.
    pub timings: Timings,
    /// The gateway deployment to manage, if any.
    pub deployment: Option<GatewayDeployment>,
    /// API request rate and reconcile concurrency.
    pub limits: ApiLimits,
}

/// A flag value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct SettingsError {
    flag: &'static str,
    message: String,
}

impl Settings {
    /// The namespaces whose client-key Secrets are watched (empty = every namespace): the
    /// Secret allow-list (`--secret-namespaces` plus the operator's own), narrowed to the
    /// watched namespaces when those are set. Client keys are Secrets too, so the operator
    /// reads them only where it may read provider credentials, and the default RBAC (a
    /// Role per allowed namespace, no cluster-wide Secret read) suffices.
    pub fn client_key_namespaces(&self) -> Vec<String> {
        match &self.secrets {
            SecretPolicy::Any => self.watch_namespaces.clone(),
            SecretPolicy::Only(allowed) => {
                let mut namespaces: Vec<String> = allowed
                    .iter()
                    .filter(|n| {
                        self.watch_namespaces.is_empty() || self.watch_namespaces.contains(n)
                    })
                    .cloned()
                    .collect();
                // Never empty (which would mean every namespace): the operator's own
                // namespace is always on the allow-list.
                if namespaces.is_empty() {
                    namespaces.push(self.operator_namespace.clone());
                }
                namespaces
            }
        }
    }
}

/// The field manager of every write, so server-side apply ownership is stable.
pub const FIELD_MANAGER: &str = "tollgate-operator";

/// The field manager of the conditions and `observedGeneration` the status controllers
/// apply (server-side apply on the status subresource), apart from [`FIELD_MANAGER`] so the
/// gateway objects' and the status' ownership never mix.
pub const STATUS_FIELD_MANAGER: &str = "tollgate-operator-status";

/// The field manager of a budget's spend fields (`spent`, `remaining`, period), which the
/// spend task applies on its own schedule: apart from [`STATUS_FIELD_MANAGER`], since an
/// apply by one manager removes the fields that manager stopped sending.
pub const SPEND_FIELD_MANAGER: &str = "tollgate-operator-spend";

impl Settings {
    /// Checks the flags.
    pub fn from_args(args: &RunArgs) -> Result<Self, SettingsError> {
        let watch_namespaces = names(&args.watch_namespaces, "watch-namespaces")?;
        let mut allowed = names(&args.secret_namespaces, "secret-namespaces")?;
        let secrets = if allowed.iter().any(|n| n == "*") {
            SecretPolicy::Any
        } else {
            allowed.push(args.namespace.clone());
            SecretPolicy::Only(allowed.into_iter().collect())
        };
        dns_label(&args.namespace, "namespace")?;
        let gateway_namespace = args
            .gateway_namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| args.namespace.clone());
        dns_label(&gateway_namespace, "gateway-namespace")?;
        if args.config_map_name.is_empty() || args.secret_name.is_empty() {
            return Err(SettingsError {
                flag: "config-map-name",
                message: "the ConfigMap and Secret names must not be empty".into(),
            });
        }
        if args.gateway_pod_selector.trim().is_empty() {
            return Err(SettingsError {
                flag: "gateway-pod-selector",
                message: "must select the gateway pods (an empty selector matches every pod)"
                    .into(),
            });
        }
        if args.api_qps == 0 {
            return Err(SettingsError {
                flag: "api-qps",
                message: "must be at least 1 (0 would stop every API request)".into(),
            });
        }
        if args.controller_concurrency == 0 {
            return Err(SettingsError {
                flag: "controller-concurrency",
                message: "must be at least 1".into(),
            });
        }
        let deployment = match &args.gateway_settings {
            Some(path) => Some(GatewayDeployment::load(path).map_err(|e| SettingsError {
                flag: "gateway-settings",
                message: e.to_string(),
            })?),
            None => None,
        };
        if deployment.is_some() && selector_labels(&args.gateway_pod_selector).is_none() {
            return Err(SettingsError {
                flag: "gateway-pod-selector",
                message: "must be equality-only (a=b,c=d) when --gateway-settings is set: its labels become the pod labels".into(),
            });
        }
        Ok(Self {
            watch_namespaces,
            operator_namespace: args.namespace.clone(),
            gateway: GatewayObjects {
                namespace: gateway_namespace,
                config_map: args.config_map_name.clone(),
                secret: args.secret_name.clone(),
            },
            pod_selector: args.gateway_pod_selector.clone(),
            admin_port: args.gateway_admin_port,
            secrets,
            timings: Timings::default(),
            deployment,
            limits: ApiLimits {
                qps: args.api_qps,
                concurrency: args.controller_concurrency,
            },
        })
    }
}

/// Trimmed, non-empty, de-duplicated namespace names; each a DNS label (or `*`).
fn names(values: &[String], flag: &'static str) -> Result<Vec<String>, SettingsError> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if v != "*" {
            dns_label(v, flag)?;
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    Ok(out)
}

fn dns_label(value: &str, flag: &'static str) -> Result<(), SettingsError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(SettingsError {
            flag,
            message: format!("{value:?} is not a valid namespace name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn settings(args: &[&str]) -> Result<Settings, SettingsError> {
        let cli = Cli::try_parse_from(std::iter::once("op").chain(args.iter().copied())).map_err(
            |e| SettingsError {
                flag: "parse",
                message: e.to_string(),
            },
        )?;
        Settings::from_args(&cli.run)
    }

    #[test]
    fn defaults_watch_everything_and_write_next_to_the_operator() {
        let s = settings(&["--namespace", "ops"]).unwrap();
        assert!(s.watch_namespaces.is_empty());
        assert_eq!(s.gateway.namespace, "ops");
        assert_eq!(s.gateway.config_map, "tollgate-gateway-config");
        assert!(s.secrets.permits("ops"));
        assert!(
            !s.secrets.permits("team-a"),
            "other namespaces need the allow-list"
        );
    }

    #[test]
    fn api_limits_default_to_bounded_values_and_reject_zero() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.limits, ApiLimits::default());
        assert!(s.limits.qps >= 1 && s.limits.concurrency >= 1);
        let s = settings(&["--api-qps", "5", "--controller-concurrency", "2"]).unwrap();
        assert_eq!(
            s.limits,
            ApiLimits {
                qps: 5,
                concurrency: 2
            }
        );
        let e = settings(&["--api-qps", "0"]).unwrap_err();
        assert!(e.to_string().starts_with("--api-qps:"), "{e}");
        let e = settings(&["--controller-concurrency", "0"]).unwrap_err();
        assert!(
            e.to_string().starts_with("--controller-concurrency:"),
            "{e}"
        );
    }

    #[test]
    fn client_keys_are_read_only_where_secrets_may_be() {
        let s = settings(&["--namespace", "ops", "--secret-namespaces", "team-a"]).unwrap();
        assert_eq!(s.client_key_namespaces(), ["ops", "team-a"]);
        let s = settings(&[
            "--namespace",
            "ops",
            "--secret-namespaces",
            "team-a,team-b",
            "--watch-namespaces",
            "team-b,team-c",
        ])
        .unwrap();
        assert_eq!(s.client_key_namespaces(), ["team-b"]);
        let s = settings(&["--namespace", "ops", "--watch-namespaces", "team-c"]).unwrap();
        assert_eq!(s.client_key_namespaces(), ["ops"]);
        let s = settings(&["--secret-namespaces", "*"]).unwrap();
        assert!(s.client_key_namespaces().is_empty(), "every namespace");
    }

    #[test]
    fn allow_list_and_star() {
        let s = settings(&["--secret-namespaces", "team-a, team-b,team-a"]).unwrap();
        assert!(s.secrets.permits("team-b") && s.secrets.permits("tollgate-system"));
        assert!(!s.secrets.permits("team-c"));
        let s = settings(&["--secret-namespaces", "*"]).unwrap();
        assert_eq!(s.secrets, SecretPolicy::Any);
    }

    #[test]
    fn a_gateway_settings_file_needs_an_equality_pod_selector() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.yaml");
        std::fs::write(&file, "image: tollgate-gateway:1\nreplicas: 3\n").unwrap();
        let path = file.to_str().unwrap();
        let s = settings(&["--gateway-settings", path]).unwrap();
        assert_eq!(s.deployment.map(|d| d.replicas), Some(3));
        let e = settings(&[
            "--gateway-settings",
            path,
            "--gateway-pod-selector",
            "app in (gw)",
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--gateway-pod-selector: must be equality-only"),
            "{e}"
        );
        std::fs::write(&file, "image: x\nreplicas: -1\n").unwrap();
        let e = settings(&["--gateway-settings", path]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--gateway-settings: gateway settings: replicas: must not be negative"
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = settings(&["--watch-namespaces", "ok,Bad_NS"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"--watch-namespaces: "Bad_NS" is not a valid namespace name"#
        );
        let e = settings(&["--gateway-pod-selector", " "]).unwrap_err();
        assert!(e.to_string().starts_with("--gateway-pod-selector:"), "{e}");
        let s = settings(&["--leader-elect", "false"]).unwrap();
        assert_eq!(s.gateway.secret, "tollgate-gateway-keys");
    }
}
