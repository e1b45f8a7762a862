//! Decoding of request paths and query strings into what the store needs.

use super::{
    error::ApiError,
    selector::{FieldSelector, LabelSelector},
};

/// A resource path: `/api/v1[/namespaces/{ns}]/{plural}[/{name}[/status]]` or the same under
/// `/apis/{group}/{version}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) namespace: Option<String>,
    pub(crate) plural: String,
    pub(crate) name: Option<String>,
    pub(crate) status: bool,
}

impl Target {
    pub(crate) fn parse(path: &str) -> Result<Self, ApiError> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(ApiError::no_route(path)),
        };
        // `/api/v1/namespaces` and `/api/v1/namespaces/{name}` address Namespace objects.
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
            _ => (None, rest),
        };
        let (plural, name, status) = match rest {
            [plural] => (*plural, None, false),
            [plural, name] => (*plural, Some(*name), false),
            [plural, name, "status"] => (*plural, Some(*name), true),
            _ => return Err(ApiError::no_route(path)),
        };
        if plural.is_empty() || name.is_some_and(str::is_empty) {
            return Err(ApiError::no_route(path));
        }
        Ok(Self {
            group: group.to_owned(),
            version: version.to_owned(),
            namespace: namespace.map(str::to_owned),
            plural: plural.to_owned(),
            name: name.map(str::to_owned),
            status,
        })
    }
}

/// The query parameters the fake understands; others (`limit`, `continue`,
/// `resourceVersionMatch`, `pretty`, ...) are accepted and ignored.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query {
    pub(crate) watch: bool,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) resource_version: Option<String>,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) bookmarks: bool,
    pub(crate) send_initial_events: bool,
    pub(crate) field_manager: Option<String>,
    pub(crate) dry_run: bool,
}

impl Query {
    /// Parses a raw query string; `+` and percent escapes are decoded.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        let is_true = |v: &str| v == "true" || v == "1";
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "watch" => q.watch = is_true(&v),
                "labelSelector" => {
                    q.labels = LabelSelector::parse(&v).map_err(ApiError::bad_request)?;
                }
                "fieldSelector" => {
                    q.fields = FieldSelector::parse(&v).map_err(ApiError::bad_request)?;
                }
                "resourceVersion" => q.resource_version = Some(v.into_owned()),
                "timeoutSeconds" => {
                    let secs = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid timeoutSeconds {v:?}"))
                    })?;
                    q.timeout_seconds = Some(secs);
                }
                "allowWatchBookmarks" => q.bookmarks = is_true(&v),
                "sendInitialEvents" => q.send_initial_events = is_true(&v),
                "fieldManager" => q.field_manager = Some(v.into_owned()),
                "dryRun" => q.dry_run = v == "All",
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether an object passes both selectors.
    pub(crate) fn selects(&self, object: &serde_json::Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_core_group_namespaced_and_cluster_paths() {
        let t = Target::parse("/api/v1/namespaces/ns/configmaps/cm").unwrap();
        assert_eq!(
            (t.group.as_str(), t.namespace.as_deref(), t.plural.as_str()),
            ("", Some("ns"), "configmaps")
        );
        assert_eq!(t.name.as_deref(), Some("cm"));
        let t = Target::parse("/apis/llm.tollgate.dev/v1alpha1/namespaces/ns/llmroutes/r/status")
            .unwrap();
        assert!(t.status && t.group == "llm.tollgate.dev" && t.version == "v1alpha1");
        let t = Target::parse("/api/v1/secrets").unwrap();
        assert_eq!((t.namespace, t.name), (None, None));
        let t = Target::parse("/api/v1/namespaces/default").unwrap();
        assert_eq!(
            (t.plural.as_str(), t.name.as_deref()),
            ("namespaces", Some("default"))
        );
        assert_eq!(Target::parse("/healthz").unwrap_err().code, 404);
        assert_eq!(Target::parse("/api/v1/a/b/c/d").unwrap_err().code, 404);
    }

    #[test]
    fn decodes_plus_and_percent_in_selectors() {
        let q = Query::parse(Some(
            "labelSelector=env+in+%28a%2Cb%29%2Capp%3Dx&watch=1&timeoutSeconds=5&dryRun=All",
        ))
        .unwrap();
        assert!(q.watch && q.dry_run);
        assert_eq!(q.timeout_seconds, Some(5));
        let obj = serde_json::json!({"metadata": {"labels": {"env": "b", "app": "x"}}});
        assert!(q.selects(&obj));
        assert_eq!(
            Query::parse(Some("timeoutSeconds=x")).unwrap_err().code,
            400
        );
    }
}
