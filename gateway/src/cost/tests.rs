//! Each provider family's formula against its published pricing rule, with the expected
//! values computed by hand (shown in each test). Prices are USD per million tokens.

use rust_decimal::Decimal;
use tollgate_crds::config::Pricing;

use super::{TokenUsage, cost, estimate, from_nanos, to_nanos};

fn usd(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn pricing(
    input: &str,
    cached: &str,
    write: &str,
    write_1h: Option<&str>,
    output: &str,
) -> Pricing {
    Pricing {
        input: usd(input),
        output: usd(output),
        cached_input: usd(cached),
        cache_write: usd(write),
        cache_write_1h: write_1h.map(usd),
        reasoning: usd(output),
    }
}

/// OpenAI: `prompt_tokens` includes `cached_tokens`, which are billed at the cached-input
/// price (https://platform.openai.com/docs/guides/prompt-caching: "cached_tokens ... part of
/// prompt_tokens"). gpt-4o-mini: input 0.15, cached 0.075, output 0.60.
/// 500 × 0.15 + 1500 × 0.075 + 300 × 0.60 = 75 + 112.5 + 180 = 367.5 per million
/// → $0.0003675.
#[test]
fn openai_cached_input_is_part_of_the_prompt() {
    let usage = TokenUsage::from_openai(2000, 300, 1500, 0);
    assert_eq!(usage.input, 500);
    assert_eq!(usage.prompt_tokens(), 2000);
    let p = pricing("0.15", "0.075", "0.15", None, "0.60");
    assert_eq!(cost(&p, &usage), usd("0.0003675"));
}

/// OpenAI reasoning models: reasoning tokens are billed as output tokens and are included
/// in `completion_tokens` (https://platform.openai.com/docs/guides/reasoning: "reasoning
/// tokens ... are billed as output tokens"). o4-mini: input 1.10, output 4.40.
/// 1000 × 1.10 + 1000 × 4.40 + 4000 × 4.40 = 1100 + 4400 + 17600 = 23100 per million
/// → $0.0231; counting reasoning again on top of completion would give $0.0407.
#[test]
fn openai_reasoning_is_inside_the_completion_count() {
    let usage = TokenUsage::from_openai(1000, 5000, 0, 4000);
    assert_eq!((usage.output, usage.reasoning), (1000, 4000));
    let p = pricing("1.10", "0.275", "1.10", None, "4.40");
    assert_eq!(cost(&p, &usage), usd("0.0231"));
}

/// Anthropic: `input_tokens` excludes cache reads and writes; 5-minute writes cost 1.25×
/// the base input price, 1-hour writes 2×, cache reads 0.1×
/// (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#pricing).
/// Claude Sonnet: input 3, output 15 → read 0.30, 5m write 3.75, 1h write 6.
/// 100 × 3 + 1000 × 3.75 + 2000 × 6 + 4000 × 0.30 + 500 × 15
/// = 300 + 3750 + 12000 + 1200 + 7500 = 24750 per million → $0.02475.
#[test]
fn anthropic_bills_both_cache_write_tiers_and_reads() {
    let usage = TokenUsage::from_anthropic(100, 3000, Some((1000, 2000)), 4000, 500);
    assert_eq!(usage.prompt_tokens(), 7100);
    let p = pricing("3", "0.30", "3.75", Some("6"), "15");
    assert_eq!(cost(&p, &usage), usd("0.02475"));
    // Without `cacheWrite1h` in the config (an older operator), 1-hour writes are billed at
    // twice the input price, Anthropic's rule: the same $0.02475.
    let p = pricing("3", "0.30", "3.75", None, "15");
    assert_eq!(cost(&p, &usage), usd("0.02475"));
}

/// Anthropic without the per-tier split (older API versions): every write is a 5-minute
/// write, the default tier. 100 × 3 + 3000 × 3.75 + 500 × 15 = 300 + 11250 + 7500
/// = 19050 per million → $0.01905.
#[test]
fn anthropic_writes_without_a_split_are_five_minute_writes() {
    let usage = TokenUsage::from_anthropic(100, 3000, None, 0, 500);
    let p = pricing("3", "0.30", "3.75", Some("6"), "15");
    assert_eq!(cost(&p, &usage), usd("0.01905"));
}

/// Gemini: `promptTokenCount` includes `cachedContentTokenCount`, billed at the
/// context-caching price; the output price includes thinking tokens, reported in
/// `thoughtsTokenCount` beside `candidatesTokenCount`
/// (https://ai.google.dev/gemini-api/docs/pricing, https://ai.google.dev/gemini-api/docs/caching).
/// Gemini 2.5 Flash: input 0.30, cached 0.03, output 2.50.
/// 2000 × 0.30 + 8000 × 0.03 + 200 × 2.50 + 800 × 2.50 = 600 + 240 + 500 + 2000 = 3340
/// per million → $0.00334.
#[test]
fn gemini_thoughts_are_billed_as_output_beside_candidates() {
    let usage = TokenUsage::from_gemini(10_000, 8000, 200, 800);
    assert_eq!(usage.completion_tokens(), 1000);
    let p = pricing("0.30", "0.03", "0.30", None, "2.50");
    assert_eq!(cost(&p, &usage), usd("0.00334"));
}

/// Bedrock Converse: `inputTokens` excludes `cacheReadInputTokens` and
/// `cacheWriteInputTokens`, each billed at its own price
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html).
/// Claude 3.5 Haiku on Bedrock: input 0.80, output 4, cache read 0.08, cache write 1.
/// The usage of `tests/fixtures/bedrock/converse_text.json`:
/// 12 × 0.80 + 1000 × 0.08 + 200 × 1 + 31 × 4 = 9.6 + 80 + 200 + 124 = 413.6 per million
/// → $0.0004136.
#[test]
fn bedrock_cache_counts_sit_beside_input() {
    let usage = TokenUsage::from_bedrock(12, 1000, 200, 31);
    assert_eq!(usage.prompt_tokens(), 1212);
    let p = pricing("0.80", "0.08", "1", None, "4");
    assert_eq!(cost(&p, &usage), usd("0.0004136"));
}

