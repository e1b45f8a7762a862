//! Raw stream passthrough: the upstream's SSE events go to the client as they came, byte
//! for byte, when the client's door speaks the upstream's own API (Anthropic Messages to an
//! Anthropic backend, Responses to OpenAI). Translating to chat chunks and back would lose
//! what chunks cannot carry (thinking signatures, citations, server-tool blocks, event types
//! added later).
//!
//! The pipeline still has to know three things about such a stream, so each format has a
//! small [`RawFormat`] reader that looks at every event without changing it: the usage (for
//! cost, budgets, quotas and metrics), when content starts (time to first token, and until
//! then a failure may still fall back), and how it ends (the format's end event, an in-band
//! error event, or a cut). [`RawStream`] splits the upstream bytes into whole events
//! ([`SseFramer`]: a cut never forwards half an event), shows each to the reader and queues
//! the frame. The door's [`RawEncoder`] only writes what the gateway adds: the cost comment
//! after a clean end, and the door's error event after a failure the upstream did not
//! report itself.
//!
//! Response chunk filters (guardrails) see translated chunks only: raw frames bypass them.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rust_decimal::Decimal;

use super::encode::StreamEncoder;
use crate::{
    failure::Failure,
    stream::sse::{MAX_EVENT_BYTES, SseDecoder, SseEvent},
    wire::openai::{ChatChunk, Usage},
};

/// What one upstream event means to the pipeline.
#[derive(Debug)]
pub enum Seen {
    /// Metadata, keep-alives, block boundaries, event types added later.
    Meta,
    /// Output the client sees (a text, tool-input or thinking delta).
    Content,
    /// The format's end event: the answer is complete.
    End,
    /// An in-band error event: the frame (already in the door's format) is forwarded and
    /// the stream ends as this failure, with no error frame of the gateway's own.
    Error(Failure),
}

/// Reads one format's events without changing them.
pub trait RawFormat: Send + 'static {
    /// Looks at one event. `Err` for an event the format forbids (unreadable JSON): the
    /// stream ends with the gateway's error frame instead.
    fn event(&mut self, event: &SseEvent) -> Result<Seen, Failure>;

    /// The usage reported so far, in the gateway's shape.
    fn usage(&self) -> Option<Usage>;
}

/// Splits an SSE byte stream into whole events, each with its exact bytes (comments and
/// blank lines included), whatever the line ends (`\n`, `\r\n`, `\r`) and the splits.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: BytesMut,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    /// The last scanned byte ended a line (or nothing was scanned yet).
    at_line_start: bool,
    /// The last scanned byte was `\r` (a following `\n` belongs to it).
    after_cr: bool,
}

impl SseFramer {
    /// An empty framer.
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            ..Self::default()
        }
    }

    /// Adds bytes; pushes every event they complete.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Bytes>) -> Result<(), Failure> {
        self.buf.extend_from_slice(bytes);
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            i += 1;
            if self.after_cr && b == b'\n' {
                // The `\n` of a `\r\n` (when its `\r` ended the previous frame, it goes
                // out with the next one: the bytes stay in order).
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            if b == b'\n' || b == b'\r' {
                if self.at_line_start {
                    // An empty line: the event ends here (with the `\n` of a `\r\n` when it
                    // is already here).
                    if b == b'\r' && self.buf.get(i) == Some(&b'\n') {
                        i += 1;
                        self.after_cr = false;
                    }
                    out.push(self.buf.split_to(i).freeze());
                    i = 0;
                }
                self.at_line_start = true;
            } else {
                self.at_line_start = false;
            }
        }
        self.scanned = i;
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(Failure::protocol(format!(
                "upstream event exceeds {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// Takes the bytes after the last whole event (line ends a clean end may leave, or
    /// what a cut left unfinished).
    pub fn take_rest(&mut self) -> Bytes {
        self.scanned = 0;
        self.buf.split().freeze()
    }
}

/// An upstream SSE stream forwarded as it came, read by its format's [`RawFormat`].
pub struct RawStream {
    framer: SseFramer,
    decoder: SseDecoder,
    format: Box<dyn RawFormat>,
    /// The format's end event was seen.
    pub ended: bool,
    /// A content event was seen.
    pub content: bool,
    /// The upstream reported its own error in-band (its frame is queued).
    pub error_forwarded: bool,
}

impl RawStream {
    /// A stream read by `format`.
    pub fn new(format: Box<dyn RawFormat>) -> Self {
        Self {
            framer: SseFramer::new(),
            decoder: SseDecoder::new(),
            format,
            ended: false,
            content: false,
            error_forwarded: false,
        }
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Option<Usage> {
        self.format.usage()
    }

    /// Feeds upstream bytes; queues the whole events they complete. `Err` ends the stream.
    pub fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        let mut frames = Vec::new();
        let framed = self.framer.feed(bytes, &mut frames);
        for frame in frames {
            let events = self
                .decoder
                .feed(&frame)
                .map_err(|e| Failure::protocol(e.to_string()))?;
            let mut failed = None;
            for event in &events {
                match self.format.event(event)? {
                    Seen::Meta => {}
                    Seen::Content => self.content = true,
                    Seen::End => self.ended = true,
                    Seen::Error(f) => failed = Some(f),
                }
            }
            out.push_back(frame);
            if let Some(f) = failed {
                self.error_forwarded = true;
                return Err(f);
            }
        }
        framed
    }

    /// The upstream body ended: queues trailing line ends; `Err` when the format's end
    /// event never came (a cut stream must never look complete).
    pub fn finish(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        let rest = self.framer.take_rest();
        if !self.ended {
            return Err(Failure::protocol(
                "the upstream stream ended before its end event",
            ));
        }
        if !rest.iter().all(|b| *b == b'\n' || *b == b'\r') {
            return Err(Failure::protocol(format!(
                "the upstream stream ended inside an event after its end event ({} bytes)",
                rest.len()
            )));
        }
        if !rest.is_empty() {
            out.push_back(rest);
        }
        Ok(())
    }
}

/// The door's encoder for a raw stream: the upstream's frames are already in the door's
/// format, so it writes only the cost comment after a clean end and the door's error event
/// after a failure.
pub struct RawEncoder {
    error_frame: fn(&Failure) -> Bytes,
}

impl RawEncoder {
    /// An encoder writing failures with `error_frame`.
    pub fn new(error_frame: fn(&Failure) -> Bytes) -> Self {
        Self { error_frame }
    }
}

impl StreamEncoder for RawEncoder {
    fn chunk(&mut self, _chunk: &ChatChunk, _out: &mut VecDeque<Bytes>) -> Result<(), Failure> {
        Err(Failure::protocol(
            "a translated chunk reached a raw passthrough stream",
        ))
    }

    fn end(&mut self, _usage: Option<&Usage>, cost: Option<Decimal>, out: &mut VecDeque<Bytes>) {
        if let Some(cost) = cost {
            out.push_back(Bytes::from(format!(
                ": x-tollgate-cost-usd={}\n\n",
                super::pays::cost_header(cost)
            )));
        }
    }

    fn fail(&mut self, failure: &Failure, out: &mut VecDeque<Bytes>) {
        out.push_back((self.error_frame)(failure));
    }
}

#[cfg(test)]
#[path = "passthrough_tests.rs"]
mod tests;
