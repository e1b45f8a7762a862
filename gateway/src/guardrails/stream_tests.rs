//! The stream filter: at every split of a fixture the client gets exactly the whole-text
//! redaction, and never more than the stated bound is held back.

use std::sync::Arc;

use tollgate_crds::config::{GuardrailAction, GuardrailScope};

use super::{Fired, RouteGuardrails, StreamGuard, scan::Verdict, scan_tests::config};
use crate::{
    failure::FailureKind,
    metrics::Metrics,
    wire::openai::{ChatChunk, Delta},
};

const FIXTURE: &str = "Sure. Write to jane.doe@example.com or call +1 415 555 2671. Card 4111 1111 1111 1111 (expired), not 4111 1111 1111 1112; IBAN DE89 3704 0044 0532 0130 00. Server 192.168.0.10, key AKIAIOSFODNN7EXAMPLE. Thanks — ünïcödé ✓ done.";

fn guard(action: GuardrailAction) -> Arc<RouteGuardrails> {
    let mut c = config(action, GuardrailScope::Response);
    // Without the private-key shape the hold is small, so splits cross it often.
    c.pii
        .retain(|d| d.detector != tollgate_crds::config::Detector::Secrets);
    c.blocked_patterns = vec!["AKIA[0-9A-Z]{16}".into()];
    if action == GuardrailAction::Redact {
        c.blocked_patterns.clear();
    }
    Arc::new(RouteGuardrails::compile(&c).unwrap())
}

fn chunk(text: Option<&str>, finish: Option<&str>) -> ChatChunk {
    ChatChunk::delta(
        "c1",
        "m",
        1,
        Delta {
            content: text.map(str::to_owned),
            ..Delta::default()
        },
        finish.map(str::to_owned),
    )
}

/// Feeds `pieces` then a finish chunk; returns the text sent and the most held back.
fn run(g: &Arc<RouteGuardrails>, pieces: &[&str]) -> (Result<String, FailureKind>, usize) {
    let metrics = Arc::new(Metrics::new());
    let mut f = StreamGuard::new(
        Some(g),
        &Fired::new(Some(Arc::clone(g))),
        &metrics,
        &Arc::from("r"),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut result = Ok(());
    for p in pieces {
        result = result.and_then(|()| f.chunk(chunk(Some(p), None), &mut out));
    }
    result = result.and_then(|()| f.chunk(chunk(None, Some("stop")), &mut out));
    result = result.and_then(|()| f.finish(&mut out));
    let text: String = out
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    (result.map(|()| text).map_err(|e| e.kind), f.max_held())
}

fn whole(g: &RouteGuardrails) -> String {
    let mut text = FIXTURE.to_owned();
    g.response
        .as_ref()
        .unwrap()
        .check_text(&mut text, false, &g.names, &mut Verdict::default());
    text
}

#[test]
fn every_split_gives_the_whole_text_redaction_within_the_hold_bound() {
    let g = guard(GuardrailAction::Redact);
    let expected = whole(&g);
    assert!(
        expected.contains("[REDACTED:pii.email]") && expected.contains("1112"),
        "{expected}"
    );
    let hold = g.stream_hold();
    let bound = hold + g.response.as_ref().unwrap().max_len;
    let boundaries: Vec<usize> = (0..=FIXTURE.len())
        .filter(|&i| FIXTURE.is_char_boundary(i))
        .collect();
    for &i in &boundaries {
        for &j in boundaries.iter().filter(|&&j| j >= i) {
            let pieces = [&FIXTURE[..i], &FIXTURE[i..j], &FIXTURE[j..]];
            let (text, held) = run(&g, &pieces);
            assert_eq!(text.as_deref(), Ok(expected.as_str()), "split at {i}, {j}");
            assert!(held <= bound, "held {held} > {bound} at {i}, {j}");
        }
    }
    let chars: Vec<String> = FIXTURE.chars().map(String::from).collect();
    let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
    let (text, held) = run(&g, &pieces);
    assert_eq!(
        text.as_deref(),
        Ok(expected.as_str()),
        "one character per chunk"
    );
    assert!(
        held <= hold,
        "without a straddling match the hold is {hold}: held {held}"
    );
}

#[test]
fn a_blocked_match_ends_the_stream_before_it_is_sent() {
    let g = guard(GuardrailAction::Flag);
    for i in (0..=FIXTURE.len()).filter(|&i| FIXTURE.is_char_boundary(i)) {
        let metrics = Arc::new(Metrics::new());
        let mut f = StreamGuard::new(
            Some(&g),
            &Fired::new(Some(Arc::clone(&g))),
            &metrics,
            &Arc::from("r"),
        )
        .unwrap();
        let mut out = Vec::new();
        let r = f
            .chunk(chunk(Some(&FIXTURE[..i]), None), &mut out)
            .and_then(|()| f.chunk(chunk(Some(&FIXTURE[i..]), Some("stop")), &mut out));
        let e = r.unwrap_err();
        assert_eq!(e.kind, FailureKind::ContentPolicy);
        assert!(
            e.message.contains("blockedPatterns[0]") && !e.message.contains("AKIA"),
            "{}",
            e.message
        );
        let sent: String = out
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| c.delta.content.as_deref())
            .collect();
        assert!(!sent.contains("AKIA"), "split {i}: {sent}");
        assert_eq!(
            metrics.guardrail_findings(&crate::metrics::GuardrailLabels {
                route: "r".into(),
                rule: "pii.email".into(),
                action: "flag",
                stage: "response",
            }),
            1
        );
    }
}

#[test]
fn choices_are_held_apart_and_flushed_at_the_end() {
    let g = guard(GuardrailAction::Redact);
    let metrics = Arc::new(Metrics::new());
    let mut f = StreamGuard::new(Some(&g), &Fired::default(), &metrics, &Arc::from("r")).unwrap();
    let mut out = Vec::new();
    let mut two = chunk(Some("a: x@y.io"), None);
    let mut second = two.choices[0].clone();
    second.index = 1;
    second.delta.content = Some("b: z@w.io".into());
    two.choices.push(second);
    f.chunk(two, &mut out).unwrap();
    f.finish(&mut out).unwrap();
    let text = |i: u32| -> String {
        out.iter()
            .flat_map(|c| &c.choices)
            .filter(|c| c.index == i)
            .filter_map(|c| c.delta.content.as_deref())
            .collect()
    };
    assert_eq!(text(0), "a: [REDACTED:pii.email]");
    assert_eq!(text(1), "b: [REDACTED:pii.email]");
}
