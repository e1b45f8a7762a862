//! Conversation state for translated backends: each stored response is kept with the items
//! that led to it, so `previous_response_id` can replay the conversation to a backend that
//! keeps no state, and `GET`/`DELETE /v1/responses/{id}` can find it.
//!
//! Entries live in the shared state layer (in process, or Redis shared by every replica)
//! under `responses:<scope>:<id>` for [`TTL`]; an entry larger than [`MAX_STORED_BYTES`] is
//! not stored (the answer is still served, and a later `previous_response_id` naming it gets
//! a clear 400). The scope is the caller's client key (else its team, else `anonymous` on
//! routes that need no key), so a response is visible only to the key that created it, and
//! response ids are random (122 bits), so they cannot be guessed.

use std::{future::Future, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    identity::Identity,
    pipeline::pays::Pays,
    state::StateError,
    wire::responses::{OutputItem, ResponseObject},
};

/// How long a stored response can be continued or read.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// The largest stored entry (the response and its conversation, as JSON).
pub const MAX_STORED_BYTES: usize = 1024 * 1024;

/// What is stored under a response id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stored {
    /// The response as the client received it.
    pub response: ResponseObject,
    /// The input items before its output: the earlier conversation, then its own input.
    pub history: Vec<Value>,
}

impl Stored {
    /// The conversation to continue from this response: its history, then its output.
    pub fn conversation(self) -> Vec<Value> {
        let mut items = self.history;
        items.extend(
            self.response
                .output
                .iter()
                .filter(|item| !matches!(item, OutputItem::Reasoning { .. }))
                .filter_map(|item| serde_json::to_value(item).ok()),
        );
        items
    }
}

/// The caller's view of the stored responses.
#[derive(Clone, Debug)]
pub struct ResponseStore {
    pays: Arc<Pays>,
    scope: String,
}

impl ResponseStore {
    /// The store as `identity` sees it.
    pub fn new(pays: &Arc<Pays>, identity: &Identity) -> Self {
        let scope = match (&identity.key_id, &identity.team) {
            (Some(key), _) => format!("key:{key}"),
            (None, Some(team)) => format!("team:{team}"),
            (None, None) => "anonymous".to_owned(),
        };
        Self {
            pays: Arc::clone(pays),
            scope,
        }
    }

    fn key(&self, id: &str) -> String {
        format!("responses:{}:{id}", self.scope)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.pays.budgets.clock.now().as_millisecond()).unwrap_or(0)
    }

    /// The stored response `id`, if this caller stored it and it has not expired.
    pub async fn load(&self, id: &str) -> Result<Option<Stored>, StateError> {
        let bytes = self
            .pays
            .budgets
            .store
            .kv_get(&self.key(id), self.now_ms())
            .await?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Stores `entry` under its response id; a failure is logged (the answer was served).
    pub async fn save(&self, entry: &Stored) {
        let bytes = match serde_json::to_vec(entry) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "response not stored: cannot be encoded");
                return;
            }
        };
        if bytes.len() > MAX_STORED_BYTES {
            tracing::warn!(
                id = %entry.response.id,
                bytes = bytes.len(),
                limit = MAX_STORED_BYTES,
                "response not stored: its conversation is over the stored-response size limit"
            );
            return;
        }
        let ttl = u64::try_from(TTL.as_millis()).unwrap_or(u64::MAX);
        let key = self.key(&entry.response.id);
        if let Err(e) = self
            .pays
            .budgets
            .store
            .kv_set(&key, &bytes, ttl, self.now_ms())
            .await
        {
            tracing::warn!(error = %e, id = %entry.response.id, "response not stored");
        }
    }

    /// Stores `entry` without waiting: the in-process store writes at once (so the client's
    /// next request already finds it); a Redis write finishes in a task of its own.
    pub fn save_soon(self, entry: Stored) {
        let mut write = Box::pin(async move { self.save(&entry).await });
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        if write.as_mut().poll(&mut cx).is_pending() {
            tokio::spawn(write);
        }
    }

    /// Deletes the stored response `id`; whether there was one.
    pub async fn delete(&self, id: &str) -> Result<bool, StateError> {
        self.pays
            .budgets
            .store
            .kv_delete(&self.key(id), self.now_ms())
            .await
    }
}
