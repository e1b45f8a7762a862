//! The config task: on any change of the watched objects or referenced Secrets (debounced),
//! compile the whole `GatewayConfig` with the shared compile function, write the gateway's
//! ConfigMap and Secret where they differ, publish the outcome and wake the status
//! controllers.

use std::{collections::HashMap, sync::Arc, time::Instant};

use tollgate_crds::{
    LLMBudget, LLMProvider, LLMRoute,
    compile::{Compiled, Inputs, Kind, ObjectRef, object_ref},
    config::GatewayConfig,
    manifests::gateway_secret_data,
};

use super::{
    apply,
    context::{Context, backoff},
    outcome::{Outcome, WriteFailure},
    secrets,
};
use crate::render::{self, RenderError};

/// Runs until dropped.
pub async fn run(ctx: Arc<Context>) {
    ctx.providers.ready().await;
    ctx.routes.ready().await;
    ctx.budgets.ready().await;
    ctx.client_keys
        .ready(super::client_keys::watch_count(
            &ctx.settings.client_key_namespaces(),
        ))
        .await;
    tracing::debug!("caches synced; config task starting");
    let timings = ctx.settings.timings.clone();
    let mut failures = 0u32;
    let mut wait_for_change = false;
    loop {
        if wait_for_change {
            let wait = if failures > 0 {
                backoff(failures)
            } else {
                timings.resync
            };
            tokio::select! {
                () = ctx.inputs_changed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            // Let a burst of changes (a `kubectl apply` of many objects) settle.
            tokio::time::sleep(timings.debounce).await;
        }
        wait_for_change = true;

        let providers = ctx.providers.all();
        let (wanted, forbidden) = secrets::referenced(&providers, &ctx.settings.secrets);
        ctx.secrets.watch_exactly(&wanted);
        if ctx.secrets.pending(timings.secret_sync_grace) {
            // A newly referenced Secret is being listed: compiling now would report it
            // missing and drop its keys from the gateway for a moment. Its first answer
            // wakes us; the grace period bounds the wait.
            tokio::select! {
                () = ctx.inputs_changed.notified() => {}
                () = tokio::time::sleep(timings.secret_sync_grace) => {}
            }
            wait_for_change = false;
            continue;
        }

        tracing::debug!(
            providers = providers.len(),
            secrets = wanted.len(),
            "compiling"
        );
        let started = Instant::now();
        let outcome = round(&ctx, &providers, forbidden).await;
        let failed = matches!(outcome.failure, Some(WriteFailure::Apply(_)));
        ctx.metrics.reconciled("config", started.elapsed(), failed);
        failures = if failed {
            failures.saturating_add(1)
        } else {
            0
        };
        if outcome.failure.is_none() {
            ctx.set_configured();
        }
        ctx.outcome.store(Some(Arc::new(outcome)));
        ctx.forget_old_writes();
        ctx.trigger_status();
        ctx.poll_now.notify_one();
    }
}

/// One compile-and-write round.
async fn round(
    ctx: &Context,
    providers: &[Arc<LLMProvider>],
    forbidden: std::collections::BTreeSet<String>,
) -> Outcome {
    let mut index = ctx.secrets.index();
    for ns in &forbidden {
        index.forbid_namespace(ns);
    }
    let providers: Vec<LLMProvider> = providers.iter().map(|p| (**p).clone()).collect();
    let routes: Vec<LLMRoute> = ctx
        .routes
        .all()
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect();
    let budgets: Vec<LLMBudget> = ctx
        .budgets
        .all()
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect();
    let generations: HashMap<ObjectRef, Option<i64>> = providers
        .iter()
        .map(|p| (object_ref(Kind::LLMProvider, p), p.metadata.generation))
        .chain(
            routes
                .iter()
                .map(|r| (object_ref(Kind::LLMRoute, r), r.metadata.generation)),
        )
        .chain(
            budgets
                .iter()
                .map(|b| (object_ref(Kind::LLMBudget, b), b.metadata.generation)),
        )
        .collect();

    // Compile and serialization are CPU work (tens of milliseconds at cluster scale): off
    // the async workers.
    let catalogue = ctx.catalogue;
    let (keys, keyed_namespaces, key_problems) = ctx.client_keys.compiled();
    for p in &key_problems {
        tracing::warn!(secret = %p.secret, field = %p.field, "client key refused: {}", p.message);
    }
    let built = tokio::task::spawn_blocking(move || {
        let inputs = Inputs {
            providers: &providers,
            routes: &routes,
            budgets: &budgets,
            secrets: &index,
            catalogue,
        };
        // A config too large for the ConfigMap leaves out its newest objects, not everyone.
        crate::fit::compile_to_fit(&inputs, |compiled| {
            compiled.config.client_keys = keys.clone();
            compiled.config.keyed_namespaces = keyed_namespaces.clone();
        })
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|built| built);
    let (compiled, text) = match built {
        Ok(fitted) => {
            if fitted.left_out > 0 {
                tracing::warn!(
                    left_out = fitted.left_out,
                    compiles = fitted.compiles,
                    "the config would not fit in its ConfigMap; the newest objects are left out (ConfigTooLarge)"
                );
            }
            (fitted.compiled, fitted.text)
        }
        Err(e) => {
            // Our own validators failed to build (a defect): nothing can be compiled.
            tracing::error!(error = %e, "cannot compile");
            return Outcome {
                compiled: Compiled {
                    config: GatewayConfig::empty(),
                    problems: Vec::new(),
                },
                generations,
                hash: None,
                failure: Some(WriteFailure::Apply(format!("cannot compile: {e}"))),
            };
        }
    };

    let unreadable =
        ctx.providers.unreadable() + ctx.routes.unreadable() + ctx.budgets.unreadable();
    ctx.metrics
        .set_problems(compiled.problems.iter().map(|p| p.reason.as_str()).chain(
            std::iter::repeat_n(super::unreadable::UNREADABLE, unreadable),
        ));

    let text = match text {
        Ok(text) => text,
        Err(e) => {
            let failure = match &e {
                RenderError::TooLarge { size, packed, .. } => {
                    ctx.metrics
                        .config_size(if *packed > 0 { *packed } else { *size });
                    WriteFailure::TooLarge(format!(
                        "{e}; the gateway keeps serving the last config written"
                    ))
                }
                _ => WriteFailure::Apply(e.to_string()),
            };
            tracing::error!(error = %e, "config not written");
            return Outcome {
                compiled,
                generations,
                hash: None,
                failure: Some(failure),
            };
        }
    };
    // What the ConfigMap holds: the gzip when the text alone would not fit.
    ctx.metrics.config_size(text.file().1.len());
    let secret_data = gateway_secret_data(&compiled.config, |ns, name, key| {
        ctx.secrets.value(ns, name, key)
    });
    if let Err(e) = render::check_secret_size(&secret_data) {
        tracing::error!(error = %e, "config not written");
        return Outcome {
            compiled,
            generations,
            hash: None,
            failure: Some(WriteFailure::TooLarge(format!(
                "{e}; the gateway keeps serving the last config written"
            ))),
        };
    }
    let names = &ctx.settings.gateway;
    match apply::write(
        &ctx.client,
        names,
        &text,
        &secret_data,
        &ctx.metrics,
        &ctx.own,
    )
    .await
    {
        Ok(writes) => {
            if writes > 0 {
                tracing::info!(
                    hash = %text.hash,
                    bytes = text.text.len(),
                    compressed = text.packed.as_ref().map(Vec::len),
                    keys = secret_data.len(),
                    problems = compiled.problems.len(),
                    writes,
                    "gateway config written"
                );
            }
            Outcome {
                compiled,
                generations,
                hash: Some(text.hash),
                failure: None,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, namespace = %names.namespace, "cannot write the gateway config; retrying");
            Outcome {
                compiled,
                generations,
                hash: None,
                failure: Some(WriteFailure::Apply(format!(
                    "writing ConfigMap {ns}/{cm} or Secret {ns}/{s} failed: {e}",
                    ns = names.namespace,
                    cm = names.config_map,
                    s = names.secret
                ))),
            }
        }
    }
}
