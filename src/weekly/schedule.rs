//! Schedule math: "Mondays at 09:00 in Europe/London", "every weekday at 08:30 in
//! America/New_York" -> the UTC instants of a feed's posts.
//!
//! A server's admin thinks in wall-clock time, the poster sleeps until UTC instants, and the store
//! must never post twice for the same period. This module is the single place that converts
//! between them, so the DST rules live here and nowhere else:
//! - the post keeps its wall-clock time, so its UTC instant moves when the clocks change;
//! - a wall-clock time skipped by a spring-forward posts at the instant the clocks jump;
//! - a wall-clock time repeated by a fall-back posts once, at its first occurrence;
//! - every cadence ([`Cadence`]: weekly, every two weeks, weekdays, daily) posts at most once a
//!   local day, so a [`Slot`] is named by its local date, and belongs to a [`Period`]: the ISO
//!   week of that date for weekly and every-two-weeks schedules (one slot per week, or per other
//!   week), the date itself for daily and weekdays ones. The post log records the period, which
//!   makes "never twice, never skipped" checkable.
//!
//! It is pure (no clock, no I/O): callers pass "now", which keeps every rule testable.

use std::fmt;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{Offset, SecondsFormat, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// Why user input could not become a schedule. Each message names the bad input and shows a valid
/// example, because it is shown verbatim to the admin who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid day {0:?}: use a weekday name, for example mon or monday")]
    InvalidDay(String),
    #[error("invalid time {0:?}: use 24-hour HH:MM, for example 09:00")]
    InvalidTime(String),
    #[error("invalid repeat {0:?}: use weekly, every-2-weeks, weekdays or daily")]
    InvalidRepeat(String),
    #[error(
        "unknown time zone {0:?}: use an IANA zone name, for example Europe/London or America/New_York"
    )]
    UnknownZone(String),
    #[error(
        "{typed:?} is an abbreviation, not a time zone: it would not follow your clocks when they change for daylight saving (a post an hour off for half the year); use {meant}"
    )]
    Abbreviation { typed: String, meant: &'static str },
}

/// Zone abbreviations people type, and the IANA zone they mean. `EST` and `MST` are in the tz
/// database, as fixed offsets: accepted, a New York team's post would be an hour late all summer.
/// The others are not zones at all, and get the same suggestion instead of "unknown".
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("EST", "America/New_York"),
    ("EDT", "America/New_York"),
    ("ET", "America/New_York"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("CT", "America/Chicago"),
    (
        "MST",
        "America/Denver (or America/Phoenix in Arizona, which keeps standard time)",
    ),
    ("MDT", "America/Denver"),
    ("MT", "America/Denver"),
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("PT", "America/Los_Angeles"),
    ("AKST", "America/Anchorage"),
    ("BST", "Europe/London"),
    (
        "CEST",
        "Europe/Paris, Europe/Berlin or your own city's zone",
    ),
    (
        "EEST",
        "Europe/Athens, Europe/Helsinki or your own city's zone",
    ),
    (
        "IST",
        "Asia/Kolkata (India), Europe/Dublin (Ireland) or Asia/Jerusalem (Israel)",
    ),
    (
        "AEST",
        "Australia/Sydney (or Australia/Brisbane in Queensland)",
    ),
    ("AEDT", "Australia/Sydney"),
    ("NZST", "Pacific/Auckland"),
    ("NZDT", "Pacific/Auckland"),
];

/// An ISO week of the local calendar (`2026-W48`): the identity of one weekly post.
///
/// Field order matters: the derived `Ord` compares the ISO year first, then the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeekKey {
    /// ISO week-numbering year, which differs from the calendar year around New Year
    /// (Monday 2025-12-29 is in 2026-W01).
    pub year: i32,
    /// 1..=52 or 53.
    pub week: u32,
}

impl WeekKey {
    /// The ISO week that contains `date`.
    pub fn from_date(date: NaiveDate) -> Self {
        let iso = date.iso_week();
        WeekKey {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// Parse the `Display` form, `2026-W48` (a one-digit week such as `2026-W8` is accepted).
    /// Returns `None` for anything else, including week 53 of a year that has only 52.
    pub fn parse(s: &str) -> Option<Self> {
        let (year, week) = s.trim().rsplit_once("-W")?;
        if week.is_empty() || week.len() > 2 || !week.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let key = WeekKey {
            year: year.parse().ok()?,
            week: week.parse().ok()?,
        };
        key.monday().map(|_| key)
    }

    /// Human label for messages and embeds: `Week 48 · 2026`.
    pub fn label(&self) -> String {
        format!("Week {} · {}", self.week, self.year)
    }

    /// The Monday that starts this week, or `None` if the week does not exist.
    pub fn monday(&self) -> Option<NaiveDate> {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
    }

    /// The week after this one (handles 52- and 53-week years).
    pub fn next(&self) -> Option<Self> {
        let monday = self.monday()?.checked_add_days(Days::new(7))?;
        Some(WeekKey::from_date(monday))
    }
}

impl fmt::Display for WeekKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-W{:02}", self.year, self.week)
    }
}

/// Which period of its feed a post belongs to: the identity the post log keys it by, so "one post
/// per (feed, period)" is checkable. A weekly or every-two-weeks feed has one post per ISO week of
/// the *local* calendar; a daily or weekdays feed one per local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Week(WeekKey),
    Day(NaiveDate),
}

impl Period {
    /// Parse the `Display` form: `2026-W48` or `2026-12-07`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.contains("-W") {
            return WeekKey::parse(s).map(Period::Week);
        }
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .ok()
            .map(Period::Day)
    }

    /// Human label for messages and embeds: `Week 48 · 2026`, `Monday 7 December 2026`. The
    /// footer of a post carries it, which is how an unconfirmed post is recognised in its channel.
    pub fn label(&self) -> String {
        match self {
            Period::Week(week) => week.label(),
            Period::Day(day) => day.format("%A %-d %B %Y").to_string(),
        }
    }

    /// The local date the period starts on (the Monday of a week): the post log's range key.
    pub fn start(&self) -> Option<NaiveDate> {
        match self {
            Period::Week(week) => week.monday(),
            Period::Day(day) => Some(*day),
        }
    }

    /// "this week" / "today", for messages about the period a command acts on.
    pub fn this(&self) -> &'static str {
        match self {
            Period::Week(_) => "this week",
            Period::Day(_) => "today",
        }
    }
}

impl From<WeekKey> for Period {
    fn from(week: WeekKey) -> Self {
        Period::Week(week)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Week(week) => week.fmt(f),
            Period::Day(day) => write!(f, "{}", day.format("%Y-%m-%d")),
        }
    }
}

/// One scheduled post: its period, the local date it is scheduled on, and when (UTC) it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub period: Period,
    /// The local date the admin meant (a spring-forward gap can push `at` onto the next day).
    pub date: NaiveDate,
    pub at: DateTime<Utc>,
}

