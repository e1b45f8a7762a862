//! One operator replica: wait for the lease (a standby writes nothing), then run the
//! reconcile loops until shutdown, or until the lease is lost (then stop with an error, so
//! the pod restarts as a standby and never writes alongside the new leader).

use std::{future::Future, sync::Arc, time::Duration};

use kube::{Client, runtime::events::Reporter};

use crate::{
    health::{Health, Phase},
    leader::{Leadership, LeaseSettings},
    metrics::Metrics,
    reconcile::{Operator, StartError},
    settings::Settings,
};

/// What one replica runs with.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The controllers' settings.
    pub settings: Settings,
    /// Leader election; `None` runs without (a single replica, or tests).
    pub lease: Option<LeaseSettings>,
    /// This replica's name in Events and the Lease.
    pub identity: String,
}

/// Why a replica stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The loops could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Leader election could not start or stopped.
    #[error("leader election failed: {0}")]
    Election(String),
    /// Another replica took the lease.
    #[error("lost the lease; stopping so that only the new leader writes")]
    LostLease,
}

/// Runs one replica until `shutdown` resolves.
pub async fn run(
    client: Client,
    options: RunOptions,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    tracing::info!(
        identity = %options.identity,
        gateway_namespace = %options.settings.gateway.namespace,
        watch_namespaces = ?options.settings.watch_namespaces,
        "starting"
    );
    let mut leadership = None;
    if let Some(lease) = &options.lease {
        health.set(Phase::Standby);
        let mut l = Leadership::start(client.clone(), lease)
            .await
            .map_err(|e| RunError::Election(e.to_string()))?;
        tracing::info!(lease = %lease.name, "standing by for the lease");
        tokio::select! {
            acquired = l.acquired() => acquired.map_err(RunError::Election)?,
            () = &mut shutdown => {
                l.release().await;
                return Ok(());
            }
        }
        tracing::info!(lease = %lease.name, "leading");
        leadership = Some(l);
    }
    metrics.set_leader(true);
    health.set(Phase::Syncing);

    let reporter = Reporter {
        controller: "tollgate-operator".to_owned(),
        instance: Some(options.identity.clone()),
    };
    let operator = Operator::new(client, options.settings, metrics.clone(), reporter)?;
    let context = operator.context.clone();
    let readiness = async {
        while !context.configured() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        health.set(Phase::Ready);
        std::future::pending::<()>().await;
    };
    let lost = async {
        match &mut leadership {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let mut lease_lost = false;
    tokio::select! {
        () = operator.run(&mut shutdown) => {}
        () = lost => lease_lost = true,
        () = readiness => {}
    }
    metrics.set_leader(false);
    health.set(Phase::Starting);
    if lease_lost {
        return Err(RunError::LostLease);
    }
    if let Some(l) = leadership {
        l.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;
    use crate::{
        render::GatewayObjects,
        settings::{ApiLimits, SecretPolicy, Timings},
        testing::FakeApi,
    };

    fn options(identity: &str) -> RunOptions {
        RunOptions {
            settings: Settings {
                watch_namespaces: Vec::new(),
                operator_namespace: "tollgate-system".into(),
                gateway: GatewayObjects::default(),
                pod_selector: "app=gateway".into(),
                admin_port: 9,
                secrets: SecretPolicy::Any,
                timings: Timings {
                    debounce: Duration::from_millis(10),
                    ..Timings::default()
                },
                deployment: None,
                limits: ApiLimits::default(),
            },
            lease: Some(LeaseSettings {
                name: "tollgate-operator".into(),
                namespace: "tollgate-system".into(),
                identity: identity.into(),
                duration: Duration::from_secs(3),
            }),
            identity: identity.into(),
        }
    }

    async fn wait_phase(health: &Health, phase: Phase) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while health.phase() != phase {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never reached {phase:?}, still {:?}",
                health.phase()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_standby_writes_nothing_until_the_leader_steps_down() {
        let fake = FakeApi::new();
        let (a_health, b_health) = (Arc::new(Health::default()), Arc::new(Health::default()));
        let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
        let a = tokio::spawn(run(
            fake.client(),
            options("a"),
            a_health.clone(),
            Arc::new(Metrics::new()),
            async move {
                let _ = a_stopped.await;
            },
        ));
        wait_phase(&a_health, Phase::Ready).await;
        assert!(
            fake.get::<ConfigMap>(Some("tollgate-system"), "tollgate-gateway-config")
                .is_some()
        );

        let b_metrics = Arc::new(Metrics::new());
        let b = tokio::spawn(run(
            fake.client(),
            options("b"),
            b_health.clone(),
            b_metrics.clone(),
            std::future::pending(),
        ));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            b_health.phase(),
            Phase::Standby,
            "b must wait while a leads"
        );
        assert!(b_metrics.encode().contains("tollgate_operator_leader 0"));

        // a shuts down gracefully and hands the lease over.
        fake.remove::<ConfigMap>(Some("tollgate-system"), "tollgate-gateway-config")
            .unwrap();
        let _ = stop_a.send(());
        a.await.unwrap().unwrap();
        wait_phase(&b_health, Phase::Ready).await;
        assert!(
            fake.get::<ConfigMap>(Some("tollgate-system"), "tollgate-gateway-config")
                .is_some(),
            "the new leader writes the config"
        );
        b.abort();
    }
}
