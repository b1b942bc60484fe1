//! What curators learn from the answers: usage over a period ([`Report`]: answers, the share with
//! no close match, the most shown insights, how helpful each was, the insights never shown), its
//! chart ([`chart`]), and the questions the collection cannot answer yet, grouped ([`gaps`]) by
//! the vectors stored with them ([`gap_vectors`]).
//!
//! Pure: the figures come from the store's daily aggregates and a collection; nothing here knows
//! Discord. The bot's `/insights stats` and the `insight-bot stats` command both render a
//! [`Report`].

pub mod chart;
pub mod gap_vectors;
pub mod gaps;
pub mod retention;

use chrono::{Datelike, Duration, NaiveDate};

use crate::insights::Library;
use chart::WeekBar;

/// An insight's helpful ratio is shown from this many votes on.
pub const MIN_VOTES: u64 = 5;
/// How many of the most shown insights a report lists.
pub const MOST_SHOWN: usize = 5;

/// One day's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayAnswers {
    pub day: NaiveDate,
    pub answers: u64,
    pub no_close_match: u64,
}

/// One insight's showings and votes over the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightUse {
    pub id: String,
    pub shown: u64,
    pub helpful: u64,
    pub not_helpful: u64,
}

/// An insight in a report: its id, its title (the id again when the collection no longer has
/// it), and a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<T> {
    pub id: String,
    pub title: String,
    pub value: T,
}

/// Usage over `since..=until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub answers: u64,
    pub no_close_match: u64,
    /// At most [`MOST_SHOWN`], most shown first.
    pub most_shown: Vec<Line<u64>>,
    /// Helpful votes over all votes, for insights with at least [`MIN_VOTES`] votes, best first;
    /// the value is (helpful, votes).
    pub helpful: Vec<Line<(u64, u64)>>,
    /// Insights of the collection not shown once in the period, by id.
    pub never_shown: Vec<Line<()>>,
    /// Answers per week (weeks from Monday), oldest first, every week of the period.
    pub weeks: Vec<WeekBar>,
}

impl Report {
    /// The report of `days` and `insights` (the store's figures for the period) over what
    /// `library` holds now.
    pub fn build(
        since: NaiveDate,
        until: NaiveDate,
        days: &[DayAnswers],
        insights: &[InsightUse],
        library: &Library,
    ) -> Report {
        let title = |id: &str| {
            library
                .get(id)
                .map_or_else(|| id.to_string(), |i| i.title.clone())
        };
        let answers = days.iter().map(|d| d.answers).sum();
        let no_close_match = days.iter().map(|d| d.no_close_match).sum();
        let mut shown: Vec<&InsightUse> = insights.iter().filter(|i| i.shown > 0).collect();
        shown.sort_by(|a, b| b.shown.cmp(&a.shown).then_with(|| a.id.cmp(&b.id)));
        let most_shown = shown
            .iter()
            .take(MOST_SHOWN)
            .map(|i| Line {
                id: i.id.clone(),
                title: title(&i.id),
                value: i.shown,
            })
            .collect();
        let mut helpful: Vec<Line<(u64, u64)>> = insights
            .iter()
            .filter(|i| i.helpful + i.not_helpful >= MIN_VOTES)
            .map(|i| Line {
                id: i.id.clone(),
                title: title(&i.id),
                value: (i.helpful, i.helpful + i.not_helpful),
            })
            .collect();
        // Best ratio first (compared as fractions, exactly), then more votes, then id.
        helpful.sort_by(|a, b| {
            (b.value.0 * a.value.1)
                .cmp(&(a.value.0 * b.value.1))
                .then_with(|| b.value.1.cmp(&a.value.1))
                .then_with(|| a.id.cmp(&b.id))
        });
        let used: std::collections::HashSet<&str> = shown.iter().map(|i| i.id.as_str()).collect();
        let never_shown = library
            .insights()
            .iter()
            .filter(|i| !used.contains(i.id.as_str()))
            .map(|i| Line {
                id: i.id.clone(),
                title: i.title.clone(),
                value: (),
            })
            .collect();
        Report {
            since,
            until,
            answers,
            no_close_match,
            most_shown,
            helpful,
            never_shown,
            weeks: weeks(since, until, days),
        }
    }

