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
