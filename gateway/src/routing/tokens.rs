//! Prompt size in tokens, with OpenAI's `o200k_base` tokenizer (tiktoken). It is exact for
//! current OpenAI models and a close estimate for other providers' models, which is what
//! rules (`promptTokens`) and per-key token quotas need before the provider has counted.

use crate::wire::openai::ChatRequest;

/// Tokens OpenAI adds per message for the chat format (role and separators).
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply.
const PER_REPLY: u64 = 3;

/// Builds the tokenizer now (it takes a moment), so the first request does not pay for it.
pub fn warm_up() {
    let _ = tiktoken_rs::o200k_base_singleton();
}

/// Tokens in `text`.
pub fn count(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// Estimated prompt tokens of a chat request: message texts, names, tool definitions and
/// tool-call arguments, plus the chat format's per-message overhead. Images are not counted.
pub fn prompt_tokens(req: &ChatRequest) -> u64 {
    let mut total = PER_REPLY;
    for m in &req.messages {
        total += PER_MESSAGE + count(&m.text_content());
        if let Some(name) = &m.name {
            total += count(name);
        }
        for call in m.tool_calls.iter().flatten() {
            total += count(&call.function.name) + count(&call.function.arguments);
        }
    }
    for tool in req.tools.iter().flatten() {
        total += count(&tool.function.name);
        total += tool.function.description.as_deref().map_or(0, count);
        total += tool
            .function
            .parameters
            .as_ref()
            .map_or(0, |p| count(&p.to_string()));
    }
    total
}

/// An upper bound of [`prompt_tokens`] that costs no tokenizing: every token is at least
/// one byte, plus the same per-message overhead.
pub fn prompt_bytes(req: &ChatRequest) -> u64 {
    let mut total = PER_REPLY;
    for m in &req.messages {
        total += PER_MESSAGE + m.text_content().len() as u64;
        total += m.name.as_ref().map_or(0, |n| n.len() as u64);
        for call in m.tool_calls.iter().flatten() {
            total += (call.function.name.len() + call.function.arguments.len()) as u64;
        }
    }
    for tool in req.tools.iter().flatten() {
        total += tool.function.name.len() as u64;
        total += tool
            .function
            .description
            .as_ref()
            .map_or(0, |d| d.len() as u64);
        total += tool
            .function
            .parameters
            .as_ref()
            .map_or(0, |p| p.to_string().len() as u64);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_real_tokens_not_characters() {
        assert_eq!(count("hello world"), 2);
        // Characters/4 would say 1; it is 4 tokens ("antidisestablishmentarianism" splits).
        assert!(count("antidisestablishmentarianism") > 2);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn the_byte_bound_is_never_below_the_token_count() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "Grüße aus Köln! 日本語のテキストも数えます。"}]
        }))
        .unwrap();
        assert!(prompt_bytes(&req) >= prompt_tokens(&req));
    }

    #[test]
    fn prompt_estimate_includes_format_overhead() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}]
        }))
        .unwrap();
        assert_eq!(
            prompt_tokens(&req),
            PER_REPLY + 2 * PER_MESSAGE + count("Be brief.") + 2
        );
    }
}
