//! A stored answer and its byte form for Redis (length-prefixed parts; no JSON, so a
//! stream's frames are stored exactly as they were sent).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rust_decimal::Decimal;

const MAGIC: &[u8; 4] = b"TGC1";

/// How the answer was sent, so it is replayed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON body.
    Json,
    /// Server-sent event frames, in order, the end marker included.
    Stream,
}

/// One complete, successful answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// JSON or stream.
    pub format: Format,
    /// The provider that answered.
    pub provider: String,
    /// The provider model that answered.
    pub model: String,
    /// What the answer cost when it was fetched: what each hit saves.
    pub cost_usd: Decimal,
    /// When it stops being served (ms since the epoch, on the gateway's clock).
    pub expires_ms: u64,
    /// The route's TTL when stored (in process only; not part of the byte form).
    pub ttl_ms: u64,
    /// The body (JSON) or the frames (stream).
    pub parts: Vec<Bytes>,
}

impl Entry {
    /// Bytes held, for the cache's byte bound.
    pub fn weight(&self) -> u64 {
        let parts: usize = self.parts.iter().map(Bytes::len).sum();
        (parts + self.provider.len() + self.model.len() + 64 + 16 * self.parts.len()) as u64
    }

    /// The byte form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(self.weight() as usize);
        out.put_slice(MAGIC);
        out.put_u8(match self.format {
            Format::Json => 0,
            Format::Stream => 1,
        });
        out.put_u64_le(self.expires_ms);
        for s in [&self.provider, &self.model, &self.cost_usd.to_string()] {
            put_part(&mut out, s.as_bytes());
        }
        out.put_u32_le(u32::try_from(self.parts.len()).unwrap_or(u32::MAX));
        for p in &self.parts {
            put_part(&mut out, p);
        }
        out.to_vec()
    }

    /// Parses [`Entry::encode`]'s output; `None` for anything else (another version, a
    /// truncated value): treated as a miss.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let mut b = Bytes::copy_from_slice(bytes);
        if b.len() < 4 + 1 + 8 || &b[..4] != MAGIC {
            return None;
        }
        b.advance(4);
        let format = match b.get_u8() {
            0 => Format::Json,
            1 => Format::Stream,
            _ => return None,
        };
        let expires_ms = b.get_u64_le();
        let provider = String::from_utf8(take_part(&mut b)?.to_vec()).ok()?;
        let model = String::from_utf8(take_part(&mut b)?.to_vec()).ok()?;
        let cost_usd = std::str::from_utf8(&take_part(&mut b)?)
            .ok()?
            .parse()
            .ok()?;
        if b.remaining() < 4 {
            return None;
        }
        let count = b.get_u32_le() as usize;
        let mut parts = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            parts.push(take_part(&mut b)?);
        }
        b.is_empty().then_some(Entry {
            format,
            provider,
            model,
            cost_usd,
            expires_ms,
            ttl_ms: 0,
            parts,
        })
    }
}

fn put_part(out: &mut BytesMut, part: &[u8]) {
    out.put_u32_le(u32::try_from(part.len()).unwrap_or(u32::MAX));
    out.put_slice(part);
}

fn take_part(b: &mut Bytes) -> Option<Bytes> {
    if b.remaining() < 4 {
        return None;
    }
    let len = b.get_u32_le() as usize;
    (b.remaining() >= len).then(|| b.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            format: Format::Stream,
            provider: "team-a/openai".into(),
            model: "gpt-4o-mini".into(),
            cost_usd: "0.000123".parse().unwrap(),
            expires_ms: 1_700_000_000_000,
            ttl_ms: 0,
            parts: vec![
                Bytes::from_static(b"data: {\"a\":1}\n\n"),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ],
        }
    }

    #[test]
    fn an_entry_survives_its_byte_form() {
        let e = entry();
        assert_eq!(Entry::decode(&e.encode()), Some(e));
    }

    #[test]
    fn truncated_or_foreign_bytes_are_not_an_entry() {
        let bytes = entry().encode();
        for cut in [0, 3, 10, bytes.len() - 1] {
            assert_eq!(Entry::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Entry::decode(b"{\"json\":true}"), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), None);
    }
}