/// A free model costs exactly zero, and impossible counts (more cached than prompt tokens)
/// are clamped instead of underflowing.
#[test]
fn free_models_cost_zero_and_bad_counts_do_not_panic() {
    let p = pricing("0", "0", "0", Some("0"), "0");
    assert_eq!(
        cost(&p, &TokenUsage::from_openai(10, 10, 0, 0)),
        Decimal::ZERO
    );
    let usage = TokenUsage::from_openai(10, 5, 50, 9);
    assert_eq!((usage.input, usage.cached_input), (0, 10));
    assert_eq!((usage.output, usage.reasoning), (0, 5));
    let p = pricing("1", "1", "1", None, "1");
    assert!(cost(&p, &TokenUsage::from_openai(u64::MAX, u64::MAX, 0, 0)) > Decimal::ZERO);
}

/// The reservation covers the real cost whenever the answer stays within `max_tokens`:
/// 1000 prompt tokens at max(3, 3.75) and 500 output at 15 → 3750 + 7500 = $0.01125,
/// above the $0.0105 of the same request with no cache activity.
#[test]
fn estimate_bounds_the_cost_within_max_tokens() {
    let p = pricing("3", "0.30", "3.75", Some("6"), "15");
    let e = estimate(&p, 1000, 500);
    assert_eq!(e, usd("0.01125"));
    let real = cost(&p, &TokenUsage::from_anthropic(1000, 0, None, 0, 500));
    assert_eq!(real, usd("0.0105"));
    assert!(real <= e);
}

/// Nano-USD round up, so a counter never undercounts; they convert back exactly.
#[test]
fn nanos_round_up() {
    assert_eq!(to_nanos(usd("0.0003675")), 367_500);
    assert_eq!(to_nanos(usd("0.0000000001")), 1);
    assert_eq!(from_nanos(367_500), usd("0.0003675"));
    assert_eq!(to_nanos(usd("99999999999999999999")), i64::MAX);
}
