//! The `x-ratelimit-*` headers OpenAI sends, for answers and for 429s: per kind (requests,
//! tokens) the limit, what remains and when the bucket is full again. With several limits
//! on a route the headers describe the tightest one, the one a client runs into first.

use http::{HeaderMap, HeaderName, HeaderValue};

/// One kind's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The limit per minute.
    pub limit: u32,
    /// What is left now.
    pub remaining: u64,
    /// Milliseconds until the limit is fully available again.
    pub reset_ms: u64,
}

impl Standing {
    /// Keeps the tighter of `self` and `other`: less remaining, then the later reset.
    fn tighter(self, other: Standing) -> Standing {
        if (other.remaining, std::cmp::Reverse(other.reset_ms))
            < (self.remaining, std::cmp::Reverse(self.reset_ms))
        {
            other
        } else {
            self
        }
    }
}

/// The values of the `x-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// Requests per minute, when a limit counts them.
    pub requests: Option<Standing>,
    /// Tokens per minute, when a limit counts them.
    pub tokens: Option<Standing>,
}

impl RateHeaders {
    /// Adds a requests (`tokens == false`) or tokens standing, keeping the tighter one.
    pub fn add(&mut self, tokens: bool, standing: Standing) {
        let slot = if tokens {
            &mut self.tokens
        } else {
            &mut self.requests
        };
        *slot = Some(slot.map_or(standing, |s| s.tighter(standing)));
    }

    /// Sets the headers on `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (kind, standing) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(s) = standing else { continue };
            let mut set = |name: &str, value: String| {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::try_from(format!("x-ratelimit-{name}-{kind}")),
                    HeaderValue::try_from(value),
                ) {
                    headers.insert(n, v);
                }
            };
            set("limit", s.limit.to_string());
            set("remaining", s.remaining.to_string());
            set("reset", duration(s.reset_ms));
        }
    }

    /// `response` with the headers set.
    pub fn on<B>(&self, mut response: http::Response<B>) -> http::Response<B> {
        self.apply(response.headers_mut());
        response
    }
}

/// A duration as OpenAI writes `x-ratelimit-reset-*` (Go's format): `0s`, `250ms`, `1.5s`,
/// `6m0s`, `1h2m3s`.
pub fn duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1_000 == 0 {
        format!("{}s", rest / 1_000)
    } else {
        let text = format!("{}.{:03}", rest / 1_000, rest % 1_000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}
