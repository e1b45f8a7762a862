//! The stream stage: an upstream stream read, translated and sent to the client. One reader
//! handles the whole stream: before the first chunk is ready ([`StreamReader::open`]) a
//! failure goes back to the walk, which may still fall back (nothing reached the client);
//! after it, a failure ends the client's stream with the encoder's error frames and no end
//! marker, so SDKs raise instead of treating a cut answer as complete. The end marker
//! follows only the upstream's own end. Dropping the stream (the client went away) drops the
//! upstream response, which cancels it.
//!
//! The reader yields translated chunks; [`ClientStream`] passes them through the request's
//! filters and its door's encoder, and shows every frame to the tap (see [`super::encode`]).
//! A raw reader ([`StreamReader::open_raw`]) yields the upstream's own frames instead, which
//! go to the client unchanged (see [`super::passthrough`]).

use std::{collections::VecDeque, convert::Infallible, time::Duration};

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::{
    call::Clock,
    encode::{StreamEncoder, StreamHooks},
    passthrough::RawStream,
    settle::{Settle, token_counts},
};
use crate::{
    failure::Failure,
    providers::{AnyStream, StreamTranslator},
    upstream::UpstreamResponse,
    wire::openai::{ChatChunk, Usage},
};

/// How the upstream's bytes become the client's.
enum Source {
    /// Translated into chat chunks, which the door's encoder writes.
    Chunks(AnyStream),
    /// Forwarded as the upstream's own frames.
    Raw(Box<RawStream>),
}

/// An upstream stream being read and translated (or forwarded raw).
pub struct StreamReader {
    upstream: UpstreamResponse,
    source: Source,
    clock: Clock,
    pending: Vec<ChatChunk>,
    /// Raw frames to forward.
    frames: VecDeque<Bytes>,
    usage: Option<Usage>,
    first_at: Option<Instant>,
    ended: bool,
}

impl StreamReader {
    /// Reads until the first chunk is ready (or the stream ended); a failure until then
    /// is the attempt's.
    pub async fn open(
        upstream: UpstreamResponse,
        translator: AnyStream,
        clock: Clock,
    ) -> Result<Self, Failure> {
        let mut reader = Self::new(upstream, Source::Chunks(translator), clock);
        while reader.pending.is_empty() && !reader.ended {
            reader.pull(true).await?;
        }
        Ok(reader)
    }

    /// Reads a stream to forward as it comes until its first content event (or its end);
    /// until then a failure, an in-band error event included, is the attempt's and nothing
    /// reached the client.
    pub async fn open_raw(
        upstream: UpstreamResponse,
        raw: RawStream,
        clock: Clock,
    ) -> Result<Self, Failure> {
        let mut reader = Self::new(upstream, Source::Raw(Box::new(raw)), clock);
        while reader.first_at.is_none() && !reader.ended {
            reader.pull(true).await?;
        }
        Ok(reader)
    }

    fn new(upstream: UpstreamResponse, source: Source, clock: Clock) -> Self {
        Self {
            upstream,
            source,
            clock,
            pending: Vec::new(),
            frames: VecDeque::new(),
            usage: None,
            first_at: None,
            ended: false,
        }
    }

    /// Whether the upstream already sent the client its own error event (raw streams).
    fn error_forwarded(&self) -> bool {
        matches!(&self.source, Source::Raw(raw) if raw.error_forwarded)
    }

    /// Time spent waiting on the upstream so far.
    pub fn waited(&self) -> Duration {
        self.clock.waited
    }

    /// The usage the upstream reported so far.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Reads one piece from the upstream and queues its chunks. `first` reads against the
    /// first-byte deadline.
    async fn pull(&mut self, first: bool) -> Result<(), Failure> {
        let d = self.clock.deadlines;
        let deadline = if first { d.first_byte } else { d.next_chunk() };
        let piece = self.clock.wait(self.upstream.chunk(deadline)).await?;
        let translator = match &mut self.source {
            Source::Chunks(translator) => translator,
            Source::Raw(raw) => {
                let step = match piece {
                    Some(bytes) => raw.feed(&bytes, &mut self.frames),
                    None => {
                        self.ended = true;
                        raw.finish(&mut self.frames)
                    }
                };
                if let Some(u) = raw.usage() {
                    self.usage = Some(u);
                }
                if self.first_at.is_none() && raw.content {
                    self.first_at = Some(Instant::now());
                }
                return step;
            }
        };
        let chunks = match piece {
            Some(bytes) => translator.feed(&bytes)?,
            None => {
                let chunks = translator.finish()?;
                self.ended = true;
                chunks
            }
        };
        for chunk in &chunks {
            if let Some(u) = &chunk.usage {
                self.usage = Some(u.clone());
            }
            if self.first_at.is_none() && !chunk.choices.is_empty() {
                self.first_at = Some(Instant::now());
            }
        }
        self.pending.extend(chunks);
        Ok(())
    }
}

