//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) used by Bedrock's
//! streaming APIs: a bounded, incremental decoder over `aws-smithy-eventstream`'s frame
//! decoder (which checks both CRCs), fed any split of the upstream bytes.
//!
//! A frame is `total length (u32) | headers length (u32) | prelude CRC | headers | payload |
//! message CRC`. The decoder reads the declared length as soon as four bytes have arrived and
//! refuses frames over [`MAX_FRAME_BYTES`] before buffering them, so memory stays bounded by
//! one frame plus one fed chunk.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
pub use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Buf, BytesMut};

/// Largest frame the decoder accepts; a provider sending more is treated as broken.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// The smallest well-formed frame: a 12-byte prelude and a 4-byte message CRC.
const MIN_FRAME_BYTES: usize = 16;

/// Why a stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    /// A frame declared a length past [`MAX_FRAME_BYTES`].
    #[error("upstream event-stream frame of {0} bytes exceeds {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    /// A frame is malformed: impossible length, bad CRC, bad header.
    #[error("malformed upstream event-stream frame: {0}")]
    Malformed(String),
}

/// Incremental event-stream decoder.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: BytesMut,
    frames: MessageFrameDecoder,
}

impl EventStreamDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the messages they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(len) = self.next_frame_len()? {
            if self.buf.len() < len {
                break;
            }
            let mut frame = self.buf.split_to(len).freeze();
            match self.frames.decode_frame(&mut frame) {
                Ok(DecodedFrame::Complete(message)) if !frame.has_remaining() => out.push(message),
                Ok(_) => {
                    return Err(EventStreamError::Malformed(
                        "frame length does not match its content".into(),
                    ));
                }
                Err(e) => return Err(EventStreamError::Malformed(e.to_string())),
            }
        }
        Ok(out)
    }

    /// Whether a partial frame is buffered (the stream was cut inside a frame).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The declared length of the buffered frame, once its first four bytes are in.
    fn next_frame_len(&self) -> Result<Option<usize>, EventStreamError> {
        let Some(prefix) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(EventStreamError::TooLarge(len));
        }
        if len < MIN_FRAME_BYTES {
            return Err(EventStreamError::Malformed(format!(
                "frame length {len} is below the {MIN_FRAME_BYTES}-byte minimum"
            )));
        }
        Ok(Some(len))
    }
}

/// The value of a string header (`:message-type`, `:event-type`, …), if present.
pub fn header_str<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::write_message_to;

    use super::*;

    fn frame(event_type: &str, payload: &str) -> Vec<u8> {
        let message = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event_type.to_owned().into()),
            ));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).unwrap();
        out
    }

    fn summary(messages: &[Message]) -> Vec<(String, String)> {
        messages
            .iter()
            .map(|m| {
                (
                    header_str(m, ":event-type").unwrap_or_default().to_owned(),
                    String::from_utf8_lossy(m.payload()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn frames_decode_the_same_at_every_split() {
        let mut input = frame("messageStart", r#"{"role":"assistant"}"#);
        input.extend(frame(
            "contentBlockDelta",
            r#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#,
        ));
        input.extend(frame("messageStop", r#"{"stopReason":"end_turn"}"#));
        let expected = vec![
            (
                "messageStart".to_owned(),
                r#"{"role":"assistant"}"#.to_owned(),
            ),
            (
                "contentBlockDelta".to_owned(),
                r#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#.to_owned(),
            ),
            (
                "messageStop".to_owned(),
                r#"{"stopReason":"end_turn"}"#.to_owned(),
            ),
        ];
        for split in 1..=input.len() {
            let mut d = EventStreamDecoder::new();
            let mut got = Vec::new();
            for chunk in input.chunks(split) {
                got.extend(d.feed(chunk).unwrap());
            }
            assert_eq!(summary(&got), expected, "split {split}");
            assert!(!d.has_partial());
        }
    }

    #[test]
    fn a_cut_frame_is_reported_as_partial() {
        let input = frame("messageStart", r#"{"role":"assistant"}"#);
        let mut d = EventStreamDecoder::new();
        assert!(d.feed(&input[..input.len() - 1]).unwrap().is_empty());
        assert!(d.has_partial());
    }

    #[test]
    fn oversized_frames_are_refused_before_buffering() {
        let mut d = EventStreamDecoder::new();
        let declared = u32::try_from(MAX_FRAME_BYTES + 1).unwrap().to_be_bytes();
        assert_eq!(
            d.feed(&declared),
            Err(EventStreamError::TooLarge(MAX_FRAME_BYTES + 1))
        );
    }

    #[test]
    fn corrupted_frames_are_malformed() {
        let mut input = frame("messageStart", r#"{"role":"assistant"}"#);
        let last = input.len() - 6;
        input[last] ^= 0xff;
        let mut d = EventStreamDecoder::new();
        assert!(matches!(
            d.feed(&input),
            Err(EventStreamError::Malformed(_))
        ));
        let mut d = EventStreamDecoder::new();
        assert!(matches!(
            d.feed(&[0, 0, 0, 3]),
            Err(EventStreamError::Malformed(_))
        ));
    }
}
