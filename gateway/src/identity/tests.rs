//! Key lookup, restrictions and the OpenAI-shaped refusals.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use jiff::Timestamp;
use tollgate_crds::{
    config::{ClientKeyConfig, GatewayConfig},
    keys::hash_key,
};

use super::{AuthError, Identity, KeyTable};

const KEY: &str = "tg-research-0123456789abcdef0123456789";
const OTHER: &str = "tg-billing-0123456789abcdef0123456789ab";

fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn config(keys: Vec<ClientKeyConfig>) -> GatewayConfig {
    let mut c = GatewayConfig::empty();
    c.keyed_namespaces = keys.iter().map(|k| k.namespace.clone()).collect();
    c.client_keys = keys;
    c
}

fn key(id: &str, values: &[&str], routes: &[&str], expires: Option<&str>) -> ClientKeyConfig {
    let (namespace, _) = id.split_once('/').unwrap();
    ClientKeyConfig {
        id: id.to_owned(),
        namespace: namespace.to_owned(),
        sha256: values.iter().map(|v| hash_key(v.as_bytes())).collect(),
        team: Some("research".to_owned()),
        routes: routes.iter().map(|r| (*r).to_owned()).collect(),
        expires: expires.map(str::to_owned),
    }
}

fn bearer(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_str(value).unwrap());
    h
}

fn research(id: &str) -> Identity {
    Identity {
        key_id: Some(id.into()),
        team: Some("research".into()),
    }
}

#[test]
fn keyed_namespaces_refuse_missing_and_unknown_keys_with_401() {
    let t = KeyTable::new(&config(vec![key("team-a/app", &[KEY], &[], None)]));
    let auth = |h: &HeaderMap| t.authenticate(h, "team-a/chat", now());
    assert_eq!(auth(&HeaderMap::new()), Err(AuthError::Missing));
    assert_eq!(auth(&bearer("Bearer tg-guess")), Err(AuthError::Unknown));
    assert_eq!(
        auth(&bearer(&format!("Basic {KEY}"))),
        Err(AuthError::Missing)
    );
    assert_eq!(
        auth(&bearer(&format!("Bearer {KEY}"))),
        Ok(research("team-a/app"))
    );
    assert_eq!(
        auth(&bearer(&format!("bearer  {KEY} "))),
        Ok(research("team-a/app"))
    );
    let mut anthropic_style = HeaderMap::new();
    anthropic_style.insert("x-api-key", HeaderValue::from_static(KEY));
    assert_eq!(auth(&anthropic_style), Ok(research("team-a/app")));
}

#[test]
fn routes_outside_the_keys_list_or_namespace_get_403() {
    let t = KeyTable::new(&config(vec![
        key("team-a/app", &[KEY], &["team-a/chat"], None),
        key("team-b/app", &[OTHER], &[], None),
    ]));
    let h = bearer(&format!("Bearer {KEY}"));
    assert!(t.authenticate(&h, "team-a/chat", now()).is_ok());
    assert_eq!(
        t.authenticate(&h, "team-a/embed", now()),
        Err(AuthError::RouteNotAllowed)
    );
    assert_eq!(
        t.authenticate(&h, "team-b/chat", now()),
        Err(AuthError::RouteNotAllowed)
    );
}

#[test]
fn expired_keys_get_401() {
    let t = KeyTable::new(&config(vec![key(
        "team-a/app",
        &[KEY],
        &[],
        Some("2026-05-31T23:59:59Z"),
    )]));
    let h = bearer(&format!("Bearer {KEY}"));
    assert_eq!(
        t.authenticate(&h, "team-a/chat", now()),
        Err(AuthError::Expired)
    );
    let before: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
    assert!(t.authenticate(&h, "team-a/chat", before).is_ok());
}

#[test]
fn namespaces_without_keys_need_none_and_ignore_placeholders() {
    let t = KeyTable::new(&config(vec![key("team-a/app", &[KEY], &[], None)]));
    assert_eq!(
        t.authenticate(&HeaderMap::new(), "demo/chat", now()),
        Ok(Identity::default())
    );
    // The OpenAI SDK always sends some key.
    assert_eq!(
        t.authenticate(&bearer("Bearer sk-placeholder"), "demo/chat", now()),
        Ok(Identity::default())
    );
    // A real key still attributes the request to its team there.
    assert_eq!(
        t.authenticate(&bearer(&format!("Bearer {KEY}")), "demo/chat", now()),
        Ok(research("team-a/app"))
    );
}

#[test]
fn rotation_is_a_new_table_from_the_next_snapshot() {
    let new_key = "tg-research-rotated-0123456789abcdef0123";
    let during = KeyTable::new(&config(vec![key("team-a/app", &[new_key, KEY], &[], None)]));
    let after = KeyTable::new(&config(vec![key("team-a/app", &[new_key], &[], None)]));
    let old = bearer(&format!("Bearer {KEY}"));
    let new = bearer(&format!("Bearer {new_key}"));
    assert!(during.authenticate(&old, "team-a/chat", now()).is_ok());
    assert!(during.authenticate(&new, "team-a/chat", now()).is_ok());
    assert_eq!(
        after.authenticate(&old, "team-a/chat", now()),
        Err(AuthError::Unknown)
    );
    assert!(after.authenticate(&new, "team-a/chat", now()).is_ok());
}

#[test]
fn refusals_are_openai_shaped_and_never_echo_the_key() {
    use axum::response::IntoResponse;

    use crate::error::GatewayError;
    let unknown = GatewayError::Unauthorized(AuthError::Unknown);
    let body = unknown.body();
    assert_eq!(body.error.kind, "invalid_request_error");
    assert_eq!(body.error.code.as_deref(), Some("invalid_api_key"));
    let resp = unknown.into_response();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let forbidden = GatewayError::Unauthorized(AuthError::RouteNotAllowed);
    assert_eq!(forbidden.parts().0, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.body().error.kind, "permission_error");
    let t = KeyTable::new(&config(vec![key("team-a/app", &[KEY], &[], None)]));
    assert!(!format!("{t:?}").contains(KEY));
}
