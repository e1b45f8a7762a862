//! `LLMProvider`: one provider endpoint, its credentials, models and prices.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    common::{Money, SecretKeyRef, Timeouts},
    conditions::{Condition, conditions_schema},
};

/// A provider endpoint that Tollgate can send requests to.
// The derive repeats `type_ = "string"` across printer columns, which clippy mistakes
// for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "llm.tollgate.dev",
    version = "v1alpha1",
    kind = "LLMProvider",
    plural = "llmproviders",
    singular = "llmprovider",
    namespaced,
    status = "LLMProviderStatus",
    derive = "PartialEq",
    shortname = "llmp",
    category = "tollgate",
    doc = "An LLM provider endpoint (OpenAI, Anthropic, Gemini, Azure OpenAI, Bedrock, any OpenAI-compatible server, or the in-process mock), its credentials, models and prices.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Models", type_ = "integer", json_path = ".status.modelCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(self.type in ['azure-openai', 'openai-compatible']) || has(self.baseURL)")
        .message("baseURL is required when type is azure-openai or openai-compatible")
        .field_path(".baseURL")
        .reason(kube::core::Reason::FieldValueRequired),
    validation = Rule::new("self.type != 'mock' || (!has(self.baseURL) && !has(self.auth))")
        .message("a mock provider answers in-process: it takes no baseURL and no auth")
        .field_path(".type")
        .reason(kube::core::Reason::FieldValueForbidden),
    validation = Rule::new("self.type in ['mock', 'openai-compatible'] || (has(self.auth) && ((has(self.auth.secretRefs) && size(self.auth.secretRefs) > 0) || has(self.auth.aws)))")
        .message("auth is required for this provider type: list at least one auth.secretRefs entry (or auth.aws for bedrock)")
        .field_path(".auth")
        .reason(kube::core::Reason::FieldValueRequired),
    validation = Rule::new("!has(self.auth) || !has(self.auth.aws) || self.type == 'bedrock'")
        .message("auth.aws only applies to type bedrock")
        .field_path(".auth.aws")
        .reason(kube::core::Reason::FieldValueForbidden),
    validation = Rule::new("has(self.azure) == (self.type == 'azure-openai')")
        .message("azure settings are required for, and only allowed with, type azure-openai")
        .field_path(".azure")
        .reason(kube::core::Reason::FieldValueInvalid),
    validation = Rule::new("has(self.bedrock) == (self.type == 'bedrock')")
        .message("bedrock settings are required for, and only allowed with, type bedrock")
        .field_path(".bedrock")
        .reason(kube::core::Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.azure) || !has(self.azure.deployments) || self.azure.deployments.all(d, self.models.exists(m, m.name == d.model))")
        .message("every azure.deployments[].model must be listed in models")
        .field_path(".azure.deployments")
        .reason(kube::core::Reason::FieldValueInvalid)
)]
pub struct LLMProviderSpec {
    /// Which API the provider speaks.
    #[serde(rename = "type")]
    pub provider_type: ProviderType,

    /// The API's base URL. Defaults per type: `https://api.openai.com/v1`,
    /// `https://api.anthropic.com`, `https://generativelanguage.googleapis.com`, and
    /// `https://bedrock-runtime.<region>.amazonaws.com`; required for `azure-openai`
    /// (`https://<resource>.openai.azure.com`) and `openai-compatible`. Link-local and
    /// cloud-metadata hosts are refused.
    #[serde(rename = "baseURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']")
        .message("baseURL must be an absolute http or https URL"))]
    #[x_kube(validation = Rule::new(
        "!(url(self).getHostname().lowerAscii() in ['169.254.169.254', 'fd00:ec2::254', 'metadata', 'metadata.google.internal', 'metadata.azure.com', '100.100.100.200']) && !(isIP(url(self).getHostname()) && ip(url(self).getHostname()).isLinkLocalUnicast())"
    ).message("baseURL must not point at a link-local or cloud-metadata address"))]
    pub base_url: Option<String>,

    /// Credentials, read from Secrets in this namespace. Not allowed for `mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ProviderAuth>,

    /// Azure OpenAI settings; required for, and only allowed with, `azure-openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSettings>,

    /// Bedrock settings; required for, and only allowed with, `bedrock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSettings>,

    /// The models this provider serves, with their prices. Routes may only name these.
    /// A list-map keyed by `name`: names are unique, and server-side apply merges entries
    /// by name.
    #[schemars(
        length(min = 1, max = 64),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub models: Vec<ProviderModel>,

    /// Provider quotas, per credential: the gateway keeps each key under them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ProviderLimits>,

    /// Default timeouts for this provider; a route's `timeouts` override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,

    /// Extra headers sent with every request to this provider (non-secret values only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(h, self.exists_one(g, g.name.lowerAscii() == h.name.lowerAscii()))")
        .message("headers[].name must be unique (case-insensitive)"))]
    pub headers: Vec<ExtraHeader>,
}

