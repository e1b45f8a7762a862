//! Budget periods: which stretch of time a budget counts at a given instant. Shared by the
//! gateway (which counts spend per period) and the operator (which reports `periodStart` and
//! `periodEnd`), so both always agree. Calendar periods start at midnight in the budget's
//! time zone, so a day is 23 or 25 hours long across a daylight-saving change.

use jiff::{Timestamp, ToSpan, Zoned, civil::Date, tz::TimeZone};

use crate::config::PeriodConfig;

/// Why a period cannot be computed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeriodError {
    /// The zone is not in the bundled time-zone database (compile refuses such budgets).
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    /// Date arithmetic left jiff's supported range.
    #[error("period out of range: {0}")]
    Range(String),
}

/// The period a budget counts at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurrentPeriod {
    /// A calendar period `[start, end)`.
    Calendar {
        /// First instant of the period.
        start: Timestamp,
        /// First instant of the next period.
        end: Timestamp,
    },
    /// The trailing window `(now - window, now]`.
    Rolling {
        /// Window length in milliseconds.
        window_ms: u64,
        /// The instant it was computed at.
        now: Timestamp,
    },
}

impl CurrentPeriod {
    /// Start of the period (for rolling windows: `now - window`).
    pub fn start(&self) -> Timestamp {
        match self {
            CurrentPeriod::Calendar { start, .. } => *start,
            CurrentPeriod::Rolling { window_ms, now } => {
                let window = i64::try_from(*window_ms).unwrap_or(i64::MAX);
                now.checked_sub(window.milliseconds())
                    .unwrap_or(Timestamp::MIN)
            }
        }
    }

    /// End of the period (for rolling windows: `now`).
    pub fn end(&self) -> Timestamp {
        match self {
            CurrentPeriod::Calendar { end, .. } => *end,
            CurrentPeriod::Rolling { now, .. } => *now,
        }
    }
}

/// A step from one date to another (the period's first day, the next period's).
type DateStep = fn(Date) -> Result<Date, jiff::Error>;

fn range(e: jiff::Error) -> PeriodError {
    PeriodError::Range(e.to_string())
}

/// Midnight starting `date` in `tz` (the first instant of the day when midnight falls into a
/// daylight-saving gap).
fn midnight(date: Date, tz: &TimeZone) -> Result<Timestamp, PeriodError> {
    let zoned: Zoned = date.to_zoned(tz.clone()).map_err(range)?;
    Ok(zoned.start_of_day().map_err(range)?.timestamp())
}

