use super::*;
use crate::failure::FailureKind;

/// A format whose events are named `content`, `end`, `error` or anything else (meta);
/// `usage` events carry the output token count in their data.
struct Named {
    output: Option<u64>,
}

impl RawFormat for Named {
    fn event(&mut self, event: &SseEvent) -> Result<Seen, Failure> {
        Ok(match event.event.as_deref() {
            Some("content") => Seen::Content,
            Some("end") => Seen::End,
            Some("error") => Seen::Error(Failure::new(FailureKind::Overloaded, "busy")),
            Some("usage") => {
                let n = event
                    .data
                    .parse()
                    .map_err(|_| Failure::protocol("bad usage"))?;
                self.output = Some(n);
                Seen::Meta
            }
            _ => Seen::Meta,
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.output.map(|n| Usage::new(1, n, 0, 0))
    }
}

fn raw() -> RawStream {
    RawStream::new(Box::new(Named { output: None }))
}

/// Feeds `input` in pieces of `split` bytes; returns the frames and the outcome.
fn run(input: &[u8], split: usize) -> (Vec<Bytes>, RawStream, Result<(), Failure>) {
    let mut stream = raw();
    let mut out = VecDeque::new();
    for piece in input.chunks(split.max(1)) {
        if let Err(f) = stream.feed(piece, &mut out) {
            return (out.into_iter().collect(), stream, Err(f));
        }
    }
    let end = stream.finish(&mut out);
    (out.into_iter().collect(), stream, end)
}

const MIXED: &[u8] = b"event: meta\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: content\r\ndata: x\r\n\r\nevent: usage\rdata: 7\r\revent: content\ndata: line1\ndata: line2\n\nevent: end\ndata: {}\n\n\n";

#[test]
fn frames_are_the_upstream_bytes_unchanged_at_every_split() {
    for split in 1..=MIXED.len() {
        let (frames, stream, end) = run(MIXED, split);
        assert!(end.is_ok(), "split {split}: {end:?}");
        assert_eq!(frames.concat(), MIXED, "split {split}");
        assert!(stream.content && stream.ended);
        assert_eq!(stream.usage().map(|u| u.completion_tokens), Some(7));
    }
}

#[test]
fn only_whole_events_are_forwarded() {
    let (frames, _, _) = run(b"event: content\ndata: x\n\nevent: content\ndata: half", 4);
    assert_eq!(frames.concat(), b"event: content\ndata: x\n\n");
}

#[test]
fn a_stream_cut_before_its_end_event_fails() {
    for input in [
        &b"event: content\ndata: x\n\n"[..],
        b"event: content\ndata: x\n\nevent: end\ndata: {}",
    ] {
        let (_, _, end) = run(input, 3);
        let f = end.unwrap_err();
        assert_eq!(f.kind, FailureKind::Protocol, "{input:?}");
    }
}

#[test]
fn an_in_band_error_is_forwarded_and_ends_the_stream() {
    let input = b"event: content\ndata: x\n\nevent: error\ndata: {}\n\nevent: content\ndata: y\n\n";
    let (frames, stream, end) = run(input, 5);
    assert_eq!(end.unwrap_err().kind, FailureKind::Overloaded);
    assert!(stream.error_forwarded);
    assert_eq!(
        frames.concat(),
        b"event: content\ndata: x\n\nevent: error\ndata: {}\n\n",
        "nothing after the error event"
    );
}

#[test]
fn an_oversized_event_fails_instead_of_buffering() {
    let mut stream = raw();
    let mut out = VecDeque::new();
    let big = vec![b'x'; MAX_EVENT_BYTES + 1];
    assert!(stream.feed(b"data: ", &mut out).is_ok());
    assert!(stream.feed(&big, &mut out).is_err());
}

#[test]
fn the_raw_encoder_adds_only_the_cost_and_the_door_error() {
    fn error_frame(f: &Failure) -> Bytes {
        Bytes::from(format!("event: error\ndata: {}\n\n", f.kind.as_str()))
    }
    let mut encoder = RawEncoder::new(error_frame);
    let mut out = VecDeque::new();
    encoder.end(None, None, &mut out);
    assert!(out.is_empty(), "the upstream's end event already went out");
    encoder.end(None, Some(Decimal::new(15, 4)), &mut out);
    assert!(
        out[0].starts_with(b": x-tollgate-cost-usd=0.0015"),
        "{out:?}"
    );
    encoder.fail(&Failure::protocol("cut"), &mut out);
    assert_eq!(
        out[1],
        Bytes::from_static(b"event: error\ndata: protocol_error\n\n")
    );
}
