use pretty_assertions::assert_eq;

use super::*;
use crate::{
    failure::FailureKind,
    pipeline::{passthrough::RawStream, responses::tests::Schema},
};

fn fixture() -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/responses/openai_stream_text.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Feeds `input` in pieces of `split` bytes: the frames, the stream and the outcome.
fn run(
    input: &[u8],
    split: usize,
    next: &NextSequence,
) -> (Vec<u8>, RawStream, Result<(), Failure>) {
    let mut stream = RawStream::new(Box::new(ResponsesEvents::new(next.clone())));
    let mut out = VecDeque::new();
    for piece in input.chunks(split.max(1)) {
        if let Err(f) = stream.feed(piece, &mut out) {
            return (
                out.iter().flatten().copied().collect::<Vec<u8>>(),
                stream,
                Err(f),
            );
        }
    }
    let end = stream.finish(&mut out);
    (
        out.iter().flatten().copied().collect::<Vec<u8>>(),
        stream,
        end,
    )
}

#[test]
fn a_recorded_stream_passes_unchanged_at_every_split_and_meters_its_usage() {
    let input = fixture();
    for split in 1..=input.len() {
        let next = NextSequence::default();
        let (frames, stream, end) = run(&input, split, &next);
        assert!(end.is_ok(), "split {split}: {end:?}");
        assert_eq!(frames, input, "split {split}");
        assert!(stream.content && stream.ended);
        let usage = stream.usage().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached(),
                usage.reasoning()
            ),
            (12, 9, 2, 3)
        );
        assert_eq!(next.0.load(Ordering::Relaxed), 10);
    }
}

#[test]
fn upstream_failures_end_the_stream_as_themselves() {
    let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":4,\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}}}\n\n";
    let (frames, stream, end) = run(failed, 7, &NextSequence::default());
    let failure = end.unwrap_err();
    assert_eq!(failure.kind, FailureKind::RateLimited);
    assert_eq!(failure.message, "slow down");
    assert!(stream.error_forwarded);
    assert_eq!(
        frames, failed,
        "the upstream's own event reaches the client"
    );

    let flat = b"event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\",\"param\":null,\"sequence_number\":2}\n\n";
    let failure = run(flat, 5, &NextSequence::default()).2.unwrap_err();
    assert_eq!(
        (failure.kind, failure.message.as_str()),
        (FailureKind::Server, "boom")
    );
}

#[test]
fn a_cut_stream_never_looks_complete_and_ends_with_a_numbered_error_event() {
    let input = fixture();
    let cut = &input[..input.len() - 200];
    let next = NextSequence::default();
    let (_, stream, end) = run(cut, 64, &next);
    assert!(end.is_err() && !stream.ended);
    let mut encoder = ResponsesRawEncoder::new(next.clone());
    let mut out = VecDeque::new();
    encoder.fail(&end.unwrap_err(), &mut out);
    let frame = String::from_utf8(out.iter().flatten().copied().collect::<Vec<u8>>()).unwrap();
    let data: Value = serde_json::from_str(
        frame
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert!(frame.starts_with("event: error\n"), "{frame}");
    Schema::load().event(&data);
    assert_eq!(
        data["sequence_number"],
        json!(next.0.load(Ordering::Relaxed))
    );
    assert_eq!(data["sequence_number"], json!(9));
}
