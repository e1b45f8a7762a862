//! `/budgets` on the admin port: every budget's spend, limit and period, as this gateway
//! counts it (with Redis: as every replica counts it); and `POST /budgets/seed`, through
//! which the operator hands a restarted in-process gateway the spend it last saw.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::budget::{BudgetStanding, Seed};

/// The `/budgets` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetsReport {
    /// `memory` or `redis`.
    pub state: String,
    /// Whether every replica shares these counters.
    pub shared: bool,
    /// One entry per budget of the served config.
    pub budgets: Vec<BudgetStanding>,
}

/// `GET /budgets`.
pub async fn standings(State(app): State<Arc<AppState>>) -> Response {
    let Some(snapshot) = app.config.snapshot() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no valid config loaded yet",
        )
            .into_response();
    };
    let budgets = &app.pays.budgets;
    match budgets.standings(&snapshot.config).await {
        Ok(list) => Json(BudgetsReport {
            state: budgets.store.kind().to_owned(),
            shared: budgets.store.shared(),
            budgets: list,
        })
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The `POST /budgets/seed` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedRequest {
    /// Spend per budget and period.
    pub seeds: Vec<Seed>,
}

/// `POST /budgets/seed`: raises counters to the operator's last-known spend.
pub async fn seed(State(app): State<Arc<AppState>>, Json(body): Json<SeedRequest>) -> Response {
    let Some(snapshot) = app.config.snapshot() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no valid config loaded yet",
        )
            .into_response();
    };
    match app.pays.budgets.seed(&snapshot.config, &body.seeds).await {
        Ok(applied) => Json(serde_json::json!({"applied": applied})).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
