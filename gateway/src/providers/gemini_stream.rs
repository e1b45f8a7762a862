//! Gemini's SSE stream: each event is a whole `GenerateContentResponse` with new parts;
//! the stream is complete once every candidate has carried a `finishReason`.

use super::*;

/// Translates a Gemini SSE stream: each `data:` is a whole `GenerateContentResponse` with
/// the new parts.
#[derive(Debug)]
pub struct GeminiStream {
    decoder: SseDecoder,
    /// Boxed to keep [`super::AnyStream`] small.
    state: Box<StreamState>,
}

impl GeminiStream {
    /// A translator for one streamed answer.
    pub(super) fn new(target: &Target<'_>) -> Self {
        Self {
            decoder: SseDecoder::new(),
            state: Box::new(StreamState {
                request_id: target.request_id.to_owned(),
                created: target.created,
                model: target.model.to_owned(),
                id: None,
                candidates: Vec::new(),
                calls: 0,
                usage: None,
            }),
        }
    }
}

#[derive(Debug)]
struct StreamState {
    request_id: String,
    created: i64,
    /// `modelVersion` once seen, else the target's model.
    model: String,
    /// Fixed by the first event: `responseId` or `chatcmpl-{request_id}`.
    id: Option<String>,
    candidates: Vec<CandidateState>,
    /// Tool calls so far (for generated ids).
    calls: u32,
    usage: Option<Usage>,
}

#[derive(Clone, Copy, Debug, Default)]
struct CandidateState {
    role_sent: bool,
    tool_calls: u32,
    finished: bool,
}

impl StreamState {
    fn event(&mut self, data: &str) -> Result<Vec<ChatChunk>, Failure> {
        let value: Value = parse(data.as_bytes())?;
        if value.get("error").is_some() {
            return Err(classify_error(None, data.as_bytes()));
        }
        let resp = serde_json::from_value::<GenerateResponse>(value)
            .map_err(|e| Failure::protocol(format!("unreadable Gemini event ({e})")))?
            .unblocked();
        let id = self
            .id
            .get_or_insert_with(|| resp.id(&self.request_id))
            .clone();
        if let Some(model) = &resp.model_version {
            model.clone_into(&mut self.model);
        }
        if let Some(usage) = &resp.usage_metadata {
            self.usage = Some(usage.to_openai());
        }
        let (model, created) = (self.model.clone(), self.created);
        let chunk = |delta, finish: Option<&str>, index: usize| {
            let mut c = ChatChunk::delta(&id, &model, created, delta, finish.map(Into::into));
            c.choices[0].index = index as u32;
            c
        };
        let mut out = Vec::new();
        for (pos, cand) in resp.candidates.iter().enumerate() {
            let index = cand.index.map_or(pos, |i| i as usize);
            let said = cand.said(&self.request_id, &mut self.calls)?;
            let mut state = *self.state(index)?;
            let mut delta = Delta {
                content: said.text,
                ..Default::default()
            };
            if let Some(r) = said.reasoning {
                delta.rest.insert(REASONING.into(), Value::String(r));
            }
            if !said.calls.is_empty() {
                let calls = said.calls.into_iter().map(|c| {
                    state.tool_calls += 1;
                    ToolCallDelta {
                        index: state.tool_calls - 1,
                        id: Some(c.id),
                        kind: Some(c.kind),
                        function: Some(FunctionCallDelta {
                            name: Some(c.function.name),
                            arguments: Some(c.function.arguments),
                        }),
                    }
                });
                delta.tool_calls = Some(calls.collect());
            }
            if delta.content.is_some() || delta.tool_calls.is_some() || !delta.rest.is_empty() {
                delta.role = (!state.role_sent).then(|| "assistant".into());
                state.role_sent = true;
                out.push(chunk(delta, None, index));
            }
            if let Some(reason) = cand.finish_reason.as_deref() {
                let last = Delta {
                    role: (!state.role_sent).then(|| "assistant".into()),
                    ..Default::default()
                };
                state.role_sent = true;
                state.finished = true;
                let finish = finish_reason(Some(reason), state.tool_calls > 0);
                out.push(chunk(last, Some(finish), index));
            }
            *self.state(index)? = state;
        }
        Ok(out)
    }

    fn state(&mut self, index: usize) -> Result<&mut CandidateState, Failure> {
        if index >= MAX_CANDIDATES {
            let msg = format!("Gemini streamed candidate {index}, more than the gateway accepts");
            return Err(Failure::protocol(msg));
        }
        if self.candidates.len() <= index {
            self.candidates.resize(index + 1, CandidateState::default());
        }
        Ok(&mut self.candidates[index])
    }
}

impl StreamTranslator for GeminiStream {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        let events = self
            .decoder
            .feed(bytes)
            .map_err(|e| Failure::protocol(e.to_string()))?;
        let mut out = Vec::new();
        for event in events {
            out.extend(self.state.event(&event.data)?);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        if self.decoder.has_partial() {
            return Err(Failure::protocol("the Gemini stream ended inside an event"));
        }
        let s = &mut *self.state;
        if s.candidates.is_empty() || !s.candidates.iter().all(|c| c.finished) {
            let msg = "the Gemini stream ended before a finishReason";
            return Err(Failure::protocol(msg));
        }
        let Some(usage) = s.usage.take() else {
            return Ok(Vec::new());
        };
        let id = s.id.as_deref().unwrap_or_default();
        Ok(vec![ChatChunk::usage(id, &s.model, s.created, usage)])
    }
}
