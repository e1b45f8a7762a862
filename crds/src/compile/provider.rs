//! `LLMProvider` → `ProviderConfig`: default URLs, credentials by Secret key, prices.

use std::collections::BTreeMap;

use super::{Context, Inputs, Kind, ObjectRef, Reason, SecretLookup, object_ref, unsupported};
use crate::{
    LLMProvider,
    catalog::resolve,
    common::SecretKeyRef,
    config::{
        AzureConfig, Credential, HeaderConfig, LimitsConfig, ModelConfig, PriceSource,
        ProviderConfig, gateway_secret_key,
    },
    provider::ProviderType,
};

/// The `api-version` used for Azure OpenAI when the spec gives none (latest GA).
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Kubernetes' limit on a Secret data key.
const MAX_SECRET_KEY_LEN: usize = 253;

/// Compiled providers by id; `Err` says why a provider is not usable, for routes to report.
pub(super) type Providers = BTreeMap<String, Result<ProviderConfig, String>>;

pub(super) fn compile_all(cx: &mut Context, inputs: &Inputs<'_>) -> Providers {
    let mut sorted: Vec<&LLMProvider> = inputs.providers.iter().collect();
    sorted.sort_by_key(|p| object_ref(Kind::LLMProvider, *p));
    let mut out = Providers::new();
    for p in sorted {
        let object = object_ref(Kind::LLMProvider, p);
        if out.contains_key(&object.id()) {
            continue;
        }
        let result = if !cx.admit(&object, p, unsupported::provider(&p.spec)) {
            Err("its spec is not accepted".to_owned())
        } else if cx.left_out(&object) {
            Err("it is left out of the config, which would not fit in its ConfigMap".to_owned())
        } else {
            compile_one(cx, &object, p, inputs)
        };
        if result.is_ok() {
            cx.source(&object, p.metadata.generation);
        }
        out.insert(object.id(), result);
    }
    out
}

/// The base URL a type uses when the spec gives none.
pub fn default_base_url(
    provider_type: ProviderType,
    bedrock_region: Option<&str>,
) -> Option<String> {
    match provider_type {
        ProviderType::OpenAI => Some("https://api.openai.com/v1".to_owned()),
        ProviderType::Anthropic => Some("https://api.anthropic.com".to_owned()),
        ProviderType::Gemini => Some("https://generativelanguage.googleapis.com".to_owned()),
        ProviderType::Bedrock => {
            bedrock_region.map(|r| format!("https://bedrock-runtime.{r}.amazonaws.com"))
        }
        ProviderType::AzureOpenAI | ProviderType::OpenAICompatible | ProviderType::Mock => None,
    }
}

fn compile_one(
    cx: &mut Context,
    object: &ObjectRef,
    p: &LLMProvider,
    inputs: &Inputs<'_>,
) -> Result<ProviderConfig, String> {
    let spec = &p.spec;
    let kind = spec.provider_type;
    let region = spec.bedrock.as_ref().map(|b| b.region.clone());
    let base_url = spec
        .base_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
        .or_else(|| default_base_url(kind, region.as_deref()));

    let credentials = credentials(cx, object, p, inputs);
    let needs_credentials = !matches!(kind, ProviderType::Mock | ProviderType::OpenAICompatible);

    let mut models = Vec::with_capacity(spec.models.len());
    let mut unpriced = false;
    for (i, m) in spec.models.iter().enumerate() {
        let priced = match &m.pricing {
            Some(pricing) => resolve(pricing).map(|p| (p, PriceSource::Spec)).map_err(|e| {
                cx.problem(object, format!("spec.models[{i}].pricing"), Reason::Invalid, e.to_string());
            }),
            None => inputs.catalogue.price(kind, &m.name).ok_or_else(|| {
                cx.problem(
                    object,
                    format!("spec.models[{i}].pricing"),
                    Reason::PriceUnknown,
                    format!(
                        "model {:?} has no pricing and the built-in catalogue has no price for {}/{}; set spec.models[{i}].pricing (use \"0\" for free self-hosted models)",
                        m.name,
                        kind.as_str(),
                        m.name
                    ),
                );
            }),
        };
        match priced {
            Ok((pricing, price_source)) => models.push(ModelConfig {
                name: m.name.clone(),
                pricing,
                price_source,
                context_window: m.context_window,
            }),
            Err(()) => unpriced = true,
        }
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));

    if unpriced {
        return Err("it has models without a price".to_owned());
    }
    let listed = spec
        .auth
        .as_ref()
        .is_some_and(|a| !a.secret_refs.is_empty() || a.aws.is_some());
    if (needs_credentials || listed) && credentials.is_empty() {
        return Err("none of its credentials resolve".to_owned());
    }
    Ok(ProviderConfig {
        id: object.id(),
        provider_type: kind,
        base_url,
        credentials,
        azure: spec.azure.as_ref().map(|a| AzureConfig {
            api_version: a
                .api_version
                .clone()
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned()),
            deployments: a
                .deployments
                .iter()
                .map(|d| (d.model.clone(), d.deployment.clone()))
                .collect(),
        }),
        bedrock_region: region,
        models,
        limits: spec.limits.as_ref().map(|l| LimitsConfig {
            requests_per_minute: l.requests_per_minute,
            tokens_per_minute: l.tokens_per_minute,
        }),
        headers: spec
            .headers
            .iter()
            .map(|h| HeaderConfig {
                name: h.name.to_ascii_lowercase(),
                value: h.value.clone(),
            })
            .collect(),
    })
}

