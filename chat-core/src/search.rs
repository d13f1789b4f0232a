//! Message search: how text becomes search terms, the same way for every store.
//!
//! A store indexes each live message's [`terms`] and answers a query whose [`terms`] are each
//! a prefix of one of a message's terms. Doing the splitting here, once, is what makes every
//! store find the same messages:
//!
//! - case and accents do not count: text is decomposed (NFKD), combining marks are dropped and
//!   the rest lowercased, so "cafe" finds "Café" and "ＣＡＦＥ";
//! - words are runs of letters and digits; anything else (spaces, punctuation, emoji)
//!   separates them;
//! - text written without spaces (Han, Hiragana, Katakana, Hangul) becomes overlapping pairs
//!   of characters, so "東京" finds "東京タワー" and "タワー" finds it too; a lone such
//!   character is a term of its own;
//! - a query term matches any term it begins, so "caf" finds "café" and "東" finds "東京".

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest search text, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;

/// The most terms a search text may hold.
pub const MAX_QUERY_TERMS: usize = 16;

/// The longest term, in characters: a longer word is kept as its beginning (still found by
/// any prefix of it), which bounds what one word costs an index (PostgreSQL refuses lexemes
/// over 2 KiB).
pub const MAX_TERM_CHARS: usize = 64;

/// Whether `c` belongs to a script written without spaces between words.
fn unspaced(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{31F0}'..='\u{31FF}' // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{AC00}'..='\u{D7AF}' // Hangul syllables
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}' // half-width Katakana
        | '\u{20000}'..='\u{2FA1F}' // CJK extensions B and later
    )
}

/// `text` decomposed, without combining marks, lowercased.
fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The distinct search terms of `text`, in the order they first occur.
pub fn terms(text: &str) -> Vec<String> {
    if text.is_ascii() {
        ascii_terms(text)
    } else {
        any_terms(text)
    }
}

/// [`terms`] of ASCII text, which decomposes to itself and holds no unspaced script: its runs
/// of letters and digits, lowercased, without decoding a character. Every send splits its
/// text, and most text is ASCII.
fn ascii_terms(text: &str) -> Vec<String> {
    let terms = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word[..word.len().min(MAX_TERM_CHARS)].to_ascii_lowercase())
        .collect();
    first_of_each(terms)
}

/// [`terms`] of any text.
fn any_terms(text: &str) -> Vec<String> {
    let folded = fold(text);
    let mut terms: Vec<String> = Vec::new();
    let mut push = |mut term: String| {
        if let Some((cut, _)) = term.char_indices().nth(MAX_TERM_CHARS) {
            term.truncate(cut);
        }
        terms.push(term);
    };
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_run = |run: &mut Vec<char>, push: &mut dyn FnMut(String)| {
        match run.len() {
            0 => {}
            1 => push(run[0].to_string()),
            _ => run.windows(2).for_each(|pair| push(pair.iter().collect())),
        }
        run.clear();
    };
    for c in folded.chars() {
        if unspaced(c) {
            if !word.is_empty() {
                push(std::mem::take(&mut word));
            }
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut push);
            word.push(c);
        } else {
            flush_run(&mut run, &mut push);
            if !word.is_empty() {
                push(std::mem::take(&mut word));
            }
        }
    }
    flush_run(&mut run, &mut push);
    if !word.is_empty() {
        push(word);
    }
    first_of_each(terms)
}

/// At most this many terms are told apart by comparing each with those kept before it, which
/// beats hashing them all for a message's usual few.
const FEW_TERMS: usize = 16;

