//! Hot reload: watches the config source (kubelet swaps a mounted volume's `..data` link,
//! editors replace manifest files) and reloads on change, with a periodic re-check as a
//! safety net for file systems that drop events.
//!
//! Only events that can change content count: reading the files ourselves produces
//! open/access events, which would otherwise re-trigger a reload forever. And a reload
//! runs only when the bytes of the source differ from the last ones tried, so an idle
//! gateway does no work and an invalid config is rejected (and logged) once.

use std::{sync::Arc, time::Duration};

use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode, MetadataKind, ModifyKind},
};
use tokio::sync::mpsc;

use super::{ConfigSource, ConfigState, source::ContentHash, state::ReloadOutcome};
use crate::metrics::Metrics;

/// How long to wait for a burst of file events to settle before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Reloads once now and then on every change, until the task is dropped.
pub fn spawn(
    source: ConfigSource,
    state: Arc<ConfigState>,
    metrics: Arc<Metrics>,
    recheck: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::channel::<()>(16);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| may_change_content(&e.kind)) {
                let _ = tx.try_send(());
            }
        });
        let _watcher = match watcher {
            Ok(mut w) => {
                for path in source.watch_paths() {
                    let (path, mode) = if path.is_dir() {
                        (path, RecursiveMode::Recursive)
                    } else {
                        (
                            path.parent().map(|p| p.to_path_buf()).unwrap_or(path),
                            RecursiveMode::NonRecursive,
                        )
                    };
                    if let Err(e) = w.watch(&path, mode) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot watch config path; relying on periodic re-checks");
                    }
                }
                Some(w)
            }
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; relying on periodic re-checks");
                None
            }
        };
        let mut last_tried = None;
        reload_if_changed(&source, &state, &metrics, &mut last_tried).await;
        let mut tick = tokio::time::interval(recheck);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() {
                        return;
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
            }
            reload_if_changed(&source, &state, &metrics, &mut last_tried).await;
        }
    })
}

/// Whether a file event can mean new content. Opening, reading and closing a file
/// unwritten (what every reload does) cannot.
fn may_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Other => false,
    }
}

/// Reloads when the source's bytes differ from those of the last reload tried.
async fn reload_if_changed(
    source: &ConfigSource,
    state: &Arc<ConfigState>,
    metrics: &Metrics,
    last_tried: &mut Option<ContentHash>,
) {
    let s = source.clone();
    let hash = match tokio::task::spawn_blocking(move || s.content_hash()).await {
        Ok(hash) => Some(hash),
        Err(e) => {
            tracing::warn!(error = %e, "hashing the config source failed; reloading anyway");
            None
        }
    };
    if hash.is_some() && hash == *last_tried {
        return;
    }
    reload(source, state, metrics).await;
    *last_tried = hash;
}

/// One reload, off the async workers (it reads files and builds the snapshot).
pub async fn reload(
    source: &ConfigSource,
    state: &Arc<ConfigState>,
    metrics: &Metrics,
) -> ReloadOutcome {
    let (s, st) = (source.clone(), Arc::clone(state));
    let outcome = match tokio::task::spawn_blocking(move || st.reload(&s)).await {
        Ok(outcome) => outcome,
        Err(e) => ReloadOutcome::Rejected(format!("reload task failed: {e}")),
    };
    match &outcome {
        ReloadOutcome::Loaded => {
            let status = state.status();
            for warning in &status.warnings {
                tracing::warn!(problem = %warning, "part of the manifests is not served");
            }
            tracing::info!(
                hash = status.hash.as_deref().unwrap_or_default(),
                "config loaded"
            );
            metrics.config_reload("loaded", status.hash.as_deref());
        }
        ReloadOutcome::Unchanged => {}
        ReloadOutcome::Rejected(error) => {
            tracing::error!(error = %error, "config rejected; the previous config keeps serving");
            metrics.config_reload("rejected", None);
        }
        ReloadOutcome::Waiting(what) => {
            tracing::info!(waiting_for = %what, "new config waits for its Secret volume; the previous config keeps serving");
            metrics.config_reload("waiting", None);
        }
    }
    outcome
}
