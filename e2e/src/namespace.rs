//! A fresh namespace per test, deleted afterwards even when the test fails.

use std::{collections::BTreeMap, future::Future};

use k8s_openapi::{api::core::v1::Namespace, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};

use crate::{Error, FIELD_MANAGER};

/// Prefix of every namespace the suites create; the API server appends a random suffix.
const NAMESPACE_PREFIX: &str = "tollgate-e2e-";

/// Creates a namespace named `tollgate-e2e-<random>` and returns its name.
pub async fn create_namespace(client: &Client) -> Result<String, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(NAMESPACE_PREFIX.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                FIELD_MANAGER.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let created = api
        .create(&params, &namespace)
        .await
        .map_err(Error::CreateNamespace)?;
    created.metadata.name.ok_or(Error::UnnamedNamespace)
}

/// Starts deleting the namespace (and so everything in it); a missing namespace is fine.
pub async fn delete_namespace(client: &Client, name: &str) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteNamespace {
            name: name.to_owned(),
            source,
        }),
    }
}

/// Runs `body` with a client and a fresh namespace, then deletes the namespace. A panic in
/// `body` (a failed assertion) still deletes the namespace, then carries on unwinding.
pub async fn with_namespace<F, Fut>(client: &Client, body: F) -> Result<(), Error>
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let namespace = create_namespace(client).await?;
    println!("e2e: working in namespace {namespace}");
    let outcome = tokio::spawn(body(client.clone(), namespace.clone())).await;
    let deleted = delete_namespace(client, &namespace).await;
    match outcome {
        Ok(()) => deleted,
        Err(join) if join.is_panic() => {
            if let Err(e) = deleted {
                println!("e2e: could not delete namespace {namespace} after the failure: {e}");
            }
            std::panic::resume_unwind(join.into_panic())
        }
        Err(_) => Err(Error::BodyCancelled),
    }
}
