//! Client keys: Kubernetes Secrets that users create, labelled
//! `tollgate.dev/client-key: "true"`, one key (and optionally the previous one, during a
//! rotation) per Secret. The operator hashes the values here; the gateway config carries only
//! the hashes, the team and the restrictions. Rotation is an update of the Secret.
//!
//! ```yaml
//! apiVersion: v1
//! kind: Secret
//! metadata:
//!   name: research-app
//!   namespace: team-a
//!   labels: {tollgate.dev/client-key: "true"}
//!   annotations:
//!     tollgate.dev/team: research          # attribution, budgets
//!     tollgate.dev/routes: chat,summarize  # optional: LLMRoute names it may call
//!     tollgate.dev/expires: "2027-01-01T00:00:00Z"  # optional
//! stringData:
//!   key: tg-3b0d…(at least 32 characters)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::{compile::DEFAULT_NAMESPACE, config::ClientKeyConfig, manifests::secret_values};

/// The label that makes a Secret a client key (value `"true"`).
pub const CLIENT_KEY_LABEL: &str = "tollgate.dev/client-key";
/// The label selector the operator watches.
pub const CLIENT_KEY_SELECTOR: &str = "tollgate.dev/client-key=true";
/// Annotation: the team requests with this key count for.
pub const TEAM_ANNOTATION: &str = "tollgate.dev/team";
/// Annotation: comma-separated `LLMRoute` names (in the Secret's namespace) the key may call.
pub const ROUTES_ANNOTATION: &str = "tollgate.dev/routes";
/// Annotation: RFC 3339 instant after which the key is refused.
pub const EXPIRES_ANNOTATION: &str = "tollgate.dev/expires";
/// Data fields holding key values: the current key and, during a rotation, the previous one.
pub const KEY_FIELDS: [&str; 2] = ["key", "previous-key"];
/// Shortest accepted key, in bytes: a SHA-256 of a key this long and random cannot be
/// reversed, which is what makes the hashes safe to put in a ConfigMap.
pub const MIN_KEY_LEN: usize = 32;

/// The lower-case hex SHA-256 of a key value.
pub fn hash_key(key: &[u8]) -> String {
    hex::encode(Sha256::digest(key))
}

/// What the operator keeps of one client-key Secret: no key value, only hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKeySecret {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Field name → hash, for each present key field.
    pub hashes: BTreeMap<String, String>,
    /// Key fields present but shorter than [`MIN_KEY_LEN`].
    pub too_short: Vec<String>,
}

impl ClientKeySecret {
    /// Hashes the key fields of `secret`; the values are dropped here.
    pub fn from_secret(secret: &Secret) -> Self {
        let values = secret_values(secret);
        let mut hashes = BTreeMap::new();
        let mut too_short = Vec::new();
        for field in KEY_FIELDS {
            let Some(value) = values.get(field) else {
                continue;
            };
            let value = value.trim_ascii();
            if value.len() < MIN_KEY_LEN {
                too_short.push(field.to_owned());
            } else {
                hashes.insert(field.to_owned(), hash_key(value));
            }
        }
        Self {
            namespace: secret
                .namespace()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name: secret.name_any(),
            annotations: secret.annotations().clone(),
            hashes,
            too_short,
        }
    }
}

