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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
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