/// How often a feed posts. Every cadence posts at most once a local day, so a slot is named by
/// its date, and the period (what "once" is counted per) follows from the cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Once a week on this day.
    Weekly(Weekday),
    /// On this day of every other week: the weeks whose [`week_index`] has this parity.
    EveryTwoWeeks { weekday: Weekday, parity: u8 },
    /// Monday to Friday.
    Weekdays,
    /// Every day.
    Daily,
}

impl Cadence {
    /// The stored and typed name: `weekly`, `every-2-weeks`, `weekdays`, `daily`.
    pub fn name(&self) -> &'static str {
        match self {
            Cadence::Weekly(_) => "weekly",
            Cadence::EveryTwoWeeks { .. } => "every-2-weeks",
            Cadence::Weekdays => "weekdays",
            Cadence::Daily => "daily",
        }
    }

    /// The day of a weekly or every-two-weeks cadence.
    pub fn weekday(&self) -> Option<Weekday> {
        match self {
            Cadence::Weekly(day) | Cadence::EveryTwoWeeks { weekday: day, .. } => Some(*day),
            Cadence::Weekdays | Cadence::Daily => None,
        }
    }

    /// Whether a post is scheduled on local `date`.
    pub fn includes(&self, date: NaiveDate) -> bool {
        match *self {
            Cadence::Weekly(day) => date.weekday() == day,
            Cadence::EveryTwoWeeks { weekday, parity } => {
                date.weekday() == weekday && week_index(date) % 2 == i64::from(parity)
            }
            Cadence::Weekdays => date.weekday().num_days_from_monday() < 5,
            Cadence::Daily => true,
        }
    }

    /// The period a post scheduled on `date` counts towards.
    pub fn period_of(&self, date: NaiveDate) -> Period {
        match self {
            Cadence::Weekly(_) | Cadence::EveryTwoWeeks { .. } => {
                Period::Week(WeekKey::from_date(date))
            }
            Cadence::Weekdays | Cadence::Daily => Period::Day(date),
        }
    }
}

/// Weeks since the week of Monday 1970-01-05, counted on local dates: the even/odd week of an
/// every-two-weeks cadence. A plain count, unlike ISO week numbers, keeps alternating across a
/// 53-week year.
pub fn week_index(date: NaiveDate) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 5).unwrap_or_default();
    (date - epoch).num_days().div_euclid(7)
}

/// How often, as an admin types it (`repeat:`); with a day, a time and a zone it becomes a
/// [`Schedule`] ([`Repeat::schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Weekly,
    EveryTwoWeeks,
    Weekdays,
    Daily,
}

impl Repeat {
    pub const ALL: [Repeat; 4] = [
        Repeat::Weekly,
        Repeat::EveryTwoWeeks,
        Repeat::Weekdays,
        Repeat::Daily,
    ];

    /// `weekly`, `every-2-weeks`, `weekdays`, `daily`: the typed and stored names.
    pub fn name(self) -> &'static str {
        match self {
            Repeat::Weekly => "weekly",
            Repeat::EveryTwoWeeks => "every-2-weeks",
            Repeat::Weekdays => "weekdays",
            Repeat::Daily => "daily",
        }
    }

    /// The repeat a cadence was made from.
    pub fn of(cadence: Cadence) -> Repeat {
        match cadence {
            Cadence::Weekly(_) => Repeat::Weekly,
            Cadence::EveryTwoWeeks { .. } => Repeat::EveryTwoWeeks,
            Cadence::Weekdays => Repeat::Weekdays,
            Cadence::Daily => Repeat::Daily,
        }
    }

    /// Whether a `day` is part of it (weekly and every two weeks).
    pub fn takes_a_day(self) -> bool {
        matches!(self, Repeat::Weekly | Repeat::EveryTwoWeeks)
    }

    /// The schedule that posts at `time` in `zone`, on `weekday` when the cadence has a day. An
    /// every-two-weeks schedule starts with its first `weekday` at or after `from`: the weeks
    /// that alternate from there are its weeks.
    pub fn schedule(
        self,
        weekday: Weekday,
        time: NaiveTime,
        zone: Tz,
        from: DateTime<Utc>,
    ) -> Schedule {
        let cadence = match self {
            Repeat::Weekly => Cadence::Weekly(weekday),
            Repeat::EveryTwoWeeks => {
                let first = Schedule::weekly(weekday, time, zone).next_slot_at_or_after(from);
                Cadence::EveryTwoWeeks {
                    weekday,
                    parity: u8::from(week_index(first.date) % 2 != 0),
                }
            }
            Repeat::Weekdays => Cadence::Weekdays,
            Repeat::Daily => Cadence::Daily,
        };
        Schedule::new(cadence, time, zone)
    }
}

/// A [`Repeat`] from its name, any case.
pub fn parse_repeat(s: &str) -> Result<Repeat, ScheduleError> {
    let typed = s.trim().to_ascii_lowercase();
    Repeat::ALL
        .into_iter()
        .find(|r| r.name() == typed)
        .ok_or_else(|| ScheduleError::InvalidRepeat(s.to_string()))
}

/// "Every `cadence` at `time` in `zone`": the schedule of one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub cadence: Cadence,
    pub time: NaiveTime,
    pub zone: Tz,
}

/// How far from a local date a slot's instant can fall: Samoa skipped a whole day, and a
/// repeated hour can span midnight; two days bounds both with room to spare.
const DATE_SLACK: Days = Days::new(2);

impl Schedule {
    pub fn new(cadence: Cadence, time: NaiveTime, zone: Tz) -> Self {
        Schedule {
            cadence,
            time,
            zone,
        }
    }

    /// "Every `weekday` at `time` in `zone`".
    pub fn weekly(weekday: Weekday, time: NaiveTime, zone: Tz) -> Self {
        Schedule::new(Cadence::Weekly(weekday), time, zone)
    }

    /// Parse the three values an admin types for a weekly schedule (see [`parse_weekday`],
    /// [`parse_time`], [`parse_zone`]); the first invalid one is reported.
    pub fn parse(day: &str, time: &str, zone: &str) -> Result<Self, ScheduleError> {
        Ok(Schedule::weekly(
            parse_weekday(day)?,
            parse_time(time)?,
            parse_zone(zone)?,
        ))
    }

    /// This schedule, keeping `prior`'s alternation when both post every two weeks on the same
    /// day: changing a feed's time, zone, topic or ping must not move its next post by a week.
    pub fn keeping_alternation_of(self, prior: &Schedule) -> Schedule {
        match (self.cadence, prior.cadence) {
            (
                Cadence::EveryTwoWeeks { weekday, .. },
                Cadence::EveryTwoWeeks {
                    weekday: before,
                    parity,
                },
            ) if weekday == before => Schedule {
                cadence: Cadence::EveryTwoWeeks { weekday, parity },
                ..self
            },
            _ => self,
        }
    }

