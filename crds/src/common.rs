//! Value types shared by the three kinds: durations, money, references.
//!
//! Each newtype owns its OpenAPI pattern, so the API server rejects a bad value at
//! `kubectl apply` time and the compile function parses the same text the same way.

use std::{borrow::Cow, fmt, str::FromStr};

use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The duration syntax the API accepts: whole numbers with `ms`, `s`, `m` or `h` units, e.g.
/// `250ms`, `30s`, `1m30s`, `2h`. It is a strict subset of Go's `time.ParseDuration`, so CEL's
/// `duration()` reads it the same way inside the API server.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,6}(ms|s|m|h))+$";

/// A decimal amount of US dollars, at most 12 integer digits and 6 decimals. Never a float.
pub const MONEY_PATTERN: &str = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$";

/// A non-negative duration written as text (`30s`, `1m30s`, `250ms`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

/// The parse error of a [`Duration`]; its message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (expected e.g. 250ms, 30s, 1m30s, 2h)")]
pub struct DurationError {
    input: String,
    why: &'static str,
}

impl Duration {
    /// Parses the text into a [`std::time::Duration`].
    pub fn to_std(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(&self.0)
    }
}

impl From<&str> for Duration {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 32,
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Parses `DURATION_PATTERN` text; the same grammar as the OpenAPI pattern, checked strictly.
pub fn parse_duration(input: &str) -> Result<std::time::Duration, DurationError> {
    let err = |why| DurationError {
        input: input.to_owned(),
        why,
    };
    if input.is_empty() {
        return Err(err("empty"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("a number must come before each unit"));
        }
        if digits > 6 {
            return Err(err("at most 6 digits per component"));
        }
        let (number, tail) = rest.split_at(digits);
        let value: u64 = number.parse().map_err(|_| err("not a number"))?;
        let (unit_ms, tail) = if let Some(t) = tail.strip_prefix("ms") {
            (1, t)
        } else if let Some(t) = tail.strip_prefix('s') {
            (1_000, t)
        } else if let Some(t) = tail.strip_prefix('m') {
            (60_000, t)
        } else if let Some(t) = tail.strip_prefix('h') {
            (3_600_000, t)
        } else {
            return Err(err("unit must be ms, s, m or h"));
        };
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| err("too long"))?;
        rest = tail;
    }
    Ok(std::time::Duration::from_millis(total_ms))
}

/// An amount of US dollars as a decimal string (`"12.50"`), never a float.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub String);

/// The parse error of a [`Money`] amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid amount {0:?}: expected a non-negative decimal such as \"2.50\" (up to 6 decimals)"
)]
pub struct MoneyError(String);

impl Money {
    /// Parses the amount; rejects what the OpenAPI pattern rejects.
    pub fn to_decimal(&self) -> Result<Decimal, MoneyError> {
        parse_money(&self.0)
    }
}

impl From<&str> for Money {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 20,
            "pattern": MONEY_PATTERN,
        })
    }
}

/// Parses a decimal amount in the `MONEY_PATTERN` grammar.
pub fn parse_money(input: &str) -> Result<Decimal, MoneyError> {
    let err = || MoneyError(input.to_owned());
    let (int, frac) = match input.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (input, None),
    };
    let int_ok = !int.is_empty()
        && int.len() <= 12
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    let frac_ok =
        frac.is_none_or(|f| !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()));
    if !(int_ok && frac_ok) {
        return Err(err());
    }
    Decimal::from_str(input).map_err(|_| err())
}

/// A key inside a Secret in the referring object's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the referring object.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key inside the Secret's `data`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A reference to another Tollgate object by name, in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced object.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

impl LocalRef {
    /// A reference to the object named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// Timeouts for talking to a provider. Set on an `LLMProvider`, they are that provider's
/// defaults; set on an `LLMRoute`, they override the provider's for that route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, kube::KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.firstToken) || !has(self.total) || duration(self.firstToken) <= duration(self.total)"
).message("timeouts.firstToken must not exceed timeouts.total"))]
pub struct Timeouts {
    /// Time to establish the TCP+TLS connection. Default `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Duration>,
    /// Time from sending the request to the first response byte (first token when
    /// streaming). Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token: Option<Duration>,
    /// Longest silence allowed between two chunks of a streamed response. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
    /// Time for the whole request, including the full streamed response. Default `600s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ms = |s: &str| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("2h"), Ok(7_200_000));
        assert_eq!(ms("1h1m1s1ms"), Ok(3_661_001));
    }

    #[test]
    fn bad_durations_are_rejected_with_the_input_named() {
        for bad in ["", "10", "s", "1.5s", "-1s", "10d", "1m 30s", "1234567s"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn duration_pattern_and_parser_agree() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for s in [
            "1s",
            "250ms",
            "1m30s",
            "",
            "1.5s",
            "10d",
            "1234567s",
            "1h2m3s4ms",
            "ms",
        ] {
            assert_eq!(re.is_match(s), parse_duration(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn money_is_decimal_not_float() {
        assert_eq!(
            parse_money("0.1").unwrap() + parse_money("0.2").unwrap(),
            parse_money("0.3").unwrap()
        );
        assert_eq!(parse_money("2.50").unwrap().to_string(), "2.50");
        assert_eq!(parse_money("0").unwrap(), Decimal::ZERO);
    }

    #[test]
    fn money_pattern_and_parser_agree() {
        let re = regex::Regex::new(MONEY_PATTERN).unwrap();
        for s in [
            "0",
            "1",
            "2.5",
            "0.000001",
            "100000000000",
            "01",
            "1.",
            ".5",
            "-1",
            "1e3",
            "1.0000001",
            "abc",
            "",
        ] {
            assert_eq!(re.is_match(s), parse_money(s).is_ok(), "{s:?}");
        }
    }
}
