//! Who is calling: the client key of a request, found by hash in a table built once per
//! config snapshot (so a rotated Secret takes effect at the next reload, without a restart).
//!
//! The presented key is hashed with SHA-256 and compared with every known hash in constant
//! time (`subtle`), so response timing tells nothing about how close a guess was. The team
//! comes from the key, never from a header the client chooses. Routes in a namespace with
//! no client-key Secret need no key (the quickstart works without); there a known key still
//! attributes the request, and an unknown one (SDKs send placeholders) is ignored.

#[cfg(test)]
mod tests;

use std::{collections::HashSet, sync::Arc};

use axum::http::{HeaderMap, StatusCode, header};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tollgate_crds::config::GatewayConfig;

/// One client key, as the gateway knows it.
#[derive(Debug)]
pub struct ClientKey {
    /// `namespace/secret`: safe to log.
    pub id: Arc<str>,
    namespace: String,
    team: Option<Arc<str>>,
    routes: Vec<String>,
    expires: Option<Timestamp>,
}

/// The caller of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The client key id (`namespace/secret`), when a known key was presented.
    pub key_id: Option<Arc<str>>,
    /// The key's team.
    pub team: Option<Arc<str>>,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The route needs a key and none was sent.
    #[error(
        "this model requires a client key: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
    )]
    Missing,
    /// The key is not known (never existed, or rotated away).
    #[error("incorrect client key provided")]
    Unknown,
    /// The key's `tollgate.dev/expires` has passed.
    #[error("the client key has expired")]
    Expired,
    /// The key may not call this route.
    #[error("the client key may not use this model")]
    RouteNotAllowed,
}

impl AuthError {
    /// Status, OpenAI error `type` and `code`.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            AuthError::Missing | AuthError::Unknown | AuthError::Expired => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
            ),
            AuthError::RouteNotAllowed => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "model_not_allowed",
            ),
        }
    }
}

/// Every client key of one config snapshot.
#[derive(Debug, Default)]
pub struct KeyTable {
    /// (hash, index into `keys`), one entry per accepted key value.
    hashes: Vec<([u8; 32], usize)>,
    keys: Vec<ClientKey>,
    keyed_namespaces: HashSet<String>,
}

impl KeyTable {
    /// The table of `config`. Hashes that are not 64 hex digits cannot match and are
    /// skipped (the operator never writes them).
    pub fn new(config: &GatewayConfig) -> Self {
        let mut table = KeyTable {
            keyed_namespaces: config.keyed_namespaces.iter().cloned().collect(),
            ..KeyTable::default()
        };
        for key in &config.client_keys {
            let index = table.keys.len();
            for hash in &key.sha256 {
                let mut digest = [0u8; 32];
                if hex::decode_to_slice(hash, &mut digest).is_ok() {
                    table.hashes.push((digest, index));
                }
            }
            table.keyed_namespaces.insert(key.namespace.clone());
            table.keys.push(ClientKey {
                id: Arc::from(key.id.as_str()),
                namespace: key.namespace.clone(),
                team: key.team.as_deref().map(Arc::from),
                routes: key.routes.clone(),
                // Compile only writes valid instants; one that is not fails closed.
                expires: key
                    .expires
                    .as_deref()
                    .map(|t| t.parse().unwrap_or(Timestamp::MIN)),
            });
        }
        table
    }

    /// Whether routes of `namespace` require a key.
    pub fn requires_key(&self, namespace: &str) -> bool {
        self.keyed_namespaces.contains(namespace)
    }

    /// The key whose hash is `digest`, compared against every entry in constant time.
    fn find(&self, presented: &[u8]) -> Option<&ClientKey> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for (hash, index) in &self.hashes {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(*index);
            }
        }
        found.and_then(|i| self.keys.get(i))
    }

    /// Authenticates a request to route `route_id` (`namespace/name`) at `now`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        route_id: &str,
        now: Timestamp,
    ) -> Result<Identity, AuthError> {
        let namespace = route_id.split_once('/').map_or("", |(ns, _)| ns);
        let required = self.requires_key(namespace);
        if !required && self.hashes.is_empty() {
            // No client keys at all: nothing to look up (and no hashing on the hot path).
            return Ok(Identity::default());
        }
        let Some(presented) = presented_key(headers) else {
            return if required {
                Err(AuthError::Missing)
            } else {
                Ok(Identity::default())
            };
        };
        let key = match self.find(presented) {
            Some(key) if key.expires.is_none_or(|e| now < e) => key,
            Some(_) if required => return Err(AuthError::Expired),
            None if required => return Err(AuthError::Unknown),
            _ => return Ok(Identity::default()),
        };
        if required
            && (key.namespace != namespace
                || (!key.routes.is_empty() && !key.routes.iter().any(|r| r == route_id)))
        {
            return Err(AuthError::RouteNotAllowed);
        }
        Ok(Identity {
            key_id: Some(Arc::clone(&key.id)),
            team: key.team.clone(),
        })
    }
}

impl KeyTable {
    /// The caller of a request that names no route (reading a stored response): the known,
    /// unexpired key presented, else nobody (the anonymous scope). An expired key is
    /// refused rather than read as nobody.
    pub fn caller(&self, headers: &HeaderMap, now: Timestamp) -> Result<Identity, AuthError> {
        let Some(key) = presented_key(headers).and_then(|k| self.find(k)) else {
            return Ok(Identity::default());
        };
        if key.expires.is_some_and(|e| now >= e) {
            return Err(AuthError::Expired);
        }
        Ok(Identity {
            key_id: Some(Arc::clone(&key.id)),
            team: key.team.clone(),
        })
    }
}

/// The key from `Authorization: Bearer <key>` or, failing that, `x-api-key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|v| {
            let (scheme, rest) = v.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
        })
        .map(<[u8]>::trim_ascii)
        .filter(|k| !k.is_empty());
    bearer.or_else(|| {
        headers
            .get("x-api-key")
            .map(|v| v.as_bytes().trim_ascii())
            .filter(|k| !k.is_empty())
    })
}
