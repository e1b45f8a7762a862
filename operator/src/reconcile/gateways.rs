//! What the gateway pods serve: each ready pod's `/config/status`, polled over plain
//! HTTP on its admin port. `Programmed` is decided from this view.

use std::{collections::BTreeSet, net::SocketAddr, sync::Arc, time::Duration};

use super::admin_http::exchange;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::Deserialize;

/// One object generation a pod serves: `(kind, namespace/name, generation)`.
pub type Served = (String, String, i64);

/// What one ready gateway pod reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodReport {
    /// The pod's name.
    pub pod: String,
    /// Its answer, or why there is none.
    pub state: PodState,
}

/// A pod's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    /// It answered.
    Reported {
        /// Hash of the config it serves.
        hash: Option<String>,
        /// The object generations in that config.
        sources: BTreeSet<Served>,
        /// Why its last reload was rejected, if it was.
        last_error: Option<String>,
        /// What its newest config waits for (a key its Secret volume lacks yet).
        waiting_for: Option<String>,
    },
    /// It could not be asked.
    Unreachable(String),
}

/// Every ready gateway pod's report, sorted by pod name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayView {
    /// The reports.
    pub pods: Vec<PodReport>,
}

/// Whether one object generation is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Programmed {
    /// Every ready pod serves it.
    Yes {
        /// How many pods.
        pods: usize,
    },
    /// No ready gateway pod exists.
    NoPods,
    /// A pod rejected a config and does not serve this generation.
    Rejected {
        /// The pod.
        pod: String,
        /// The gateway's message.
        message: String,
    },
    /// Some pods do not serve it yet.
    Pending {
        /// Pods that do.
        have: usize,
        /// Ready pods.
        total: usize,
        /// A pod that does not, and why if known.
        example: String,
    },
}

impl GatewayView {
    /// Whether `kind` `id` at `generation` is served by every ready pod.
    pub fn programmed(&self, kind: &str, id: &str, generation: i64) -> Programmed {
        if self.pods.is_empty() {
            return Programmed::NoPods;
        }
        let wanted = (kind.to_owned(), id.to_owned(), generation);
        let mut have = 0;
        let mut example = String::new();
        let mut rejected = None;
        for report in &self.pods {
            match &report.state {
                PodState::Reported {
                    sources,
                    last_error,
                    waiting_for,
                    ..
                } => {
                    if sources.contains(&wanted) {
                        have += 1;
                    } else if let Some(message) = last_error {
                        rejected.get_or_insert((report.pod.clone(), message.clone()));
                    } else if example.is_empty() {
                        example = match waiting_for {
                            Some(what) => format!(
                                "{} waits for its Secret volume to catch up: {what}",
                                report.pod
                            ),
                            None => format!("{} has not loaded it yet", report.pod),
                        };
                    }
                }
                PodState::Unreachable(why) => {
                    if example.is_empty() {
                        example = format!("{} cannot be reached: {why}", report.pod);
                    }
                }
            }
        }
        if let Some((pod, message)) = rejected {
            return Programmed::Rejected { pod, message };
        }
        if have == self.pods.len() {
            Programmed::Yes { pods: have }
        } else {
            Programmed::Pending {
                have,
                total: self.pods.len(),
                example,
            }
        }
    }

    /// Whether every ready pod serves the config with `hash`.
    pub fn all_serve(&self, hash: &str) -> bool {
        self.pods
            .iter()
            .all(|p| matches!(&p.state, PodState::Reported { hash: Some(h), .. } if h == hash))
    }

