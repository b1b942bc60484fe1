//! "No close match": whether a question is about what the collection is about at all.
//!
//! A similarity score alone cannot say it. Measured on the tuning sets, on-topic messages that
//! are short or slangy ("from doer to enabler 😬") reach a best cosine of 0.25, while homonyms
//! ("director's cut of Blade Runner", "microphone feedback on stage") reach 0.45: no threshold
//! separates them. What separates them is what *else* the question is close to. So the gate is a
//! nearest-neighbour decision between two sets of anchors, embedded with the same model:
//! - on topic: the collection's own documents, plus about 300 generic questions about workplace
//!   leadership and careers (`on_topic_anchors.txt`), so that a question on a theme the
//!   collection lacks is still recognised as a leadership question;
//! - off topic: about 700 messages people post in a team's Discord about everything else
//!   (`off_topic_anchors.txt`): films, religion, the military, games, code, shopping, sport,
//!   chit-chat..., many of them using leadership words in another sense ("film director",
//!   "package manager", "lead climbing", "promote my post", "microphone feedback").
//!
//! A question is on topic when its closest on-topic neighbour is closer, by at least
//! [`MARGIN`], than its closest off-topic neighbour, and it is at least [`FLOOR`] close to some
//! insight. For a long message each sentence is tried too, so one clear sentence is enough.
//! Both anchor files were written by someone who never saw an evaluation question; `MARGIN` and
//! `FLOOR` were calibrated on the tuning sets (`tests/data/eval/tuning_*`) and checked on the
//! held-out ones (see docs/relevance.md for both figures).

use crate::embedding::{cosine, Vector};

/// Generic workplace-leadership questions: the on-topic side beyond the collection.
pub const ON_TOPIC_ANCHORS: &str = include_str!("on_topic_anchors.txt");
/// Everyday messages about other things, homonyms included: the off-topic side.
pub const OFF_TOPIC_ANCHORS: &str = include_str!("off_topic_anchors.txt");

/// How much closer the nearest on-topic neighbour must be than the nearest off-topic one.
/// Calibrated on the tuning sets: from -0.01 to +0.01 trades a point of off-topic refusals
/// against a point of wrongly refused questions; 0 is the plain nearest-neighbour rule.
pub const MARGIN: f32 = 0.0;
/// The least similarity to some insight for an answer at all (keyboard mashing and the like reach
/// a generic leadership anchor more easily than a real insight).
pub const FLOOR: f32 = 0.18;

/// The non-comment lines of an anchor file.
pub fn anchor_lines(file: &str) -> Vec<&str> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The two anchor sets, embedded.
#[derive(Debug, Clone)]
pub struct Anchors {
    on: Vec<Vector>,
    off: Vec<Vector>,
    off_texts: Vec<&'static str>,
}

/// The gate's verdict on one question, with what it was based on (for `ask --explain`).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub on_topic: bool,
    /// The best similarity to an insight of the collection.
    pub insight_similarity: f32,
    /// The best similarity to a generic on-topic anchor.
    pub anchor_similarity: f32,
    /// The nearest off-topic anchor and its similarity.
    pub off_topic: (String, f32),
    /// `max(insight, on-topic anchor) - off-topic`, for the question vector where it is largest.
    pub margin: f32,
}

impl Anchors {
    /// `on` and `off` are the embedded lines of [`ON_TOPIC_ANCHORS`] and [`OFF_TOPIC_ANCHORS`].
    pub fn new(on: Vec<Vector>, off: Vec<Vector>) -> Anchors {
        Anchors {
            on,
            off,
            off_texts: anchor_lines(OFF_TOPIC_ANCHORS),
        }
    }

    /// Decides for a question given its vectors (the whole question first, then its sentences)
    /// and, for each vector, its best similarity to an insight.
    pub fn verdict(&self, queries: &[Vector], insight_best: &[f32]) -> Verdict {
        let nearest = |set: &[Vector], q: &Vector| {
            set.iter()
                .enumerate()
                .map(|(i, a)| (i, cosine(q, a)))
                .fold((0, -1f32), |best, x| if x.1 > best.1 { x } else { best })
        };
        let mut verdict = Verdict {
            on_topic: false,
            insight_similarity: insight_best.iter().copied().fold(-1f32, f32::max),
            anchor_similarity: -1.0,
            off_topic: (String::new(), -1.0),
            margin: f32::NEG_INFINITY,
        };
        for (q, &insight) in queries.iter().zip(insight_best) {
            let (_, anchor) = nearest(&self.on, q);
            let (off_at, off) = nearest(&self.off, q);
            let margin = insight.max(anchor) - off;
            if margin > verdict.margin {
                verdict.margin = margin;
                verdict.anchor_similarity = anchor;
                let text = self.off_texts.get(off_at).copied().unwrap_or_default();
                verdict.off_topic = (text.to_string(), off);
            }
        }
        verdict.on_topic = verdict.margin >= MARGIN && verdict.insight_similarity >= FLOOR;
        verdict
    }
}
