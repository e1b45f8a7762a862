//! Lookup decisions that need no server: directives and scopes.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, header};

use super::*;

fn headers(cache_control: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in cache_control {
        h.append(header::CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn no_store_wins_over_no_cache_in_any_header_line() {
    assert!(directive(&headers(&[])) == Directive::Normal);
    assert!(directive(&headers(&["max-age=0, No-Cache"])) == Directive::NoCache);
    assert!(directive(&headers(&["no-cache", "private, no-store"])) == Directive::NoStore);
}

#[test]
fn scopes_keep_teams_keys_and_anonymous_callers_apart() {
    let id = |team: Option<&str>, key: Option<&str>| Identity {
        team: team.map(Arc::from),
        key_id: key.map(Arc::from),
    };
    let team_a = scope_label(CacheScope::Team, &id(Some("a"), Some("ns/k1")));
    assert_eq!(
        team_a,
        scope_label(CacheScope::Team, &id(Some("a"), Some("ns/k2")))
    );
    assert_ne!(
        team_a,
        scope_label(CacheScope::Team, &id(Some("b"), Some("ns/k1")))
    );
    assert_ne!(
        scope_label(CacheScope::Key, &id(Some("a"), Some("ns/k1"))),
        scope_label(CacheScope::Key, &id(Some("a"), Some("ns/k2")))
    );
    // A key without a team is its own scope, never the anonymous one.
    assert_ne!(
        scope_label(CacheScope::Team, &id(None, Some("ns/k1"))),
        scope_label(CacheScope::Team, &id(None, None))
    );
    // A team named like a key id shares nothing with that key.
    assert_ne!(
        scope_label(CacheScope::Team, &id(Some("ns/k1"), None)),
        scope_label(CacheScope::Team, &id(None, Some("ns/k1")))
    );
}
