//! Timestamps as the API writes them (`2023-05-23T02:37:57.698Z`) and reads them (any
//! RFC 3339 instant, as `since` / `until`).

use chrono::{DateTime, NaiveDateTime, SecondsFormat};

/// UTC, milliseconds, `Z`.
pub(crate) fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 instant with any offset, as UTC.
pub(crate) fn parse_instant(raw: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.naive_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_utc() {
        let at = parse_instant("2026-01-31T13:00:00.5+01:00");
        assert_eq!(at.map(rfc3339).as_deref(), Some("2026-01-31T12:00:00.500Z"));
    }
}
