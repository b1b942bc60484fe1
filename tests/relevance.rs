//! Relevance, measured through `Catalog::ask`: the one code path behind `insight-bot ask`,
//! `/advice` and DMs (the CLI tests check that `ask --json` prints what it returns). These sets
//! were written for the seed page, so they are asked of its pack alone (`ic-and-management`,
//! `INSIGHTS_PACKS=ic-and-management`); the whole library is measured on the packs' own held-out
//! questions in `tests/packs.rs`. Every question set lives in `tests/data/` (see its README for
//! where each came from):
//!
//! - `eval/dev_questions.tsv`, the shared dev set: top-1 21/22, top-3 21/22 (one question refused:
//!   docs/relevance.md says why the margin stays), every off-topic line answered "no close match".
//! - **Tuning sets**, whose misses were read while the search was built: `tuning_discord.tsv`
//!   (messages as people type them in Discord), `tuning_blind.tsv`, `tuning_plain.tsv`. Their
//!   figures are figures on tuning data; the floors below sit just under what was measured, so a
//!   regression fails.
//! - **Held-out sets**, written blind and never tuned on: `heldout_discord.tsv` and
//!   `heldout_plain.tsv`; the floors sit just under the measurement with all-mpnet-base-v2
//!   (Discord style: top-1 54/70, top-3 65/70, 3/70 wrongly refused, 19/21 off-topic refused;
//!   plain style: 49/54, 53/54, 0/54, 11/11).
//! - **Generalisation**: `feedback/insights.toml`, a second collection (feedback and one-on-ones,
//!   12 insights with 2 asks each, no vocabulary written for it), and its questions: top-1 33/48,
//!   top-3 43/48, every off-topic line refused.
//! - **Three classes** (`eval/three_class/`): covered, uncovered and off-topic questions for the
//!   seed page and the feedback collection, answered strong, weak or none; tuning and held-out
//!   halves (docs/relevance.md has the tables).
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
            top3: 95.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 5.0,
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
            top1: 82.0,
            top3: 93.0,
            off_topic: 97.0,
            wrongly_refused_at_most: 3.0,
        },
    );
    check(
        "tuning_blind",
        &catalog,
        "tests/data/eval/tuning_blind.tsv",
        Floors {
            top1: 90.0,
            top3: 96.0,
            off_topic: 94.0,
            wrongly_refused_at_most: 1.6,
        },
    );
    check(
        "tuning_plain",
        &catalog,
        "tests/data/eval/tuning_plain.tsv",
        Floors {
            top1: 93.0,
            top3: 96.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 2.0,
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
            top3: 92.0,
            off_topic: 90.0,
            wrongly_refused_at_most: 5.0,
        },
    );
    check(
        "heldout_plain",
        &catalog,
        "tests/data/eval/heldout_plain.tsv",
        Floors {
            top1: 90.0,
            top3: 98.0,
            off_topic: 100.0,
            wrongly_refused_at_most: 0.0,
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
            top1: 68.0,
            top3: 89.0,
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

/// One line of a three-class set: `question<TAB>class<TAB>ids`.
struct ClassLine {
    question: String,
    class: String,
    ids: Vec<String>,
}

fn read_three_class(file: &str) -> Vec<ClassLine> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split('\t');
            let question = parts.next().unwrap().to_string();
            let class = parts
                .next()
                .unwrap_or_else(|| panic!("{file}: no class in {l:?}"))
                .trim()
                .to_string();
            assert!(
                ["covered", "uncovered", "offtopic"].contains(&class.as_str()),
                "{file}: class {class:?}"
            );
            let ids = parts
                .next()
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            ClassLine {
                question,
                class,
                ids,
            }
        })
        .collect()
}

/// Rates of a three-class set, in percent.
#[derive(Debug)]
struct ThreeClass {
    covered_strong: f64,
    covered_none: f64,
    covered_top1: f64,
    uncovered_caught: f64,
    offtopic_none: f64,
}

/// Floors (and, for `covered_none`, a ceiling) in percent.
struct ThreeClassFloors {
    covered_strong: f64,
    covered_none_at_most: f64,
    covered_top1: f64,
    uncovered_caught: f64,
    offtopic_none: f64,
}

