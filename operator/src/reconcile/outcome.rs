//! The result of one compile-and-write round, shared with the status controllers.

use std::collections::HashMap;

use tollgate_crds::compile::{Compiled, ObjectRef};

/// Why the config could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteFailure {
    /// Larger than a ConfigMap may hold; nothing was written.
    TooLarge(String),
    /// The API refused or failed the write (retried with backoff).
    Apply(String),
}

impl WriteFailure {
    /// The message for conditions.
    pub fn message(&self) -> &str {
        match self {
            WriteFailure::TooLarge(m) | WriteFailure::Apply(m) => m,
        }
    }
}

/// One round's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The compiled config and problems.
    pub compiled: Compiled,
    /// The generation of every object that went into compile, so a controller can tell
    /// whether this outcome already reflects the object it is reconciling.
    pub generations: HashMap<ObjectRef, Option<i64>>,
    /// Hash of the config in the ConfigMap, once written.
    pub hash: Option<String>,
    /// Why the config is not (fully) written.
    pub failure: Option<WriteFailure>,
}

impl Outcome {
    /// Whether this outcome was compiled from `object` at `generation`.
    pub fn covers(&self, object: &ObjectRef, generation: Option<i64>) -> bool {
        self.generations.get(object) == Some(&generation)
    }
}
