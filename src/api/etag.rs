//! ETags and the conditional headers built on them. A record's ETag is
//! `"<id>-<version>"`; the version is bumped by every update, so equal tags mean an
//! identical representation, and `If-Match` becomes a version check in the UPDATE.

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, IF_MATCH, IF_NONE_MATCH};

use crate::db::randomizes::{Precondition, Randomize};

pub fn of(record: &Randomize) -> String {
    format!("\"{}-{}\"", record.id, record.version)
}

/// `If-Match` for record `id`: absent or `*` → no condition; otherwise the versions
/// of this record it names (strong comparison: weak tags never match).
pub fn if_match(req: &HttpRequest, id: i64) -> Precondition {
    let Some(tags) = tags(req.headers(), IF_MATCH) else {
        return Precondition::None;
    };
    if tags.iter().any(|t| t == "*") {
        return Precondition::None;
    }
    let versions = tags
        .iter()
        .filter(|t| !t.starts_with("W/"))
        .filter_map(|t| parse(t))
        .filter(|(tag_id, _)| *tag_id == id)
        .map(|(_, version)| version)
        .collect();
    Precondition::VersionIn(versions)
}

/// True when `If-None-Match` matches `current` (weak comparison), i.e. answer 304.
pub fn none_match_hits(req: &HttpRequest, current: &str) -> bool {
    tags(req.headers(), IF_NONE_MATCH).is_some_and(|tags| {
        tags.iter()
            .any(|t| t == "*" || t.trim_start_matches("W/") == current)
    })
}

fn tags(headers: &HeaderMap, name: actix_web::http::header::HeaderName) -> Option<Vec<String>> {
    let mut found = None::<Vec<String>>;
    for value in headers.get_all(name) {
        let list = found.get_or_insert_with(Vec::new);
        if let Ok(text) = value.to_str() {
            list.extend(
                text.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    found
}

fn parse(tag: &str) -> Option<(i64, i32)> {
    let (id, version) = tag.strip_prefix('"')?.strip_suffix('"')?.split_once('-')?;
    Some((id.parse().ok()?, version.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn if_match_forms() {
        let req = |v: &str| {
            TestRequest::default()
                .insert_header((IF_MATCH, v))
                .to_http_request()
        };
        assert_eq!(
            if_match(&TestRequest::default().to_http_request(), 1),
            Precondition::None
        );
        assert_eq!(if_match(&req("*"), 1), Precondition::None);
        assert_eq!(
            if_match(&req("\"1-3\", \"2-4\", W/\"1-5\""), 1),
            Precondition::VersionIn(vec![3])
        );
        assert_eq!(
            if_match(&req("garbage"), 1),
            Precondition::VersionIn(vec![])
        );
    }

    #[test]
    fn if_none_match_is_weak() {
        let req = TestRequest::default()
            .insert_header((IF_NONE_MATCH, "W/\"1-2\""))
            .to_http_request();
        assert!(none_match_hits(&req, "\"1-2\""));
        assert!(!none_match_hits(&req, "\"1-3\""));
    }
}
