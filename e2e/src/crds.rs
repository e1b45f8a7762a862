//! Installing the Tollgate CRDs and waiting until the API server serves them.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionCondition,
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
};
use tollgate_crds::{LLMBudget, LLMProvider, LLMRoute, crdgen};

use crate::{Error, FIELD_MANAGER, poll_until};

/// How long a freshly applied CRD may take to become Established and served.
pub const CRD_TIMEOUT: Duration = Duration::from_secs(60);

const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Server-side applies the three CRDs from [`crdgen::crds`] (forcing ownership, so a stale
/// copy from an older run is replaced), waits until each is `Established` and its kind
/// answers a list, and returns the CRDs as the API server stores them, in `crds()` order.
///
/// The CRDs are cluster-scoped and shared by every test, so they are left installed.
pub async fn install_crds(client: &Client) -> Result<Vec<CustomResourceDefinition>, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for (_file, crd) in crdgen::crds() {
        let name = crd.metadata.name.clone().ok_or(Error::UnnamedCrd)?;
        api.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .map_err(|source| Error::ApplyCrd {
                name: name.clone(),
                source,
            })?;
        names.push(name);
    }
    let mut served = Vec::with_capacity(names.len());
    for name in &names {
        served.push(wait_established(&api, name).await?);
    }
    wait_listable(client, ApiResource::erase::<LLMProvider>(&())).await?;
    wait_listable(client, ApiResource::erase::<LLMRoute>(&())).await?;
    wait_listable(client, ApiResource::erase::<LLMBudget>(&())).await?;
    Ok(served)
}

async fn wait_established(
    api: &Api<CustomResourceDefinition>,
    name: &str,
) -> Result<CustomResourceDefinition, Error> {
    let what = format!("CRD {name} to be Established");
    poll_until(&what, CRD_TIMEOUT, POLL_INTERVAL, || {
        let api = api.clone();
        let name = name.to_owned();
        async move {
            let crd = api.get(&name).await.map_err(|e| e.to_string())?;
            let conditions = crd
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default();
            if is_true(conditions, "Established") {
                Ok(crd)
            } else {
                Err(format!("conditions: {}", describe(conditions)))
            }
        }
    })
    .await
}

/// `Established` can precede the discovery and storage of the new kind by a moment; a list
/// through the kind's own URL is what the suites need.
async fn wait_listable(client: &Client, resource: ApiResource) -> Result<(), Error> {
    let what = format!("{} to be served", resource.plural);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    poll_until(&what, CRD_TIMEOUT, POLL_INTERVAL, || {
        let api = api.clone();
        async move {
            api.list_metadata(&ListParams::default().limit(1))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await
}

fn is_true(conditions: &[CustomResourceDefinitionCondition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn describe(conditions: &[CustomResourceDefinitionCondition]) -> String {
    if conditions.is_empty() {
        return "none yet".to_owned();
    }
    conditions
        .iter()
        .map(|c| {
            let why = c.message.as_deref().unwrap_or_default();
            format!("{}={} {why}", c.type_, c.status)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