/// The usable credentials; each unresolved Secret or key is reported and left out, so one
/// broken credential never blocks the others.
fn credentials(
    cx: &mut Context,
    object: &ObjectRef,
    p: &LLMProvider,
    inputs: &Inputs<'_>,
) -> Vec<Credential> {
    let Some(auth) = &p.spec.auth else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, r) in auth.secret_refs.iter().enumerate() {
        if let Some(secret_key) =
            resolve_key(cx, object, inputs, r, &format!("spec.auth.secretRefs[{i}]"))
        {
            out.push(Credential::ApiKey { secret_key });
        }
    }
    if let Some(aws) = &auth.aws {
        let key = |k: &Option<String>, default: &str| SecretKeyRef {
            name: aws.secret_name.clone(),
            key: k.clone().unwrap_or_else(|| default.to_owned()),
        };
        let id = resolve_key(
            cx,
            object,
            inputs,
            &key(&aws.access_key_id_key, "AWS_ACCESS_KEY_ID"),
            "spec.auth.aws.accessKeyIdKey",
        );
        let secret = resolve_key(
            cx,
            object,
            inputs,
            &key(&aws.secret_access_key_key, "AWS_SECRET_ACCESS_KEY"),
            "spec.auth.aws.secretAccessKeyKey",
        );
        let token = match &aws.session_token_key {
            Some(k) => resolve_key(
                cx,
                object,
                inputs,
                &key(&Some(k.clone()), k),
                "spec.auth.aws.sessionTokenKey",
            )
            .map(Some),
            None => Some(None),
        };
        if let (Some(access_key_id), Some(secret_access_key), Some(session_token)) =
            (id, secret, token)
        {
            out.push(Credential::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            });
        }
    }
    out
}

/// The gateway-Secret key for `r`, or a reported problem.
fn resolve_key(
    cx: &mut Context,
    object: &ObjectRef,
    inputs: &Inputs<'_>,
    r: &SecretKeyRef,
    field: &str,
) -> Option<String> {
    let ns = &object.namespace;
    // The field naming the Secret itself: one for all AWS keys, per entry otherwise.
    let name_field = if field.starts_with("spec.auth.aws") {
        "spec.auth.aws.secretName".to_owned()
    } else {
        format!("{field}.name")
    };
    match inputs.secrets.lookup(ns, &r.name) {
        SecretLookup::NotPermitted => {
            cx.problem(
                object,
                name_field,
                Reason::RefNotPermitted,
                format!(
                    "credentials may not be copied from namespace {ns:?}: the operator allows its own namespace and those in --secret-namespaces"
                ),
            );
            None
        }
        SecretLookup::NotFound => {
            cx.problem(
                object,
                name_field,
                Reason::SecretNotFound,
                format!("Secret {:?} not found in namespace {ns:?}", r.name),
            );
            None
        }
        SecretLookup::Found(keys) if !keys.contains(&r.key) => {
            let field = if field.starts_with("spec.auth.aws") {
                field.to_owned()
            } else {
                format!("{field}.key")
            };
            cx.problem(
                object,
                field,
                Reason::SecretKeyNotFound,
                format!("Secret {ns}/{} has no key {:?}", r.name, r.key),
            );
            None
        }
        SecretLookup::Found(_) => {
            let key = gateway_secret_key(ns, &r.name, &r.key);
            if key.len() > MAX_SECRET_KEY_LEN {
                cx.problem(
                    object,
                    format!("{field}.key"),
                    Reason::Invalid,
                    format!(
                        "namespace, Secret name and key together are {} characters; the gateway Secret key would exceed {MAX_SECRET_KEY_LEN}, so shorten the Secret name or key",
                        key.len()
                    ),
                );
                return None;
            }
            Some(key)
        }
    }
}
