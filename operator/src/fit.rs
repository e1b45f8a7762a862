//! A config too large for its ConfigMap must not freeze every team: the newest providers and
//! routes are left out, each reported `ConfigTooLarge` on itself (as the newer of two routes
//! claiming one model name is), until the rest fits. Everyone else's changes keep flowing,
//! and their objects see no write. The operator and `render` both compile through here.
//!
//! How many to leave out is estimated from each object's own size (gzip-compressed when the
//! config is), then corrected by how much the last round actually shrank, so a handful of
//! compiles suffice even when objects compress far better together than alone.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Serialize;
use tollgate_crds::{
    compile::{CompileError, Compiled, Inputs, Kind, ObjectRef, compile_leaving_out, object_ref},
    mount::{MAX_CONFIG_TEXT, gzip_config},
};

use crate::render::{CONFIG_MAP_DATA_LIMIT, ConfigText, RenderError, config_text};

/// The result of [`compile_to_fit`].
#[derive(Debug)]
pub struct Fitted {
    /// The config and every problem, `ConfigTooLarge` on the objects left out.
    pub compiled: Compiled,
    /// The text to write, or why nothing fits (only when the objects that cannot be left
    /// out, such as client keys, are too large by themselves).
    pub text: Result<ConfigText, RenderError>,
    /// How many objects were left out.
    pub left_out: usize,
    /// How many compiles it took.
    pub compiles: usize,
}

/// Compiles `inputs`, lets `finish` add what compile does not produce (client keys), and
/// leaves out the newest providers and routes until the config fits in a ConfigMap.
pub fn compile_to_fit(
    inputs: &Inputs<'_>,
    finish: impl Fn(&mut Compiled),
) -> Result<Fitted, CompileError> {
    let message = format!(
        "Left out of the gateway config: with it the config would be over the ConfigMap limit of {CONFIG_MAP_DATA_LIMIT} bytes even compressed, and the newest objects are left out first so that everyone else's changes keep flowing. Make this object smaller, remove unused providers and routes, or split them across gateways"
    );
    let mut left_out: BTreeMap<ObjectRef, String> = BTreeMap::new();
    let mut candidates: Option<Vec<Candidate>> = None;
    let mut next = 0;
    // The last round's excess and how much its left-out objects were estimated to save.
    let mut last: Option<(Excess, f64)> = None;
    let mut factor = 1.0_f64;
    let mut compiles = 0;
    loop {
        let mut compiled = compile_leaving_out(inputs, &left_out)?;
        compiles += 1;
        finish(&mut compiled);
        let text = config_text(&compiled);
        let excess = match &text {
            Err(RenderError::TooLarge { size, packed, .. }) => Excess::of(*size, *packed),
            _ => None,
        };
        let Some(excess) = excess else {
            return Ok(Fitted {
                compiled,
                text,
                left_out: left_out.len(),
                compiles,
            });
        };
        let candidates = candidates.get_or_insert_with(|| newest_first(inputs));
        if next >= candidates.len() {
            // Even without any provider or route it does not fit (client keys alone are
            // too large): the objects are not the cause, so none is blamed.
            let mut compiled = compile_leaving_out(inputs, &BTreeMap::new())?;
            finish(&mut compiled);
            let text = config_text(&compiled);
            return Ok(Fitted {
                compiled,
                text,
                left_out: 0,
                compiles: compiles + 1,
            });
        }
        if let Some((before, estimated)) = last {
            factor = if before.packed == excess.packed && estimated > 0.0 {
                let actual = before.bytes.saturating_sub(excess.bytes) as f64;
                if actual > 0.0 {
                    (actual / estimated).clamp(0.001, 10.0)
                } else {
                    factor
                }
            } else {
                1.0
            };
        }
        let mut estimated = 0.0;
        while next < candidates.len() && (estimated == 0.0 || estimated * factor < excess.need()) {
            let candidate = &candidates[next];
            next += 1;
            estimated += candidate.weight(excess.packed);
            left_out.insert(candidate.object.clone(), message.clone());
        }
        tracing::debug!(
            over = excess.bytes,
            left_out = left_out.len(),
            factor,
            "config too large; leaving out the newest objects"
        );
        last = Some((excess, estimated));
    }
}

/// How far over the limit a config is, in compressed bytes or, when the text is too large
/// to be compressed at all, in text bytes.
#[derive(Clone, Copy, Debug)]
struct Excess {
    packed: bool,
    bytes: usize,
}

impl Excess {
    fn of(size: usize, packed: usize) -> Option<Self> {
        if packed == 0 {
            Some(Self {
                packed: false,
                bytes: size.checked_sub(MAX_CONFIG_TEXT)?,
            })
        } else {
            Some(Self {
                packed: true,
                bytes: packed.checked_sub(CONFIG_MAP_DATA_LIMIT)?,
            })
        }
    }

    fn need(&self) -> f64 {
        self.bytes as f64
    }
}

/// A provider or route that may be left out, with its spec as JSON.
struct Candidate {
    object: ObjectRef,
    json: String,
}

impl Candidate {
    /// Its own size: JSON bytes, or those bytes gzip-compressed.
    fn weight(&self, packed: bool) -> f64 {
        let bytes = if packed {
            gzip_config(&self.json).map_or(self.json.len(), |g| g.len())
        } else {
            self.json.len()
        };
        bytes as f64
    }
}

/// Providers and routes, newest first by creation time (objects without one, as in offline
/// manifests, count as newest); among equally new ones the largest first, so that as few
/// as possible are left out; then by kind, namespace and name, last first.
fn newest_first(inputs: &Inputs<'_>) -> Vec<Candidate> {
    fn candidate<'a, K: ResourceExt, S: Serialize>(
        kind: Kind,
        object: &'a K,
        spec: &S,
    ) -> (Option<&'a Time>, Candidate) {
        (
            object.meta().creation_timestamp.as_ref(),
            Candidate {
                object: object_ref(kind, object),
                json: serde_json::to_string(spec).unwrap_or_default(),
            },
        )
    }
    let mut all: Vec<(Option<&Time>, Candidate)> = inputs
        .providers
        .iter()
        .map(|p| candidate(Kind::LLMProvider, p, &p.spec))
        .chain(
            inputs
                .routes
                .iter()
                .map(|r| candidate(Kind::LLMRoute, r, &r.spec)),
        )
        .collect();
    all.sort_by(|(ta, a), (tb, b)| {
        (tb.is_none(), tb, b.json.len(), &b.object).cmp(&(
            ta.is_none(),
            ta,
            a.json.len(),
            &a.object,
        ))
    });
    all.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
