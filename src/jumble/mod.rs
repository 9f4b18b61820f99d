//! Grapheme-aware shuffling (SPEC §3). Pure: no I/O, no clock, no global state.
//!
//! Seeded output is a public contract ("same word + same seed = same output, across
//! releases"), so nothing here delegates to an algorithm that a dependency may change:
//! the key derivation, the bounded integer sampler and Fisher–Yates are our own, and
//! the only external piece is the ChaCha20 keystream, which is fixed by its definition.
//! Golden vectors in the tests pin the whole pipeline.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Default for `MAX_WORD_GRAPHEMES`.
pub const DEFAULT_MAX_GRAPHEMES: usize = 256;

/// A word accepted for jumbling: NFC-normalised, 1..=max graphemes, no control
/// characters, no surrounding whitespace. Only [`Word::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("must not be empty")]
    Empty,
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not start or end with whitespace")]
    SurroundingWhitespace,
    #[error("must be at most {max} graphemes")]
    TooLong { max: usize },
}

impl Word {
    pub fn parse(raw: &str, max_graphemes: usize) -> Result<Self, WordError> {
        let normalized: String = raw.nfc().collect();
        if normalized.is_empty() {
            return Err(WordError::Empty);
        }
        if normalized.chars().any(char::is_control) {
            return Err(WordError::ControlCharacter);
        }
        let starts = normalized.chars().next().is_some_and(char::is_whitespace);
        let ends = normalized
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        if starts || ends {
            return Err(WordError::SurroundingWhitespace);
        }
        // `nth` stops counting as soon as the limit is passed, so a huge input costs
        // at most `max_graphemes + 1` segmentation steps.
        if normalized.graphemes(true).nth(max_graphemes).is_some() {
            return Err(WordError::TooLong { max: max_graphemes });
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Jumbles `word`: reproducibly from `seed` when given, from the thread's CSPRNG otherwise.
pub fn jumble(word: &Word, seed: Option<u64>) -> String {
    match seed {
        Some(seed) => jumble_with(word, &mut seeded_rng(seed)),
        None => jumble_with(word, &mut rand::rng()),
    }
}

/// The generator behind `seed`: ChaCha20 keyed by the seed's little-endian bytes,
/// zero-padded to 32 bytes, stream 0. Changing this changes every seeded result.
pub fn seeded_rng(seed: u64) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(key)
}

/// Uniform over the arrangements that differ from the input when the word has two or
/// more distinct graphemes (rejection sampling keeps the conditional distribution
/// uniform); the word itself otherwise, since no other arrangement exists.
pub fn jumble_with<R: Rng + ?Sized>(word: &Word, rng: &mut R) -> String {
    let original: Vec<&str> = word.0.graphemes(true).collect();
    let Some(first) = original.first() else {
        return String::new();
    };
    if original.iter().all(|g| g == first) {
        return word.0.clone();
    }
    let mut arrangement = original.clone();
    // A uniform shuffle equals the input with probability at most 1/2 once two distinct
    // graphemes exist, so this loop runs twice on average; the bound only makes
    // termination unconditional (reaching it has probability below 2^-64).
    for _ in 0..64 {
        shuffle(&mut arrangement, rng);
        if arrangement != original {
            return arrangement.concat();
        }
    }
    rotate_left_by_one(&mut arrangement);
    arrangement.concat()
}

/// Fisher–Yates (Durstenfeld), from the back.
fn shuffle<T, R: Rng + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Uniform integer in `0..bound` by Lemire's multiply-and-reject method: exact, no
/// modulo bias, and defined only in terms of `next_u64`, so its output is portable.
fn below<R: Rng + ?Sized>(rng: &mut R, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(bound);
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

fn rotate_left_by_one(items: &mut [&str]) {
    // Rotation moves every grapheme one place; since not all are equal, some position
    // changes, so the result differs from the input.
    if !items.is_empty() {
        items.rotate_left(1);
    }
}

#[cfg(test)]
mod tests;