/// The first of each run of equal `terms`, in order. Beyond [`FEW_TERMS`], a set, not a search
/// of those kept: a body of thousands of distinct words would cost milliseconds the other way.
fn first_of_each(mut terms: Vec<String>) -> Vec<String> {
    if terms.len() <= FEW_TERMS {
        // `terms[..kept]` holds the first of each so far; what lies between it and `i` are
        // repeats, which a swap may move anywhere after it.
        let mut kept = 0;
        for i in 0..terms.len() {
            if !terms[..kept].contains(&terms[i]) {
                terms.swap(kept, i);
                kept += 1;
            }
        }
        terms.truncate(kept);
        return terms;
    }
    let mut seen = HashSet::with_capacity(terms.len());
    let first: Vec<bool> = terms
        .iter()
        .map(|term| seen.insert(term.as_str()))
        .collect();
    drop(seen);
    terms
        .into_iter()
        .zip(first)
        .filter_map(|(term, first)| first.then_some(term))
        .collect()
}

/// Whether a message with these terms matches a query with `query` terms: each query term
/// begins one of the message's terms.
pub fn matches(message_terms: &[String], query: &[String]) -> bool {
    query.iter().all(|q| {
        message_terms
            .iter()
            .any(|term| term.starts_with(q.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Vec<String> {
        terms(text)
    }

    #[test]
    fn ascii_text_splits_as_any_text_would() {
        let every_ascii: String = (0..128u8).map(char::from).collect();
        let long_word = "Abc1".repeat(40);
        let many_words: String = (0..40)
            .map(|n| format!("W{} w{} ", n % 23, n % 7))
            .collect();
        for text in [
            every_ascii.as_str(),
            &long_word,
            &many_words,
            "Lunch at 12:30? OK -- see_you   THERE, there!",
            "",
            "...",
        ] {
            assert_eq!(ascii_terms(text), any_terms(text), "{text:?}");
        }
    }

    #[test]
    fn case_and_accents_fold_away() {
        assert_eq!(
            t("Café au LAIT, s'il vous plaît!"),
            ["cafe", "au", "lait", "s", "il", "vous", "plait"]
        );
        assert_eq!(t("ＣＡＦＥ Ångström"), ["cafe", "angstrom"]);
        assert!(matches(&t("Café"), &t("cafe")));
    }

    #[test]
    fn each_term_once_where_it_first_occurs() {
        assert_eq!(t("b a b c a b"), ["b", "a", "c"]);
        assert_eq!(t("東京東京"), ["東京", "京東"]);
        // Past the few told apart one by one, the same.
        let words: Vec<String> = (0..30).map(|n| format!("w{}", n % 20)).collect();
        let firsts: Vec<String> = (0..20).map(|n| format!("w{n}")).collect();
        assert_eq!(t(&words.join(" ")), firsts);
        assert_eq!(t(&words[..FEW_TERMS].join(" ")), firsts[..FEW_TERMS]);
    }

    #[test]
    fn emoji_and_punctuation_separate_words() {
        assert_eq!(t("ship🚀it!!! v2.0"), ["ship", "it", "v2", "0"]);
        assert!(t("🎉🎉 ... ---").is_empty());
    }

    #[test]
    fn unspaced_scripts_become_pairs() {
        assert_eq!(t("東京タワー"), ["東京", "京タ", "タワ", "ワー"]);
        assert!(matches(&t("東京タワーに行く"), &t("東京")));
        assert!(matches(&t("東京タワーに行く"), &t("タワー")));
        assert!(
            matches(&t("東京タワー"), &t("東")),
            "a lone character begins a pair"
        );
        assert!(!matches(&t("東京タワー"), &t("大阪")));
        assert_eq!(t("我爱tokyo"), ["我爱", "tokyo"]);
    }

    #[test]
    fn long_words_are_kept_as_their_beginning() {
        let long = "x".repeat(16_000);
        assert_eq!(t(&long), ["x".repeat(MAX_TERM_CHARS)]);
        assert!(matches(&t(&long), &t(&"x".repeat(100))));
        assert!(matches(&t(&format!("{long}é")), &t("xxx")));
    }

    #[test]
    fn query_terms_are_prefixes() {
        assert!(matches(&t("the cafeteria opens"), &t("caf open")));
        assert!(!matches(&t("the cafeteria opens"), &t("caf closed")));
        assert!(!matches(&t("cafe"), &t("cafeteria")));
    }
}
