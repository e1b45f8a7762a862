//! Guardrail scanning throughput on 10 MB inputs: every detector plus the injection
//! heuristic and a blocked pattern, over prose with a finding every few kilobytes and over
//! adversarial text (long digit runs, near-miss cards, `@`-soup). Prints MB/s for a whole
//! prompt and for a stream fed in 4 KiB chunks. Run: `just bench`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken setup should fail the bench loudly

use std::sync::Arc;

use tokio::time::Instant;
use tollgate_crds::config::{
    Detector, DetectorConfig, GuardrailAction, GuardrailScope, GuardrailsConfig,
};
use tollgate_gateway::{
    guardrails::{
        Fired, RouteGuardrails, StreamGuard,
        scan::{Rule, Scanner, Verdict},
    },
    metrics::Metrics,
    wire::openai::{ChatChunk, Delta},
};

const SIZE: usize = 10 * 1024 * 1024;

fn guardrails(with_secrets: bool) -> Arc<RouteGuardrails> {
    let pii = Detector::ALL
        .iter()
        .filter(|d| with_secrets || **d != Detector::Secrets)
        .map(|&detector| DetectorConfig {
            detector,
            action: GuardrailAction::Redact,
        })
        .collect();
    Arc::new(
        RouteGuardrails::compile(&GuardrailsConfig {
            max_prompt_tokens: None,
            blocked_patterns: vec!["(?i)project[ ]{1,3}falcon".into()],
            pii,
            prompt_injection: Some(GuardrailAction::Flag),
            applies_to: GuardrailScope::Both,
        })
        .unwrap(),
    )
}

fn repeat_to(unit: &str) -> String {
    let mut s = String::with_capacity(SIZE + unit.len());
    while s.len() < SIZE {
        s.push_str(unit);
    }
    s
}

fn prose() -> String {
    let filler = "The quarterly report covers revenue, hiring and the roadmap for next year. ";
    let mut unit = filler.repeat(40);
    unit.push_str(
        "Contact jane.doe@example.com or +1 415 555 2671 about invoice 4111 1111 1111 1111. ",
    );
    repeat_to(&unit)
}

fn adversarial() -> String {
    repeat_to("4111 1111 1111 1112 1234567890123456789012 a@b@c@d.e 1.2.3.4.5.6 ::::::: +++ ((( ")
}

fn whole(g: &RouteGuardrails, text: &str) -> f64 {
    let mut t = text.to_owned();
    let started = Instant::now();
    g.prompt
        .as_ref()
        .unwrap()
        .check_text(&mut t, false, &g.names, &mut Verdict::default());
    started.elapsed().as_secs_f64()
}

fn streamed(g: &Arc<RouteGuardrails>, text: &str) -> (f64, usize) {
    let metrics = Arc::new(Metrics::new());
    let mut f =
        StreamGuard::new(Some(g), &Fired::default(), &metrics, &Arc::from("bench")).unwrap();
    let mut out = Vec::new();
    let started = Instant::now();
    let mut pos = 0;
    while pos < text.len() {
        let mut end = (pos + 4096).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let delta = Delta {
            content: Some(text[pos..end].to_owned()),
            ..Delta::default()
        };
        f.chunk(ChatChunk::delta("c", "m", 0, delta, None), &mut out)
            .unwrap();
        out.clear();
        pos = end;
    }
    f.finish(&mut out).unwrap();
    (started.elapsed().as_secs_f64(), f.max_held())
}

fn main() {
    let mb = SIZE as f64 / 1e6;
    for (label, text) in [("prose", prose()), ("adversarial", adversarial())] {
        for secrets in [false, true] {
            let g = guardrails(secrets);
            let t = whole(&g, &text);
            let (s, held) = streamed(&g, &text);
            println!(
                "guardrails {label:<11} secrets={secrets:<5} rules={:>2}: whole prompt {:>6.1} MB/s ({t:.2}s for {mb:.1} MB); stream in 4 KiB chunks {:>6.1} MB/s, held back at most {held} B (hold {} B)",
                g.prompt.as_ref().unwrap().rules.len(),
                mb / t,
                mb / s,
                g.stream_hold(),
            );
        }
        per_rule(&guardrails(true), &text, label);
    }
}

/// Each rule alone over `text`, to show where the time goes.
fn per_rule(g: &RouteGuardrails, text: &str, label: &str) {
    let mb = text.len() as f64 / 1e6;
    let mut line = format!("guardrails {label:<11} per rule MB/s:");
    for rule in &g.prompt.as_ref().unwrap().rules {
        let alone = Scanner {
            rules: vec![Rule {
                id: rule.id,
                action: rule.action,
                regex: rule.regex.clone(),
                confirm: rule.confirm,
                skips_instructions: rule.skips_instructions,
                standalone_start: rule.standalone_start,
            }],
            max_len: 0,
        };
        let started = Instant::now();
        let mut found = Vec::new();
        alone.find(text, 0, text.len(), false, &mut found);
        let secs = started.elapsed().as_secs_f64();
        line.push_str(&format!(" {}={:.0}", g.names[rule.id], mb / secs));
    }
    println!("{line}");
}
