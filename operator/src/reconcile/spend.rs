//! Budget spend, from the gateway pods into `LLMBudget.status`, and back into a restarted
//! pod: every slow poll the operator reads `/budgets` from each ready pod and writes
//! `spent`, `remaining`, `periodStart` and `periodEnd` of each budget (a merge patch of
//! those fields only; conditions stay the status controller's). When a pod that keeps its
//! counters in process reports less for the current period than the status holds, it was
//! restarted: the operator sends it the persisted spend (`POST /budgets/seed`). What a
//! restart can lose is the spend between the last poll and the restart (docs/state.md).
//!
//! In-process counters are per pod, so the operator takes the highest report: exact for one
//! replica. Several replicas need the Redis backend, where every pod reports the same counter.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use serde_json::json;
use tollgate_crds::LLMBudget;

use super::{admin_http::exchange, context::Context, gateways::admin_address};
use crate::settings::SPEND_FIELD_MANAGER;

/// One pod's `/budgets`.
#[derive(Debug, Deserialize)]
struct Report {
    shared: bool,
    budgets: Vec<Standing>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Standing {
    id: String,
    spent: Decimal,
    period_start: String,
    period_end: String,
    rolling: bool,
}

/// Runs until dropped.
pub async fn run(ctx: Arc<Context>) {
    super::context::wait_ready(&ctx.pods).await;
    ctx.budgets.ready().await;
    loop {
        round(&ctx).await;
        tokio::time::sleep(ctx.settings.timings.poll_slow).await;
    }
}

/// Status money: at most six decimals, rounded up so the status never shows less than
/// was spent.
fn money(usd: Decimal) -> String {
    usd.round_dp_with_strategy(6, RoundingStrategy::AwayFromZero)
        .normalize()
        .to_string()
}

async fn round(ctx: &Context) {
    let timeout = ctx.settings.timings.poll_timeout;
    let mut reports: Vec<(SocketAddr, Report)> = Vec::new();
    for pod in ctx.pods.state() {
        let Some(addr) = admin_address(&pod, ctx.settings.admin_port) else {
            continue;
        };
        match exchange(addr, "GET", "/budgets", None, timeout).await {
            Ok(body) => match serde_json::from_slice::<Report>(&body) {
                Ok(report) => reports.push((addr, report)),
                Err(e) => tracing::debug!(%addr, error = %e, "unreadable /budgets"),
            },
            Err(e) => tracing::debug!(%addr, error = %e, "cannot read /budgets"),
        }
    }
    // The highest report per budget, for the latest period any pod is in.
    let mut best: BTreeMap<String, Standing> = BTreeMap::new();
    for (_, report) in &reports {
        for s in &report.budgets {
            let keep = best.get(&s.id).is_none_or(|b| {
                (s.period_start.as_str(), s.spent) > (b.period_start.as_str(), b.spent)
            });
            if keep {
                best.insert(s.id.clone(), s.clone());
            }
        }
    }
    for budget in ctx.budgets.all() {
        let ns = budget.namespace().unwrap_or_default();
        let id = format!("{ns}/{}", budget.name_any());
        let Some(mut standing) = best.remove(&id) else {
            continue;
        };
        let status = budget.status.clone().unwrap_or_default();
        let persisted = status
            .spent
            .as_ref()
            .and_then(|m| m.to_decimal().ok())
            .filter(|_| {
                !standing.rolling
                    && status
                        .period_start
                        .as_ref()
                        .is_some_and(|t| t.0.to_string() == standing.period_start)
            });
        if let Some(persisted) = persisted.filter(|p| *p > standing.spent) {
            seed(&reports, &standing, persisted, timeout).await;
            standing.spent = persisted;
        }
        let limit = budget
            .spec
            .limit
            .amount
            .to_decimal()
            .unwrap_or(Decimal::ZERO);
        let spent = money(standing.spent);
        let remaining = money((limit - standing.spent).max(Decimal::ZERO));
        let unchanged = status.spent.as_ref().map(|m| m.to_string()) == Some(spent.clone())
            && status.remaining.as_ref().map(|m| m.to_string()) == Some(remaining.clone())
            && status.period_start.as_ref().map(|t| t.0.to_string())
                == Some(standing.period_start.clone())
            && status.period_end.as_ref().map(|t| t.0.to_string())
                == Some(standing.period_end.clone());
        if unchanged {
            continue;
        }
        let patch = json!({
            "apiVersion": LLMBudget::api_version(&()),
            "kind": LLMBudget::kind(&()),
            "status": {
            "spent": spent,
            "remaining": remaining,
            "periodStart": standing.period_start,
            "periodEnd": standing.period_end,
        }});
        let api: Api<LLMBudget> = Api::namespaced(ctx.client.clone(), &ns);
        if let Err(e) = api
            .patch_status(
                &budget.name_any(),
                &PatchParams::apply(SPEND_FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            tracing::warn!(budget = %id, error = %e, "cannot write budget spend to status");
        }
    }
}

/// Sends `spent` to every in-process pod that reports less for the same period.
async fn seed(
    reports: &[(SocketAddr, Report)],
    standing: &Standing,
    spent: Decimal,
    timeout: Duration,
) {
    let body = json!({"seeds": [{
        "id": standing.id,
        "periodStart": standing.period_start,
        "spent": spent.to_string(),
    }]});
    for (addr, report) in reports {
        let lower = report.budgets.iter().any(|s| {
            s.id == standing.id && s.period_start == standing.period_start && s.spent < spent
        });
        if report.shared || !lower {
            continue;
        }
        let bytes = Bytes::from(body.to_string());
        match exchange(*addr, "POST", "/budgets/seed", Some(bytes), timeout).await {
            Ok(_) => {
                tracing::info!(%addr, budget = %standing.id, "seeded a restarted gateway with the persisted spend")
            }
            Err(e) => {
                tracing::warn!(%addr, budget = %standing.id, error = %e, "cannot seed a gateway's budget spend")
            }
        }
    }
}
