//! The optional Prometheus Operator ServiceMonitor, scraping the admin Service. Its CRD may
//! be missing from the cluster, so it is a dynamic object.

use kube::{
    api::{ApiResource, DynamicObject, GroupVersionKind},
    core::TypeMeta,
};
use serde_json::json;

use super::{Target, service::PORT_LABEL, settings::GatewayDeployment};

/// `monitoring.coreos.com/v1` `ServiceMonitor`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// The ServiceMonitor, or `None` when not configured.
pub fn service_monitor(s: &GatewayDeployment, target: &Target) -> Option<DynamicObject> {
    let m = s.service_monitor.as_ref()?;
    let mut metadata = target.metadata(s, &s.name);
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .extend(m.labels.clone());
    let mut selector = target.selector.clone();
    selector.insert(PORT_LABEL.into(), "admin".into());
    Some(DynamicObject {
        types: Some(TypeMeta {
            api_version: "monitoring.coreos.com/v1".into(),
            kind: "ServiceMonitor".into(),
        }),
        metadata,
        data: json!({
            "spec": {
                "selector": {"matchLabels": selector},
                "namespaceSelector": {"matchNames": [target.objects.namespace]},
                "endpoints": [{"port": "admin", "path": "/metrics", "interval": m.interval}],
            }
        }),
    })
}
