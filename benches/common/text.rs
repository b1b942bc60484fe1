//! Made-up text for the benchmarks' generated collections: a Zipf law over a word list, pseudo
//! words, and phrases and prose drawn from them. Shared by the benches through
//! `#[path = "common/text.rs"] mod text;`; deterministic for a seeded `StdRng`.

// Each bench uses what it needs of this file.
#![allow(dead_code)]

use std::collections::HashMap;

use insight_bot::insights::Library;
use rand::rngs::StdRng;
use rand::Rng;

/// Ranks drawn with probability proportional to 1 / rank^s.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                total += 1.0 / (r as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    pub fn sample(&self, rng: &mut StdRng) -> usize {
        let total = *self.cumulative.last().unwrap();
        let u = rng.gen::<f64>() * total;
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// A pronounceable pseudo-word of `syllables` syllables (a range), lowercase ASCII.
pub fn pseudo_word(rng: &mut StdRng, syllables: std::ops::RangeInclusive<usize>) -> String {
    let syllables = rng.gen_range(syllables);
    const ONSETS: &[&str] = &[
        "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
        "br", "cr", "dr", "fl", "gr", "pl", "pr", "st", "tr", "ch", "sh", "th", "",
    ];
    const VOWELS: &[&str] = &[
        "a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "io",
    ];
    const CODAS: &[&str] = &[
        "", "", "", "", "n", "r", "s", "l", "t", "m", "nd", "st", "ck", "rt",
    ];
    let mut word = String::new();
    for _ in 0..syllables {
        word.push_str(ONSETS[rng.gen_range(0..ONSETS.len())]);
        word.push_str(VOWELS[rng.gen_range(0..VOWELS.len())]);
        word.push_str(CODAS[rng.gen_range(0..CODAS.len())]);
    }
    word
}

pub fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `n` words drawn from `words` by `zipf`, sentence case, no final punctuation; occasional commas.
pub fn phrase(rng: &mut StdRng, words: &[String], zipf: &Zipf, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let comma = i > 0 && i + 1 < n && rng.gen_bool(0.06);
        let word = &words[zipf.sample(rng)];
        if i == 0 {
            out.push_str(&capitalised(word));
        } else {
            out.push(' ');
            out.push_str(word);
        }
        if comma {
            out.push(',');
        }
    }
    out
}

/// About `n` words of prose in sentences of 6 to 16 words.
pub fn prose(rng: &mut StdRng, words: &[String], zipf: &Zipf, n: usize) -> String {
    let mut out = String::new();
    let mut left = n;
    while left > 0 {
        let mut len = rng.gen_range(6..=16).min(left);
        if left - len < 4 {
            len = left;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&phrase(rng, words, zipf, len));
        out.push('.');
        left -= len;
    }
    out
}

/// The real words of a collection's insights (titles, texts, asks), most frequent first.
pub fn real_words(library: &Library) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for insight in library.insights() {
        let fields = [&insight.title, &insight.text]
            .into_iter()
            .chain(insight.asks.iter());
        for field in fields {
            for word in field.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
                let word = word.trim_matches('\'').to_lowercase();
                if !word.is_empty() {
                    *counts.entry(word).or_default() += 1;
                }
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.into_iter().map(|(w, _)| w).collect()
}
