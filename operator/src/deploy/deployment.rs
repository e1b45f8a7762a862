//! The gateway Deployment: the ConfigMap and Secret mounted where `serve --config-dir`
//! reads them (hot-reloaded, so a config change never touches the pod template), probes on
//! the admin port, a pre-stop sleep so endpoints drop a pod before its listener closes, and
//! the restricted Pod Security profile.

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{
            Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, HTTPGetAction,
            Lifecycle, LifecycleHandler, LocalObjectReference, PodSecurityContext, PodSpec,
            PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext,
            SleepAction, TopologySpreadConstraint, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::{Target, settings::GatewayDeployment};

/// Where the ConfigMap and Secret are mounted; `serve --config-dir` reads both.
pub const CONFIG_ROOT: &str = "/etc/tollgate";

/// The non-root user the images run as (distroless `nonroot`).
pub const RUN_AS_USER: i64 = 65532;

/// The gateway Deployment for `s`.
pub fn deployment(s: &GatewayDeployment, target: &Target) -> Deployment {
    let mut pod_labels = target.labels(s);
    pod_labels.extend(target.selector.clone());
    Deployment {
        metadata: target.metadata(s, &s.name),
        spec: DeploymentSpec {
            replicas: s.deployment_replicas(),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(target.selector.clone()),
                ..LabelSelector::default()
            },
            // Surge first: serving capacity never drops during a rollout.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: (!s.pod_annotations.is_empty()).then(|| s.pod_annotations.clone()),
                    ..Default::default()
                }),
                spec: Some(pod_spec(s, target)),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

fn pod_spec(s: &GatewayDeployment, target: &Target) -> PodSpec {
    PodSpec {
        containers: vec![container(s)],
        // The gateway never calls the Kubernetes API.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(s.termination_grace_period_seconds),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            fs_group: Some(RUN_AS_USER),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: target.objects.config_map.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "secrets".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(target.objects.secret.clone()),
                    default_mode: Some(0o440),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        node_selector: (!s.node_selector.is_empty()).then(|| s.node_selector.clone()),
        tolerations: (!s.tolerations.is_empty()).then(|| s.tolerations.clone()),
        affinity: s.affinity.clone(),
        priority_class_name: s.priority_class_name.clone(),
        image_pull_secrets: (!s.image_pull_secrets.is_empty()).then(|| {
            s.image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        topology_spread_constraints: s.topology_spread.then(|| {
            ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
                .into_iter()
                .map(|key| TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: key.into(),
                    when_unsatisfiable: "ScheduleAnyway".into(),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(target.selector.clone()),
                        ..LabelSelector::default()
                    }),
                    ..TopologySpreadConstraint::default()
                })
                .collect()
        }),
        ..PodSpec::default()
    }
}

fn container(s: &GatewayDeployment) -> Container {
    let probe = |path: &str, failures| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    // Whatever the grace period leaves after the pre-stop delay, minus a margin.
    let drain = (s.termination_grace_period_seconds - s.pre_stop_delay_seconds - 5).max(1);
    Container {
        name: "gateway".into(),
        image: Some(s.image.clone()),
        image_pull_policy: s.image_pull_policy.clone(),
        args: Some(vec![
            "serve".into(),
            "--config-dir".into(),
            CONFIG_ROOT.into(),
            "--listen".into(),
            format!("0.0.0.0:{}", s.api_port),
            "--admin-listen".into(),
            format!("0.0.0.0:{}", s.admin_port),
            "--drain-timeout-seconds".into(),
            drain.to_string(),
        ]),
        env: Some(vec![EnvVar {
            name: "TOLLGATE_LOG_FORMAT".into(),
            value: Some(s.log_format.clone()),
            ..EnvVar::default()
        }]),
        ports: Some(vec![port("http", s.api_port), port("admin", s.admin_port)]),
        readiness_probe: Some(probe("/readyz", 2)),
        liveness_probe: Some(probe("/healthz", 6)),
        lifecycle: (s.pre_stop_delay_seconds > 0).then(|| Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: s.pre_stop_delay_seconds,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        resources: s.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: format!("{CONFIG_ROOT}/config"),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "secrets".into(),
                mount_path: format!("{CONFIG_ROOT}/secrets"),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

/// The labels of the pod template (what a rollout compares), for tests.
#[cfg(test)]
pub fn template_of(d: &Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}
