//! Asks the gateway pods what they serve: often while some pod lacks the newest config,
//! rarely once all have it, and at once when pods change or a config is written.

use std::{collections::HashMap, sync::Arc};

use super::{context::Context, gateways};

/// Runs until dropped.
pub async fn run(ctx: Arc<Context>) {
    super::context::wait_ready(&ctx.pods).await;
    let timings = ctx.settings.timings.clone();
    let mut misses = HashMap::new();
    loop {
        let pods = ctx.pods.state();
        let raw = gateways::poll(&pods, ctx.settings.admin_port, timings.poll_timeout).await;
        let hash = ctx.outcome.load().as_ref().and_then(|o| o.hash.clone());
        // The metric shows what the pods answer now; the objects' status, the smoothed view.
        ctx.metrics.set_pods(&raw.counts(hash.as_deref()));
        let view = gateways::smooth(ctx.view.load().as_deref(), raw, &mut misses);
        let settled = hash.as_deref().is_some_and(|h| view.all_serve(h));
        if ctx.view.load().as_deref() != Some(&view) {
            for pod in &view.pods {
                tracing::debug!(pod = %pod.pod, state = ?pod.state, "gateway pod report");
            }
            ctx.view.store(Some(Arc::new(view)));
            ctx.trigger_status();
        }
        let wait = if settled {
            timings.poll_slow
        } else {
            timings.poll_fast
        };
        tokio::select! {
            () = ctx.poll_now.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
