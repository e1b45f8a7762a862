//! The operator's Kubernetes API client, with a client-side request rate limit so a large
//! cluster, a relist storm or a crash loop cannot flood the API server.

use std::time::Duration;

use kube::client::{Body, ClientBuilder};
use tower::{BoxError, Service, limit::RateLimitLayer};

/// Builds the client from `builder` (the in-cluster stack, or the in-memory API in tests) so
/// that at most `qps` requests (at least 1) start in each second; the rest wait their turn.
/// The client's internal buffer serialises its callers, so this one limiter covers every
/// watcher, controller and writer sharing the client.
pub fn rate_limited<Svc, B>(builder: ClientBuilder<Svc>, qps: u32) -> kube::Client
where
    Svc: Service<http::Request<Body>, Response = http::Response<B>> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    builder
        .with_layer(&RateLimitLayer::new(
            u64::from(qps.max(1)),
            Duration::from_secs(1),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;
    use tokio::task::JoinSet;

    use super::*;
    use crate::testing::FakeApi;

    /// Paused time: the second window opens only when the test's clock reaches it.
    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_rate_wait_for_the_next_second() {
        let fake = FakeApi::new();
        let api: Api<ConfigMap> =
            Api::namespaced(rate_limited(fake.client_builder(), 2), "default");
        let mut calls = JoinSet::new();
        for i in 0..5 {
            let api = api.clone();
            calls.spawn(async move { api.get_opt(&format!("cm-{i}")).await });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            fake.requests().len(),
            2,
            "only --api-qps requests reach the API in the first second"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(fake.requests().len(), 4, "two more in the next second");
        while let Some(call) = calls.join_next().await {
            assert!(
                call.unwrap().unwrap().is_none(),
                "every request is answered"
            );
        }
        assert_eq!(fake.requests().len(), 5);
    }
}
