use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn word(s: &str) -> Word {
    match Word::parse(s, DEFAULT_MAX_GRAPHEMES) {
        Ok(w) => w,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn sorted_graphemes(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.graphemes(true).map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn parse_rejects_bad_words() {
    let max = 5;
    assert_eq!(Word::parse("", max), Err(WordError::Empty));
    assert_eq!(
        Word::parse(" word", max),
        Err(WordError::SurroundingWhitespace)
    );
    assert_eq!(
        Word::parse("word\u{3000}", max),
        Err(WordError::SurroundingWhitespace)
    );
    assert_eq!(Word::parse("wo\nrd", max), Err(WordError::ControlCharacter));
    assert_eq!(
        Word::parse("wo\u{7f}rd", max),
        Err(WordError::ControlCharacter)
    );
    assert_eq!(Word::parse("abcdef", max), Err(WordError::TooLong { max }));
}

#[test]
fn parse_counts_graphemes_not_chars_after_nfc() {
    // Five graphemes written with seven code points (two combining marks).
    let decomposed = "nai\u{0308}ve\u{0301}";
    let parsed = Word::parse(decomposed, 5).map(Word::into_string);
    assert_eq!(parsed.as_deref(), Ok("naïvé"));
    let family = "👨\u{200d}👩\u{200d}👧";
    assert!(Word::parse(&format!("{family}{family}"), 2).is_ok());
    assert!(Word::parse("inner space", 20).is_ok());
}

#[test]
fn keeps_clusters_intact() {
    let input = "n\u{0061}\u{0308}🇫🇷👩\u{200d}💻x";
    let w = word(input);
    for seed in 0..200 {
        let out = jumble(&w, Some(seed));
        assert_eq!(sorted_graphemes(&out), sorted_graphemes(w.as_str()));
        assert_ne!(out, w.as_str());
    }
}

#[test]
fn single_distinct_grapheme_is_returned_unchanged() {
    assert_eq!(jumble(&word("aaaa"), None), "aaaa");
    assert_eq!(jumble(&word("🇫🇷"), Some(1)), "🇫🇷");
}

#[test]
fn two_graphemes_always_swap() {
    for seed in 0..50 {
        assert_eq!(jumble(&word("ab"), Some(seed)), "ba");
    }
}

/// Pins the seeded pipeline. If this fails, seeded results changed for users: that is
/// a breaking change of the public contract, not a test to update.
#[test]
fn golden_vectors() {
    let cases = [
        ("randomize", 0, "ezdinoram"),
        ("randomize", 1, "raediznom"),
        ("randomize", u64::MAX, "nomdirzae"),
        ("string", 42, "ntsgir"),
        ("naïve🇫🇷👩\u{200d}💻", 7, "👩\u{200d}💻vïe🇫🇷na"),
    ];
    for (input, seed, expected) in cases {
        assert_eq!(
            jumble(&word(input), Some(seed)),
            expected,
            "{input:?} seed {seed}"
        );
    }
}

/// The generator is the standard ChaCha20 keystream: with the all-zero key (seed 0)
/// its first bytes are the published test vector (RFC 7539 §2.3.2 / djb's
/// zero-key vector: 76 b8 e0 ad a0 f1 3d 90 …), independent of any crate version.
#[test]
fn generator_is_standard_chacha20() {
    let mut rng = seeded_rng(0);
    let expected = [
        0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90, 0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86, 0xbd,
        0x28,
    ];
    let mut first = [0u8; 16];
    first[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    first[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    assert_eq!(first, expected);
}

#[test]
fn below_is_within_bounds() {
    let mut rng = seeded_rng(3);
    for bound in 1..200 {
        assert!(below(&mut rng, bound) < bound);
    }
}

/// Every arrangement that differs from the input must be equally likely. "abcd" has
/// 23 such arrangements; with 46,000 draws each expects 2,000. The chi-square
/// critical value for 22 degrees of freedom at p = 0.001 is 48.27; seeded draws keep
/// the test deterministic while still exercising the real generator.
#[test]
fn uniform_over_differing_arrangements() {
    let w = word("abcd");
    let draws = 46_000u64;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for seed in 0..draws {
        *counts.entry(jumble(&w, Some(seed))).or_default() += 1;
    }
    assert_eq!(counts.len(), 23);
    assert!(!counts.contains_key("abcd"));
    let expected = draws as f64 / 23.0;
    let chi2: f64 = counts
        .values()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 48.27, "chi-square {chi2} too large: {counts:?}");
}

/// Duplicated graphemes: "aab" has two distinct arrangements besides itself
/// ("aba", "baa"); both must appear about equally often.
#[test]
fn uniform_with_repeated_graphemes() {
    let w = word("aab");
    let mut counts: HashMap<String, u64> = HashMap::new();
    for seed in 0..10_000 {
        *counts.entry(jumble(&w, Some(seed))).or_default() += 1;
    }
    assert_eq!(counts.len(), 2);
    let aba = counts.get("aba").copied().unwrap_or(0) as f64;
    // Binomial(10000, 0.5): 5 standard deviations is 250.
    assert!((aba - 5_000.0).abs() < 250.0, "{counts:?}");
}

/// Graphemes that cannot merge with their neighbours when reordered (letters,
/// combining sequences, flags, ZWJ emoji), so the output re-segments into the same
/// clusters. Scripts whose clusters can merge when reordered (Hangul jamo, prepended
/// marks) still keep their cluster multiset in our arrangement, but not after
/// re-segmentation of the concatenated string.
fn grapheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "b",
        "c",
        "Z",
        "é",
        "e\u{0301}",
        "ß",
        "ж",
        "中",
        "🇫🇷",
        "🇯🇵",
        "👩\u{200d}💻",
        "😀",
        "1",
        "-",
    ])
}

proptest! {
    #[test]
    fn preserves_multiset_and_differs_when_possible(
        parts in prop::collection::vec(grapheme(), 1..40),
        seed in any::<u64>(),
    ) {
        let w = word(&parts.concat());
        let out = jumble(&w, Some(seed));
        prop_assert_eq!(sorted_graphemes(&out), sorted_graphemes(w.as_str()));
        let distinct = sorted_graphemes(w.as_str()).windows(2).any(|p| p[0] != p[1]);
        if distinct {
            prop_assert_ne!(&out, w.as_str());
        } else {
            prop_assert_eq!(&out, w.as_str());
        }
        prop_assert_eq!(jumble(&w, Some(seed)), out);
    }

    #[test]
    fn parse_never_panics(raw in ".{0,64}", max in 1usize..300) {
        if let Ok(w) = Word::parse(&raw, max) {
            prop_assert!(!w.as_str().is_empty());
            prop_assert!(w.as_str().graphemes(true).count() <= max);
        }
    }
}