    /// The slot of `period`, or `None` if the cadence has no post in it (a weekend day of a
    /// weekdays feed, the off week of an every-two-weeks feed, a week that does not exist).
    pub fn slot_in(&self, period: Period) -> Option<Slot> {
        let date = match (period, self.cadence.weekday()) {
            (Period::Week(week), Some(day)) => {
                NaiveDate::from_isoywd_opt(week.year, week.week, day)?
            }
            (Period::Day(date), None) => date,
            _ => return None,
        };
        self.cadence.includes(date).then(|| self.slot_on(date))
    }

    /// The first slot whose instant is `>= from` (inclusive, so a poster that wakes exactly on
    /// time still sees the slot it woke up for).
    pub fn next_slot_at_or_after(&self, from: DateTime<Utc>) -> Slot {
        // Start two local days early: a slot scheduled on an earlier local date can resolve to
        // exactly `from` when a spring-forward gap spans midnight (Samoa skipped a whole day).
        // Slot instants increase with their dates, so the first one at or after `from` is it;
        // the longest walk is an every-two-weeks cadence's 16 days.
        let mut day = self.local_date(from) - DATE_SLACK;
        loop {
            if self.cadence.includes(day) {
                let slot = self.slot_on(day);
                if slot.at >= from {
                    return slot;
                }
            }
            day = day + Days::new(1);
        }
    }

    /// The latest slot whose instant is `<= now`: the one a restarted poster must still post if
    /// the log does not have it yet.
    pub fn latest_slot_at_or_before(&self, now: DateTime<Utc>) -> Slot {
        // Start two local days late: during a fall-back, `now` can be the *second* occurrence of a
        // wall-clock time while a slot with a later wall-clock time (even on the next local date,
        // if the repeated hour spans midnight) already happened at its first occurrence.
        let mut day = self.local_date(now) + DATE_SLACK;
        loop {
            if self.cadence.includes(day) {
                let slot = self.slot_on(day);
                if slot.at <= now {
                    return slot;
                }
            }
            day = day - Days::new(1);
        }
    }

    /// The first slot scheduled on local `date` or later.
    pub fn first_slot_on_or_after(&self, date: NaiveDate) -> Slot {
        let mut day = date;
        while !self.cadence.includes(day) {
            day = day + Days::new(1);
        }
        self.slot_on(day)
    }

    /// The next `count` slots at or after `from`, in order.
    pub fn next_slots(&self, from: DateTime<Utc>, count: usize) -> Vec<Slot> {
        let mut slots = Vec::with_capacity(count);
        if count == 0 {
            return slots;
        }
        let mut slot = self.next_slot_at_or_after(from);
        slots.push(slot);
        while slots.len() < count {
            slot = self.first_slot_on_or_after(slot.date + Days::new(1));
            slots.push(slot);
        }
        slots
    }

    /// The date at `at` in the schedule's zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// The period `at` falls in (this week, or today, in the schedule's zone): what
    /// `/weekly post-now` posts for.
    pub fn period_at(&self, at: DateTime<Utc>) -> Period {
        self.cadence.period_of(self.local_date(at))
    }

    /// The slot scheduled on local `date`. Its period is the one of the *scheduled* date, even in
    /// the (Samoa-only) case where a gap pushes the instant onto the next local day: the key names
    /// the period the admin meant, and stays consecutive.
    fn slot_on(&self, date: NaiveDate) -> Slot {
        Slot {
            period: self.cadence.period_of(date),
            date,
            at: resolve_local(self.zone, date.and_time(self.time)),
        }
    }
}

impl fmt::Display for Schedule {
    /// `Monday 09:00 Europe/London`, `every other Monday 09:00 UTC`, `weekdays 09:00 UTC`,
    /// `daily 09:00 UTC`: the form shown back to admins.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cadence {
            Cadence::Weekly(day) => write!(f, "{}", weekday_name(day))?,
            Cadence::EveryTwoWeeks { weekday, .. } => {
                write!(f, "every other {}", weekday_name(weekday))?
            }
            Cadence::Weekdays => write!(f, "weekdays (Monday to Friday)")?,
            Cadence::Daily => write!(f, "daily")?,
        }
        write!(
            f,
            " {:02}:{:02} {}",
            self.time.hour(),
            self.time.minute(),
            self.zone.name()
        )
    }
}

/// The English name of a weekday (`Monday`); chrono's `Display` gives only `Mon`.
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// A weekday from its English name, full or three letters, any case (`mon`, `Monday`, `SUN`).
/// Other abbreviations (`tues`, `thurs`) are refused rather than guessed, so a typo is reported
/// instead of silently scheduling the wrong day.
pub fn parse_weekday(s: &str) -> Result<Weekday, ScheduleError> {
    let lower = s.trim().to_ascii_lowercase();
    const DAYS: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    DAYS.into_iter()
        .find(|&d| {
            let full = weekday_name(d).to_ascii_lowercase();
            lower == full || lower == full[..3]
        })
        .ok_or_else(|| ScheduleError::InvalidDay(s.to_string()))
}

/// A 24-hour `HH:MM` (or `H:MM`) time. `24:00`, seconds, and `am`/`pm` are refused: one accepted
/// shape keeps "9:00" from meaning different things to different admins.
pub fn parse_time(s: &str) -> Result<NaiveTime, ScheduleError> {
    let bad = || ScheduleError::InvalidTime(s.to_string());
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return Err(bad());
    }
    let (hour, minute) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// An IANA zone name (`Europe/London`), matched case-insensitively (`europe/london`).
///
/// chrono-tz's own case-insensitive lookup sits behind a cargo feature that pulls in a build-time
/// dependency; a linear scan of ~600 names on the rare `/weekly set` call costs nothing.
pub fn parse_zone(s: &str) -> Result<Tz, ScheduleError> {
    let name = s.trim();
    if let Some(&(_, meant)) = ABBREVIATIONS
        .iter()
        .find(|(abbreviation, _)| abbreviation.eq_ignore_ascii_case(name))
    {
        return Err(ScheduleError::Abbreviation {
            typed: name.to_string(),
            meant,
        });
    }
    name.parse::<Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|tz| tz.name().eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| ScheduleError::UnknownZone(s.to_string()))
}

/// `2026-03-08T07:00:00Z`: whole seconds and a `Z`, the form `next-posts` prints one per line.
pub fn format_rfc3339_z(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The UTC instant of wall-clock time `local` in `zone`, applying the module's DST rules: the
/// first occurrence of a repeated time, the end of the gap for a skipped one.
fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => gap_end(zone, local),
    }
}