/// The API a provider speaks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ProviderType {
    /// OpenAI's API.
    #[serde(rename = "openai")]
    OpenAI,
    /// Azure OpenAI (deployments, `api-version`, `api-key` header).
    #[serde(rename = "azure-openai")]
    AzureOpenAI,
    /// Anthropic's Messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google's Gemini API (generateContent).
    #[serde(rename = "gemini")]
    Gemini,
    /// AWS Bedrock's Converse API, signed with SigV4.
    #[serde(rename = "bedrock")]
    Bedrock,
    /// Any server speaking OpenAI's chat-completions API (vLLM, Ollama, Groq, Mistral…).
    #[serde(rename = "openai-compatible")]
    OpenAICompatible,
    /// A test double answering canned content in-process; for local runs and app CI.
    #[serde(rename = "mock")]
    Mock,
}

impl ProviderType {
    /// The wire name, as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::OpenAI => "openai",
            ProviderType::AzureOpenAI => "azure-openai",
            ProviderType::Anthropic => "anthropic",
            ProviderType::Gemini => "gemini",
            ProviderType::Bedrock => "bedrock",
            ProviderType::OpenAICompatible => "openai-compatible",
            ProviderType::Mock => "mock",
        }
    }
}

/// Where a provider's credentials come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderAuth {
    /// API keys, one per entry; with several, requests are balanced across them and each
    /// key's own quota (`limits`) is honoured. For `bedrock` these are Bedrock API keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub secret_refs: Vec<SecretKeyRef>,

    /// AWS access keys for SigV4 signing (`bedrock` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsCredentialsRef>,
}

/// AWS credentials held in one Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsCredentialsRef {
    /// The Secret's name, in this namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub secret_name: String,
    /// Key holding the access key id. Default `AWS_ACCESS_KEY_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub access_key_id_key: Option<String>,
    /// Key holding the secret access key. Default `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub secret_access_key_key: Option<String>,
    /// Key holding a session token, for temporary credentials. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub session_token_key: Option<String>,
}

/// Azure OpenAI settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureSettings {
    /// The `api-version` query parameter. Default `2024-10-21`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$"))]
    pub api_version: Option<String>,
    /// Deployment name per model; a model without an entry uses its own name as deployment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub deployments: Vec<AzureDeployment>,
}

/// Maps one of the provider's `models` to an Azure deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureDeployment {
    /// A `models[].name` of this provider.
    #[schemars(length(min = 1, max = 128))]
    pub model: String,
    /// The Azure deployment serving it.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub deployment: String,
}

/// Bedrock settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BedrockSettings {
    /// AWS region, e.g. `us-east-1`; also picks the default `baseURL`.
    #[schemars(length(max = 32), regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: String,
}

/// A model the provider serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderModel {
    /// The provider's model id, as sent upstream (e.g. `gpt-4o-mini`,
    /// `claude-sonnet-4-5`, `anthropic.claude-3-5-haiku-20241022-v1:0`).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
    )]
    pub name: String,
    /// Prices per million tokens. When absent, the built-in catalogue's price for this
    /// provider type and model is used; a model priced by neither is refused (`PriceUnknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<ModelPricing>,
    /// The model's context window in tokens; prompts that cannot fit are sent to a fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000_000))]
    pub context_window: Option<u32>,
}

/// Prices in US dollars per million tokens, as decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPricing {
    /// Uncached input (prompt) tokens.
    pub input: Money,
    /// Output (completion) tokens.
    pub output: Money,
    /// Input tokens read from the provider's prompt cache. Default: `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<Money>,
    /// Input tokens written to the provider's prompt cache (Anthropic: the 5-minute tier).
    /// Default: `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Money>,
    /// Input tokens written to Anthropic's 1-hour prompt cache. Default: twice `input`,
    /// Anthropic's published rule (only Claude models report 1-hour writes).
    #[serde(
        default,
        rename = "cacheWrite1h",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write_1h: Option<Money>,
    /// Reasoning tokens. Default: `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Money>,
}

/// Provider quotas, enforced per credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.requestsPerMinute) || has(self.tokensPerMinute)")
    .message("limits needs requestsPerMinute or tokensPerMinute"))]
pub struct ProviderLimits {
    /// Requests per minute each credential may send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) per minute each credential may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u32>,
}

/// A header added to every upstream request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtraHeader {
    /// Header name. Credential and hop-by-hop headers are refused.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    #[x_kube(validation = Rule::new(
        "!(self.lowerAscii() in ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'proxy-authorization', 'host', 'content-length', 'transfer-encoding', 'connection', 'te', 'upgrade', 'cookie'])"
    ).message("this header is set by the gateway and cannot be overridden"))]
    pub name: String,
    /// Header value (not secret: it is stored in the gateway's ConfigMap).
    #[schemars(length(max = 4096))]
    pub value: String,
}

/// Observed state of an `LLMProvider`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMProviderStatus {
    /// The `.metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed`, `Ready`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// How many `spec.models` the observed generation lists (the MODELS column: a JSONPath
    /// column would show only the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_count: Option<i64>,
}
