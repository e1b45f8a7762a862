//! The Services: the one apps call (port 80 → the API port) and a ClusterIP one on the
//! admin port for metrics scrapes, so exposing the API never exposes `/config/status`.

use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{Target, settings::GatewayDeployment};

/// Label telling the admin Service apart (the ServiceMonitor selects it).
pub const PORT_LABEL: &str = "llm.tollgate.dev/port";

/// The API Service.
pub fn api_service(s: &GatewayDeployment, target: &Target) -> Service {
    let mut metadata = target.metadata(s, &s.name);
    if !s.service.annotations.is_empty() {
        metadata
            .annotations
            .get_or_insert_with(Default::default)
            .extend(s.service.annotations.clone());
    }
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(PORT_LABEL.into(), "http".into());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(s.service.type_.clone()),
            selector: Some(target.selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: s.service.port,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                app_protocol: Some("http".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The admin Service (metrics, health, config status).
pub fn admin_service(s: &GatewayDeployment, target: &Target) -> Service {
    let mut metadata = target.metadata(s, &s.admin_service_name());
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(PORT_LABEL.into(), "admin".into());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(target.selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some("admin".into()),
                port: s.admin_port,
                target_port: Some(IntOrString::String("admin".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
