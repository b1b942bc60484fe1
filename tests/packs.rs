//! The starter library at its full size (issue 16): every built-in pack served at once, as the
//! bot serves them by default.
//!
//! - **Relevance**: each pack's held-out questions (`tests/data/eval/packs/<id>.tsv`, written by
//!   the packs' writers without running the bot, never tuned on) asked of the whole library and
//!   judged by acceptable id: a question about feedback must find a feedback insight among 118,
//!   not only among its pack's 11. Top-1 and top-3 are printed per pack and for the library
//!   (`cargo test --test packs -- --nocapture`). The floors are named constants just under what
//!   was measured with all-MiniLM-L6-v2, so a regression fails; a new model is re-measured and
//!   the constants moved with the figures in their comments.
//! - **Near-duplicates**: no two insights of the shipped library at cosine >= 0.85 of title and
//!   text ([`insight_bot::insights::duplicates`]); `insight-bot check` warns of them.
//!
//! The seed pack keeps its own targets, served alone, in `tests/relevance.rs`.

mod support;

use std::path::Path;

use insight_bot::insights::duplicates::{closest_pair, near_duplicates, NEAR_DUPLICATE};
use insight_bot::insights::packs::{BUILTIN_PACKS, SEED_PACK};
use insight_bot::insights::Catalog;

/// Whole library, top-1 over every pack's held-out questions, in percent. Measured with
/// all-mpnet-base-v2 (and the seed's tuned vocabulary, nothing changed for the packs): 68/107
/// (64%); all-MiniLM-L6-v2 gave 52/107 (49%).
const LIBRARY_TOP1_FLOOR: f64 = 62.0;
/// Whole library, top-3. Measured: 84/107 (79%); MiniLM 73/107 (68%).
const LIBRARY_TOP3_FLOOR: f64 = 77.0;
/// The weakest pack's top-1, so that one pack cannot sink while the others carry the average.
/// Measured: priorities-and-managing-up, 3/10 (30%); MiniLM: onboarding, 3/11 (27%).
const PACK_TOP1_FLOOR: f64 = 28.0;
/// The weakest pack's top-3. Measured: priorities-and-managing-up, 6/10 (60%); MiniLM:
/// onboarding, 4/11 (36%).
const PACK_TOP3_FLOOR: f64 = 58.0;
/// Held-out questions answered "no close match" although an insight is acceptable, at most, in
/// percent of the library's. Measured: 4/107 (3.7%), leadership questions put in the words of
/// incidents, access tickets and release dates, which the gate reads as off topic; MiniLM 1/107.
const LIBRARY_REFUSED_AT_MOST: f64 = 4.0;

struct Line {
    question: String,
    /// Acceptable ids, best first.
    acceptable: Vec<String>,
}

fn read_pack_questions(pack: &str) -> Vec<Line> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval/packs")
        .join(format!("{pack}.tsv"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (question, ids) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("{pack}.tsv: no tab in line {l:?}"));
            Line {
                question: question.to_string(),
                acceptable: ids.split(',').map(|s| s.trim().to_string()).collect(),
            }
        })
        .collect()
}

#[derive(Default)]
struct Score {
    questions: usize,
    top1: usize,
    top3: usize,
    refused: usize,
    misses: Vec<String>,
}

impl Score {
    fn add(&mut self, other: &Score) {
        self.questions += other.questions;
        self.top1 += other.top1;
        self.top3 += other.top3;
        self.refused += other.refused;
    }

    fn percent(n: usize, of: usize) -> f64 {
        100.0 * n as f64 / of.max(1) as f64
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<32} top-1 {:>3}/{:<3} ({:>3.0}%)  top-3 {:>3}/{:<3} ({:>3.0}%)  no close match {}",
            self.top1,
            self.questions,
            Self::percent(self.top1, self.questions),
            self.top3,
            self.questions,
            Self::percent(self.top3, self.questions),
            self.refused,
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
        s.questions += 1;
        let acceptable = |id: &&str| line.acceptable.iter().any(|a| a == id);
        if answer.no_close_match {
            s.refused += 1;
        }
        if ids.first().is_some_and(acceptable) {
            s.top1 += 1;
        } else {
            s.misses.push(format!(
                "{:?}: expected {:?}, got {ids:?}",
                line.question, line.acceptable
            ));
        }
        if ids.iter().any(acceptable) {
            s.top3 += 1;
        }
    }
    s
}

