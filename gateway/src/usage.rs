//! One JSON line per request: who (key id and team, never the key), what (route, provider,
//! model, tokens by class), what it cost, how long it took, how it ended. Lines go through a
//! bounded queue to one writer task, so a slow disk never slows a request; when the queue is
//! full the line is dropped and counted (`tollgate_usage_records_dropped`). The writer is a
//! plain thread with blocking writes, so it never occupies an async worker.

use std::{io::Write, path::PathBuf, sync::Arc};

use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{cost::TokenUsage, metrics::Metrics};

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 8192;

/// Where usage records go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UsageSink {
    /// Nowhere.
    #[default]
    Off,
    /// Standard output, beside the logs (records carry `"record":"usage"`).
    Stdout,
    /// Appended to this file.
    File(PathBuf),
}

impl std::str::FromStr for UsageSink {
    type Err = std::convert::Infallible;

    /// `off`, `stdout`, or a file path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "off" | "" => UsageSink::Off,
            "stdout" | "-" => UsageSink::Stdout,
            path => UsageSink::File(PathBuf::from(path)),
        })
    }
}

/// One request's usage record.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord<'a> {
    /// Always `"usage"`, to tell records from log lines on stdout.
    pub record: &'static str,
    /// RFC 3339.
    pub time: String,
    /// The request id (`x-request-id`).
    pub request_id: &'a str,
    /// The client key id (`namespace/secret`), when a key was presented.
    pub key_id: Option<&'a str>,
    /// The key's team.
    pub team: Option<&'a str>,
    /// Route id.
    pub route: &'a str,
    /// Provider id.
    pub provider: &'a str,
    /// Provider model.
    pub model: &'a str,
    /// `chat`, `embeddings`.
    pub operation: &'a str,
    /// Tokens by billing class, when the provider reported usage.
    pub tokens: Option<TokenUsage>,
    /// USD, exact; absent when the usage is unknown.
    pub cost_usd: Option<Decimal>,
    /// Milliseconds from request to the end of the answer.
    pub latency_ms: u64,
    /// `ok`, or the error type that ended the answer.
    pub status: &'a str,
    /// On a cached route: `hit`, `semantic-hit`, `miss` or `bypass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'a str>,
    /// On a hit: what the answer cost when it was fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_saved_usd: Option<Decimal>,
}

/// The usage log's sending side.
#[derive(Debug, Default)]
pub struct UsageLog {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

impl UsageLog {
    /// Starts the writer for `sink` (none for `Off`); it ends when the log is dropped.
    pub fn start(sink: &UsageSink, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            UsageSink::Off => return Ok(Self { tx: None }),
            UsageSink::Stdout => Box::new(std::io::stdout()),
            UsageSink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("usage-log".to_owned())
            .spawn(move || write_lines(rx, out, &metrics))?;
        Ok(Self { tx: Some(tx) })
    }

    /// Whether records are written at all (callers skip building them otherwise).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues `record`; returns false when it was dropped (queue full or log off).
    pub fn record(&self, record: &UsageRecord<'_>, metrics: &Metrics) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        let Ok(mut line) = serde_json::to_vec(record) else {
            return false;
        };
        line.push(b'\n');
        if tx.try_send(line).is_err() {
            metrics.usage_dropped();
            return false;
        }
        true
    }
}

fn write_lines(mut rx: mpsc::Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>, metrics: &Metrics) {
    while let Some(line) = rx.blocking_recv() {
        let written = out.write_all(&line).and_then(|()| out.flush());
        if let Err(e) = written {
            metrics.usage_dropped();
            tracing::warn!(error = %e, "cannot write a usage record");
        }
    }
}