    /// Pod counts by state, for the metric: programmed (serve `hash`), pending, rejected,
    /// unreachable.
    pub fn counts(&self, hash: Option<&str>) -> [(&'static str, usize); 4] {
        let mut c = [0; 4];
        for p in &self.pods {
            let i = match &p.state {
                PodState::Reported { hash: h, .. } if h.is_some() && h.as_deref() == hash => 0,
                PodState::Reported {
                    last_error: Some(_),
                    ..
                } => 2,
                PodState::Reported { .. } => 1,
                PodState::Unreachable(_) => 3,
            };
            c[i] += 1;
        }
        [
            ("programmed", c[0]),
            ("pending", c[1]),
            ("rejected", c[2]),
            ("unreachable", c[3]),
        ]
    }
}

/// Consecutive failed asks after which a silent pod is logged as a warning.
pub const TOLERATED_MISSES: u32 = 3;

/// Keeps a pod's last answer while it cannot be asked and Kubernetes still lists it as
/// ready: the operator's failure to reach a pod is data-plane health, reported by the
/// `tollgate_operator_gateway_pods{state="unreachable"}` metric (from the raw view) and a
/// warning log, not fanned out as a status patch to every object. A pod that becomes
/// unready or is deleted leaves the view, which the objects' status does show. `misses`
/// counts consecutive failures per pod; pods that left the view are forgotten.
pub fn smooth(
    previous: Option<&GatewayView>,
    mut next: GatewayView,
    misses: &mut std::collections::HashMap<String, u32>,
) -> GatewayView {
    misses.retain(|pod, _| next.pods.iter().any(|p| &p.pod == pod));
    for report in &mut next.pods {
        let PodState::Unreachable(why) = &report.state else {
            misses.remove(&report.pod);
            continue;
        };
        let n = misses.entry(report.pod.clone()).or_insert(0);
        *n += 1;
        if *n == TOLERATED_MISSES + 1 {
            tracing::warn!(pod = %report.pod, error = %why, "gateway pod does not answer; objects keep the status of its last answer");
        }
        let last = previous
            .and_then(|v| v.pods.iter().find(|p| p.pod == report.pod))
            .filter(|p| matches!(p.state, PodState::Reported { .. }));
        if let Some(last) = last {
            report.state = last.state.clone();
        }
    }
    next
}

/// Where to ask a pod, if it is ready: its IP and admin port (the container port named
/// `admin`, else `default_port`).
pub fn admin_address(pod: &Pod, default_port: u16) -> Option<SocketAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    let ip = status.pod_ip.as_ref()?.parse().ok()?;
    let port = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("admin"))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(default_port);
    Some(SocketAddr::new(ip, port))
}

/// The gateway's `/config/status` answer (the fields the operator reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    hash: Option<String>,
    #[serde(default)]
    sources: Vec<SourceAnswer>,
    last_error: Option<String>,
    waiting_for: Option<String>,
}

#[derive(Deserialize)]
struct SourceAnswer {
    kind: String,
    id: String,
    generation: i64,
}

/// Asks every ready pod, concurrently, each within `timeout`.
pub async fn poll(pods: &[Arc<Pod>], default_port: u16, timeout: Duration) -> GatewayView {
    let asks = pods.iter().filter_map(|pod| {
        let addr = admin_address(pod, default_port)?;
        let name = pod.name_any();
        Some(async move {
            let state = ask(addr, timeout)
                .await
                .unwrap_or_else(PodState::Unreachable);
            PodReport { pod: name, state }
        })
    });
    let mut pods = futures_util::future::join_all(asks).await;
    pods.sort_by(|a, b| a.pod.cmp(&b.pod));
    GatewayView { pods }
}