#[test]
fn every_held_out_id_is_an_insight_of_its_pack() {
    // A typo in a question file would count as a miss for ever; a question whose best insight
    // is in another pack would test the wrong pack (an acceptable second choice may be in
    // another: "review-no-surprises, feedback-within-two-days").
    let library = support::bot::library_catalog().library().clone();
    for pack in BUILTIN_PACKS.iter().filter(|p| p.id != SEED_PACK) {
        let lines = read_pack_questions(pack.id);
        assert!(lines.len() >= 10, "{}: {} questions", pack.id, lines.len());
        for line in &lines {
            for (n, id) in line.acceptable.iter().enumerate() {
                let insight = library
                    .get(id)
                    .unwrap_or_else(|| panic!("{}.tsv: no insight {id:?}", pack.id));
                if n == 0 {
                    assert_eq!(insight.pack, Some(pack.id), "{}.tsv: {id}", pack.id);
                }
            }
        }
    }
}

#[test]
fn each_packs_held_out_questions_find_their_insights_in_the_whole_library() {
    let catalog = support::bot::library_catalog();
    let mut library = Score::default();
    let mut report = Vec::new();
    let mut weakest_top1 = f64::MAX;
    let mut weakest_top3 = f64::MAX;
    for pack in BUILTIN_PACKS.iter().filter(|p| p.id != SEED_PACK) {
        let s = score(&catalog, &read_pack_questions(pack.id));
        report.push(s.line(pack.id));
        report.extend(s.misses.iter().map(|m| format!("    {m}")));
        weakest_top1 = weakest_top1.min(Score::percent(s.top1, s.questions));
        weakest_top3 = weakest_top3.min(Score::percent(s.top3, s.questions));
        library.add(&s);
    }
    report.push(library.line(&format!(
        "whole library ({} insights)",
        catalog.library().len()
    )));
    let report = report.join("\n");
    println!("{report}");
    let top1 = Score::percent(library.top1, library.questions);
    let top3 = Score::percent(library.top3, library.questions);
    let refused = Score::percent(library.refused, library.questions);
    assert!(
        top1 >= LIBRARY_TOP1_FLOOR,
        "library top-1 {top1:.1}%\n{report}"
    );
    assert!(
        top3 >= LIBRARY_TOP3_FLOOR,
        "library top-3 {top3:.1}%\n{report}"
    );
    assert!(
        weakest_top1 >= PACK_TOP1_FLOOR,
        "weakest pack top-1 {weakest_top1:.1}%\n{report}"
    );
    assert!(
        weakest_top3 >= PACK_TOP3_FLOOR,
        "weakest pack top-3 {weakest_top3:.1}%\n{report}"
    );
    assert!(
        refused <= LIBRARY_REFUSED_AT_MOST,
        "no close match {refused:.1}%\n{report}"
    );
}

#[test]
fn the_shipped_library_has_no_near_duplicates() {
    let catalog = support::bot::library_catalog();
    let closest = closest_pair(&catalog)
        .unwrap()
        .expect("more than one insight");
    println!(
        "closest pair: {} and {} (cosine {:.3})",
        closest.first, closest.second, closest.cosine
    );
    let found = near_duplicates(&catalog).unwrap();
    assert!(
        found.is_empty(),
        "near-duplicates (cosine >= {NEAR_DUPLICATE}): {found:?}"
    );
    // The check can fail: the closest pair is what it would report at a lower line.
    assert!(closest.cosine < NEAR_DUPLICATE);
}

#[test]
fn a_reworded_copy_is_reported_naming_both_ids_and_the_cosine() {
    use insight_bot::insights::{Insight, Library};
    use std::sync::Arc;
    let shipped = support::bot::library_catalog();
    let original = shipped.library().get("feedback-sbi").unwrap().clone();
    let copy = Insight {
        id: "our-sbi".into(),
        title: format!("{} (our version)", original.title),
        text: original
            .text
            .replace("Use the SBI model", "Try the SBI model"),
        pack: None,
        ..original.clone()
    };
    let mut insights = shipped.library().insights().to_vec();
    insights.push(copy);
    let catalog = Catalog::new(
        Arc::new(Library::from_insights(insights)),
        support::bot::searcher(),
    )
    .unwrap();
    let found = near_duplicates(&catalog).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].first.as_str(), found[0].second.as_str()),
        ("feedback-sbi", "our-sbi")
    );
    assert!(found[0].cosine >= NEAR_DUPLICATE && found[0].cosine <= 1.0001);
}
