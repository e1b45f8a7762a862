//! Finding the cluster, or saying clearly why the suite is skipped.

use std::{sync::OnceLock, time::Duration};

use kube::{Client, Config};

use crate::API_TIMEOUT;

/// How long the reachability probe may take in total.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// When set to `1` or `true`, an unreachable cluster fails the test instead of skipping it.
pub const REQUIRE_CLUSTER_ENV: &str = "TOLLGATE_E2E_REQUIRE_CLUSTER";

/// Why no cluster could be used.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error("{0}")]
    NoConfig(#[source] kube::config::InferConfigError),
    /// The config was found but a client could not be built from it.
    #[error("cannot build a client from the kubeconfig: {0}")]
    Client(#[source] kube::Error),
    /// The API server refused or failed the version request.
    #[error("the API server at {url} did not answer /version: {source}")]
    NoAnswer {
        /// The configured server URL.
        url: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Nothing came back in time.
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
}

/// The line printed when the suite is skipped.
pub fn skip_message(reason: &Unreachable) -> String {
    format!(
        "SKIP e2e: no Kubernetes cluster reachable ({reason}); set KUBECONFIG or run 'kind create cluster' to run them"
    )
}

/// Connects with the usual kubeconfig / in-cluster inference and asks for `/version`, all
/// within `limit`. Each later request of the returned client is bounded by [`API_TIMEOUT`].
pub async fn probe(limit: Duration) -> Result<(Client, String), Unreachable> {
    let attempt = async {
        let mut config = Config::infer().await.map_err(Unreachable::NoConfig)?;
        let url = config.cluster_url.to_string();
        config.connect_timeout = Some(limit);
        config.read_timeout = Some(API_TIMEOUT);
        config.write_timeout = Some(API_TIMEOUT);
        let client = Client::try_from(config).map_err(Unreachable::Client)?;
        let version = client
            .apiserver_version()
            .await
            .map_err(|source| Unreachable::NoAnswer {
                url: url.clone(),
                source,
            })?;
        Ok((
            client,
            format!("{url} (Kubernetes {})", version.git_version),
        ))
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Err(Unreachable::Timeout(limit)))
}

/// The skip message of the first failed probe in this test binary: later tests reuse it
/// instead of waiting out the probe again.
static UNREACHABLE: OnceLock<String> = OnceLock::new();

/// A client for the cluster, or `None` after printing one `SKIP e2e: …` line.
///
/// # Panics
///
/// When no cluster is reachable and [`REQUIRE_CLUSTER_ENV`] is set: a CI job that created a
/// kind cluster must not pass by skipping.
pub async fn cluster() -> Option<Client> {
    let message = match UNREACHABLE.get() {
        Some(message) => message.clone(),
        None => match probe(PROBE_TIMEOUT).await {
            Ok((client, server)) => {
                println!("e2e: using cluster {server}");
                return Some(client);
            }
            Err(reason) => UNREACHABLE.get_or_init(|| skip_message(&reason)).clone(),
        },
    };
    if cluster_required() {
        panic!("{message}\n{REQUIRE_CLUSTER_ENV} is set, so a missing cluster is a failure");
    }
    println!("{message}");
    None
}

fn cluster_required() -> bool {
    std::env::var(REQUIRE_CLUSTER_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_message_names_the_reason_and_the_remedy() {
        let message = skip_message(&Unreachable::Timeout(PROBE_TIMEOUT));
        assert!(
            message.starts_with("SKIP e2e: no Kubernetes cluster reachable (no answer"),
            "{message}"
        );
        assert!(message.contains("5s"), "{message}");
        assert!(message.contains("kind create cluster"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}