/// The client's stream: the reader's chunks through the filters and the encoder, then what
/// the stream's end settles.
pub struct ClientStream {
    reader: StreamReader,
    encoder: Box<dyn StreamEncoder>,
    hooks: StreamHooks,
    settle: Settle,
    frames: VecDeque<Bytes>,
    busy: Duration,
    finished: bool,
    recorded: bool,
    complete: bool,
}

impl ClientStream {
    /// A stream that first sends what `reader` read while opening.
    pub fn new(
        reader: StreamReader,
        encoder: Box<dyn StreamEncoder>,
        hooks: StreamHooks,
        settle: Settle,
    ) -> Self {
        Self {
            busy: settle.started.elapsed().saturating_sub(reader.waited()),
            reader,
            encoder,
            hooks,
            settle,
            frames: VecDeque::new(),
            finished: false,
            recorded: false,
            complete: false,
        }
    }

    /// As a byte stream for the response body.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            s.next_frame().await.map(|frame| (Ok(frame), s))
        })
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                if let Some(tap) = &mut self.hooks.tap {
                    tap.frame(&frame);
                }
                if self.finished
                    && self.frames.is_empty()
                    && let Some(mut tap) = self.hooks.tap.take()
                {
                    tap.end(self.complete);
                }
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            if let Err(failure) = self.encode_pending() {
                self.fail(failure);
                continue;
            }
            if !self.frames.is_empty() {
                continue;
            }
            if self.reader.ended {
                self.end();
                continue;
            }
            let t = Instant::now();
            let waited = self.reader.waited();
            if let Err(failure) = self.reader.pull(false).await {
                self.fail(failure);
            }
            self.busy += t
                .elapsed()
                .saturating_sub(self.reader.waited().saturating_sub(waited));
        }
    }

    /// Passes the reader's queued chunks through the filters and the encoder; queues its
    /// raw frames as they are.
    fn encode_pending(&mut self) -> Result<(), Failure> {
        self.frames.append(&mut self.reader.frames);
        if self.reader.pending.is_empty() {
            return Ok(());
        }
        let mut chunks = std::mem::take(&mut self.reader.pending);
        for filter in &mut self.hooks.filters {
            let mut out = Vec::with_capacity(chunks.len());
            for chunk in chunks {
                filter.chunk(chunk, &mut out)?;
            }
            chunks = out;
        }
        for chunk in &chunks {
            self.encoder.chunk(chunk, &mut self.frames)?;
        }
        Ok(())
    }

    /// The upstream ended cleanly: flush the filters, then the closing frames.
    fn end(&mut self) {
        let mut held = Vec::new();
        for filter in &mut self.hooks.filters {
            let mut chunks = Vec::new();
            for chunk in held {
                if let Err(f) = filter.chunk(chunk, &mut chunks) {
                    return self.fail(f);
                }
            }
            if let Err(f) = filter.finish(&mut chunks) {
                return self.fail(f);
            }
            held = chunks;
        }
        for chunk in &held {
            if let Err(f) = self.encoder.chunk(chunk, &mut self.frames) {
                return self.fail(f);
            }
        }
        self.finished = true;
        self.complete = true;
        let cost = self.record(None);
        self.encoder
            .end(self.reader.usage.as_ref(), cost, &mut self.frames);
    }

    fn fail(&mut self, failure: Failure) {
        self.settle.stream_failed(&failure);
        // Raw frames read before the failure go first (an upstream's own error event
        // among them, which then replaces the door's).
        self.frames.append(&mut self.reader.frames);
        if !self.reader.error_forwarded() {
            self.encoder.fail(&failure, &mut self.frames);
        }
        self.finished = true;
        let _ = self.record(Some(failure.kind.as_str()));
    }

    /// Records the request once: `None` for a clean end, else the error type. Returns the
    /// cost when the usage is known.
    fn record(&mut self, error_type: Option<&'static str>) -> Option<rust_decimal::Decimal> {
        if self.recorded {
            return None;
        }
        self.recorded = true;
        let usage = self.reader.usage.as_ref();
        let cost = self.settle.finish(
            error_type,
            usage.map(|u| u.total_tokens),
            usage.map(token_counts),
            self.busy,
        );
        if let Some(first) = self.reader.first_at {
            let output = usage.map_or(0, |u| u.completion_tokens);
            self.settle.stream_timing(first, output);
        }
        cost
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        // The client went away before the end: count it; dropping the upstream cancels it.
        let _ = self.record(Some("client_disconnected"));
        if let Some(mut tap) = self.hooks.tap.take() {
            tap.end(false);
        }
    }
}
