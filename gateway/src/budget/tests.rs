//! Admission, settlement, periods with a hand-driven clock, seeds and scope.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use rust_decimal::Decimal;
use tollgate_crds::config::{ActionConfig, BudgetConfig, GatewayConfig, PeriodConfig};

use super::{Budgets, Refusal, Seed, WallClock, in_scope};
use crate::{
    identity::Identity,
    state::{StateSettings, StateStore},
};

fn usd(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn budget(id: &str, limit: &str, period: PeriodConfig, action: ActionConfig) -> BudgetConfig {
    BudgetConfig {
        id: id.to_owned(),
        routes: vec!["ns/chat".to_owned()],
        teams: Vec::new(),
        keys: Vec::new(),
        limit: usd(limit),
        period,
        action,
        alert_thresholds: Vec::new(),
        shadow_mode: false,
    }
}

fn berlin_daily() -> PeriodConfig {
    PeriodConfig::Daily {
        time_zone: "Europe/Berlin".to_owned(),
    }
}

fn clock(at: &str) -> (WallClock, Arc<AtomicI64>) {
    let ms = Arc::new(AtomicI64::new(
        at.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
    ));
    (WallClock::Manual(Arc::clone(&ms)), ms)
}

fn set(ms: &AtomicI64, at: &str) {
    ms.store(
        at.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
        Ordering::Relaxed,
    );
}

fn budgets(clock: WallClock) -> Budgets {
    Budgets::new(StateStore::new(&StateSettings::Memory).unwrap(), clock)
}

fn config(b: Vec<BudgetConfig>) -> GatewayConfig {
    let mut c = GatewayConfig::empty();
    c.budgets = b;
    c
}

#[tokio::test]
async fn reject_budgets_refuse_once_reservations_fill_the_limit_and_settling_frees_room() {
    let (wall, _) = clock("2026-01-15T12:00:00Z");
    let b = budgets(wall);
    let cap = budget("ns/cap", "1.00", berlin_daily(), ActionConfig::Reject);
    let scope = [&cap];
    let first = b.admit(&scope, usd("0.40")).await.unwrap().unwrap();
    let _second = b.admit(&scope, usd("0.40")).await.unwrap().unwrap();
    // 0.80 reserved: another 0.40 does not fit.
    match b.admit(&scope, usd("0.40")).await.unwrap() {
        Err(Refusal::Exceeded { budget }) => assert_eq!(budget, "ns/cap"),
        other => panic!("{other:?}"),
    }
    // The first request really cost 0.10: 0.30 comes back.
    b.settle(&first.reservations, usd("0.10")).await;
    assert!(b.admit(&scope, usd("0.40")).await.unwrap().is_ok());
    let standing = &b.standings(&config(vec![cap.clone()])).await.unwrap()[0];
    assert_eq!(standing.spent, usd("0.90"));
    assert_eq!(standing.remaining, usd("0.10"));
}

#[tokio::test]
async fn a_berlin_day_starts_from_zero_at_local_midnight_and_a_dst_day_has_23_hours() {
    let (wall, ms) = clock("2026-03-28T22:59:00Z"); // 23:59 CET, Saturday 28 March
    let b = budgets(wall);
    let cap = budget("ns/cap", "1.00", berlin_daily(), ActionConfig::Reject);
    let cfg = config(vec![cap.clone()]);
    assert!(b.admit(&[&cap], usd("1.00")).await.unwrap().is_ok());
    assert!(b.admit(&[&cap], usd("0.01")).await.unwrap().is_err());
    // 00:00 CET on Sunday 29 March: a new day, the spend starts again.
    set(&ms, "2026-03-28T23:00:00Z");
    let s = &b.standings(&cfg).await.unwrap()[0];
    assert_eq!(s.spent, Decimal::ZERO);
    assert_eq!(s.period_start, "2026-03-28T23:00:00Z");
    // The clocks jump from 02:00 CET to 03:00 CEST: this day ends 23 hours later.
    assert_eq!(s.period_end, "2026-03-29T22:00:00Z");
    assert!(b.admit(&[&cap], usd("0.60")).await.unwrap().is_ok());
    // 23:59 CEST is still the same day ...
    set(&ms, "2026-03-29T21:59:00Z");
    assert_eq!(b.standings(&cfg).await.unwrap()[0].spent, usd("0.60"));
    // ... and 00:00 CEST is the next.
    set(&ms, "2026-03-29T22:00:00Z");
    assert_eq!(b.standings(&cfg).await.unwrap()[0].spent, Decimal::ZERO);
}

#[tokio::test]
async fn rolling_windows_forget_spend_older_than_the_window() {
    let (wall, ms) = clock("2026-01-15T12:00:00Z");
    let b = budgets(wall);
    let hourly = budget(
        "ns/hourly",
        "1.00",
        PeriodConfig::Rolling {
            window_ms: 3_600_000,
        },
        ActionConfig::Reject,
    );
    assert!(b.admit(&[&hourly], usd("1.00")).await.unwrap().is_ok());
    set(&ms, "2026-01-15T12:30:00Z");
    assert!(b.admit(&[&hourly], usd("0.01")).await.unwrap().is_err());
    set(&ms, "2026-01-15T13:01:00Z");
    assert!(b.admit(&[&hourly], usd("0.50")).await.unwrap().is_ok());
}

#[tokio::test]
async fn alert_and_shadow_budgets_count_but_never_refuse() {
    let (wall, _) = clock("2026-01-15T12:00:00Z");
    let b = budgets(wall);
    let alert = budget("ns/alert", "1.00", berlin_daily(), ActionConfig::Alert);
    let mut shadow = budget("ns/shadow", "1.00", berlin_daily(), ActionConfig::Reject);
    shadow.shadow_mode = true;
    for _ in 0..3 {
        let admitted = b
            .admit(&[&alert, &shadow], usd("0.50"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(admitted.reservations.len(), 2);
    }
    let admitted = b
        .admit(&[&alert, &shadow], usd("0.50"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admitted.over.len(), 2, "both report being over");
    let s = b.standings(&config(vec![alert, shadow])).await.unwrap();
    assert!(
        s.iter()
            .all(|s| s.spent == usd("2.00") && s.remaining == Decimal::ZERO)
    );
}

#[tokio::test]
async fn a_full_downgrade_budget_names_its_route_and_refusals_release_other_reservations() {
    let (wall, _) = clock("2026-01-15T12:00:00Z");
    let b = budgets(wall);
    let roomy = budget("ns/a-roomy", "100", berlin_daily(), ActionConfig::Reject);
    let tight = budget(
        "ns/b-tight",
        "0.10",
        berlin_daily(),
        ActionConfig::Downgrade {
            route: "ns/cheap".to_owned(),
        },
    );
    match b.admit(&[&roomy, &tight], usd("0.50")).await.unwrap() {
        Err(Refusal::Downgrade { route, .. }) => assert_eq!(route, "ns/cheap"),
        other => panic!("{other:?}"),
    }
    let s = b.standings(&config(vec![roomy])).await.unwrap();
    assert_eq!(
        s[0].spent,
        Decimal::ZERO,
        "the roomy budget's reservation was released"
    );
}

#[tokio::test]
async fn seeds_restore_the_current_period_only_and_never_lower_spend() {
    let (wall, _) = clock("2026-01-15T12:00:00Z");
    let b = budgets(wall);
    let cap = budget("ns/cap", "10", berlin_daily(), ActionConfig::Reject);
    let cfg = config(vec![cap.clone()]);
    let today = "2026-01-14T23:00:00Z".to_owned();
    let seeds = vec![
        Seed {
            id: "ns/cap".to_owned(),
            period_start: today.clone(),
            spent: usd("7.25"),
        },
        Seed {
            id: "ns/cap".to_owned(),
            period_start: "2026-01-13T23:00:00Z".to_owned(),
            spent: usd("9"),
        },
        Seed {
            id: "ns/gone".to_owned(),
            period_start: today.clone(),
            spent: usd("1"),
        },
    ];
    assert_eq!(b.seed(&cfg, &seeds).await.unwrap(), 1);
    assert_eq!(b.standings(&cfg).await.unwrap()[0].spent, usd("7.25"));
    let lower = [Seed {
        id: "ns/cap".to_owned(),
        period_start: today,
        spent: usd("1"),
    }];
    b.seed(&cfg, &lower).await.unwrap();
    assert_eq!(b.standings(&cfg).await.unwrap()[0].spent, usd("7.25"));
    assert!(b.admit(&[&cap], usd("3")).await.unwrap().is_err());
}

#[test]
fn scope_matches_route_team_and_key() {
    let mut by_team = budget("ns/team", "1", berlin_daily(), ActionConfig::Reject);
    by_team.teams = vec!["research".to_owned()];
    let mut by_key = budget("ns/key", "1", berlin_daily(), ActionConfig::Reject);
    by_key.keys = vec!["ns/app".to_owned()];
    let all = budget("ns/all", "1", berlin_daily(), ActionConfig::Reject);
    let cfg = config(vec![by_team, by_key, all]);
    let ids = |route: &str, identity: &Identity| {
        in_scope(&cfg, route, identity)
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>()
    };
    let anonymous = Identity::default();
    assert_eq!(ids("ns/chat", &anonymous), vec!["ns/all"]);
    let research = Identity {
        key_id: Some("ns/app".into()),
        team: Some("research".into()),
    };
    assert_eq!(
        ids("ns/chat", &research),
        vec!["ns/team", "ns/key", "ns/all"]
    );
    assert!(ids("ns/other", &research).is_empty());
}
