//! What a request cost, exactly: token classes × the resolved prices, in decimal USD.
//!
//! Providers count tokens differently (OpenAI and Gemini include cached tokens in the prompt
//! count, Anthropic and Bedrock report them beside it; OpenAI includes reasoning in the
//! completion count, Gemini reports it beside). Each `TokenUsage::from_*` constructor turns
//! one provider family's counts into disjoint classes, so [`cost`] is one sum with no
//! subtraction and no class billed twice. No floats touch money.

#[cfg(test)]
mod tests;

use rust_decimal::Decimal;
use serde::Serialize;
use tollgate_crds::config::Pricing;

/// Tokens of one request by how they are billed. The classes are disjoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Input read fresh, at `input`.
    pub input: u64,
    /// Input read from the provider's prompt cache, at `cachedInput`.
    pub cached_input: u64,
    /// Input written to the prompt cache (Anthropic: 5-minute tier), at `cacheWrite`.
    pub cache_write: u64,
    /// Input written to Anthropic's 1-hour prompt cache, at `cacheWrite1h`.
    pub cache_write_1h: u64,
    /// Output other than reasoning, at `output`.
    pub output: u64,
    /// Reasoning (thinking) output, at `reasoning`.
    pub reasoning: u64,
}

impl TokenUsage {
    /// OpenAI (and Azure OpenAI, OpenAI-compatible servers): `prompt_tokens` includes
    /// `prompt_tokens_details.cached_tokens`; `completion_tokens` includes
    /// `completion_tokens_details.reasoning_tokens`.
    pub fn from_openai(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Self {
        let cached = cached.min(prompt);
        let reasoning = reasoning.min(completion);
        Self {
            input: prompt - cached,
            cached_input: cached,
            output: completion - reasoning,
            reasoning,
            ..Self::default()
        }
    }

    /// Anthropic Messages: `input_tokens` excludes cache reads and writes;
    /// `cache_creation_input_tokens` is the total of writes, split by tier in
    /// `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens` when the
    /// API reports the split. Without a split, every write is a 5-minute write (the default
    /// tier). Thinking is billed as output and not reported apart.
    pub fn from_anthropic(
        input: u64,
        cache_creation: u64,
        split: Option<(u64, u64)>,
        cache_read: u64,
        output: u64,
    ) -> Self {
        let (write_5m, write_1h) = match split {
            Some((five_minutes, one_hour)) => (five_minutes, one_hour),
            None => (cache_creation, 0),
        };
        Self {
            input,
            cached_input: cache_read,
            cache_write: write_5m,
            cache_write_1h: write_1h,
            output,
            reasoning: 0,
        }
    }

    /// Gemini `usageMetadata`: `promptTokenCount` includes `cachedContentTokenCount`;
    /// `thoughtsTokenCount` is reported beside `candidatesTokenCount` and billed as output.
    pub fn from_gemini(prompt: u64, cached: u64, candidates: u64, thoughts: u64) -> Self {
        let cached = cached.min(prompt);
        Self {
            input: prompt - cached,
            cached_input: cached,
            output: candidates,
            reasoning: thoughts,
            ..Self::default()
        }
    }

    /// Bedrock Converse: `inputTokens` excludes `cacheReadInputTokens` and
    /// `cacheWriteInputTokens` (Bedrock reports one write tier).
    pub fn from_bedrock(input: u64, cache_read: u64, cache_write: u64, output: u64) -> Self {
        Self {
            input,
            cached_input: cache_read,
            cache_write,
            output,
            ..Self::default()
        }
    }

    /// All input tokens, as OpenAI's `prompt_tokens` counts them.
    pub fn prompt_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_write_1h)
    }

    /// All output tokens, as OpenAI's `completion_tokens` counts them.
    pub fn completion_tokens(&self) -> u64 {
        self.output.saturating_add(self.reasoning)
    }
}

const PER: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// `tokens × price per million`, exact; saturates instead of panicking on absurd counts.
fn priced(tokens: u64, per_million: Decimal) -> Decimal {
    Decimal::from(tokens)
        .checked_mul(per_million)
        .and_then(|d| d.checked_div(PER))
        .unwrap_or(Decimal::MAX)
}

/// The 1-hour cache-write price; absent only in configs from older operators, where it is
/// twice the input price as Anthropic publishes.
fn cache_write_1h(pricing: &Pricing) -> Decimal {
    pricing.cache_write_1h.unwrap_or_else(|| {
        pricing
            .input
            .checked_mul(Decimal::TWO)
            .unwrap_or(Decimal::MAX)
    })
}

/// What `usage` cost in USD at `pricing` (USD per million tokens per class).
pub fn cost(pricing: &Pricing, usage: &TokenUsage) -> Decimal {
    [
        priced(usage.input, pricing.input),
        priced(usage.cached_input, pricing.cached_input),
        priced(usage.cache_write, pricing.cache_write),
        priced(usage.cache_write_1h, cache_write_1h(pricing)),
        priced(usage.output, pricing.output),
        priced(usage.reasoning, pricing.reasoning),
    ]
    .into_iter()
    .fold(Decimal::ZERO, |a, b| {
        a.checked_add(b).unwrap_or(Decimal::MAX)
    })
    .normalize()
}

/// What a request may cost before its answer is known, for budget reservations: every
/// prompt token at the dearer of fresh input and a (5-minute) cache write, and `max_output`
/// tokens at the dearer of output and reasoning. Only 1-hour cache writes and a prompt
/// estimate below the provider's own count can make the real cost higher.
pub fn estimate(pricing: &Pricing, prompt_tokens: u64, max_output: u64) -> Decimal {
    let input = pricing.input.max(pricing.cache_write);
    let output = pricing.output.max(pricing.reasoning);
    priced(prompt_tokens, input)
        .checked_add(priced(max_output, output))
        .unwrap_or(Decimal::MAX)
        .normalize()
}

/// Nano-USD per USD: the integer unit budgets count in the state layer.
const NANOS: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// `usd` in nano-USD, rounded up so rounding never lets spend slip under a limit.
pub fn to_nanos(usd: Decimal) -> i64 {
    usd.checked_mul(NANOS)
        .map(|n| n.ceil())
        .and_then(|n| i64::try_from(n).ok())
        .unwrap_or(i64::MAX)
}

/// Nano-USD back to USD, exact.
pub fn from_nanos(nanos: i64) -> Decimal {
    Decimal::from(nanos)
        .checked_div(NANOS)
        .unwrap_or(Decimal::ZERO)
        .normalize()
}
