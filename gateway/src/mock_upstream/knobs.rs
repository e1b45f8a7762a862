//! Failure knobs: the command-line defaults ([`Knobs`]) and their per-request overrides read
//! from `x-mock-*` headers ([`Effective`]).

use std::time::Duration;

use http::HeaderMap;

/// The reply text when `--reply` is not given.
pub const DEFAULT_REPLY: &str =
    "Hello from the Tollgate mock upstream. This reply is canned test data.";

/// Header overriding [`Knobs::latency`] for one request (milliseconds, or a duration like `2s`).
pub const HEADER_LATENCY: &str = "x-mock-latency-ms";
/// Header overriding [`Knobs::chunk_delay`] for one request (milliseconds, or a duration).
pub const HEADER_CHUNK_DELAY: &str = "x-mock-chunk-delay-ms";
/// Header overriding [`Knobs::status`] for one request (`none` clears it).
pub const HEADER_STATUS: &str = "x-mock-status";
/// Header overriding [`Knobs::retry_after`] for one request (seconds; `none` clears it).
pub const HEADER_RETRY_AFTER: &str = "x-mock-retry-after";
/// Header overriding [`Knobs::failure_rate`] for one request (0.0–1.0; `none` clears it).
pub const HEADER_FAILURE_RATE: &str = "x-mock-failure-rate";
/// Header overriding [`Knobs::disconnect_after`] for one request (chunks; `none` clears it).
pub const HEADER_DISCONNECT_AFTER: &str = "x-mock-disconnect-after";
/// Header overriding [`Knobs::reply`] for one request.
pub const HEADER_REPLY: &str = "x-mock-reply";

/// Longest latency or chunk delay accepted, so a typo cannot hang a test for hours.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// The status failing requests get when only a failure rate is set.
pub const DEFAULT_FAILURE_STATUS: u16 = 503;

/// How the mock upstream misbehaves. Every field has a command-line flag and an `x-mock-*`
/// request header that overrides it for one request (see the module documentation).
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct Knobs {
    /// Wait this long before the first byte of every answer: `200ms`, `2s`, `1.5s`, `1m`; a
    /// bare number is milliseconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0ms")]
    pub latency: Duration,
    /// Wait this long between two chunks of a streamed answer (same syntax as --latency).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0ms")]
    pub chunk_delay: Duration,
    /// Answer with this HTTP status (400–599) and an error body in the called API's own
    /// format. With --failure-rate, only the failing requests get it.
    #[arg(long, value_name = "CODE", value_parser = parse_status)]
    pub status: Option<u16>,
    /// Send `Retry-After: SECONDS` with every error answer.
    #[arg(long, value_name = "SECONDS")]
    pub retry_after: Option<u64>,
    /// Fail this fraction (0.0–1.0) of requests, deterministically by request number: request
    /// n fails when floor(n·rate) > floor((n−1)·rate), so 0.5 fails every 2nd request, 0.25
    /// every 4th. Failing requests get --status, or 503 when it is not set.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub failure_rate: Option<f64>,
    /// Cut every streamed answer after this many chunks, before its end marker, by aborting
    /// the connection. A non-streamed answer is cut halfway through its JSON body.
    #[arg(long, value_name = "CHUNKS")]
    pub disconnect_after: Option<usize>,
    /// The assistant's reply text.
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_REPLY)]
    pub reply: String,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            status: None,
            retry_after: None,
            failure_rate: None,
            disconnect_after: None,
            reply: DEFAULT_REPLY.to_owned(),
        }
    }
}

/// The knobs in force for one request: the defaults with that request's headers applied.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Effective(pub Knobs);

impl Effective {
    /// Applies the `x-mock-*` headers to `defaults`; a malformed header is an error naming it.
    pub fn resolve(defaults: &Knobs, headers: &HeaderMap) -> Result<Self, String> {
        let mut k = defaults.clone();
        if let Some(v) = header(headers, HEADER_LATENCY)? {
            k.latency = parse_duration(&v).map_err(|e| bad(HEADER_LATENCY, &e))?;
        }
        if let Some(v) = header(headers, HEADER_CHUNK_DELAY)? {
            k.chunk_delay = parse_duration(&v).map_err(|e| bad(HEADER_CHUNK_DELAY, &e))?;
        }
        if let Some(v) = header(headers, HEADER_STATUS)? {
            k.status = optional(&v, parse_status).map_err(|e| bad(HEADER_STATUS, &e))?;
        }
        if let Some(v) = header(headers, HEADER_RETRY_AFTER)? {
            k.retry_after = optional(&v, parse_u64).map_err(|e| bad(HEADER_RETRY_AFTER, &e))?;
        }
        if let Some(v) = header(headers, HEADER_FAILURE_RATE)? {
            k.failure_rate = optional(&v, parse_rate).map_err(|e| bad(HEADER_FAILURE_RATE, &e))?;
        }
        if let Some(v) = header(headers, HEADER_DISCONNECT_AFTER)? {
            k.disconnect_after =
                optional(&v, parse_usize).map_err(|e| bad(HEADER_DISCONNECT_AFTER, &e))?;
        }
        if let Some(v) = header(headers, HEADER_REPLY)? {
            k.reply = v;
        }
        Ok(Self(k))
    }

    /// The error status request number `n` (1-based) must get, if it is to fail.
    pub fn failure(&self, n: u64) -> Option<u16> {
        let k = &self.0;
        let rate = k
            .failure_rate
            .unwrap_or(if k.status.is_some() { 1.0 } else { 0.0 });
        fails(n, rate).then(|| k.status.unwrap_or(DEFAULT_FAILURE_STATUS))
    }
}

