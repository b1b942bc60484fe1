//! A feed's schedule, pause and failure as both backends store them, and back: one place for
//! the column forms (`cadence` text, `weekday` code, `parity`, `HH:MM`, zone name, a paused flag
//! with an optional local date), so SQLite and PostgreSQL cannot drift apart on what a row means.

use chrono::{DateTime, NaiveDate, Timelike, Utc, Weekday};

use crate::store::{Failure, Pause};
use crate::weekly::schedule::{parse_time, parse_weekday, parse_zone, Cadence, Schedule};

/// The stored form of a weekday (`mon` .. `sun`).
pub(crate) fn weekday_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

/// A schedule's columns.
pub(crate) struct ScheduleColumns {
    pub cadence: String,
    /// Only for weekly and every-two-weeks feeds.
    pub weekday: Option<String>,
    /// Only meaningful for every-two-weeks feeds (0 otherwise).
    pub parity: i64,
    pub time: String,
    pub zone: String,
}

impl ScheduleColumns {
    pub fn of(schedule: &Schedule) -> Self {
        let parity = match schedule.cadence {
            Cadence::EveryTwoWeeks { parity, .. } => i64::from(parity),
            _ => 0,
        };
        ScheduleColumns {
            cadence: schedule.cadence.name().to_string(),
            weekday: schedule
                .cadence
                .weekday()
                .map(|day| weekday_code(day).to_string()),
            parity,
            time: format!("{:02}:{:02}", schedule.time.hour(), schedule.time.minute()),
            zone: schedule.zone.name().to_string(),
        }
    }

    fn parse(&self) -> Result<Schedule, String> {
        let again = "; run /weekly set again to replace it";
        let time = parse_time(&self.time).map_err(|e| format!("{e}{again}"))?;
        let zone = parse_zone(&self.zone).map_err(|e| format!("{e}{again}"))?;
        let weekday = || match &self.weekday {
            Some(day) => parse_weekday(day).map_err(|e| format!("{e}{again}")),
            None => Err(format!("a {} feed without a weekday{again}", self.cadence)),
        };
        let cadence = match self.cadence.as_str() {
            "weekly" => Cadence::Weekly(weekday()?),
            "every-2-weeks" => Cadence::EveryTwoWeeks {
                weekday: weekday()?,
                parity: u8::from(self.parity % 2 != 0),
            },
            "weekdays" => Cadence::Weekdays,
            "daily" => Cadence::Daily,
            other => return Err(format!("unknown cadence {other:?}{again}")),
        };
        Ok(Schedule::new(cadence, time, zone))
    }
}

/// The columns of a row that need checking together.
pub(crate) struct Parsed {
    pub schedule: ScheduleColumns,
    pub paused: bool,
    pub paused_until: Option<String>,
    pub failure_reason: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
}

impl Parsed {
    /// The schedule, the pause and the failure, or what is wrong with the row.
    pub fn parse(self) -> Result<(Schedule, Option<Pause>, Option<Failure>), String> {
        let schedule = self.schedule.parse()?;
        let pause = match (self.paused, self.paused_until) {
            (false, None) => None,
            (true, None) => Some(Pause::Indefinitely),
            (true, Some(day)) => Some(Pause::Until(
                NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|e| format!("paused_until {day:?} is not a date ({e})"))?,
            )),
            (false, Some(_)) => {
                return Err("paused_until is set on a feed that is not paused".into())
            }
        };
        let failure = match (self.failure_reason, self.failed_at) {
            (None, None) => None,
            (Some(reason), Some(at)) => Some(Failure { reason, at }),
            _ => return Err("failure_reason and failed_at must be set together".into()),
        };
        Ok((schedule, pause, failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    #[test]
    fn every_cadence_survives_its_columns() {
        let time = NaiveTime::from_hms_opt(7, 5, 0).unwrap();
        for cadence in [
            Cadence::Weekly(Weekday::Sun),
            Cadence::EveryTwoWeeks {
                weekday: Weekday::Wed,
                parity: 1,
            },
            Cadence::Weekdays,
            Cadence::Daily,
        ] {
            let schedule = Schedule::new(cadence, time, chrono_tz::Europe::London);
            let parsed = Parsed {
                schedule: ScheduleColumns::of(&schedule),
                paused: true,
                paused_until: Some("2027-01-04".into()),
                failure_reason: None,
                failed_at: None,
            };
            let (back, pause, failure) = parsed.parse().unwrap();
            assert_eq!(back, schedule);
            assert_eq!(
                pause,
                Some(Pause::Until(NaiveDate::from_ymd_opt(2027, 1, 4).unwrap()))
            );
            assert_eq!(failure, None);
        }
    }

    #[test]
    fn a_broken_row_says_what_is_wrong() {
        let columns = |cadence: &str, weekday: Option<&str>| ScheduleColumns {
            cadence: cadence.into(),
            weekday: weekday.map(String::from),
            parity: 0,
            time: "09:00".into(),
            zone: "UTC".into(),
        };
        let parse = |schedule, paused, until: Option<&str>| {
            Parsed {
                schedule,
                paused,
                paused_until: until.map(String::from),
                failure_reason: None,
                failed_at: None,
            }
            .parse()
            .unwrap_err()
        };
        assert!(parse(columns("hourly", None), false, None).contains("unknown cadence"));
        assert!(parse(columns("weekly", None), false, None).contains("without a weekday"));
        assert!(parse(columns("daily", None), false, Some("2027-01-04")).contains("not paused"));
        assert!(parse(columns("daily", None), true, Some("soon")).contains("not a date"));
    }
}
