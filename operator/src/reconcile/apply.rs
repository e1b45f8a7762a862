//! Writing the gateway's ConfigMap and Secret with server-side apply, only when what is in
//! the cluster differs, and in an order that never leaves the gateway with a config naming
//! a key its Secret lacks: new keys first, then the config, then removal of old keys.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};

use super::own_objects::Desired;
use crate::{
    metrics::Metrics,
    render::{self, ConfigText, GatewayObjects},
    settings::FIELD_MANAGER,
};

/// Writes what differs. Returns how many objects were written.
pub async fn write(
    client: &Client,
    names: &GatewayObjects,
    config: &ConfigText,
    secret_data: &BTreeMap<String, Vec<u8>>,
    metrics: &Metrics,
    own: &Desired,
) -> Result<usize, kube::Error> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &names.namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &names.namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut writes = 0;

    let desired_secret = render::secret(secret_data, names);
    let desired_map = render::config_map(config, names);
    // Recorded before writing, so the watch's echo of our own write wakes nothing.
    own.secret.store(Some(Arc::new(desired_secret.clone())));
    own.config_map.store(Some(Arc::new(desired_map.clone())));
    let live_secret = secrets.get_opt(&names.secret).await?;
    let live_data = live_secret.as_ref().map(secret_data_of).unwrap_or_default();
    let mut secret_current = live_secret
        .as_ref()
        .is_some_and(|s| same_secret(s, &desired_secret));

    // 1. Keys the new config needs, added while the old keys stay.
    let adds = secret_data.iter().any(|(k, v)| live_data.get(k) != Some(v));
    if adds || live_secret.is_none() {
        let mut union = live_data;
        union.extend(secret_data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let secret = render::secret(&union, names);
        secrets
            .patch(&names.secret, &params, &Patch::Apply(&secret))
            .await?;
        metrics.wrote("secret");
        writes += 1;
        secret_current = union == *secret_data;
    }

    // 2. The config.
    let live_map = config_maps.get_opt(&names.config_map).await?;
    if !live_map.is_some_and(|m| same_config_map(&m, &desired_map)) {
        config_maps
            .patch(&names.config_map, &params, &Patch::Apply(&desired_map))
            .await?;
        metrics.wrote("configmap");
        writes += 1;
    }

    // 3. Keys no config names any more (or labels someone changed).
    if !secret_current {
        secrets
            .patch(&names.secret, &params, &Patch::Apply(&desired_secret))
            .await?;
        metrics.wrote("secret");
        writes += 1;
    }
    Ok(writes)
}

fn secret_data_of(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// Our labels and annotations are present and the data is equal.
fn same_meta(
    live: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    desired: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    let contains = |live: &Option<BTreeMap<String, String>>,
                    want: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| live.as_ref().and_then(|l| l.get(k)) == Some(v))
    };
    contains(&live.labels, &desired.labels) && contains(&live.annotations, &desired.annotations)
}

pub(crate) fn same_config_map(live: &ConfigMap, desired: &ConfigMap) -> bool {
    fn same<V: PartialEq>(
        a: &Option<BTreeMap<String, V>>,
        b: &Option<BTreeMap<String, V>>,
    ) -> bool {
        a.as_ref().filter(|m| !m.is_empty()) == b.as_ref().filter(|m| !m.is_empty())
    }
    same(&live.data, &desired.data)
        && same(&live.binary_data, &desired.binary_data)
        && same_meta(&live.metadata, &desired.metadata)
}

pub(crate) fn same_secret(live: &Secret, desired: &Secret) -> bool {
    let empty = BTreeMap::<String, ByteString>::new();
    live.data.as_ref().unwrap_or(&empty) == desired.data.as_ref().unwrap_or(&empty)
        && live.type_ == desired.type_
        && same_meta(&live.metadata, &desired.metadata)
}
