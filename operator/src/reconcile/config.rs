//! The config task: on any change of the watched objects or referenced Secrets (debounced),
//! compile the whole `GatewayConfig` with the shared compile function, write the gateway's
//! ConfigMap and Secret where they differ, publish the outcome and wake the status
//! controllers.

use std::{collections::HashMap, sync::Arc, time::Instant};

use kube::ResourceExt;
use tollgate_crds::{
    LLMBudget, LLMProvider, LLMRoute,
    compile::{Inputs, Kind, ObjectRef, compile},
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
    tracing::debug!("config task waiting for caches");
    ctx.providers.ready().await;
    tracing::debug!("providers synced");
    ctx.routes.ready().await;
    ctx.budgets.ready().await;
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
            // Let a burst of changes (an `kubectl apply` of many objects) settle.
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
    let routes: Vec<LLMRoute> = ctx.routes.all().iter().map(|r| (**r).clone()).collect();
    let budgets: Vec<LLMBudget> = ctx.budgets.all().iter().map(|b| (**b).clone()).collect();

    let mut generations = HashMap::new();
    let mut record = |kind, ns: Option<String>, name: String, generation| {
        let object = ObjectRef {
            kind,
            namespace: ns.unwrap_or_else(|| tollgate_crds::compile::DEFAULT_NAMESPACE.to_owned()),
            name,
        };
        generations.insert(object, generation);
    };
    for p in &providers {
        record(
            Kind::LLMProvider,
            p.namespace(),
            p.name_any(),
            p.metadata.generation,
        );
    }
    for r in &routes {
        record(
            Kind::LLMRoute,
            r.namespace(),
            r.name_any(),
            r.metadata.generation,
        );
    }
    for b in &budgets {
        record(
            Kind::LLMBudget,
            b.namespace(),
            b.name_any(),
            b.metadata.generation,
        );
    }

    let compiled = compile(&Inputs {
        providers: &providers,
        routes: &routes,
        budgets: &budgets,
        secrets: &index,
        catalogue: ctx.catalogue,
    });
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            // Our own validators failed to build: nothing can be compiled, ever.
            tracing::error!(error = %e, "cannot compile");
            return Outcome {
                compiled: tollgate_crds::compile::Compiled {
                    config: tollgate_crds::config::GatewayConfig::empty(),
                    problems: Vec::new(),
                },
                generations,
                hash: None,
                failure: Some(WriteFailure::Apply(e.to_string())),
            };
        }
    };
    ctx.metrics
        .set_problems(compiled.problems.iter().map(|p| p.reason.as_str()));

    let text = match render::config_text(&compiled) {
        Ok(text) => text,
        Err(e) => {
            let failure = match &e {
                RenderError::TooLarge { size, .. } => {
                    ctx.metrics.config_size(*size);
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
    ctx.metrics.config_size(text.text.len());
    let secret_data = gateway_secret_data(&compiled.config, |ns, name, key| {
        ctx.secrets.value(ns, name, key)
    });
    let names = &ctx.settings.gateway;
    match apply::write(&ctx.client, names, &text, &secret_data, &ctx.metrics).await {
        Ok(writes) => {
            if writes > 0 {
                tracing::info!(
                    hash = %text.hash,
                    bytes = text.text.len(),
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
