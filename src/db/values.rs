//! How values look in the database, the same on both backends: timestamps in UTC at
//! millisecond precision, `original` case-folded for the substring filter, and user text
//! made literal inside a LIKE pattern.

use chrono::{NaiveDateTime, SubsecRound, Utc};

/// Timestamps are stored as UTC `TIMESTAMP` truncated to milliseconds, so what is
/// stored is exactly what the API shows (and ETags stay stable).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(3)
}

/// The key the `original` filter compares: lower case by Rust's Unicode rules, computed
/// here for both the stored column and the needle, so `éCOLE` finds `École` on SQLite too
/// (whose `lower()` folds ASCII only).
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// `%`, `_` and `\` match themselves in a LIKE pattern built from user input.
pub(crate) fn escape_like(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The least string greater than every string that starts with `prefix` (in code-point
/// order, which is byte order in UTF-8), so `prefix <= s < prefix_end(prefix)` is "s
/// starts with prefix" as one index range. `None` when no such bound exists (every
/// character is U+10FFFF): the range is then open-ended.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn prefix_end_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_end("/api/a").as_deref(), Some("/api/b"));
        assert_eq!(prefix_end("a\u{d7ff}").as_deref(), Some("a\u{e000}"));
        assert_eq!(prefix_end("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10ffff}"), None);
        let end = prefix_end("/api/7").unwrap_or_default();
        for inside in ["/api/7", "/api/77", "/api/7\u{10ffff}\u{10ffff}"] {
            assert!(("/api/7"..end.as_str()).contains(&inside), "{inside}");
        }
        for outside in ["/api/", "/api/8", "/api/6z"] {
            assert!(!("/api/7"..end.as_str()).contains(&outside), "{outside}");
        }
    }

    #[test]
    fn folding_is_unicode_aware() {
        assert_eq!(fold("ÉCOLE"), "école");
    }

    #[test]
    fn now_has_millisecond_precision() {
        assert_eq!(now().and_utc().timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
