//! The stream stage: an upstream stream read, translated and sent to the client as OpenAI
//! SSE. One reader handles the whole stream: before the first chunk is ready
//! ([`StreamReader::open`]) a failure goes back to the walk, which may still fall back
//! (nothing reached the client); after it, a failure ends the client's stream with an
//! OpenAI error event and no `[DONE]`, so SDKs raise instead of treating a cut answer as
//! complete. `[DONE]` follows only the upstream's own end marker. Dropping the stream (the
//! client went away) drops the upstream response, which cancels it.

use std::{collections::VecDeque, convert::Infallible, time::Duration};

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::{
    call::Clock,
    settle::{Settle, token_counts},
};
use crate::{
    error::GatewayError,
    failure::Failure,
    providers::{AnyStream, StreamTranslator},
    stream::sse::{DONE_FRAME, data_frame},
    upstream::UpstreamResponse,
    wire::openai::{ChatChunk, Usage},
};

/// An upstream stream being read and translated.
pub struct StreamReader {
    upstream: UpstreamResponse,
    translator: AnyStream,
    clock: Clock,
    include_usage: bool,
    pending: VecDeque<Bytes>,
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
        include_usage: bool,
    ) -> Result<Self, Failure> {
        let mut reader = Self {
            upstream,
            translator,
            clock,
            include_usage,
            pending: VecDeque::new(),
            usage: None,
            first_at: None,
            ended: false,
        };
        let mut produced = false;
        while !produced && !reader.ended {
            produced = reader.pull(true).await?;
        }
        Ok(reader)
    }

    /// Time spent waiting on the upstream so far.
    pub fn waited(&self) -> Duration {
        self.clock.waited
    }

    /// Reads one piece from the upstream and queues its frames; true when it produced a
    /// chunk. `first` reads against the first-byte deadline.
    async fn pull(&mut self, first: bool) -> Result<bool, Failure> {
        let d = self.clock.deadlines;
        let deadline = if first { d.first_byte } else { d.next_chunk() };
        let piece = self.clock.wait(self.upstream.chunk(deadline)).await?;
        let chunks = match piece {
            Some(bytes) => self.translator.feed(&bytes)?,
            None => {
                let chunks = self.translator.finish()?;
                self.ended = true;
                chunks
            }
        };
        let produced = !chunks.is_empty();
        self.push(chunks)?;
        if self.ended {
            self.pending.push_back(Bytes::from_static(DONE_FRAME));
        }
        Ok(produced)
    }

    fn push(&mut self, chunks: Vec<ChatChunk>) -> Result<(), Failure> {
        for chunk in chunks {
            if let Some(u) = &chunk.usage {
                self.usage = Some(u.clone());
            }
            let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
            if usage_only && !self.include_usage {
                continue;
            }
            if self.first_at.is_none() && !chunk.choices.is_empty() {
                self.first_at = Some(Instant::now());
            }
            let json = serde_json::to_vec(&chunk)
                .map_err(|e| Failure::protocol(format!("chunk cannot be encoded: {e}")))?;
            self.pending.push_back(data_frame(&json));
        }
        Ok(())
    }
}

/// The client's stream: the reader's frames, then what the stream's end settles.
pub struct ChatStream {
    reader: StreamReader,
    settle: Settle,
    busy: Duration,
    finished: bool,
    recorded: bool,
}

impl ChatStream {
    /// A stream that first sends what `reader` read while opening.
    pub fn new(reader: StreamReader, settle: Settle) -> Self {
        Self {
            busy: settle.started.elapsed().saturating_sub(reader.waited()),
            reader,
            settle,
            finished: false,
            recorded: false,
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
            if let Some(frame) = self.reader.pending.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            let t = Instant::now();
            let waited = self.reader.waited();
            let pulled = self.reader.pull(false).await;
            match pulled {
                Err(failure) => self.fail(failure),
                Ok(_) if self.reader.ended => {
                    self.finished = true;
                    self.record(None);
                }
                Ok(_) => {}
            }
            self.busy += t
                .elapsed()
                .saturating_sub(self.reader.waited().saturating_sub(waited));
        }
    }

    fn fail(&mut self, failure: Failure) {
        self.settle.stream_failed(&failure);
        let body = GatewayError::Upstream(failure.clone()).body();
        let json = serde_json::to_vec(&body).unwrap_or_default();
        self.reader.pending.push_back(data_frame(&json));
        self.finished = true;
        self.record(Some(failure.kind.as_str()));
    }

    /// Records the request once: `None` for a clean end, else the error type.
    fn record(&mut self, error_type: Option<&'static str>) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let usage = self.reader.usage.as_ref();
        self.settle.finish(
            error_type,
            usage.map(|u| u.total_tokens),
            usage.map(token_counts),
            self.busy,
        );
        if let Some(first) = self.reader.first_at {
            let output = usage.map_or(0, |u| u.completion_tokens);
            self.settle.stream_timing(first, output);
        }
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // The client went away before the end: count it; dropping the upstream cancels it.
        self.record(Some("client_disconnected"));
    }
}
