//! Answer checks on a stream: a [`ChunkFilter`] that scans each choice's text as it arrives,
//! redacting or blocking across chunk boundaries.
//!
//! Text is emitted once no later text can change it. Every rule's match is at most
//! `max_len` bytes and its confirmation looks at most [`MARGIN`] bytes around it, so a
//! finding that starts more than `max_len + MARGIN` bytes before the end of what arrived is
//! final: the filter emits up to there and holds back the rest
//! ([`RouteGuardrails::stream_hold`]; with every detector on, the private-key shape makes
//! that about 8.3 KiB, without secrets a few hundred bytes). While a redaction straddles the
//! boundary it holds from that redaction's start instead, so a match is never split. The
//! output equals redacting the whole answer at once, whatever the chunking (tested on every
//! split). A `block` ends the stream with a `content_policy_violation` error; the blocked
//! text is never sent.

use std::sync::Arc;

use super::{
    Fired, RouteGuardrails, Stage, Violation,
    scan::{MARGIN, Scanner, Verdict, floor_boundary},
};
use crate::{
    failure::{Failure, FailureKind},
    metrics::Metrics,
    wire::openai::{ChatChunk, ChunkChoice, Delta},
};

/// One choice's text not yet emitted, after a little emitted context for look-behind.
#[derive(Debug)]
struct Held {
    index: u32,
    text: String,
    context: usize,
}

/// The response guardrails of one stream.
pub struct StreamGuard {
    guard: Arc<RouteGuardrails>,
    scanner: Arc<Scanner>,
    fired: Fired,
    metrics: Arc<Metrics>,
    route: Arc<str>,
    held: Vec<Held>,
    template: Option<ChatChunk>,
    max_held: usize,
}

impl StreamGuard {
    /// The filter for a route whose guardrails check answers (`None` otherwise).
    pub fn new(
        guard: Option<&Arc<RouteGuardrails>>,
        fired: &Fired,
        metrics: &Arc<Metrics>,
        route: &Arc<str>,
    ) -> Option<Self> {
        let guard = guard?;
        Some(Self {
            scanner: Arc::clone(guard.response.as_ref()?),
            guard: Arc::clone(guard),
            fired: fired.clone(),
            metrics: Arc::clone(metrics),
            route: Arc::clone(route),
            held: Vec::new(),
            template: None,
            max_held: 0,
        })
    }

    /// The most text held back at any time so far, in bytes.
    pub fn max_held(&self) -> usize {
        self.max_held
    }

    /// Adds `text` to choice `index` and returns what may be sent now (everything when
    /// `last`).
    fn push(&mut self, index: u32, text: &str, last: bool) -> Result<String, Failure> {
        let hold = self.guard.stream_hold();
        let pos = match self.held.iter().position(|h| h.index == index) {
            Some(p) => p,
            None => {
                self.held.push(Held {
                    index,
                    text: String::new(),
                    context: 0,
                });
                self.held.len() - 1
            }
        };
        let held = &mut self.held[pos];
        held.text.push_str(text);
        let from = held.context;
        let len = held.text.len();
        let cut = if last {
            len
        } else {
            floor_boundary(&held.text, len.saturating_sub(hold)).max(from)
        };
        let mut findings = Vec::new();
        self.scanner
            .find(&held.text, from, cut, false, &mut findings);
        let mut verdict = Verdict::default();
        self.scanner.judge(&findings, &mut verdict);
        if verdict.fired != 0 {
            super::metrics::fired(
                &self.metrics,
                &self.route,
                &self.guard,
                &self.fired,
                verdict.fired,
                Stage::Response,
            );
        }
        if let Some(id) = verdict.blocked {
            let violation = Violation {
                rule: self
                    .guard
                    .names
                    .get(id)
                    .map_or_else(String::new, |n| n.to_string()),
                stage: Stage::Response,
            };
            return Err(Failure::new(
                FailureKind::ContentPolicy,
                violation.to_string(),
            ));
        }
        let regions = self.scanner.regions(&findings);
        let emit_to = regions
            .iter()
            .find(|r| r.end > cut)
            .map_or(cut, |r| r.start);
        let mut out = String::with_capacity(emit_to - from);
        self.scanner.redact_into(
            &held.text,
            from,
            emit_to,
            &regions,
            &self.guard.names,
            &mut out,
        );
        let keep_from = floor_boundary(&held.text, emit_to.saturating_sub(MARGIN));
        held.text.drain(..keep_from);
        held.context = emit_to - keep_from;
        self.max_held = self.max_held.max(held.text.len() - held.context);
        if last {
            self.held.swap_remove(pos);
        }
        Ok(out)
    }
}

impl StreamGuard {
    /// Takes one chunk and pushes it with the text that may go out now (the pipeline's
    /// `ChunkFilter::chunk`).
    pub fn chunk(&mut self, mut chunk: ChatChunk, out: &mut Vec<ChatChunk>) -> Result<(), Failure> {
        if self.template.is_none() {
            let mut t = chunk.clone();
            t.choices.clear();
            t.usage = None;
            self.template = Some(t);
        }
        for choice in &mut chunk.choices {
            let last = choice.finish_reason.is_some();
            let text = choice.delta.content.take();
            if text.is_none() && !last {
                continue;
            }
            let emitted = self.push(choice.index, text.as_deref().unwrap_or(""), last)?;
            if text.is_some() || !emitted.is_empty() {
                choice.delta.content = Some(emitted);
            }
        }
        out.push(chunk);
        Ok(())
    }

    /// The upstream ended cleanly: pushes what is still held (the pipeline's
    /// `ChunkFilter::finish`).
    pub fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Failure> {
        let indexes: Vec<u32> = self.held.iter().map(|h| h.index).collect();
        let mut choices = Vec::new();
        for index in indexes {
            let text = self.push(index, "", true)?;
            if !text.is_empty() {
                choices.push(ChunkChoice {
                    index,
                    delta: Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    finish_reason: None,
                    rest: Default::default(),
                });
            }
        }
        if let (false, Some(mut chunk)) = (choices.is_empty(), self.template.clone()) {
            chunk.choices = choices;
            out.push(chunk);
        }
        Ok(())
    }
}
