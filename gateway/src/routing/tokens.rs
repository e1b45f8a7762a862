//! Prompt size in tokens, for rules (`promptTokens`), per-key token quotas and context
//! windows, before the provider has counted.
//!
//! Counting must never stall the gateway: it runs on the async workers, so it costs O(bytes)
//! with a small constant and is bounded.
//! - [`prompt_bytes`]: an upper bound (a token is at least one byte), free.
//! - [`estimate`]: one pass over the bytes by character class (letter runs, digit groups,
//!   punctuation, other scripts), never above the byte count. Needs no tables.
//! - Exact counting with OpenAI's `o200k_base` tokenizer (tiktoken) only when its tables
//!   were loaded — [`load_tokenizer`], called when a snapshot has a rule on prompt tokens or
//!   a token quota — and the prompt is small ([`EXACT_MAX_BYTES`]) with no long unbroken
//!   run (BPE on one long "word" is far slower than linear). Otherwise the estimate.

use std::sync::OnceLock;

use crate::wire::openai::{ChatRequest, Content, ContentPart};

/// Tokens OpenAI adds per message for the chat format (role and separators).
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply.
const PER_REPLY: u64 = 3;

/// Prompts up to this many bytes are counted exactly when the tokenizer is loaded.
pub const EXACT_MAX_BYTES: u64 = 8 * 1024;
/// An unbroken run of word characters longer than this is estimated, never tokenized.
const LONG_RUN: usize = 64;

static TOKENIZER: OnceLock<&'static tiktoken_rs::CoreBPE> = OnceLock::new();

/// Loads the tokenizer tables (a moment, and tens of MiB): call off the async workers, only
/// when a config needs exact counts.
pub fn load_tokenizer() {
    TOKENIZER.get_or_init(tiktoken_rs::o200k_base_singleton);
}

/// Tokens in `text`: exact when the tokenizer is loaded and the text is safe to tokenize,
/// else [`estimate`].
pub fn count(text: &str) -> u64 {
    match TOKENIZER.get() {
        Some(bpe) if text.len() as u64 <= EXACT_MAX_BYTES && !has_long_run(text) => {
            bpe.encode_ordinary(text).len() as u64
        }
        _ => estimate(text),
    }
}

fn has_long_run(text: &str) -> bool {
    let mut run = 0usize;
    for b in text.bytes() {
        if b.is_ascii_whitespace() {
            run = 0;
        } else {
            run += 1;
            if run > LONG_RUN {
                return true;
            }
        }
    }
    false
}

/// Estimated tokens in `text`, in one pass: a run of letters is one token per started 6
/// bytes, digits one per 3 (tokenizers group them so), punctuation one per 2, a non-ASCII
/// character one; whitespace joins the next token. Never more than `text.len()`.
pub fn estimate(text: &str) -> u64 {
    let mut tokens = 0u64;
    // Bytes per token of the current run's class (0: whitespace) and the run's length.
    let (mut per_token, mut run) = (0usize, 0usize);
    for b in text.bytes() {
        let class = match b {
            b'a'..=b'z' | b'A'..=b'Z' => 6,
            b'0'..=b'9' => 3,
            b if b.is_ascii_whitespace() => 0,
            b if b.is_ascii() => 2,
            // A UTF-8 lead byte starts a character: one token; continuation bytes add nothing.
            b if b >= 0xC0 => {
                tokens += 1;
                0
            }
            _ => continue,
        };
        if class != per_token {
            tokens += run_tokens(run, per_token);
            (per_token, run) = (class, 0);
        }
        run += 1;
    }
    tokens + run_tokens(run, per_token)
}

fn run_tokens(run: usize, per_token: usize) -> u64 {
    if per_token == 0 {
        0
    } else {
        run.div_ceil(per_token) as u64
    }
}

/// Estimated prompt tokens of a chat request: message texts, names, tool definitions and
/// tool-call arguments, plus the chat format's per-message overhead. Images are not counted.
pub fn prompt_tokens(req: &ChatRequest) -> u64 {
    let mut total = PER_REPLY;
    for_each_text(req, |text| total += count(text));
    total + PER_MESSAGE * req.messages.len() as u64
}

/// An upper bound of [`prompt_tokens`] that costs no tokenizing: every token is at least
/// one byte, plus the same per-message overhead.
pub fn prompt_bytes(req: &ChatRequest) -> u64 {
    let mut total = PER_REPLY;
    for_each_text(req, |text| total += text.len() as u64);
    total + PER_MESSAGE * req.messages.len() as u64
}

/// Calls `f` with every piece of prompt text, without copying any.
fn for_each_text(req: &ChatRequest, mut f: impl FnMut(&str)) {
    for m in &req.messages {
        match &m.content {
            Some(Content::Text(t)) => f(t),
            Some(Content::Parts(parts)) => {
                for p in parts {
                    if let ContentPart::Text { text } = p {
                        f(text);
                    }
                }
            }
            None => {}
        }
        if let Some(name) = &m.name {
            f(name);
        }
        for call in m.tool_calls.iter().flatten() {
            f(&call.function.name);
            f(&call.function.arguments);
        }
    }
    for tool in req.tools.iter().flatten() {
        f(&tool.function.name);
        if let Some(d) = &tool.function.description {
            f(d);
        }
        if let Some(p) = &tool.function.parameters {
            f(&p.to_string());
        }
    }
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
