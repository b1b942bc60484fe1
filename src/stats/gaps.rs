//! The questions a server's collection could not answer well, grouped: members ask the same
//! thing in many words, and a curator should see "asked 7 times" once, not seven lines.
//!
//! Grouping is greedy and single-pass over the questions, newest first: a question joins the
//! first group whose first question it is at least [`SAME_QUESTION`] similar to (cosine of the
//! sentence embeddings), or starts a group. Groups come out most asked first. With the few
//! hundred questions a server keeps for 30 days this is instant; the embedding is the cost.

use crate::embedding::{cosine, Vector};

/// Cosine similarity from which two questions count as the same question. all-MiniLM-L6-v2 puts
/// near-identical wordings of one question at about 0.9 ("how do I run a good offsite for a remote
/// team?" / "tips for planning an offsite with a remote team": 0.91) and different questions on
/// one topic well below ("ask my manager for a raise" / "negotiate my salary when promoted":
/// 0.48); a looser rewording ("organise an offsite for a distributed team": 0.60) stays apart, so
/// a group is one question, never a topic. Tested below.
pub const SAME_QUESTION: f32 = 0.75;

/// Questions asked in different words that are the same question.
#[derive(Debug, Clone, PartialEq)]
pub struct GapGroup {
    /// The newest wording first, each wording once.
    pub questions: Vec<String>,
    /// How many times it was asked (wordings asked twice count twice).
    pub asked: usize,
    /// Where the group's questions are in the input, newest first (one per asking).
    pub members: Vec<usize>,
}

/// Groups `questions` (newest first), given each one's vector, most asked first (then the
/// group with the newest question first).
pub fn group(questions: &[String], vectors: &[Vector]) -> Vec<GapGroup> {
    // (index of the group's first question, the group)
    let mut groups: Vec<(usize, GapGroup)> = Vec::new();
    for (at, (question, vector)) in questions.iter().zip(vectors).enumerate() {
        let key = question.trim().to_lowercase();
        let same = |g: &GapGroup| g.questions.iter().any(|q| q.trim().to_lowercase() == key);
        match groups
            .iter_mut()
            .find(|(first, g)| same(g) || cosine(&vectors[*first], vector) >= SAME_QUESTION)
        {
            Some((_, g)) => {
                g.asked += 1;
                g.members.push(at);
                if !same(g) {
                    g.questions.push(question.clone());
                }
            }
            None => groups.push((
                at,
                GapGroup {
                    questions: vec![question.clone()],
                    asked: 1,
                    members: vec![at],
                },
            )),
        }
    }
    // Stable: equal counts keep their order, which is newest first.
    groups.sort_by_key(|g| std::cmp::Reverse(g.1.asked));
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::Embedder;

    #[test]
    fn rewordings_group_and_different_questions_do_not() {
        let embedder = Embedder::load_repository_model().unwrap();
        let questions: Vec<String> = [
            "how do I run a good offsite for a remote team?",
            "How do I ask my manager for a raise?",
            "tips for planning an offsite with a remote team",
            "how do i run a good offsite for a remote team?",
            "how can I run a good offsite for my remote team",
            "should I negotiate my salary when promoted?",
            "How do I handle a teammate who misses deadlines?",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let refs: Vec<&str> = questions.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&refs).unwrap();
        let groups = group(&questions, &vectors);
        assert_eq!(groups[0].asked, 4, "{groups:#?}");
        assert_eq!(
            groups[0].questions.len(),
            3,
            "the same wording twice is listed once"
        );
        assert_eq!(groups[0].questions[0], questions[0]);
        assert_eq!(groups[0].members, [0, 2, 3, 4]);
        assert!(groups[1..].iter().all(|g| g.asked == 1), "{groups:#?}");
        assert_eq!(groups.len(), 4);
    }
}