fn three_class(name: &str, catalog: &Catalog, file: &str) -> ThreeClass {
    use insight_bot::insights::search::Confidence;
    let lines = read_three_class(file);
    let classes = ["covered", "uncovered", "offtopic"];
    let mut matrix = [[0usize; 3]; 3];
    let mut top1 = 0;
    let mut misses = Vec::new();
    for line in &lines {
        let answer = catalog
            .ask(&line.question, 3)
            .unwrap_or_else(|e| panic!("{:?}: {e}", line.question));
        assert_eq!(answer.no_close_match, answer.confidence == Confidence::None);
        let row = classes.iter().position(|c| *c == line.class).unwrap();
        let column = match answer.confidence {
            Confidence::Strong => 0,
            Confidence::Weak => 1,
            Confidence::None => 2,
        };
        matrix[row][column] += 1;
        let best = answer.best().map(|m| m.insight.id.clone());
        if line.class == "covered" && best.as_ref().is_some_and(|b| line.ids.contains(b)) {
            top1 += 1;
        }
        let expected_column = match line.class.as_str() {
            "covered" => 0,
            "uncovered" => 1,
            _ => 2,
        };
        if column != expected_column && !(expected_column == 1 && column == 2) {
            misses.push(format!(
                "{} answered {}: {:?} -> {best:?}",
                line.class,
                answer.confidence.as_str(),
                line.question
            ));
        }
    }
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    let rows: Vec<usize> = matrix.iter().map(|r| r.iter().sum()).collect();
    let rates = ThreeClass {
        covered_strong: pct(matrix[0][0], rows[0]),
        covered_none: pct(matrix[0][2], rows[0]),
        covered_top1: pct(top1, rows[0]),
        uncovered_caught: pct(matrix[1][1] + matrix[1][2], rows[1]),
        offtopic_none: pct(matrix[2][2], rows[2]),
    };
    println!(
        "{name}: strong/weak/none — covered {:?}, uncovered {:?}, off-topic {:?}; covered top-1 {top1}/{} ; {rates:.1?}\n  {}",
        matrix[0],
        matrix[1],
        matrix[2],
        rows[0],
        misses.join("\n  ")
    );
    rates
}

fn check_three_class(name: &str, catalog: &Catalog, file: &str, floors: ThreeClassFloors) {
    let r = three_class(name, catalog, file);
    assert!(r.covered_strong >= floors.covered_strong, "{name}: {r:?}");
    assert!(
        r.covered_none <= floors.covered_none_at_most,
        "{name}: {r:?}"
    );
    assert!(r.covered_top1 >= floors.covered_top1, "{name}: {r:?}");
    assert!(
        r.uncovered_caught >= floors.uncovered_caught,
        "{name}: {r:?}"
    );
    assert!(r.offtopic_none >= floors.offtopic_none, "{name}: {r:?}");
}

fn feedback_catalog() -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feedback/insights.toml");
    let library = Library::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Catalog::new(Arc::new(library), support::bot::searcher()).unwrap()
}

/// Strong, weak or none, on questions the collection covers, in-domain questions it does not
/// cover, and off-topic ones, for two collections (tests/data/eval/three_class/). The constants
/// of the gate were chosen on the tuning halves; the held-out halves were measured once.
#[test]
fn covered_uncovered_and_off_topic_questions_get_strong_weak_and_none() {
    let seed = shipped();
    check_three_class(
        "seed tuning",
        &seed,
        "tests/data/eval/three_class/seed_tuning.tsv",
        ThreeClassFloors {
            covered_strong: 86.0,
            covered_none_at_most: 6.0,
            covered_top1: 75.0,
            uncovered_caught: 73.0,
            offtopic_none: 90.0,
        },
    );
    check_three_class(
        "seed held-out",
        &seed,
        "tests/data/eval/three_class/seed_heldout.tsv",
        ThreeClassFloors {
            covered_strong: 87.0,
            covered_none_at_most: 6.0,
            covered_top1: 85.0,
            uncovered_caught: 57.0,
            offtopic_none: 85.0,
        },
    );
    let feedback = feedback_catalog();
    check_three_class(
        "feedback tuning",
        &feedback,
        "tests/data/eval/three_class/feedback_tuning.tsv",
        ThreeClassFloors {
            covered_strong: 82.0,
            covered_none_at_most: 3.0,
            covered_top1: 62.0,
            uncovered_caught: 76.0,
            offtopic_none: 90.0,
        },
    );
    check_three_class(
        "feedback held-out",
        &feedback,
        "tests/data/eval/three_class/feedback_heldout.tsv",
        ThreeClassFloors {
            covered_strong: 70.0,
            covered_none_at_most: 3.4,
            covered_top1: 60.0,
            uncovered_caught: 86.0,
            offtopic_none: 86.0,
        },
    );
}