/// Whether request `n` (1-based) fails at `rate`: exact integer arithmetic in parts per
/// million, so a rate of k/1e6 fails exactly that share of every million requests.
pub(crate) fn fails(n: u64, rate: f64) -> bool {
    const SCALE: u128 = 1_000_000;
    if n == 0 {
        return false;
    }
    let ppm = (rate.clamp(0.0, 1.0) * 1e6).round() as u128;
    let n = u128::from(n);
    n * ppm / SCALE > (n - 1) * ppm / SCALE
}

fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => match std::str::from_utf8(v.as_bytes()) {
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(_) => Err(format!("header {name} is not UTF-8")),
        },
    }
}

fn bad(name: &str, why: &str) -> String {
    format!("header {name}: {why}")
}

fn optional<T>(value: &str, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if value.eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        parse(value).map(Some)
    }
}

fn parse_u64(s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a whole number"))
}

fn parse_usize(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a whole number"))
}

/// Parses an HTTP error status, 400–599.
pub fn parse_status(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(code) if (400..=599).contains(&code) => Ok(code),
        _ => Err(format!("`{s}` is not an error status (400–599)")),
    }
}

/// Parses a failure rate, 0.0–1.0.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{s}` is not a rate between 0.0 and 1.0")),
    }
}

/// Parses `250`, `250ms`, `2s`, `1.5s` or `1m` (a bare number is milliseconds), at most
/// 10 minutes.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let millis_per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s or m)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 200ms or 2s"))?;
    let micros = value * millis_per_unit * 1_000.0;
    if !micros.is_finite() || micros > MAX_DELAY.as_micros() as f64 {
        return Err(format!("`{s}` is longer than {}s", MAX_DELAY.as_secs()));
    }
    Ok(Duration::from_micros(micros.round() as u64))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use http::HeaderValue;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        knobs: Knobs,
    }

    #[test]
    fn defaults_match_the_command_line_defaults() {
        let cli = Cli::try_parse_from(["mock"]).expect("parses");
        assert_eq!(cli.knobs, Knobs::default());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "mock",
            "--latency",
            "200ms",
            "--chunk-delay",
            "1.5s",
            "--status",
            "429",
            "--retry-after",
            "7",
            "--failure-rate",
            "0.25",
            "--disconnect-after",
            "3",
            "--reply",
            "hi there",
        ])
        .expect("parses");
        let k = cli.knobs;
        assert_eq!(k.latency, Duration::from_millis(200));
        assert_eq!(k.chunk_delay, Duration::from_millis(1500));
        assert_eq!(
            (k.status, k.retry_after, k.failure_rate),
            (Some(429), Some(7), Some(0.25))
        );
        assert_eq!(
            (k.disconnect_after, k.reply.as_str()),
            (Some(3), "hi there")
        );
        assert!(Cli::try_parse_from(["mock", "--status", "200"]).is_err());
        assert!(Cli::try_parse_from(["mock", "--failure-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["mock", "--latency", "2h"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("11m").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn failure_rate_is_exact_and_spread() {
        let failing = |rate: f64| (1..=20).filter(|&n| fails(n, rate)).collect::<Vec<_>>();
        assert_eq!(failing(0.5), vec![2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
        assert_eq!(failing(0.25), vec![4, 8, 12, 16, 20]);
        assert_eq!(failing(0.1), vec![10, 20]);
        assert_eq!(failing(1.0).len(), 20);
        assert!(failing(0.0).is_empty());
        assert_eq!((1..=1000).filter(|&n| fails(n, 0.3)).count(), 300);
    }

    #[test]
    fn status_alone_fails_everything_and_rate_alone_uses_503() {
        let forced = Effective(Knobs {
            status: Some(429),
            ..Knobs::default()
        });
        assert_eq!(
            (forced.failure(1), forced.failure(2)),
            (Some(429), Some(429))
        );
        let rate = Effective(Knobs {
            failure_rate: Some(0.5),
            ..Knobs::default()
        });
        assert_eq!((rate.failure(1), rate.failure(2)), (None, Some(503)));
        let both = Effective(Knobs {
            status: Some(500),
            failure_rate: Some(0.5),
            ..Knobs::default()
        });
        assert_eq!((both.failure(1), both.failure(2)), (None, Some(500)));
        assert_eq!(Effective(Knobs::default()).failure(1), None);
    }

    #[test]
    fn headers_override_and_clear() {
        let defaults = Knobs {
            status: Some(503),
            disconnect_after: Some(2),
            ..Knobs::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_STATUS, HeaderValue::from_static("none"));
        headers.insert(HEADER_LATENCY, HeaderValue::from_static("15"));
        headers.insert(HEADER_CHUNK_DELAY, HeaderValue::from_static("1s"));
        headers.insert(HEADER_RETRY_AFTER, HeaderValue::from_static("3"));
        headers.insert(HEADER_FAILURE_RATE, HeaderValue::from_static("0.5"));
        headers.insert(HEADER_DISCONNECT_AFTER, HeaderValue::from_static("5"));
        headers.insert(HEADER_REPLY, HeaderValue::from_static("short"));
        let Effective(k) = Effective::resolve(&defaults, &headers).expect("valid headers");
        assert_eq!(k.status, None);
        assert_eq!(
            (k.latency, k.chunk_delay),
            (Duration::from_millis(15), Duration::from_secs(1))
        );
        assert_eq!(
            (k.retry_after, k.failure_rate, k.disconnect_after),
            (Some(3), Some(0.5), Some(5))
        );
        assert_eq!(k.reply, "short");

        let mut bad = HeaderMap::new();
        bad.insert(HEADER_STATUS, HeaderValue::from_static("200"));
        let err = Effective::resolve(&defaults, &bad).expect_err("200 is refused");
        assert!(err.contains(HEADER_STATUS), "{err}");
    }
}
