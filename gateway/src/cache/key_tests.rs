//! What the cache key covers and what it leaves out.

use serde_json::{Value, json};
use sha2::Digest;

use super::*;

fn chat_key(body: Value) -> Key {
    let req: ChatRequest = serde_json::from_value(body).unwrap();
    let mut h = scoped("ns/route", "team:a", "chat");
    assert!(chat(&req, &mut h));
    h.finalize().into()
}

fn base() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2})
}

fn with(mut v: Value, field: &str, value: Value) -> Value {
    v[field] = value;
    v
}

#[test]
fn labels_field_order_and_model_name_do_not_change_the_key() {
    let k = chat_key(base());
    assert_eq!(k, chat_key(with(base(), "user", json!("someone"))));
    assert_eq!(k, chat_key(with(base(), "metadata", json!({"x": "y"}))));
    assert_eq!(k, chat_key(with(base(), "model", json!("alias"))));
    assert_eq!(
        k,
        chat_key(
            json!({"temperature": 0.2, "messages": [{"content": "hi", "role": "user"}], "model": "m"})
        )
    );
    assert_eq!(k, chat_key(with(base(), "stream", json!(false))));
}

#[test]
fn everything_that_changes_the_answer_changes_the_key() {
    let k = chat_key(base());
    for (field, value) in [
        ("temperature", json!(0.3)),
        ("max_tokens", json!(5)),
        ("seed", json!(1)),
        (
            "tools",
            json!([{"type": "function", "function": {"name": "f"}}]),
        ),
        ("response_format", json!({"type": "json_object"})),
        ("logit_bias", json!({"1": 2})),
        ("messages", json!([{"role": "user", "content": "hello"}])),
    ] {
        assert_ne!(k, chat_key(with(base(), field, value)), "{field}");
    }
}

#[test]
fn a_stream_and_a_json_answer_are_stored_apart() {
    let json_key = chat_key(base());
    let stream = chat_key(with(base(), "stream", json!(true)));
    let with_usage = chat_key(with(
        with(base(), "stream", json!(true)),
        "stream_options",
        json!({"include_usage": true}),
    ));
    assert_ne!(json_key, stream);
    assert_ne!(stream, with_usage);
}

#[test]
fn the_prefix_separates_routes_and_scopes() {
    let req: ChatRequest = serde_json::from_value(base()).unwrap();
    let key = |route: &str, scope: &str| -> Key {
        let mut h = scoped(route, scope, "chat");
        chat(&req, &mut h);
        h.finalize().into()
    };
    assert_ne!(key("ns/a", "team:x"), key("ns/a", "team:y"));
    assert_ne!(key("ns/a", "team:x"), key("ns/b", "team:x"));
    assert_ne!(key("ns/ab", "c"), key("ns/a", "bc"));
}

#[test]
fn the_semantic_context_is_everything_but_the_last_user_message() {
    let ctx = |body: Value| -> Option<(Key, String)> {
        let req: ChatRequest = serde_json::from_value(body).unwrap();
        let mut h = scoped("r", "s", "chat");
        let text = chat_semantic(&req, &mut h)?;
        Some((h.finalize().into(), text))
    };
    let (a, text) = ctx(base()).unwrap();
    assert_eq!(text, "hi");
    let (b, _) = ctx(with(
        base(),
        "messages",
        json!([{"role": "user", "content": "hello there"}]),
    ))
    .unwrap();
    assert_eq!(a, b, "only the prompt differs");
    let (c, _) = ctx(with(base(), "temperature", json!(1.0))).unwrap();
    assert_ne!(a, c);
    let system =
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]);
    assert_ne!(a, ctx(with(base(), "messages", system)).unwrap().0);
    let assistant_last =
        json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]);
    assert!(ctx(with(base(), "messages", assistant_last)).is_none());
}
