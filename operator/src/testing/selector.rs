//! Label and field selectors, parsed from already percent/`+`-decoded query values.
//!
//! The grammar follows the Kubernetes label-selector syntax: comma-joined requirements
//! `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` and `!k`. Field selectors
//! support `=`, `==` and `!=` on any dotted path (`metadata.name`, `type`, ...); the real
//! server only allows a per-kind list of fields, we accept any path because a wrong field
//! name then simply matches nothing, which a test notices.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; an empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `app=x,tier!=db,env in (a,b)`; the error names the bad term.
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_terms(input) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(term)?);
        }
        Ok(Self(reqs))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let empty = serde_json::Map::new();
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Splits on commas that are not inside `( )`, so `k in (a,b),x=y` gives two terms.
fn split_terms(input: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&input[start..]);
    out
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEq(key(k, term)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Eq(key(k, term)?, v.trim().to_owned()));
    }
    if let Some(open) = term.find('(') {
        let close = term
            .rfind(')')
            .filter(|c| *c > open)
            .ok_or_else(|| format!("unbalanced parentheses in {term:?}"))?;
        let values: Vec<String> = term[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        let mut head = term[..open].split_whitespace();
        let (Some(k), Some(op), None) = (head.next(), head.next(), head.next()) else {
            return Err(format!("cannot parse set requirement {term:?}"));
        };
        return match op {
            "in" => Ok(Requirement::In(key(k, term)?, values)),
            "notin" => Ok(Requirement::NotIn(key(k, term)?, values)),
            _ => Err(format!("unknown operator {op:?} in {term:?}")),
        };
    }
    match term.strip_prefix('!') {
        Some(k) => Ok(Requirement::NotExists(key(k, term)?)),
        None => Ok(Requirement::Exists(key(term, term)?)),
    }
}

fn key(raw: &str, term: &str) -> Result<String, String> {
    let k = raw.trim();
    if k.is_empty() || k.contains(char::is_whitespace) {
        return Err(format!("invalid label key in {term:?}"));
    }
    Ok(k.to_owned())
}

/// A parsed field selector: `(dotted path, wanted equal?, value)` triples.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, eq, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, true, v)
            } else {
                return Err(format!("invalid field selector term {term:?}"));
            };
            reqs.push((path.trim().to_owned(), eq, value.trim().to_owned()));
        }
        Ok(Self(reqs))
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, eq, value)| {
            let pointer = format!("/{}", path.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn obj(labels: BTreeMap<String, String>) -> Value {
        json!({"metadata": {"name": "a", "labels": labels}})
    }

    #[test]
    fn equality_set_and_existence_requirements() {
        let o = obj(labels(&[("app", "x"), ("env", "prod")]));
        for (sel, want) in [
            ("app=x", true),
            ("app==x,env=prod", true),
            ("app!=x", false),
            ("app!=y", true),
            ("env in (dev, prod)", true),
            ("env notin (dev,prod)", false),
            ("env in (dev),app=x", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("", true),
        ] {
            let parsed = LabelSelector::parse(sel).unwrap();
            assert_eq!(parsed.matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("env in (a").is_err());
        assert!(LabelSelector::parse("env maybe (a)").is_err());
    }

    #[test]
    fn field_selector_on_name_and_namespace() {
        let o = json!({"metadata": {"name": "a", "namespace": "ns"}, "type": "Opaque"});
        assert!(FieldSelector::parse("metadata.name=a").unwrap().matches(&o));
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("metadata.namespace==ns,type=Opaque")
                .unwrap()
                .matches(&o)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
