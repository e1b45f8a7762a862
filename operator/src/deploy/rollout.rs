//! How far a gateway rollout has come, read from the Deployment's status.

use k8s_openapi::api::apps::v1::Deployment;

/// The rollout state of the gateway Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// New pods are being started or old ones stopped.
    Progressing {
        /// Pods on the current template.
        updated: i32,
        /// Pods wanted.
        desired: i32,
    },
    /// Every pod runs the current template and is available.
    Complete {
        /// Available pods.
        available: i32,
    },
    /// The Deployment's progress deadline passed.
    Stalled {
        /// The Deployment controller's message.
        message: String,
    },
}

impl Rollout {
    /// The metric label and Event reason stem.
    pub fn state(&self) -> &'static str {
        match self {
            Rollout::Progressing { .. } => "progressing",
            Rollout::Complete { .. } => "complete",
            Rollout::Stalled { .. } => "stalled",
        }
    }

    /// Every state, for resetting gauges.
    pub const STATES: [&'static str; 3] = ["progressing", "complete", "stalled"];
}

/// The rollout state of `d`.
pub fn rollout(d: &Deployment) -> Rollout {
    let desired = d.spec.replicas.unwrap_or(1);
    let Some(status) = &d.status else {
        return Rollout::Progressing {
            updated: 0,
            desired,
        };
    };
    let stalled = status.conditions.iter().flatten().find(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(c) = stalled {
        return Rollout::Stalled {
            message: c.message.clone().unwrap_or_default(),
        };
    }
    let observed = status.observed_generation >= d.metadata.generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    if observed && updated >= desired && available >= desired && total <= updated {
        Rollout::Complete { available }
    } else {
        Rollout::Progressing { updated, desired }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "gw", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn complete_only_when_every_pod_is_current_and_available() {
        let done = deployment(
            3,
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(rollout(&done), Rollout::Complete { available: 2 });
        let old_pod_left = deployment(
            3,
            json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 3}),
        );
        assert_eq!(rollout(&old_pod_left).state(), "progressing");
        let not_seen = deployment(
            4,
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            rollout(&not_seen),
            Rollout::Progressing {
                updated: 2,
                desired: 2
            }
        );
    }

    #[test]
    fn a_passed_deadline_is_stalled_with_the_message() {
        let stuck = deployment(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                   "conditions": [{"type": "Progressing", "status": "False",
                   "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"gw-1\" has timed out progressing."}]}),
        );
        assert_eq!(
            rollout(&stuck),
            Rollout::Stalled {
                message: "ReplicaSet \"gw-1\" has timed out progressing.".into()
            }
        );
    }
}
