//! Leader election with a `coordination.k8s.io/v1` Lease (the `kube-lease-manager` crate),
//! so two replicas never write at once.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};

/// A held or awaited lease.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// This replica's identity.
    pub identity: String,
    /// How long the lease holds without renewal.
    pub duration: Duration,
}

impl Leadership {
    /// Starts competing for the lease.
    pub async fn start(client: Client, s: &LeaseSettings) -> Result<Self, LeaseManagerError> {
        let duration = s.duration.as_secs().max(2);
        // Renew a third of the duration before expiry, as client-go's defaults do.
        let grace = (duration / 3).max(1);
        let manager = LeaseManagerBuilder::new(client, &s.name)
            .with_namespace(&s.namespace)
            .with_identity(&s.identity)
            .with_duration(duration)
            .with_grace(grace)
            .with_field_manager("tollgate-operator-lease")
            .with_create_mode(LeaseCreateMode::AutoCreate)
            .build()
            .await?;
        let (leading, task) = manager.watch().await;
        Ok(Self { leading, task })
    }

    /// Waits until this replica holds the lease. Errors if the election stopped.
    pub async fn acquired(&mut self) -> Result<(), String> {
        self.leading
            .wait_for(|leading| *leading)
            .await
            .map(|_| ())
            .map_err(|_| "the leader election stopped".to_owned())
    }

    /// Resolves when this replica no longer holds the lease.
    pub async fn lost(&mut self) {
        let _ = self.leading.wait_for(|leading| !*leading).await;
    }

    /// Gives the lease up (so a standby takes over at once rather than after expiry).
    pub async fn release(self) {
        drop(self.leading);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the lease failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "lease task failed"),
            Err(_) => tracing::warn!("releasing the lease timed out; it expires on its own"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::api::coordination::v1::Lease;
    use serde_json::json;

    use super::*;
    use crate::testing::FakeApi;

    fn settings(identity: &str) -> LeaseSettings {
        LeaseSettings {
            name: "tollgate-operator".into(),
            namespace: "tollgate-system".into(),
            identity: identity.into(),
            duration: Duration::from_secs(3),
        }
    }

    fn holder(fake: &FakeApi) -> Option<String> {
        fake.get::<Lease>(Some("tollgate-system"), "tollgate-operator")?
            .spec?
            .holder_identity
    }

    #[tokio::test]
    async fn waits_while_another_replica_holds_the_lease_then_takes_it() {
        let fake = FakeApi::new();
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
            .to_string();
        fake.seed_json(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "tollgate-operator", "namespace": "tollgate-system"},
            "spec": {"holderIdentity": "other", "leaseDurationSeconds": 3, "acquireTime": now, "renewTime": now},
        }))
        .unwrap();

        let mut me = Leadership::start(fake.client(), &settings("me"))
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(1000), me.acquired())
                .await
                .is_err(),
            "never leads while another replica's lease is fresh"
        );
        assert_eq!(holder(&fake).as_deref(), Some("other"));

        // The other replica stops renewing: its lease expires and this one takes over.
        tokio::time::timeout(Duration::from_secs(15), me.acquired())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holder(&fake).as_deref(), Some("me"));

        // A second replica now waits for us.
        let mut second = Leadership::start(fake.client(), &settings("second"))
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), second.acquired())
                .await
                .is_err(),
            "our renewals keep the second replica out"
        );
        me.release().await;
        tokio::time::timeout(Duration::from_secs(15), second.acquired())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holder(&fake).as_deref(), Some("second"));
        second.release().await;
    }
}
