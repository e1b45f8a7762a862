//! What the compile function reports about an object, and which condition it affects.

use std::fmt;

use serde::Serialize;

use crate::conditions::ConditionType;

/// The three kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    /// `LLMProvider`.
    LLMProvider,
    /// `LLMRoute`.
    LLMRoute,
    /// `LLMBudget`.
    LLMBudget,
}

impl Kind {
    /// The kind's name as in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LLMProvider => "LLMProvider",
            Kind::LLMRoute => "LLMRoute",
            Kind::LLMBudget => "LLMBudget",
        }
    }
}

/// Identifies one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// Why an object (or part of it) is not in effect. The variant name is the condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Reason {
    /// The spec breaks a schema or CEL rule, or a value cannot be used (bad regex, time zone).
    Invalid,
    /// The spec uses a feature that is defined in the API but not built yet.
    Unsupported,
    /// Another, older route already serves this model name or alias.
    ModelNameConflict,
    /// With this object the config would not fit in its ConfigMap; newer objects are left
    /// out first, so everyone else's changes keep flowing.
    ConfigTooLarge,
    /// A model has no price in its spec nor in the built-in catalogue.
    PriceUnknown,
    /// A referenced `LLMProvider` does not exist.
    ProviderNotFound,
    /// A referenced `LLMProvider` exists but is not usable (see its own conditions).
    ProviderNotReady,
    /// The provider does not list the referenced model.
    ModelNotFound,
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A referenced Secret lacks the key.
    SecretKeyNotFound,
    /// A referenced `LLMRoute` does not exist or is not accepted.
    RouteNotFound,
    /// A referenced Secret is in a namespace the operator may not copy credentials from.
    RefNotPermitted,
}

impl Reason {
    /// The condition this reason sets to `False`.
    pub fn condition(self) -> ConditionType {
        match self {
            Reason::Invalid
            | Reason::Unsupported
            | Reason::ModelNameConflict
            | Reason::ConfigTooLarge
            | Reason::PriceUnknown => ConditionType::Accepted,
            Reason::ProviderNotFound
            | Reason::ProviderNotReady
            | Reason::ModelNotFound
            | Reason::SecretNotFound
            | Reason::SecretKeyNotFound
            | Reason::RouteNotFound
            | Reason::RefNotPermitted => ConditionType::ResolvedRefs,
        }
    }

    /// The reason as written in a condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid => "Invalid",
            Reason::Unsupported => "Unsupported",
            Reason::ModelNameConflict => "ModelNameConflict",
            Reason::ConfigTooLarge => "ConfigTooLarge",
            Reason::PriceUnknown => "PriceUnknown",
            Reason::ProviderNotFound => "ProviderNotFound",
            Reason::ProviderNotReady => "ProviderNotReady",
            Reason::ModelNotFound => "ModelNotFound",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretKeyNotFound => "SecretKeyNotFound",
            Reason::RouteNotFound => "RouteNotFound",
            Reason::RefNotPermitted => "RefNotPermitted",
        }
    }
}

/// One problem with one object, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// The object.
    pub object: ObjectRef,
    /// Path of the offending field, e.g. `spec.backends[1].providerRef.name`.
    pub field: String,
    /// The reason, which also picks the condition.
    pub reason: Reason,
    /// What is wrong and, where useful, what to do. Never contains secret values.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} ({})",
            self.object,
            self.field,
            self.message,
            self.reason.as_str()
        )
    }
}
