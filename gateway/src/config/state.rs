//! The current snapshot (swapped atomically; requests `load_full()` it once and keep that
//! `Arc`, so in-flight requests finish on the config they started with) and the reload
//! status that `/config/status` reports.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use jiff::Timestamp;
use serde::Serialize;
use tollgate_crds::config::Source;

use super::ConfigSource;
use crate::snapshot::{Snapshot, SnapshotError};

/// What `/config/status` shows: which config this pod serves and whether the last reload
/// worked. The operator reads it to set `Programmed`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    /// Hash of the config being served.
    pub hash: Option<String>,
    /// When it was loaded.
    pub loaded_at: Option<Timestamp>,
    /// The objects and generations it contains.
    pub sources: Vec<Source>,
    /// When the last reload was tried.
    pub last_attempt: Option<Timestamp>,
    /// Why the last reload was rejected (the previous config keeps serving).
    pub last_error: Option<String>,
    /// What the newest config waits for: a key it names is not in the mounted Secret yet.
    /// kubelet updates the ConfigMap and Secret volumes separately, so this is normally
    /// brief; the previous config keeps serving meanwhile. Not a rejection.
    pub waiting_for: Option<String>,
    /// Problems that left parts of the manifests out (`-f` mode).
    pub warnings: Vec<String>,
}

/// Shared config state.
#[derive(Debug, Default)]
pub struct ConfigState {
    current: ArcSwapOption<Snapshot>,
    status: ArcSwap<ReloadStatus>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new config is being served.
    Loaded,
    /// The config did not change.
    Unchanged,
    /// The new config was rejected; the previous one keeps serving.
    Rejected(String),
    /// The new config names a key the mounted Secret lacks yet; the previous one keeps
    /// serving until the Secret volume catches up.
    Waiting(String),
}

impl ConfigState {
    /// No config yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot to use for one request.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The reload status.
    pub fn status(&self) -> Arc<ReloadStatus> {
        self.status.load_full()
    }

    /// Loads `source`; swaps it in if it is valid and different.
    pub fn reload(&self, source: &ConfigSource) -> ReloadOutcome {
        let now = Timestamp::now();
        let previous = self.current.load_full();
        let built = source
            .load()
            .map_err(ReloadOutcome::Rejected)
            .and_then(|loaded| {
                let warnings = loaded.warnings;
                // The periodic re-check usually finds nothing new: skip building a snapshot then.
                let fingerprint = crate::snapshot::fingerprint(&loaded.config, &loaded.secrets);
                if previous
                    .as_ref()
                    .is_some_and(|p| p.fingerprint == fingerprint && p.config == loaded.config)
                {
                    return Ok(None);
                }
                Snapshot::build(loaded.config, &loaded.secrets, previous.as_deref())
                    .map(|s| Some((s, warnings)))
                    .map_err(|e| match e {
                        SnapshotError::MissingSecret { .. } => {
                            ReloadOutcome::Waiting(e.to_string())
                        }
                        other => ReloadOutcome::Rejected(other.to_string()),
                    })
            });
        match built {
            Ok(None) => {
                let mut status = (*self.status.load_full()).clone();
                status.last_attempt = Some(now);
                status.last_error = None;
                status.waiting_for = None;
                self.status.store(Arc::new(status));
                ReloadOutcome::Unchanged
            }
            Ok(Some((snapshot, warnings))) => {
                let status = ReloadStatus {
                    hash: Some(snapshot.hash.clone()),
                    loaded_at: Some(now),
                    sources: snapshot.config.sources.clone(),
                    last_attempt: Some(now),
                    last_error: None,
                    waiting_for: None,
                    warnings,
                };
                self.current.store(Some(Arc::new(snapshot)));
                self.status.store(Arc::new(status));
                ReloadOutcome::Loaded
            }
            Err(outcome) => {
                let mut status = (*self.status.load_full()).clone();
                status.last_attempt = Some(now);
                (status.last_error, status.waiting_for) = match &outcome {
                    ReloadOutcome::Waiting(what) => (None, Some(what.clone())),
                    ReloadOutcome::Rejected(error) => (Some(error.clone()), None),
                    _ => (None, None),
                };
                self.status.store(Arc::new(status));
                outcome
            }
        }
    }
}
