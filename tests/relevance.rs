//! Relevance, measured through `Catalog::ask`: the one code path behind `insight-bot ask`,
//! `/advice` and DMs (the CLI tests check that `ask --json` prints what it returns). These sets
//! were written for the seed page, so they are asked of its pack alone (`ic-and-management`,
//! `INSIGHTS_PACKS=ic-and-management`); the whole library is measured on the packs' own held-out
//! questions in `tests/packs.rs`. Every question set lives in `tests/data/` (see its README for
//! where each came from):
//!
//! - `eval/dev_questions.tsv`, the shared dev set: top-1 >= 90%, top-3 = 100%, every off-topic
//!   line answered "no close match".
//! - **Tuning sets**, whose misses were read while the search was built: `tuning_discord.tsv`
//!   (messages as people type them in Discord), `tuning_blind.tsv`, `tuning_plain.tsv`. Their
//!   figures are figures on tuning data; the floors below sit just under what was measured, so a
//!   regression fails.
//! - **Held-out sets**, written blind and never tuned on: `heldout_discord.tsv` and
//!   `heldout_plain.tsv`. Nothing was changed after reading their results; the floors sit just
//!   under the one measurement (Discord style: top-1 55/70, top-3 63/70, 4/70 wrongly refused,
//!   18/21 off-topic refused; plain style: 46/54, 50/54, 1/54, 11/11).
//! - **Generalisation**: `feedback/insights.toml`, a second collection (feedback and one-on-ones,
//!   12 insights with 2 asks each, no vocabulary written for it), and its questions. The issue's
//!   goal of 80% top-1 is not reached: measured 31/48 (65%), top-3 41/48, every off-topic line
//!   refused; the floors hold that level (docs/relevance.md says what limits it).
//!
//! The figures of every set are printed (`cargo test --test relevance -- --nocapture`) and quoted
//! in docs/relevance.md.

mod support;

use std::path::Path;
use std::sync::Arc;

use insight_bot::insights::{Catalog, Library};

struct Line {
    question: String,
    /// Acceptable ids, best first; empty for off-topic questions.
    expected: Vec<String>,
}

fn read_tsv(file: &str) -> Vec<Line> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (question, ids) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("{file}: no tab in line {l:?}"));
            let expected = if ids.trim() == "NONE" {
                Vec::new()
            } else {
                ids.split(',').map(|s| s.trim().to_string()).collect()
            };
            Line {
                question: question.to_string(),
                expected,
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Score {
    on_topic: usize,
    top1: usize,
    top3: usize,
    /// On-topic questions answered "no close match".
    wrongly_refused: usize,
    off_topic: usize,
    off_topic_refused: usize,
    failures: Vec<String>,
}

impl Score {
    fn percent(n: usize, of: usize) -> f64 {
        100.0 * n as f64 / of.max(1) as f64
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: top-1 {}/{} ({:.0}%), top-3 {}/{} ({:.0}%), wrongly refused {}/{} ({:.1}%), off-topic refused {}/{} ({:.0}%)",
            self.top1,
            self.on_topic,
            Self::percent(self.top1, self.on_topic),
            self.top3,
            self.on_topic,
            Self::percent(self.top3, self.on_topic),
            self.wrongly_refused,
            self.on_topic,
            Self::percent(self.wrongly_refused, self.on_topic),
            self.off_topic_refused,
            self.off_topic,
            Self::percent(self.off_topic_refused, self.off_topic),
        )
    }
}

fn score(catalog: &Catalog, lines: &[Line]) -> Score {
    let mut s = Score::default();
    for line in lines {
        let answer = catalog
            .ask(&line.question, 3)
            .unwrap_or_else(|e| panic!("{:?}: {e}", line.question));
        let ids: Vec<&str> = answer
            .matches
            .iter()
            .map(|m| m.insight.id.as_str())
            .collect();
        assert_eq!(answer.no_close_match, ids.is_empty());
        if line.expected.is_empty() {
            s.off_topic += 1;
            if answer.no_close_match {
                s.off_topic_refused += 1;
            } else {
                s.failures.push(format!(
                    "off-topic answered: {:?} -> {ids:?}",
                    line.question
                ));
            }
            continue;
        }
        s.on_topic += 1;
        if answer.no_close_match {
            s.wrongly_refused += 1;
            s.failures.push(format!(
                "on-topic refused (gate margin {:.3}): {:?}",
                answer.explanation.verdict.margin, line.question
            ));
            continue;
        }
        if ids
            .first()
            .is_some_and(|id| line.expected.iter().any(|e| e == id))
        {
            s.top1 += 1;
        } else {
            s.failures.push(format!(
                "top-1 miss: {:?} expected {:?} got {ids:?}",
                line.question, line.expected
            ));
        }
        if ids.iter().any(|id| line.expected.iter().any(|e| e == id)) {
            s.top3 += 1;
        }
    }
    s
}

/// Floors in percent: top-1, top-3, off-topic refused, and the most on-topic lines refused.
struct Floors {
    top1: f64,
    top3: f64,
    off_topic: f64,
    wrongly_refused_at_most: f64,
}

