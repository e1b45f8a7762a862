use super::*;

fn exact(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

#[test]
fn counts_exactly_when_the_tokenizer_is_loaded() {
    load_tokenizer();
    assert_eq!(count("hello world"), 2);
    // Characters/4 would say 7; tiktoken splits the word into a few tokens.
    assert_eq!(
        count("antidisestablishmentarianism"),
        exact("antidisestablishmentarianism")
    );
    assert_eq!(count(""), 0);
}

#[test]
fn long_or_unbroken_text_is_estimated_not_tokenized() {
    load_tokenizer();
    let word = "a".repeat(LONG_RUN + 1);
    assert_eq!(count(&word), estimate(&word));
    let long = "word ".repeat(EXACT_MAX_BYTES as usize);
    assert_eq!(count(&long), estimate(&long));
}

#[test]
fn the_estimate_is_close_to_the_tokenizer_and_never_above_the_bytes() {
    let english = "The quick brown fox jumps over the lazy dog. It was 2024, and 1,234,567 \
                   people read the report on quarterly earnings, cash-flow and margins!";
    let cjk = "日本語のテキストも数えます。中文文本也需要计算。";
    let mixed = "Grüße aus Köln! fn main() { println!(\"{}\", x + 42); }";
    for text in [english, cjk, mixed] {
        let (e, x) = (estimate(text), exact(text));
        assert!(
            e * 2 >= x && e <= x * 2,
            "estimate {e} vs tokenizer {x} for {text:?}"
        );
        assert!(e <= text.len() as u64);
    }
    assert_eq!(estimate(""), 0);
    assert_eq!(estimate("   \n\t"), 0);
}

#[test]
fn the_byte_bound_is_never_below_the_token_count() {
    load_tokenizer();
    let req: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "m", "messages": [{"role": "user", "content": "Grüße aus Köln! 日本語のテキストも数えます。"}]
    }))
    .unwrap();
    assert!(prompt_bytes(&req) >= prompt_tokens(&req));
}

#[test]
fn prompt_estimate_includes_format_overhead() {
    load_tokenizer();
    let req: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}]
    }))
    .unwrap();
    assert_eq!(
        prompt_tokens(&req),
        PER_REPLY + 2 * PER_MESSAGE + exact("Be brief.") + 2
    );
}