/// A client-key Secret that is (partly) refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProblem {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// The field (`data.key`, `metadata.annotations[tollgate.dev/expires]`, …).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Client keys and the namespaces that require them, from the labelled Secrets. A Secret
/// whose settings are wrong is left out (its namespace still requires keys: fail closed).
pub fn compile_client_keys(
    secrets: &[ClientKeySecret],
) -> (Vec<ClientKeyConfig>, Vec<String>, Vec<KeyProblem>) {
    let mut keys = Vec::new();
    let mut namespaces = BTreeSet::new();
    let mut problems = Vec::new();
    for s in secrets {
        let id = format!("{}/{}", s.namespace, s.name);
        namespaces.insert(s.namespace.clone());
        let mut problem = |field: String, message: String| {
            problems.push(KeyProblem {
                secret: id.clone(),
                field,
                message,
            });
        };
        for field in &s.too_short {
            problem(
                format!("data.{field}"),
                format!(
                    "a client key must be at least {MIN_KEY_LEN} bytes of random text; this one is refused"
                ),
            );
        }
        if s.hashes.is_empty() {
            if s.too_short.is_empty() {
                problem(
                    "data.key".to_owned(),
                    "a client-key Secret needs a `key` entry".to_owned(),
                );
            }
            continue;
        }
        let expires = match s.annotations.get(EXPIRES_ANNOTATION) {
            None => None,
            Some(text) => match text.parse::<jiff::Timestamp>() {
                Ok(t) => Some(t.to_string()),
                Err(_) => {
                    problem(
                        format!("metadata.annotations[{EXPIRES_ANNOTATION}]"),
                        format!(
                            "{text:?} is not an RFC 3339 instant (e.g. 2027-01-01T00:00:00Z); the key is refused"
                        ),
                    );
                    continue;
                }
            },
        };
        let team = s
            .annotations
            .get(TEAM_ANNOTATION)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let routes = s
            .annotations
            .get(ROUTES_ANNOTATION)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|r| format!("{}/{r}", s.namespace))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        keys.push(ClientKeyConfig {
            id,
            namespace: s.namespace.clone(),
            sha256: s.hashes.values().cloned().collect(),
            team,
            routes,
            expires,
        });
    }
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    (keys, namespaces.into_iter().collect(), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "tg-0123456789abcdef0123456789abcdef";

    fn secret(ns: &str, name: &str, data: &[(&str, &str)], annotations: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some(ns.to_owned());
        s.metadata.name = Some(name.to_owned());
        s.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        s.string_data = Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        s
    }

    #[test]
    fn only_hashes_leave_the_secret() {
        let s = secret(
            "team-a",
            "app",
            &[("key", KEY)],
            &[
                (TEAM_ANNOTATION, "research"),
                (ROUTES_ANNOTATION, "chat, embed"),
            ],
        );
        let (keys, namespaces, problems) = compile_client_keys(&[ClientKeySecret::from_secret(&s)]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(namespaces, vec!["team-a".to_owned()]);
        let json = serde_json::to_string(&keys).unwrap();
        assert!(!json.contains(KEY), "{json}");
        assert_eq!(keys[0].sha256, vec![hash_key(KEY.as_bytes())]);
        assert_eq!(keys[0].team.as_deref(), Some("research"));
        assert_eq!(keys[0].routes, vec!["team-a/chat", "team-a/embed"]);
        assert_eq!(keys[0].id, "team-a/app");
    }

    #[test]
    fn rotation_keeps_the_previous_key_until_it_is_removed() {
        let s = secret(
            "ns",
            "app",
            &[("key", &format!("{KEY}-new")), ("previous-key", KEY)],
            &[],
        );
        let (keys, ..) = compile_client_keys(&[ClientKeySecret::from_secret(&s)]);
        assert_eq!(keys[0].sha256.len(), 2);
        assert!(keys[0].sha256.contains(&hash_key(KEY.as_bytes())));
    }

    #[test]
    fn bad_keys_are_refused_by_field_and_still_lock_their_namespace() {
        let short = secret("ns", "short", &[("key", "abc")], &[]);
        let expiry = secret(
            "ns",
            "expiry",
            &[("key", KEY)],
            &[(EXPIRES_ANNOTATION, "tomorrow")],
        );
        let empty = secret("other", "empty", &[], &[]);
        let (keys, namespaces, problems) = compile_client_keys(&[
            ClientKeySecret::from_secret(&short),
            ClientKeySecret::from_secret(&expiry),
            ClientKeySecret::from_secret(&empty),
        ]);
        assert!(keys.is_empty());
        assert_eq!(namespaces, vec!["ns".to_owned(), "other".to_owned()]);
        let fields: Vec<_> = problems
            .iter()
            .map(|p| (p.secret.as_str(), p.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("ns/short", "data.key"),
                ("ns/expiry", "metadata.annotations[tollgate.dev/expires]"),
                ("other/empty", "data.key"),
            ]
        );
        assert!(problems.iter().all(|p| !p.message.contains(KEY)));
    }
}
