//! Shared helpers for Tollgate's end-to-end suites, which run against a real cluster (kind).
//!
//! Every suite starts with [`cluster`]: without a reachable API server it prints one
//! `SKIP e2e: …` line and the test returns. The suites are `#[ignore]`d (run by `just e2e`),
//! so a plain `cargo test` reports them as ignored, never as passed. Set `TOLLGATE_E2E_REQUIRE_CLUSTER=1` (CI with kind) to make that a failure.
//!
//! The rest is plumbing the suites share: installing the CRDs and waiting until they are
//! served ([`install_crds`]), a throw-away namespace per test ([`with_namespace`]), and
//! server-side apply of arbitrary manifests ([`apply_manifest`], [`read_manifests`]).

mod cluster;
mod crds;
mod manifests;
mod namespace;
mod poll;

use std::{path::PathBuf, time::Duration};

pub use cluster::{PROBE_TIMEOUT, REQUIRE_CLUSTER_ENV, Unreachable, cluster, probe, skip_message};
pub use crds::{CRD_TIMEOUT, install_crds};
pub use manifests::{Manifest, apply_manifest, check_typed, read_manifests, samples_dir};
pub use namespace::{create_namespace, delete_namespace, with_namespace};
pub use poll::poll_until;

/// The field manager of everything the suites write.
pub const FIELD_MANAGER: &str = "tollgate-e2e";

/// Upper bound for a single API request once the cluster has answered the probe.
pub const API_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed e2e step; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server-side apply of a CRD was refused.
    #[error("applying CRD {name}: {source}")]
    ApplyCrd {
        /// The CRD's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A generated CRD has no `metadata.name`.
    #[error("a generated CRD has no metadata.name")]
    UnnamedCrd,
    /// A bounded wait ran out.
    #[error("gave up waiting for {what} after {waited:?}: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        waited: Duration,
        /// The last observed state.
        last: String,
    },
    /// Creating the test namespace failed.
    #[error("creating the test namespace: {0}")]
    CreateNamespace(#[source] kube::Error),
    /// The API server created a namespace without telling its name.
    #[error("the API server returned the new namespace without a name")]
    UnnamedNamespace,
    /// Deleting the test namespace failed.
    #[error("deleting namespace {name}: {source}")]
    DeleteNamespace {
        /// The namespace.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The test body was cancelled rather than finishing or panicking.
    #[error("the test body was cancelled")]
    BodyCancelled,
    /// A manifest directory could not be read.
    #[error("reading {path}: {source}")]
    ReadManifests {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest directory has no `*.yaml` / `*.yml` documents.
    #[error("{0} holds no YAML manifests")]
    NoManifests(PathBuf),
    /// A manifest file is not valid YAML.
    #[error("parsing {path}: {source}")]
    ParseManifest {
        /// The file.
        path: PathBuf,
        /// The YAML error (boxed: it is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A manifest document is YAML but not a Kubernetes object.
    #[error("{what}: not a Kubernetes object: {why}")]
    NotAnObject {
        /// Which manifest (`file#document`).
        what: String,
        /// What is missing or wrong.
        why: String,
    },
    /// A manifest's kind is cluster-scoped; the suites only write inside their namespace.
    #[error("{what}: kind {kind} is cluster-scoped; e2e manifests must be namespaced")]
    ClusterScoped {
        /// Which manifest.
        what: String,
        /// Its kind.
        kind: String,
    },
    /// API discovery could not resolve a manifest's kind.
    #[error("{what}: resolving its apiVersion and kind: {source}")]
    Discover {
        /// Which manifest (`Kind/name (apiVersion)`).
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Server-side apply of a manifest was refused.
    #[error("{what}: {source}")]
    Apply {
        /// Which manifest (`Kind/name`).
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// An applied Tollgate object does not read back as its Rust type.
    #[error("{what}: stored object does not deserialize as the Rust type: {source}")]
    Typed {
        /// Which object (`Kind/name`).
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The API server's `Status` when this error is an API refusal (e.g. HTTP 422).
    pub fn api_status(&self) -> Option<&kube::core::Status> {
        let source = match self {
            Error::ApplyCrd { source, .. }
            | Error::DeleteNamespace { source, .. }
            | Error::Discover { source, .. }
            | Error::Apply { source, .. }
            | Error::CreateNamespace(source) => source,
            _ => return None,
        };
        match source {
            kube::Error::Api(status) => Some(status),
            _ => None,
        }
    }
}
