//! Server-sent events: a bounded, incremental decoder for upstream streams (any byte split,
//! `\n`, `\r\n` or `\r` line ends, comments, multi-line data) and the encoder for ours.

use bytes::{Bytes, BytesMut};

/// Largest event the decoder accepts; a provider sending more is treated as broken.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why a stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event grew past [`MAX_EVENT_BYTES`].
    #[error("upstream event exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    /// The bytes are not UTF-8.
    #[error("upstream stream is not valid UTF-8")]
    NotUtf8,
}

/// Incremental SSE decoder.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    event: Option<String>,
    data: Option<String>,
    pending_cr: bool,
}

impl SseDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.pending_cr = b == b'\r';
                    let line = self.buf.split();
                    self.line(&line, &mut out)?;
                }
                _ => {
                    if self.buf.len() + self.data.as_ref().map_or(0, String::len) >= MAX_EVENT_BYTES
                    {
                        return Err(SseError::TooLarge);
                    }
                    self.buf.extend_from_slice(&[b]);
                }
            }
        }
        Ok(out)
    }

    /// Whether a partial event is buffered (the stream was cut inside an event).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.data.is_some()
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }
}

/// `data: <payload>\n\n`.
pub fn data_frame(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(payload);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

/// The OpenAI end-of-stream marker, sent only after a clean finish.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], split: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in input.chunks(split.max(1)) {
            out.extend(d.feed(chunk).unwrap());
        }
        out
    }

    #[test]
    fn events_decode_the_same_at_every_split() {
        let input = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\ndata: line1\ndata: line2\n\nevent: ping\rdata: {}\r\r";
        let expected = vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: None,
                data: "line1\nline2".into(),
            },
            SseEvent {
                event: Some("ping".into()),
                data: "{}".into(),
            },
        ];
        for split in 1..input.len() {
            assert_eq!(decode_split(input, split), expected, "split {split}");
        }
    }

    #[test]
    fn a_cut_event_is_reported_as_partial() {
        let mut d = SseDecoder::new();
        assert!(d.feed(b"data: {\"half\":").unwrap().is_empty());
        assert!(d.has_partial());
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut d = SseDecoder::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(d.feed(&big), Err(SseError::TooLarge));
    }
}