/// The period of `period` that contains `now`.
pub fn current_period(period: &PeriodConfig, now: Timestamp) -> Result<CurrentPeriod, PeriodError> {
    let (zone, first, next): (&str, DateStep, DateStep) = match period {
        PeriodConfig::Rolling { window_ms } => {
            return Ok(CurrentPeriod::Rolling {
                window_ms: *window_ms,
                now,
            });
        }
        PeriodConfig::Daily { time_zone } => (time_zone, Ok, |d| d.checked_add(1.day())),
        PeriodConfig::Weekly { time_zone } => (
            time_zone,
            |d| d.checked_sub(i64::from(d.weekday().to_monday_zero_offset()).days()),
            |d| d.checked_add(1.week()),
        ),
        PeriodConfig::Monthly { time_zone } => (
            time_zone,
            |d| Ok(d.first_of_month()),
            |d| d.checked_add(1.month()),
        ),
    };
    let tz = TimeZone::get(zone).map_err(|_| PeriodError::UnknownZone(zone.to_owned()))?;
    let today = now.to_zoned(tz.clone()).date();
    let first_day = first(today).map_err(range)?;
    let next_first = next(first_day).map_err(range)?;
    Ok(CurrentPeriod::Calendar {
        start: midnight(first_day, &tz)?,
        end: midnight(next_first, &tz)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn calendar(period: &PeriodConfig, now: &str) -> (String, String) {
        match current_period(period, at(now)).unwrap() {
            CurrentPeriod::Calendar { start, end } => (start.to_string(), end.to_string()),
            other => panic!("not calendar: {other:?}"),
        }
    }

    fn berlin_daily() -> PeriodConfig {
        PeriodConfig::Daily {
            time_zone: "Europe/Berlin".to_owned(),
        }
    }

    #[test]
    fn a_berlin_day_rolls_over_at_local_midnight() {
        // 23:59:59 CET on 15 January is still the 15th ...
        assert_eq!(
            calendar(&berlin_daily(), "2026-01-15T22:59:59Z"),
            (
                "2026-01-14T23:00:00Z".to_owned(),
                "2026-01-15T23:00:00Z".to_owned()
            )
        );
        // ... and midnight CET starts the 16th, an hour before UTC's midnight.
        assert_eq!(
            calendar(&berlin_daily(), "2026-01-15T23:00:00Z"),
            (
                "2026-01-15T23:00:00Z".to_owned(),
                "2026-01-16T23:00:00Z".to_owned()
            )
        );
    }

    #[test]
    fn the_spring_dst_day_in_berlin_has_23_hours_and_the_autumn_one_25() {
        // 29 March 2026: clocks go from 02:00 CET to 03:00 CEST.
        let (start, end) = calendar(&berlin_daily(), "2026-03-29T12:00:00Z");
        assert_eq!(start, "2026-03-28T23:00:00Z");
        assert_eq!(end, "2026-03-29T22:00:00Z");
        // 25 October 2026: back from 03:00 CEST to 02:00 CET.
        let (start, end) = calendar(&berlin_daily(), "2026-10-25T12:00:00Z");
        assert_eq!(start, "2026-10-24T22:00:00Z");
        assert_eq!(end, "2026-10-25T23:00:00Z");
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_in_the_zone() {
        let weekly = PeriodConfig::Weekly {
            time_zone: "Europe/Berlin".to_owned(),
        };
        // Sunday 29 March 2026 (the DST day) belongs to the week from Monday 23 March.
        assert_eq!(
            calendar(&weekly, "2026-03-29T21:59:59Z"),
            (
                "2026-03-22T23:00:00Z".to_owned(),
                "2026-03-29T22:00:00Z".to_owned()
            )
        );
        let monthly = PeriodConfig::Monthly {
            time_zone: "Europe/Berlin".to_owned(),
        };
        assert_eq!(
            calendar(&monthly, "2026-03-31T21:59:59Z"),
            (
                "2026-02-28T23:00:00Z".to_owned(),
                "2026-03-31T22:00:00Z".to_owned()
            )
        );
        // The first instant of April in Berlin is in April's period.
        assert_eq!(
            calendar(&monthly, "2026-03-31T22:00:00Z").0,
            "2026-03-31T22:00:00Z"
        );
        let utc = PeriodConfig::Monthly {
            time_zone: "UTC".to_owned(),
        };
        assert_eq!(
            calendar(&utc, "2026-02-10T00:00:00Z"),
            (
                "2026-02-01T00:00:00Z".to_owned(),
                "2026-03-01T00:00:00Z".to_owned()
            )
        );
    }

    #[test]
    fn rolling_windows_end_now() {
        let p = current_period(
            &PeriodConfig::Rolling {
                window_ms: 3_600_000,
            },
            at("2026-01-01T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(p.start(), at("2026-01-01T09:00:00Z"));
        assert_eq!(p.end(), at("2026-01-01T10:00:00Z"));
    }

    #[test]
    fn unknown_zones_are_errors() {
        let p = PeriodConfig::Daily {
            time_zone: "Mars/Olympus".to_owned(),
        };
        assert!(matches!(
            current_period(&p, at("2026-01-01T00:00:00Z")),
            Err(PeriodError::UnknownZone(_))
        ));
    }
}