/// `GET /config/status` on one pod, within `timeout`.
async fn ask(addr: SocketAddr, timeout: Duration) -> Result<PodState, String> {
    let body = exchange(addr, "GET", "/config/status", None, timeout).await?;
    let answer: StatusAnswer = serde_json::from_slice(&body)
        .map_err(|e| format!("{addr} sent an unreadable /config/status: {e}"))?;
    Ok(PodState::Reported {
        hash: answer.hash,
        sources: answer
            .sources
            .into_iter()
            .map(|s| (s.kind, s.id, s.generation))
            .collect(),
        last_error: answer.last_error,
        waiting_for: answer.waiting_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(pod: &str, sources: &[(&str, &str, i64)], err: Option<&str>) -> PodReport {
        PodReport {
            pod: pod.into(),
            state: PodState::Reported {
                hash: Some("h".into()),
                sources: sources
                    .iter()
                    .map(|(k, i, g)| ((*k).to_owned(), (*i).to_owned(), *g))
                    .collect(),
                last_error: err.map(str::to_owned),
                waiting_for: None,
            },
        }
    }

    #[test]
    fn programmed_needs_every_ready_pod_to_serve_the_generation() {
        let route = ("LLMRoute", "default/chat", 2);
        let old = ("LLMRoute", "default/chat", 1);
        let view = GatewayView { pods: vec![] };
        assert_eq!(
            view.programmed("LLMRoute", "default/chat", 2),
            Programmed::NoPods
        );

        let view = GatewayView {
            pods: vec![
                reported("gw-a", &[route], None),
                reported("gw-b", &[old], None),
            ],
        };
        assert_eq!(
            view.programmed("LLMRoute", "default/chat", 2),
            Programmed::Pending {
                have: 1,
                total: 2,
                example: "gw-b has not loaded it yet".into()
            }
        );
        assert_eq!(
            view.programmed("LLMRoute", "default/chat", 1),
            Programmed::Pending {
                have: 1,
                total: 2,
                example: "gw-a has not loaded it yet".into()
            }
        );

        let view = GatewayView {
            pods: vec![
                reported("gw-a", &[route], None),
                reported("gw-b", &[route], None),
            ],
        };
        assert_eq!(
            view.programmed("LLMRoute", "default/chat", 2),
            Programmed::Yes { pods: 2 }
        );
        assert_eq!(
            view.programmed("LLMProvider", "default/chat", 2),
            Programmed::Pending {
                have: 0,
                total: 2,
                example: "gw-a has not loaded it yet".into()
            },
            "kind is part of the identity"
        );
    }

    #[test]
    fn a_silent_pod_keeps_its_last_answer() {
        let route = ("LLMRoute", "default/chat", 1);
        let good = GatewayView {
            pods: vec![reported("gw-a", &[route], None)],
        };
        let miss = || GatewayView {
            pods: vec![PodReport {
                pod: "gw-a".into(),
                state: PodState::Unreachable("timeout".into()),
            }],
        };
        let mut misses = std::collections::HashMap::new();
        let mut view = smooth(None, good.clone(), &mut misses);
        for _ in 0..3 * TOLERATED_MISSES {
            view = smooth(Some(&view), miss(), &mut misses);
            assert_eq!(
                view, good,
                "a silent pod that Kubernetes lists as ready keeps its last answer"
            );
        }
        assert_eq!(misses["gw-a"], 3 * TOLERATED_MISSES);
        view = smooth(Some(&view), good.clone(), &mut misses);
        assert_eq!(view, good);
        assert!(misses.is_empty(), "an answer resets the count");
        assert_eq!(
            smooth(None, miss(), &mut misses),
            miss(),
            "nothing to keep for a pod never heard from"
        );
    }

    #[test]
    fn a_rejecting_pod_is_reported_with_its_message() {
        let view = GatewayView {
            pods: vec![
                reported("gw-a", &[], Some("route x: unknown provider")),
                PodReport {
                    pod: "gw-b".into(),
                    state: PodState::Unreachable("refused".into()),
                },
            ],
        };
        assert_eq!(
            view.programmed("LLMRoute", "default/chat", 1),
            Programmed::Rejected {
                pod: "gw-a".into(),
                message: "route x: unknown provider".into()
            }
        );
        assert_eq!(
            view.counts(Some("h")),
            [
                ("programmed", 1),
                ("pending", 0),
                ("rejected", 0),
                ("unreachable", 1)
            ]
        );
    }
}
