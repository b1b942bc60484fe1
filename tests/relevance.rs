//! Relevance targets, measured through the `insight-bot ask --json` binary itself (the same code
//! path people use), on the built-in collection. Every question set lives in `tests/data/eval/`
//! (see `tests/data/README.md` for where each came from):
//!
//! - `dev_questions.tsv`, the shared dev set (a copy of `../shared/eval/dev_questions.tsv`): top-1
//!   >= 90%, top-3 = 100%, every off-topic line answered "no close match".
//! - **Tuning sets** — their misses were read and the ranking (`vocabulary.rs`) was changed for
//!   them, so their figures are figures on tuning data, floors against regressions, not evidence
//!   of how the ranking generalises: `tuning_blind.tsv` (84 lines written from the seed page alone,
//!   with deliberately tricky off-topic lines) and `tuning_plain.tsv` (65 lines in the dev set's
//!   style).
//! - **Held-out set** — `heldout_plain.tsv` (65 lines in the dev set's style, written blind from
//!   the seed page by a helper who never saw the ranking or the asks). Nothing is ever changed
//!   after reading its misses; it is what judges relevance. First measurement (lexical ranking,
//!   before any change): top-1 48/54, top-3 53/54, off-topic refused 5/11.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Line {
    question: String,
    /// Acceptable ids, best first; empty for off-topic questions.
    expected: Vec<String>,
}

fn read_tsv(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (question, ids) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab in line {l:?}"));
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

/// Runs `insight-bot ask --json --top 3 QUESTION` on the shipped collection.
fn ask(question: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .args(["ask", "--json", "--top", "3", question])
        .env_remove("INSIGHTS_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run insight-bot");
    assert!(
        output.status.success(),
        "ask {question:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ask --json prints one JSON object")
}

struct Score {
    on_topic: usize,
    top1: usize,
    top3: usize,
    off_topic: usize,
    off_topic_refused: usize,
    failures: Vec<String>,
}

fn score(lines: &[Line]) -> Score {
    let mut s = Score {
        on_topic: 0,
        top1: 0,
        top3: 0,
        off_topic: 0,
        off_topic_refused: 0,
        failures: Vec::new(),
    };
    for line in lines {
        let answer = ask(&line.question);
        let ids: Vec<String> = answer["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        let no_close_match = answer["no_close_match"].as_bool().unwrap();
        assert_eq!(no_close_match, ids.is_empty(), "{answer}");
        if line.expected.is_empty() {
            s.off_topic += 1;
            if no_close_match {
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
        if ids.first().is_some_and(|id| line.expected.contains(id)) {
            s.top1 += 1;
        } else {
            s.failures.push(format!(
                "top-1 miss: {:?} expected {:?} got {ids:?}",
                line.question, line.expected
            ));
        }
        if ids.iter().any(|id| line.expected.contains(id)) {
            s.top3 += 1;
        }
    }
    s
}

fn percent(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of.max(1) as f64
}

#[test]
fn dev_questions_meet_the_targets() {
    let file = "tests/data/eval/dev_questions.tsv";
    let lines = read_tsv(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file));
    assert!(lines.len() >= 20, "the dev set has {} lines", lines.len());
    assert!(
        lines.iter().any(|l| l.expected.is_empty()),
        "the dev set should contain off-topic lines"
    );
    // The targets: top-1 >= 90%, top-3 = 100%, every off-topic line refused.
    assert_floors(file, 90.0, 100.0, 100.0);
}

/// Scores a question set and checks it against floors (percentages).
fn assert_floors(file: &str, top1: f64, top3: f64, off_topic: f64) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
    let s = score(&read_tsv(&path));
    let report = s.failures.join("\n");
    println!(
        "{file}: top-1 {}/{} ({:.0}%), top-3 {}/{} ({:.0}%), off-topic refused {}/{}\n{report}",
        s.top1,
        s.on_topic,
        percent(s.top1, s.on_topic),
        s.top3,
        s.on_topic,
        percent(s.top3, s.on_topic),
        s.off_topic_refused,
        s.off_topic
    );
    assert!(
        percent(s.top1, s.on_topic) >= top1,
        "{file}: top-1\n{report}"
    );
    assert!(
        percent(s.top3, s.on_topic) >= top3,
        "{file}: top-3\n{report}"
    );
    assert!(
        percent(s.off_topic_refused, s.off_topic) >= off_topic,
        "{file}: off-topic\n{report}"
    );
}

#[test]
fn tuning_sets_stay_at_their_measured_level() {
    // Tuning data: floors just under what was measured, so a regression fails here.
    assert_floors("tests/data/eval/tuning_blind.tsv", 85.0, 97.0, 70.0);
    assert_floors("tests/data/eval/tuning_plain.tsv", 90.0, 96.0, 90.0);
}

#[test]
fn the_held_out_set_stays_at_its_measured_level() {
    assert_floors("tests/data/eval/heldout_plain.tsv", 85.0, 96.0, 45.0);
}
