//! Whether a question is written in another language than English, so that the reply can say
//! "English only for now" instead of "try other words" (the model, the anchors and every
//! shipped insight are English: a question in Spanish would get an unrelated answer or none).
//!
//! Two cheap signals, no model: most letters in a non-Latin script (Cyrillic, Greek, Arabic,
//! CJK, …), or more function words of one of the common Latin-script languages than of English.
//! Function words come from the NLTK stop-word lists the lexical index already uses; a word that
//! is also an English stop word ("a", "me", "no") counts for English only. Two such words at
//! least are needed, so a French name or a borrowed "déjà vu" in an English question changes
//! nothing.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Latin-script languages with an NLTK stop-word list, by ISO code.
const LATIN_LANGUAGES: [&str; 13] = [
    "es", "fr", "de", "pt", "it", "nl", "sv", "da", "no", "fi", "tr", "id", "ro",
];

struct StopWords {
    english: HashSet<&'static str>,
    /// Per other language, its stop words that are not English ones.
    others: Vec<HashSet<&'static str>>,
}

fn stop_words() -> &'static StopWords {
    static WORDS: OnceLock<StopWords> = OnceLock::new();
    WORDS.get_or_init(|| {
        let english: HashSet<&'static str> = stop_words::get("en").iter().copied().collect();
        let others = LATIN_LANGUAGES
            .iter()
            .map(|code| {
                stop_words::get(code)
                    .iter()
                    .copied()
                    .filter(|w| !english.contains(w))
                    .collect()
            })
            .collect();
        StopWords { english, others }
    })
}

/// Whether `text` reads as written in another language than English.
pub fn is_other_language(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic());
    let (mut latin, mut other) = (0usize, 0usize);
    for c in letters {
        // Basic Latin to Latin Extended-B, and Latin Extended Additional (Vietnamese).
        if (c as u32) <= 0x024F || (0x1E00..=0x1EFF).contains(&(c as u32)) {
            latin += 1;
        } else {
            other += 1;
        }
    }
    if other > latin {
        return true;
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let lists = stop_words();
    let english = words
        .iter()
        .filter(|w| lists.english.contains(w.as_str()))
        .count();
    let best_other = lists
        .others
        .iter()
        .map(|list| words.iter().filter(|w| list.contains(w.as_str())).count())
        .max()
        .unwrap_or(0);
    best_other >= 2 && best_other > english
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_questions_with_slang_names_and_loan_words_are_english() {
        for q in [
            "How do I give feedback to my team?",
            "my tl keeps rewriting my prs lol",
            "1:1s feel pointless, we just go over jira",
            "José and Zoë on my team don't get along, what do I do?",
            "it's déjà vu every sprint: same fires, same people",
            "How should I handle a report who says 'no pasa nada' to every deadline?",
            "ok",
            "???",
        ] {
            assert!(!is_other_language(q), "{q}");
        }
    }

    #[test]
    fn questions_in_other_languages_and_scripts_are_recognised() {
        for q in [
            "¿Cómo puedo dar feedback a mi equipo?",
            "Comment donner du feedback à mon équipe ?",
            "Wie gebe ich meinem Team Feedback?",
            "Como posso dar feedback para a minha equipe?",
            "Come posso dare un feedback al mio team?",
            "Hoe geef ik mijn team feedback?",
            "Как дать обратную связь команде?",
            "今日は何曜日ですか",
            "如何给团队反馈？",
        ] {
            assert!(is_other_language(q), "{q}");
        }
    }
}
