//! Header values and bucket scoping; the limiting itself is tested over HTTP
//! (`gateway/tests/rate_limits.rs`) and the arithmetic in `state::bucket`.

use std::sync::Arc;

use http::HeaderMap;

use super::*;

#[test]
fn reset_durations_are_written_as_openai_writes_them() {
    for (ms, text) in [
        (0, "0s"),
        (17, "17ms"),
        (1_000, "1s"),
        (1_500, "1.5s"),
        (8_640, "8.64s"),
        (59_999, "59.999s"),
        (60_000, "1m0s"),
        (360_000, "6m0s"),
        (3_723_000, "1h2m3s"),
    ] {
        assert_eq!(duration(ms), text, "{ms} ms");
    }
}

#[test]
fn the_headers_describe_the_tightest_limit() {
    let mut h = RateHeaders::default();
    let route = Standing {
        limit: 600,
        remaining: 420,
        reset_ms: 18_000,
    };
    let key = Standing {
        limit: 60,
        remaining: 3,
        reset_ms: 57_000,
    };
    h.add(false, route);
    h.add(false, key);
    h.add(
        true,
        Standing {
            limit: 10_000,
            remaining: 9_000,
            reset_ms: 6_000,
        },
    );
    let mut map = HeaderMap::new();
    h.apply(&mut map);
    assert_eq!(map["x-ratelimit-limit-requests"], "60");
    assert_eq!(map["x-ratelimit-remaining-requests"], "3");
    assert_eq!(map["x-ratelimit-reset-requests"], "57s");
    assert_eq!(map["x-ratelimit-limit-tokens"], "10000");
    assert_eq!(map["x-ratelimit-remaining-tokens"], "9000");
    assert_eq!(map["x-ratelimit-reset-tokens"], "6s");
}

#[test]
fn buckets_are_per_scope_and_never_skipped_without_a_key() {
    let alice = Identity {
        key_id: Some(Arc::from("team-a/alice")),
        team: Some(Arc::from("research")),
    };
    let bob = Identity {
        key_id: Some(Arc::from("team-a/bob")),
        team: Some(Arc::from("research")),
    };
    let anonymous = Identity::default();
    let key = |i: &Identity, per| bucket_key("team-a/chat", per, i, false);
    assert_eq!(
        key(&alice, RateLimitKey::Route),
        key(&anonymous, RateLimitKey::Route)
    );
    assert_eq!(
        key(&alice, RateLimitKey::Team),
        key(&bob, RateLimitKey::Team)
    );
    assert_ne!(key(&alice, RateLimitKey::Key), key(&bob, RateLimitKey::Key));
    // Without a key the request still counts, in one shared bucket.
    assert_eq!(key(&anonymous, RateLimitKey::Key), "rl:team-a/chat:key:-:r");
    assert_ne!(
        bucket_key("team-a/chat", RateLimitKey::Key, &alice, true),
        key(&alice, RateLimitKey::Key),
        "requests and tokens are separate buckets"
    );
}
