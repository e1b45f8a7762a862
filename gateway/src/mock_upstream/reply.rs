//! What the mock says, shared by the three APIs: token estimates, the reply split into stream
//! pieces, tool-call arguments made from a JSON schema, and deterministic embeddings.

use serde_json::{Map, Value, json};

/// Characters per token of the estimate (roughly English text with a BPE tokenizer).
pub(crate) const CHARS_PER_TOKEN: usize = 4;

/// Keys whose string values are counted as input text.
const TEXT_KEYS: &[&str] = &["content", "text", "system", "arguments"];

/// Most embedding dimensions accepted.
pub(crate) const MAX_DIMENSIONS: usize = 4096;

/// Dimensions of an embedding when the request does not ask for a number.
pub(crate) const DEFAULT_DIMENSIONS: usize = 8;

/// Tokens for `chars` characters: ⌈chars / 4⌉.
pub(crate) fn tokens(chars: usize) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN) as u64
}

/// Prompt tokens of the given request parts: the text in them, at least 1.
pub(crate) fn prompt_tokens(parts: &[Option<&Value>]) -> u64 {
    let chars: usize = parts.iter().flatten().map(|v| text_chars(v, true)).sum();
    tokens(chars).max(1)
}

/// Characters of text in `value`: strings at the top or under a [`TEXT_KEYS`] key, anywhere.
fn text_chars(value: &Value, counted: bool) -> usize {
    match value {
        Value::String(s) if counted => s.chars().count(),
        Value::Array(items) => items.iter().map(|v| text_chars(v, counted)).sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| text_chars(v, TEXT_KEYS.contains(&k.as_str())))
            .sum(),
        _ => 0,
    }
}

/// The reply cut to `max_tokens` (if given): the text and whether it was cut.
pub(crate) fn truncate(reply: &str, max_tokens: Option<u64>) -> (String, bool) {
    match max_tokens {
        Some(max) if tokens(reply.chars().count()) > max => {
            let keep = usize::try_from(max)
                .unwrap_or(usize::MAX)
                .saturating_mul(CHARS_PER_TOKEN);
            (reply.chars().take(keep).collect(), true)
        }
        _ => (reply.to_owned(), false),
    }
}

/// The reply split into stream pieces, one per word, each but the first with its leading space.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        if i == 0 {
            out.push(word.to_owned());
        } else {
            out.push(format!(" {word}"));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// Tool-call argument JSON split into fragments of at most `size` characters, as providers
/// stream them.
pub(crate) fn fragments(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// Arguments satisfying `schema`'s required properties with placeholder values: the first enum
/// value, else `"mock"` for strings, 0 for numbers, false, [] or a nested object.
pub(crate) fn arguments(schema: Option<&Value>) -> Value {
    let Some(schema) = schema else {
        return Value::Object(Map::new());
    };
    placeholder(schema, 0)
}

fn placeholder(schema: &Value, depth: usize) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.to_ascii_lowercase(),
        // `["string", "null"]`: the first non-null type.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ => "null".to_owned(),
    };
    match ty.as_str() {
        "string" => json!("mock"),
        "integer" | "number" => json!(0),
        "boolean" => json!(false),
        "array" => json!([]),
        "object" if depth < 8 => {
            let mut out = Map::new();
            let required = schema.get("required").and_then(Value::as_array);
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                let prop = schema
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .unwrap_or(&Value::Null);
                out.insert(name.to_owned(), placeholder(prop, depth + 1));
            }
            Value::Object(out)
        }
        "object" => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// A unit-length vector of `dims` floats derived from a hash of `input`: the same input always
/// gives the same vector, different inputs almost surely different ones.
pub(crate) fn embedding(input: &[u8], dims: usize) -> Vec<f32> {
    let raw: Vec<f64> = (0..dims as u64)
        .map(|i| {
            let h = fnv1a(input, i);
            // Top 53 bits to [0, 1), then to [-1, 1).
            ((h >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in bytes.iter().chain(&seed.to_le_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final avalanche so neighbouring seeds spread over the whole range.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimates() {
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(1), 1);
        assert_eq!(tokens(8), 2);
        assert_eq!(tokens(9), 3);
        let messages = json!([
            {"role": "system", "content": "12345678"},
            {"role": "user", "content": [{"type": "text", "text": "1234"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAAAAAAAAAAAAAA"}}]}
        ]);
        assert_eq!(prompt_tokens(&[Some(&messages)]), 3);
        assert_eq!(prompt_tokens(&[None]), 1);
        assert_eq!(
            prompt_tokens(&[Some(&json!("abcdefgh")), Some(&messages)]),
            5
        );
    }

    #[test]
    fn pieces_rebuild_the_text() {
        let text = "Hello from the mock.";
        let p = pieces(text);
        assert_eq!(p, vec!["Hello", " from", " the", " mock."]);
        assert_eq!(p.concat(), text);
        assert!(pieces("").is_empty());
        assert_eq!(fragments("{\"a\":1}", 3).concat(), "{\"a\":1}");
        assert_eq!(fragments("{}", 8), vec!["{}"]);
    }

    #[test]
    fn truncation() {
        assert_eq!(
            truncate("abcdefghij", Some(2)),
            ("abcdefgh".to_owned(), true)
        );
        assert_eq!(
            truncate("abcdefgh", Some(2)),
            ("abcdefgh".to_owned(), false)
        );
        assert_eq!(truncate("abc", None), ("abc".to_owned(), false));
    }

    #[test]
    fn arguments_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "INTEGER"},
                "when": {"type": "object", "properties": {"day": {"type": ["string", "null"]}}, "required": ["day"]},
                "optional": {"type": "string"}
            },
            "required": ["city", "unit", "days", "when"]
        });
        assert_eq!(
            arguments(Some(&schema)),
            json!({"city": "mock", "unit": "celsius", "days": 0, "when": {"day": "mock"}})
        );
        assert_eq!(arguments(None), json!({}));
        assert_eq!(arguments(Some(&json!({"type": "object"}))), json!({}));
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding(b"hello", 8);
        assert_eq!(a, embedding(b"hello", 8));
        assert_ne!(a, embedding(b"hellp", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        assert!(a.iter().any(|x| *x < 0.0) && a.iter().any(|x| *x > 0.0));
    }
}