    /// The share of answers with no close match, 0 without answers.
    pub fn no_match_share(&self) -> f64 {
        if self.answers == 0 {
            0.0
        } else {
            self.no_close_match as f64 / self.answers as f64
        }
    }
}

/// Every week (from its Monday) that overlaps the period, with its answers.
fn weeks(since: NaiveDate, until: NaiveDate, days: &[DayAnswers]) -> Vec<WeekBar> {
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let mut out = Vec::new();
    let mut start = monday(since);
    while start <= until {
        let end = start + Duration::days(6);
        let (answered, no_match) = days
            .iter()
            .filter(|d| d.day >= start && d.day <= end && d.day >= since && d.day <= until)
            .fold((0, 0), |(a, n), d| {
                (
                    a + d.answers - d.no_close_match.min(d.answers),
                    n + d.no_close_match,
                )
            });
        out.push(WeekBar {
            label: start.format("%b %-d").to_string(),
            answered,
            no_match,
        });
        start += Duration::days(7);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn used(id: &str, shown: u64, helpful: u64, not_helpful: u64) -> InsightUse {
        InsightUse {
            id: id.into(),
            shown,
            helpful,
            not_helpful,
        }
    }

    #[test]
    fn a_report_counts_ranks_and_finds_what_was_never_shown() {
        let library = Library::builtin().unwrap();
        let days = [
            DayAnswers {
                day: day("2026-11-02"),
                answers: 10,
                no_close_match: 2,
            },
            DayAnswers {
                day: day("2026-11-10"),
                answers: 5,
                no_close_match: 1,
            },
        ];
        let insights = [
            used("tour-of-duty", 6, 4, 1),
            used("trust-and-delegate", 6, 2, 3),
            used("lateral-move", 1, 0, 0),
            used("gone-since", 2, 5, 0),
        ];
        let r = Report::build(
            day("2026-11-01"),
            day("2026-11-14"),
            &days,
            &insights,
            &library,
        );
        assert_eq!((r.answers, r.no_close_match), (15, 3));
        assert!((r.no_match_share() - 0.2).abs() < 1e-9);
        let shown: Vec<(&str, u64)> = r
            .most_shown
            .iter()
            .map(|l| (l.id.as_str(), l.value))
            .collect();
        assert_eq!(
            shown,
            [
                ("tour-of-duty", 6),
                ("trust-and-delegate", 6),
                ("gone-since", 2),
                ("lateral-move", 1)
            ]
        );
        // An id the collection lost keeps its id as title.
        assert_eq!(r.most_shown[2].title, "gone-since");
        // Ratios only from 5 votes: 5/5, 4/5, 2/5; lateral-move (0 votes) is absent.
        let ratios: Vec<(&str, (u64, u64))> =
            r.helpful.iter().map(|l| (l.id.as_str(), l.value)).collect();
        assert_eq!(
            ratios,
            [
                ("gone-since", (5, 5)),
                ("tour-of-duty", (4, 5)),
                ("trust-and-delegate", (2, 5))
            ]
        );
        assert_eq!(r.never_shown.len(), library.len() - 3);
        assert!(r.never_shown.iter().all(|l| ![
            "tour-of-duty",
            "trust-and-delegate",
            "lateral-move"
        ]
        .contains(&l.id.as_str())));
        // Weeks from Monday: Oct 26 (holds Nov 1), Nov 2, Nov 9.
        let weeks: Vec<(&str, u64, u64)> = r
            .weeks
            .iter()
            .map(|w| (w.label.as_str(), w.answered, w.no_match))
            .collect();
        assert_eq!(weeks, [("Oct 26", 0, 0), ("Nov 2", 8, 2), ("Nov 9", 4, 1)]);
    }
}