fn check(name: &str, catalog: &Catalog, file: &str, floors: Floors) {
    let s = score(catalog, &read_tsv(file));
    println!("{}\n  {}", s.line(name), s.failures.join("\n  "));
    let report = || format!("{}\n  {}", s.line(name), s.failures.join("\n  "));
    assert!(
        Score::percent(s.top1, s.on_topic) >= floors.top1,
        "top-1 {}",
        report()
    );
    assert!(
        Score::percent(s.top3, s.on_topic) >= floors.top3,
        "top-3 {}",
        report()
    );
    assert!(
        Score::percent(s.off_topic_refused, s.off_topic) >= floors.off_topic,
        "off-topic {}",
        report()
    );
    assert!(
        Score::percent(s.wrongly_refused, s.on_topic) <= floors.wrongly_refused_at_most,
        "wrongly refused {}",
        report()
    );
}

fn shipped() -> Arc<Catalog> {
    support::bot::catalog()
}

#[test]
fn the_dev_set_meets_its_targets() {
    let lines = read_tsv("tests/data/eval/dev_questions.tsv");
    assert!(lines.len() >= 20 && lines.iter().any(|l| l.expected.is_empty()));
    check(
        "dev",
        &shipped(),
        "tests/data/eval/dev_questions.tsv",
        Floors {
            top1: 90.0,
            top3: 100.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 0.0,
        },
    );
}

#[test]
fn tuning_sets_stay_at_their_measured_level() {
    let catalog = shipped();
    check(
        "tuning_discord",
        &catalog,
        "tests/data/eval/tuning_discord.tsv",
        Floors {
            top1: 79.0,
            top3: 92.0,
            off_topic: 86.0,
            wrongly_refused_at_most: 3.0,
        },
    );
    check(
        "tuning_blind",
        &catalog,
        "tests/data/eval/tuning_blind.tsv",
        Floors {
            top1: 83.0,
            top3: 95.0,
            off_topic: 88.0,
            wrongly_refused_at_most: 1.0,
        },
    );
    check(
        "tuning_plain",
        &catalog,
        "tests/data/eval/tuning_plain.tsv",
        Floors {
            top1: 92.0,
            top3: 100.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 0.0,
        },
    );
}

#[test]
fn held_out_sets_stay_at_their_measured_level() {
    let catalog = shipped();
    check(
        "heldout_discord",
        &catalog,
        "tests/data/eval/heldout_discord.tsv",
        Floors {
            top1: 77.0,
            top3: 88.0,
            off_topic: 85.0,
            wrongly_refused_at_most: 6.0,
        },
    );
    check(
        "heldout_plain",
        &catalog,
        "tests/data/eval/heldout_plain.tsv",
        Floors {
            top1: 83.0,
            top3: 92.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 2.0,
        },
    );
}

#[test]
fn a_new_collection_with_two_asks_each_is_understood_without_any_vocabulary() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feedback/insights.toml");
    let library = Library::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(library.len(), 12);
    assert!(library.insights().iter().all(|i| i.asks.len() == 2));
    let catalog = Catalog::new(Arc::new(library), support::bot::searcher()).unwrap();
    check(
        "feedback collection",
        &catalog,
        "tests/data/feedback/questions.tsv",
        Floors {
            top1: 62.0,
            top3: 83.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 3.0,
        },
    );
}

/// Words of a text, lowercase.
fn words(text: &str) -> std::collections::HashSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn no_gate_anchor_is_a_near_copy_of_an_evaluation_question() {
    use insight_bot::insights::search::gate::{anchor_lines, OFF_TOPIC_ANCHORS, ON_TOPIC_ANCHORS};
    let sets = [
        "tests/data/eval/dev_questions.tsv",
        "tests/data/eval/tuning_discord.tsv",
        "tests/data/eval/tuning_blind.tsv",
        "tests/data/eval/tuning_plain.tsv",
        "tests/data/eval/heldout_discord.tsv",
        "tests/data/eval/heldout_plain.tsv",
        "tests/data/feedback/questions.tsv",
    ];
    let questions: Vec<(String, std::collections::HashSet<String>)> = sets
        .iter()
        .flat_map(|file| read_tsv(file))
        .map(|l| {
            let w = words(&l.question);
            (l.question, w)
        })
        .collect();
    let mut copies = Vec::new();
    for anchor in anchor_lines(ON_TOPIC_ANCHORS)
        .into_iter()
        .chain(anchor_lines(OFF_TOPIC_ANCHORS))
    {
        let a = words(anchor);
        for (question, q) in &questions {
            let shared = a.intersection(q).count() as f64;
            let all = a.union(q).count().max(1) as f64;
            if shared / all >= 0.4 {
                copies.push(format!("{anchor:?} ~ {question:?}"));
            }
        }
    }
    assert!(
        copies.is_empty(),
        "anchors too close to evaluation questions:\n{}",
        copies.join("\n")
    );
}