/// For a wall-clock time inside a spring-forward gap: the instant the gap ends, i.e. the instant
/// whose wall-clock time is the first one that exists after `local`.
///
/// chrono-tz does not expose its transition table, so find the end of the gap by probing: step a
/// minute at a time to the first wall-clock minute that exists, then bisect the last minute to the
/// second. Stepping (rather than assuming a one-hour gap) handles Lord Howe's 30 minutes and
/// Samoa's skipped day alike; bisecting handles historical offsets that are not whole minutes.
fn gap_end(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let exists = |t: NaiveDateTime| zone.from_local_datetime(&t).earliest();
    // Gaps start on a whole second, so dropping the fraction keeps us inside the gap and lets the
    // bisection land exactly on the gap's end.
    let mut missing = local.with_nanosecond(0).unwrap_or(local);
    // The longest gap in the tz database is one day; three days of probing is a generous bound.
    for _ in 0..3 * 24 * 60 {
        let probe = missing + TimeDelta::minutes(1);
        if exists(probe).is_none() {
            missing = probe;
            continue;
        }
        let mut present = probe;
        while present - missing > TimeDelta::seconds(1) {
            let mid = missing + (present - missing) / 2;
            if exists(mid).is_some() {
                present = mid;
            } else {
                missing = mid;
            }
        }
        if let Some(t) = exists(present) {
            return t.with_timezone(&Utc);
        }
    }
    // Unreachable with real tz data; rather than panic in the poster, read `local` with the offset
    // in force around it, which lands within the gap's length of the right instant.
    let offset = zone.offset_from_utc_datetime(&local).fix();
    Utc.from_utc_datetime(&(local - TimeDelta::seconds(offset.local_minus_utc().into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::Kolkata;
    use chrono_tz::Australia::Lord_Howe;
    use chrono_tz::Europe::London;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// The instants (as RFC 3339 strings) of `n` slots starting at or after `from`.
    fn instants(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        s.next_slots(utc(from), n)
            .into_iter()
            .map(|slot| format_rfc3339_z(slot.at))
            .collect()
    }

    // ---- parsing ----

    #[test]
    fn parses_day_names_in_any_case_and_length() {
        for s in ["mon", "Mon", "MONDAY", "monday", " Monday "] {
            assert_eq!(parse_weekday(s), Ok(Weekday::Mon), "{s:?}");
        }
        assert_eq!(parse_weekday("sun"), Ok(Weekday::Sun));
        assert_eq!(parse_weekday("Thursday"), Ok(Weekday::Thu));
    }

    #[test]
    fn rejects_bad_days_with_an_example() {
        for s in ["", "mo", "tues", "lundi", "monday2", "7"] {
            let err = parse_weekday(s).unwrap_err();
            assert_eq!(err, ScheduleError::InvalidDay(s.to_string()));
            assert!(err.to_string().contains("for example mon"), "{err}");
        }
    }

    #[test]
    fn parses_24_hour_times() {
        assert_eq!(parse_time("09:00"), Ok(hm(9, 0)));
        assert_eq!(parse_time("9:05"), Ok(hm(9, 5)));
        assert_eq!(parse_time("00:00"), Ok(hm(0, 0)));
        assert_eq!(parse_time("23:59"), Ok(hm(23, 59)));
    }

    #[test]
    fn rejects_bad_times_with_an_example() {
        for s in [
            "24:00", "25:00", "9am", "", "12:60", "9:5", "09:00:00", "-1:00", "+9:00", "9 :00",
            "123:00",
        ] {
            assert_eq!(
                parse_time(s),
                Err(ScheduleError::InvalidTime(s.to_string())),
                "{s:?}"
            );
        }
        assert_eq!(
            parse_time("25:00").unwrap_err().to_string(),
            r#"invalid time "25:00": use 24-hour HH:MM, for example 09:00"#
        );
    }

    #[test]
    fn parses_zones_case_insensitively_and_rejects_unknown_ones() {
        assert_eq!(parse_zone("Europe/London"), Ok(London));
        assert_eq!(parse_zone("america/new_york"), Ok(New_York));
        assert_eq!(parse_zone("UTC"), Ok(Tz::UTC));
        let err = parse_zone("Mars/Olympus").unwrap_err();
        assert_eq!(err, ScheduleError::UnknownZone("Mars/Olympus".into()));
        assert!(
            err.to_string().contains("for example Europe/London"),
            "{err}"
        );
        assert!(parse_zone("").is_err());
        // A fixed-offset abbreviation the tz database accepts, and one it does not: both get the
        // zone that follows the clocks.
        for typed in ["EST", "est", " EDT "] {
            let err = parse_zone(typed).unwrap_err();
            assert!(
                err.to_string()
                    .contains("is an abbreviation, not a time zone")
                    && err.to_string().ends_with("use America/New_York"),
                "{err}"
            );
        }
        assert!(parse_zone("PST")
            .unwrap_err()
            .to_string()
            .contains("America/Los_Angeles"));
        // Zones with a daylight-saving rule of their own stay accepted.
        assert_eq!(parse_zone("CET"), Ok(Tz::CET));
        assert_eq!(parse_zone("HST"), Ok(Tz::HST));
    }

    #[test]
    fn schedule_parse_reports_the_first_bad_field() {
        assert_eq!(
            Schedule::parse("mon", "9:00", "europe/london"),
            Ok(Schedule::weekly(Weekday::Mon, hm(9, 0), London))
        );
        assert!(matches!(
            Schedule::parse("someday", "9am", "Mars/Olympus"),
            Err(ScheduleError::InvalidDay(_))
        ));
        assert!(matches!(
            Schedule::parse("fri", "9am", "Mars/Olympus"),
            Err(ScheduleError::InvalidTime(_))
        ));
        assert!(matches!(
            Schedule::parse("fri", "09:00", "Mars/Olympus"),
            Err(ScheduleError::UnknownZone(_))
        ));
    }

    #[test]
    fn schedule_displays_as_typed_back_to_admins() {
        let s = Schedule::parse("MON", "9:05", "europe/london").unwrap();
        assert_eq!(s.to_string(), "Monday 09:05 Europe/London");
    }

    // ---- week keys ----

    #[test]
    fn week_key_display_parse_and_label() {
        let k = WeekKey {
            year: 2026,
            week: 48,
        };
        assert_eq!(k.to_string(), "2026-W48");
        assert_eq!(k.label(), "Week 48 · 2026");
        assert_eq!(WeekKey::parse("2026-W48"), Some(k));
        assert_eq!(
            WeekKey {
                year: 2026,
                week: 3
            }
            .to_string(),
            "2026-W03"
        );
        assert_eq!(
            WeekKey::parse("2026-W3"),
            Some(WeekKey {
                year: 2026,
                week: 3
            })
        );
        // 2026 has 53 ISO weeks (it starts on a Thursday), 2025 has 52.
        assert!(WeekKey::parse("2026-W53").is_some());
        for bad in [
            "2025-W53",
            "2026-W00",
            "2026-48",
            "2026-W",
            "W48",
            "2026-W4x",
            "2026-W123",
        ] {
            assert_eq!(WeekKey::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn week_keys_order_by_year_then_week_and_step_over_new_year() {
        let w52 = WeekKey {
            year: 2025,
            week: 52,
        };
        let w01 = WeekKey {
            year: 2026,
            week: 1,
        };
        assert!(w52 < w01);
        assert_eq!(w52.next(), Some(w01));
        // 2026 has 53 weeks, so W53 comes before 2027-W01.
        assert_eq!(
            WeekKey {
                year: 2026,
                week: 52
            }
            .next(),
            Some(WeekKey {
                year: 2026,
                week: 53
            })
        );
        assert_eq!(
            WeekKey {
                year: 2026,
                week: 53
            }
            .next(),
            Some(WeekKey {
                year: 2027,
                week: 1
            })
        );
    }

    #[test]
    fn week_key_is_the_iso_week_of_the_local_date() {
        // Monday 2025-12-29 belongs to ISO week 2026-W01 (the week holding 2026's first Thursday).
        let s = Schedule::weekly(Weekday::Mon, hm(9, 0), Tz::UTC);
        let slot = s.next_slot_at_or_after(utc("2025-12-28T00:00:00Z"));
        assert_eq!(format_rfc3339_z(slot.at), "2025-12-29T09:00:00Z");
        assert_eq!(slot.period.to_string(), "2026-W01");

        // Monday 02:00 in Kolkata (+05:30) is Sunday 20:30 UTC: the UTC date is in W01, but the
        // post belongs to the local Monday 2026-01-05, which is W02.
        let s = Schedule::weekly(Weekday::Mon, hm(2, 0), Kolkata);
        let slot = s.next_slot_at_or_after(utc("2026-01-04T00:00:00Z"));
        assert_eq!(format_rfc3339_z(slot.at), "2026-01-04T20:30:00Z");
        assert_eq!(slot.period.to_string(), "2026-W02");
    }

    #[test]
    fn slot_in_finds_the_week_of_a_key() {
        let s = Schedule::weekly(Weekday::Wed, hm(12, 0), London);
        // 2026-W48 runs Mon 23 Nov .. Sun 29 Nov; Wednesday is the 25th, GMT.
        let slot = s
            .slot_in(Period::Week(WeekKey {
                year: 2026,
                week: 48,
            }))
            .unwrap();
        assert_eq!(format_rfc3339_z(slot.at), "2026-11-25T12:00:00Z");
        let w53 = WeekKey {
            year: 2025,
            week: 53,
        };
        assert_eq!(s.slot_in(Period::Week(w53)), None);
        // A weekly schedule has no slot in a day period, a daily one none in a week.
        let day = Period::Day(NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        assert_eq!(s.slot_in(day), None);
        let daily = Schedule::new(Cadence::Daily, hm(12, 0), London);
        assert_eq!(daily.slot_in(day).map(|x| x.at), Some(slot.at));
        assert_eq!(daily.slot_in(slot.period), None);
    }

    #[test]
    fn formats_rfc3339_with_whole_seconds_and_z() {
        let at = utc("2026-03-08T07:00:00.250+00:00");
        assert_eq!(format_rfc3339_z(at), "2026-03-08T07:00:00Z");
    }

    // ---- DST: Europe/London (last Sunday of March 01:00 UTC, last Sunday of October 01:00 UTC) ----

    #[test]
    fn london_keeps_9am_local_across_both_changes() {
        let s = Schedule::weekly(Weekday::Mon, hm(9, 0), London);
        // Mon 23 Mar 2026 is GMT (+0): 09:00Z. Clocks go forward Sun 29 Mar. Mon 30 Mar is BST
        // (+1): 09:00 - 1h = 08:00Z.
        assert_eq!(
            instants(&s, "2026-03-20T00:00:00Z", 2),
            ["2026-03-23T09:00:00Z", "2026-03-30T08:00:00Z"]
        );
        // Mon 19 Oct is BST: 08:00Z. Clocks go back Sun 25 Oct. Mon 26 Oct is GMT: 09:00Z.
        assert_eq!(
            instants(&s, "2026-10-15T00:00:00Z", 2),
            ["2026-10-19T08:00:00Z", "2026-10-26T09:00:00Z"]
        );
        // A Sunday post on the change day itself, after the 01:00Z jump: 09:00 BST = 08:00Z.
        let sunday = Schedule::weekly(Weekday::Sun, hm(9, 0), London);
        assert_eq!(
            instants(&sunday, "2026-03-21T00:00:00Z", 2),
            ["2026-03-22T09:00:00Z", "2026-03-29T08:00:00Z"]
        );
    }

    #[test]
    fn london_skipped_and_repeated_times() {
        // Sun 29 Mar 2026: 01:00 GMT jumps to 02:00 BST, so 01:30 does not exist; the gap ends
        // at 02:00 BST = 01:00Z. The week before is 01:30 GMT, the week after 01:30 BST = 00:30Z.
        let s = Schedule::weekly(Weekday::Sun, hm(1, 30), London);
        assert_eq!(
            instants(&s, "2026-03-21T00:00:00Z", 3),
            [
                "2026-03-22T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-04-05T00:30:00Z"
            ]
        );
        // Sun 25 Oct 2026: 02:00 BST goes back to 01:00 GMT, so 01:30 happens twice: first at
        // 01:30 BST = 00:30Z (chosen), then at 01:30 GMT = 01:30Z (not a second post).
        assert_eq!(
            instants(&s, "2026-10-17T00:00:00Z", 3),
            [
                "2026-10-18T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-11-01T01:30:00Z"
            ]
        );
    }

    // ---- DST: America/New_York (2nd Sunday of March, 1st Sunday of November, at 02:00 local) ----

    #[test]
    fn new_york_keeps_9am_local_across_both_changes() {
        let s = Schedule::weekly(Weekday::Mon, hm(9, 0), New_York);
        // Mon 2 Mar 2026 EST (-5): 14:00Z; Mon 9 Mar EDT (-4): 13:00Z.
        assert_eq!(
            instants(&s, "2026-03-01T00:00:00Z", 2),
            ["2026-03-02T14:00:00Z", "2026-03-09T13:00:00Z"]
        );
        // Mon 26 Oct EDT: 13:00Z; Mon 2 Nov EST: 14:00Z.
        assert_eq!(
            instants(&s, "2026-10-25T00:00:00Z", 2),
            ["2026-10-26T13:00:00Z", "2026-11-02T14:00:00Z"]
        );
    }

    #[test]
    fn new_york_nonexistent_time_posts_when_the_clocks_jump() {
        // Sun 8 Mar 2026: 02:00 EST jumps to 03:00 EDT. 02:30 posts at 03:00 EDT = 07:00Z.
        // Neighbours: 1 Mar 02:30 EST = 07:30Z; 15 Mar 02:30 EDT = 06:30Z.
        let s = Schedule::weekly(Weekday::Sun, hm(2, 30), New_York);
        assert_eq!(
            instants(&s, "2026-03-01T00:00:00Z", 3),
            [
                "2026-03-01T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-15T06:30:00Z"
            ]
        );
        // Every time in the gap, including its first second and a time with seconds, maps to the
        // gap's end; 03:00 itself exists and is the same instant.
        for (h, m, sec) in [(2, 0, 0), (2, 30, 45), (2, 59, 59), (3, 0, 0)] {
            let t = NaiveTime::from_hms_opt(h, m, sec).unwrap();
            let s = Schedule::weekly(Weekday::Sun, t, New_York);
            let slot = s.next_slot_at_or_after(utc("2026-03-08T00:00:00Z"));
            assert_eq!(format_rfc3339_z(slot.at), "2026-03-08T07:00:00Z", "{t}");
        }
    }

    #[test]
    fn new_york_repeated_time_posts_once_at_the_first_occurrence() {
        // Sun 1 Nov 2026: 02:00 EDT goes back to 01:00 EST; 01:30 happens at 05:30Z (EDT) and
        // again at 06:30Z (EST). The slot is 05:30Z, and it is the only one in 2026-W44.
        let s = Schedule::weekly(Weekday::Sun, hm(1, 30), New_York);
        let slots = s.next_slots(utc("2026-10-24T00:00:00Z"), 3);
        let got: Vec<_> = slots.iter().map(|x| format_rfc3339_z(x.at)).collect();
        assert_eq!(
            got,
            [
                "2026-10-25T05:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-08T06:30:00Z"
            ]
        );
        assert_eq!(slots[1].period.to_string(), "2026-W44");
        // At the second occurrence (06:30Z) the latest slot is still the first one, and the next
        // one is a week later: no second post for W44.
        let second = utc("2026-11-01T06:30:00Z");
        assert_eq!(s.latest_slot_at_or_before(second), slots[1]);
        assert_eq!(s.next_slot_at_or_after(second), slots[2]);
    }

    // ---- DST: Australia/Lord_Howe (30-minute shift; 1st Sunday of April / October, 02:00) ----

    #[test]
    fn lord_howe_half_hour_gap_ends_at_0230() {
        // Sun 4 Oct 2026: 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11). 02:15 posts at 02:30
        // +11 = 15:30Z on the 3rd. Neighbours: 27 Sep 02:15 +10:30 = 26 Sep 15:45Z;
        // 11 Oct 02:15 +11 = 10 Oct 15:15Z.
        let s = Schedule::weekly(Weekday::Sun, hm(2, 15), Lord_Howe);
        assert_eq!(
            instants(&s, "2026-09-20T00:00:00Z", 3),
            [
                "2026-09-26T15:45:00Z",
                "2026-10-03T15:30:00Z",
                "2026-10-10T15:15:00Z"
            ]
        );
        // A one-hour assumption would give 03:15 +11 = 16:15Z; the gap is only 30 minutes.
        for (h, m) in [(2, 0), (2, 29)] {
            let s = Schedule::weekly(Weekday::Sun, hm(h, m), Lord_Howe);
            let slot = s.next_slot_at_or_after(utc("2026-10-03T00:00:00Z"));
            assert_eq!(format_rfc3339_z(slot.at), "2026-10-03T15:30:00Z", "{h}:{m}");
        }
    }

    #[test]
    fn lord_howe_repeated_half_hour_uses_the_first_occurrence() {
        // Sun 5 Apr 2026: 02:00 LHDT (+11) goes back to 01:30 LHST (+10:30). 01:45 happens at
        // 01:45 +11 = 14:45Z (chosen) and at 01:45 +10:30 = 15:15Z. Week before: +11 = 14:45Z;
        // week after: +10:30 = 15:15Z.
        let s = Schedule::weekly(Weekday::Sun, hm(1, 45), Lord_Howe);
        assert_eq!(
            instants(&s, "2026-03-25T00:00:00Z", 3),
            [
                "2026-03-28T14:45:00Z",
                "2026-04-04T14:45:00Z",
                "2026-04-11T15:15:00Z"
            ]
        );
    }

    #[test]
    fn lord_howe_9am_moves_by_half_an_hour() {
        // Mon 28 Sep 2026 09:00 +10:30 = 27 Sep 22:30Z; Mon 5 Oct 09:00 +11 = 4 Oct 22:00Z.
        let s = Schedule::weekly(Weekday::Mon, hm(9, 0), Lord_Howe);
        assert_eq!(
            instants(&s, "2026-09-25T00:00:00Z", 2),
            ["2026-09-27T22:30:00Z", "2026-10-04T22:00:00Z"]
        );
    }

    // ---- Asia/Kolkata: no DST, +05:30 all year ----

    #[test]
    fn kolkata_is_a_fixed_half_hour_offset() {
        // 09:00 +05:30 = 03:30Z, in March and in November alike.
        let s = Schedule::weekly(Weekday::Mon, hm(9, 0), Kolkata);
        assert_eq!(
            instants(&s, "2026-03-01T00:00:00Z", 2),
            ["2026-03-02T03:30:00Z", "2026-03-09T03:30:00Z"]
        );
        assert_eq!(
            instants(&s, "2026-10-25T00:00:00Z", 2),
            ["2026-10-26T03:30:00Z", "2026-11-02T03:30:00Z"]
        );
    }

    #[test]
    fn samoa_skipped_day_still_gets_its_week() {
        // Pacific/Apia skipped Friday 30 Dec 2011 (-10 -> +14 at 2011-12-30T10:00Z). A Friday
        // 09:00 post that week goes out when the gap ends (Sat 31 Dec 00:00 +14 = 30 Dec 10:00Z)
        // and keeps its week key, W52; the weeks around it are untouched.
        // 23 Dec 09:00 -10 = 19:00Z; 6 Jan 09:00 +14 = 5 Jan 19:00Z.
        let s = Schedule::weekly(Weekday::Fri, hm(9, 0), chrono_tz::Pacific::Apia);
        let slots = s.next_slots(utc("2011-12-20T00:00:00Z"), 3);
        let got: Vec<_> = slots.iter().map(|x| format_rfc3339_z(x.at)).collect();
        assert_eq!(
            got,
            [
                "2011-12-23T19:00:00Z",
                "2011-12-30T10:00:00Z",
                "2012-01-05T19:00:00Z"
            ]
        );
        let weeks: Vec<_> = slots.iter().map(|x| x.period.to_string()).collect();
        assert_eq!(weeks, ["2011-W51", "2011-W52", "2012-W01"]);
    }

    // ---- bounds ----

    #[test]
    fn next_and_latest_are_inclusive_and_bracket_now() {
        let s = Schedule::weekly(Weekday::Sun, hm(2, 30), New_York);
        let gap_slot = s.next_slot_at_or_after(utc("2026-03-08T00:00:00Z"));
        assert_eq!(gap_slot.at, utc("2026-03-08T07:00:00Z"));
        assert_eq!(s.next_slot_at_or_after(gap_slot.at), gap_slot);
        assert_eq!(s.latest_slot_at_or_before(gap_slot.at), gap_slot);
        let just_before = gap_slot.at - TimeDelta::seconds(1);
        assert_eq!(
            s.latest_slot_at_or_before(just_before).at,
            utc("2026-03-01T07:30:00Z")
        );
        assert_eq!(
            s.next_slot_at_or_after(gap_slot.at + TimeDelta::seconds(1))
                .at,
            utc("2026-03-15T06:30:00Z")
        );
    }

    #[test]
    fn next_slots_of_zero_is_empty() {
        let s = Schedule::weekly(Weekday::Sun, hm(2, 30), New_York);
        assert!(s.next_slots(utc("2026-03-08T00:00:00Z"), 0).is_empty());
    }

    // ---- other cadences ----

    #[test]
    fn daily_keeps_local_time_across_the_change_and_names_each_day() {
        // London springs forward Sun 29 Mar 2026: 09:00 is 09:00Z on the Saturday, 08:00Z on the
        // Sunday and after.
        let s = Schedule::new(Cadence::Daily, hm(9, 0), London);
        let slots = s.next_slots(utc("2026-03-28T00:00:00Z"), 3);
        let got: Vec<_> = slots.iter().map(|x| format_rfc3339_z(x.at)).collect();
        assert_eq!(
            got,
            [
                "2026-03-28T09:00:00Z",
                "2026-03-29T08:00:00Z",
                "2026-03-30T08:00:00Z"
            ]
        );
        let periods: Vec<_> = slots.iter().map(|x| x.period.to_string()).collect();
        assert_eq!(periods, ["2026-03-28", "2026-03-29", "2026-03-30"]);
        assert_eq!(slots[0].period.label(), "Saturday 28 March 2026");
    }

    #[test]
    fn daily_in_a_skipped_hour_posts_once_when_the_clocks_jump() {
        // 01:30 does not exist in London on 29 Mar 2026: that day's post is at 01:00Z (02:00
        // BST), the days around it at their own 01:30.
        let s = Schedule::new(Cadence::Daily, hm(1, 30), London);
        assert_eq!(
            instants(&s, "2026-03-28T00:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
    }

    #[test]
    fn weekdays_skip_the_weekend() {
        // Fri 4 Dec 2026 to Tue 8 Dec: Friday, Monday, Tuesday.
        let s = Schedule::new(Cadence::Weekdays, hm(9, 0), Tz::UTC);
        assert_eq!(
            instants(&s, "2026-12-04T09:00:00Z", 3),
            [
                "2026-12-04T09:00:00Z",
                "2026-12-07T09:00:00Z",
                "2026-12-08T09:00:00Z"
            ]
        );
        // Saturday noon: the latest post was Friday's.
        let latest = s.latest_slot_at_or_before(utc("2026-12-05T12:00:00Z"));
        assert_eq!(
            latest.period,
            Period::Day(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap())
        );
        assert_eq!(
            s.slot_in(Period::Day(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap())),
            None
        );
    }

    #[test]
    fn every_two_weeks_alternates_across_a_53_week_year() {
        // 2026 has 53 ISO weeks: W53 and 2027-W01 are consecutive weeks, so exactly one of them
        // has the post. ISO week numbers would have put both on the same parity.
        let monday = NaiveDate::from_isoywd_opt(2026, 53, Weekday::Mon).unwrap();
        let parity = (week_index(monday) % 2) as u8;
        let s = Schedule::new(
            Cadence::EveryTwoWeeks {
                weekday: Weekday::Mon,
                parity,
            },
            hm(9, 0),
            Tz::UTC,
        );
        let slots = s.next_slots(utc("2026-12-20T00:00:00Z"), 3);
        let periods: Vec<_> = slots.iter().map(|x| x.period.to_string()).collect();
        assert_eq!(periods, ["2026-W53", "2027-W02", "2027-W04"]);
        assert_eq!(
            s.slot_in(Period::Week(WeekKey {
                year: 2027,
                week: 1
            })),
            None
        );
    }

    #[test]
    fn every_two_weeks_starts_with_the_first_day_after_it_is_set() {
        // Set on Tuesday 8 Dec 2026 for Mondays: the first post is Monday 14 Dec, then 28 Dec.
        for from in ["2026-12-08T10:00:00Z", "2026-12-14T08:59:59Z"] {
            let s = Repeat::EveryTwoWeeks.schedule(Weekday::Mon, hm(9, 0), Tz::UTC, utc(from));
            assert_eq!(
                instants(&s, from, 2),
                ["2026-12-14T09:00:00Z", "2026-12-28T09:00:00Z"],
                "{from}"
            );
        }
        assert_eq!(parse_repeat(" Every-2-Weeks "), Ok(Repeat::EveryTwoWeeks));
        // Set again on the Tuesday after the first post (a new time, say): the alternation is
        // kept, not restarted from that Tuesday (which would post the very next Monday).
        let first = Repeat::EveryTwoWeeks.schedule(
            Weekday::Mon,
            hm(9, 0),
            Tz::UTC,
            utc("2026-12-08T10:00:00Z"),
        );
        let again = Repeat::EveryTwoWeeks
            .schedule(
                Weekday::Mon,
                hm(10, 0),
                Tz::UTC,
                utc("2026-12-15T10:00:00Z"),
            )
            .keeping_alternation_of(&first);
        assert_eq!(
            instants(&again, "2026-12-15T10:00:00Z", 1),
            ["2026-12-28T10:00:00Z"]
        );
        let other_day = Repeat::EveryTwoWeeks.schedule(
            Weekday::Tue,
            hm(9, 0),
            Tz::UTC,
            utc("2026-12-15T10:00:00Z"),
        );
        assert_eq!(other_day.keeping_alternation_of(&first), other_day);
        let err = parse_repeat("fortnightly").unwrap_err();
        assert!(err.to_string().contains("every-2-weeks"), "{err}");
    }

    #[test]
    fn periods_parse_back_from_their_display() {
        for p in [
            Period::Week(WeekKey {
                year: 2026,
                week: 8,
            }),
            Period::Day(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()),
        ] {
            assert_eq!(Period::parse(&p.to_string()), Some(p));
        }
        assert_eq!(Period::parse("2026-13-01"), None);
        assert_eq!(Period::parse("2026-W54"), None);
    }

    // ---- properties ----

    const ZONES: [Tz; 5] = [London, New_York, Lord_Howe, Kolkata, Tz::UTC];

    fn weekday() -> impl Strategy<Value = Weekday> {
        (0u8..7).prop_map(|n| Weekday::try_from(n).unwrap())
    }

    /// Times biased towards the small hours, where every DST change in `ZONES` happens.
    fn time() -> impl Strategy<Value = NaiveTime> {
        prop_oneof![
            (0u32..24, 0u32..60).prop_map(|(h, m)| hm(h, m)),
            (0u32..4, 0u32..60).prop_map(|(h, m)| hm(h, m)),
        ]
    }

    /// Instants between 1995 and 2035.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (788_918_400i64..2_051_222_400).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    fn weekly_schedule() -> impl Strategy<Value = Schedule> {
        (weekday(), time(), proptest::sample::select(ZONES.to_vec()))
            .prop_map(|(d, t, z)| Schedule::weekly(d, t, z))
    }

    fn cadence() -> impl Strategy<Value = Cadence> {
        prop_oneof![
            weekday().prop_map(Cadence::Weekly),
            (weekday(), 0u8..2)
                .prop_map(|(weekday, parity)| Cadence::EveryTwoWeeks { weekday, parity }),
            Just(Cadence::Weekdays),
            Just(Cadence::Daily),
        ]
    }

    /// Any cadence.
    fn schedule() -> impl Strategy<Value = Schedule> {
        (cadence(), time(), proptest::sample::select(ZONES.to_vec()))
            .prop_map(|(c, t, z)| Schedule::new(c, t, z))
    }

    fn week_of(slot: &Slot) -> WeekKey {
        match slot.period {
            Period::Week(week) => week,
            Period::Day(day) => panic!("a weekly slot with a day period {day}"),
        }
    }

    /// Checks a slot against the rules using chrono-tz directly (not `resolve_local`): the right
    /// local date, and the right instant for a normal, repeated or skipped wall-clock time.
    fn check_slot(s: &Schedule, slot: &Slot) -> Result<(), TestCaseError> {
        prop_assert!(
            s.cadence.includes(slot.date),
            "{slot:?} is not on the cadence"
        );
        prop_assert_eq!(s.cadence.period_of(slot.date), slot.period);
        prop_assert_eq!(s.slot_in(slot.period), Some(*slot));
        let wanted = slot.date.and_time(s.time);
        let local = slot.at.with_timezone(&s.zone).naive_local();
        match s.zone.from_local_datetime(&wanted) {
            LocalResult::Single(t) => prop_assert_eq!(slot.at, t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => {
                prop_assert_eq!(slot.at, a.min(b).with_timezone(&Utc))
            }
            LocalResult::None => {
                // The instant the gap ends: the offset changes exactly here, the wall clock just
                // before was earlier than wanted, and here it is later.
                let before = slot.at - TimeDelta::seconds(1);
                let off = |t: DateTime<Utc>| s.zone.offset_from_utc_datetime(&t.naive_utc()).fix();
                prop_assert_ne!(off(before), off(slot.at));
                prop_assert!(before.with_timezone(&s.zone).naive_local() < wanted);
                prop_assert!(local > wanted);
                prop_assert!(local - wanted <= TimeDelta::hours(2));
            }
        }
        // The instant is on the scheduled date, or a gap pushed it into the next one (Samoa).
        let drift = local.date() - slot.date;
        prop_assert!(
            drift >= TimeDelta::zero() && drift <= TimeDelta::days(1),
            "{slot:?}"
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn one_slot_per_iso_week(s in weekly_schedule(), year in 1996i32..2034) {
            let from = Utc.with_ymd_and_hms(year - 1, 12, 1, 0, 0, 0).unwrap();
            let slots = s.next_slots(from, 64);
            for pair in slots.windows(2) {
                prop_assert_eq!(week_of(&pair[0]).next(), Some(week_of(&pair[1])));
                let gap = pair[1].at - pair[0].at;
                prop_assert!(gap >= TimeDelta::days(5) && gap <= TimeDelta::days(9), "{gap}");
            }
            for slot in &slots {
                check_slot(&s, slot)?;
            }
            let weeks_in_year = if NaiveDate::from_isoywd_opt(year, 53, Weekday::Mon).is_some() { 53 } else { 52 };
            let weeks: Vec<u32> =
                slots.iter().map(week_of).filter(|w| w.year == year).map(|w| w.week).collect();
            prop_assert_eq!(weeks, (1..=weeks_in_year).collect::<Vec<_>>());
        }

        #[test]
        fn slots_follow_the_cadence_with_none_missed(s in schedule(), from in instant()) {
            let slots = s.next_slots(from, 40);
            for pair in slots.windows(2) {
                prop_assert!(pair[0].at < pair[1].at, "{pair:?}");
                prop_assert!(pair[0].period < pair[1].period, "{pair:?}");
                // No date of the cadence between two consecutive slots.
                let mut day = pair[0].date + Days::new(1);
                while day < pair[1].date {
                    prop_assert!(!s.cadence.includes(day), "{day} skipped in {pair:?}");
                    day = day + Days::new(1);
                }
            }
            for slot in &slots {
                check_slot(&s, slot)?;
            }
        }

        #[test]
        fn slots_are_found_from_their_own_instant(s in schedule(), from in instant()) {
            let slots = s.next_slots(from, 3);
            prop_assert!(slots[0].at >= from);
            prop_assert!(s.latest_slot_at_or_before(from).at <= from);
            for (i, slot) in slots.iter().enumerate() {
                prop_assert_eq!(s.next_slot_at_or_after(slot.at), *slot);
                prop_assert_eq!(s.latest_slot_at_or_before(slot.at), *slot);
                if i + 1 < slots.len() {
                    prop_assert_eq!(
                        s.next_slot_at_or_after(slot.at + TimeDelta::seconds(1)),
                        slots[i + 1]
                    );
                }
                if i > 0 {
                    prop_assert_eq!(
                        s.latest_slot_at_or_before(slot.at - TimeDelta::seconds(1)),
                        slots[i - 1]
                    );
                }
            }
        }

        #[test]
        fn latest_and_next_bracket_now(s in schedule(), now in instant()) {
            let latest = s.latest_slot_at_or_before(now);
            let next = s.next_slot_at_or_after(now);
            prop_assert!(latest.at <= now && now <= next.at);
            if latest.at == now {
                prop_assert_eq!(next, latest);
            } else {
                // Consecutive: no slot of the cadence between them.
                prop_assert_eq!(s.first_slot_on_or_after(latest.date + Days::new(1)), next);
            }
            check_slot(&s, &latest)?;
            check_slot(&s, &next)?;
        }
    }

    /// Exhaustive rather than random: every quarter hour of the small hours of every Sunday in
    /// 2020..2030, in every test zone, obeys the rules. This is where the gaps and repeats are.
    #[test]
    fn every_small_hours_sunday_slot_obeys_the_rules() {
        for zone in ZONES {
            for minutes in (0..4 * 60).step_by(15) {
                let s = Schedule::weekly(Weekday::Sun, hm(minutes / 60, minutes % 60), zone);
                let slots = s.next_slots(utc("2020-01-01T00:00:00Z"), 53 * 10);
                for slot in &slots {
                    check_slot(&s, slot).unwrap_or_else(|e| panic!("{s} {slot:?}: {e}"));
                }
            }
        }
    }
}
