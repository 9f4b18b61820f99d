//! ETags and the conditional headers built on them: how they are read, and how the
//! OpenAPI document states them. A record's ETag is `"<id>-<version>"`; the version is
//! bumped by every update, so equal tags mean an identical representation, and
//! `If-Match` becomes a version check in the UPDATE.

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, HeaderName, IF_MATCH, IF_NONE_MATCH};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use crate::db::randomizes::{Held, Precondition, Record};

pub(crate) fn of(record: &Record) -> String {
    format!("\"{}-{}\"", record.id, record.version)
}

/// `If-Match` in the document of PUT and DELETE.
pub(crate) enum IfMatch {}

/// `If-None-Match` in the document of GET.
pub(crate) enum IfNoneMatch {}

impl utoipa::IntoParams for IfMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![header(
            "If-Match",
            "ETag(s) the record must still have, or `*`; without it the write is \
             unconditional. A value that is not a list of entity tags names no version (412).",
        )]
    }
}

impl utoipa::IntoParams for IfNoneMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![header(
            "If-None-Match",
            "ETag(s) from an earlier read, or `*`; 304 when one matches. A value that is not \
             a list of entity tags matches nothing.",
        )]
    }
}

fn header(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// `If-Match` for record `id`: absent or `*` → no condition; otherwise the versions
/// of this record it names (strong comparison: weak tags never match). A value that is
/// not `*` or a list of entity tags names no version, so the write is refused (412):
/// a condition that cannot be read is never taken as true.
pub(crate) fn if_match(req: &HttpRequest, id: i64) -> Precondition {
    let Some(tags) = tags(req.headers(), IF_MATCH) else {
        return Precondition::None;
    };
    if tags.iter().any(|t| t == "*") {
        return Precondition::None;
    }
    Precondition::VersionIn(versions_of(&tags, id, Comparison::Strong))
}

/// `If-None-Match` for record `id`, as the lookup checks it (weak comparison, so 304
/// for a weak tag too): a tag naming another record, or a value that is not a list of
/// entity tags, names no version the client holds, and the full answer follows.
pub(crate) fn held(req: &HttpRequest, id: i64) -> Held {
    let Some(tags) = tags(req.headers(), IF_NONE_MATCH) else {
        return Held::Nothing;
    };
    if tags.iter().any(|t| t == "*") {
        return Held::Any;
    }
    Held::Versions(versions_of(&tags, id, Comparison::Weak))
}

/// RFC 9110 §8.8.3.2: strong comparison never matches a weak tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

/// The versions of record `id` that `tags` name.
fn versions_of(tags: &[String], id: i64, comparison: Comparison) -> Vec<i32> {
    tags.iter()
        .filter_map(|t| match t.strip_prefix("W/") {
            Some(weak) => (comparison == Comparison::Weak).then_some(weak),
            None => Some(t.as_str()),
        })
        .filter_map(parse)
        .filter(|(tag_id, _)| *tag_id == id)
        .map(|(_, version)| version)
        .collect()
}

/// The entity tags of every `name` header; `None` when absent. A value that does not
/// parse as `*` or a list of entity tags contributes none.
fn tags(headers: &HeaderMap, name: HeaderName) -> Option<Vec<String>> {
    let mut found = None::<Vec<String>>;
    for value in headers.get_all(&name) {
        let list = found.get_or_insert_with(Vec::new);
        let mut parsed = Vec::new();
        if split_tags(value.as_bytes(), &mut parsed).is_some() {
            list.append(&mut parsed);
        }
    }
    found
}

/// RFC 9110 §8.8.3 / §13.1.1: `*`, or `#entity-tag` where entity-tag is
/// `[W/] DQUOTE *etagc DQUOTE` — commas may appear inside the quotes.
fn split_tags(bytes: &[u8], into: &mut Vec<String>) -> Option<()> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text == "*" {
        into.push("*".into());
        return Some(());
    }
    let mut rest = text;
    loop {
        let weak = rest.starts_with("W/");
        let quoted = if weak { &rest[2..] } else { rest };
        let body = quoted.strip_prefix('"')?;
        let end = body.find('"')?;
        if !body[..end]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        let tag_len = usize::from(weak) * 2 + end + 2;
        into.push(rest[..tag_len].to_owned());
        rest = rest[tag_len..].trim_start();
        if rest.is_empty() {
            return Some(());
        }
        rest = rest.strip_prefix(',')?.trim_start();
    }
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
        let precondition = |r| Some(if_match(&r, 1));
        assert_eq!(
            precondition(TestRequest::default().to_http_request()),
            Some(Precondition::None)
        );
        assert_eq!(precondition(req("*")), Some(Precondition::None));
        assert_eq!(
            precondition(req("\"1-3\", \"2-4\", W/\"1-5\"")),
            Some(Precondition::VersionIn(vec![3]))
        );
        assert_eq!(
            precondition(req("\"opaque\"")),
            Some(Precondition::VersionIn(vec![]))
        );
        assert_eq!(
            precondition(req("W/\"a,b\", \"1-7\",\"x\"")),
            Some(Precondition::VersionIn(vec![7]))
        );
        for garbage in [
            "garbage",
            "",
            "null",
            "\"unterminated",
            "W/",
            "\"a\" \"b\"",
            "\"a\",",
            "*, \"a\"",
        ] {
            assert_eq!(
                if_match(&req(garbage), 1),
                Precondition::VersionIn(vec![]),
                "{garbage:?} names no version"
            );
        }
    }

    #[test]
    fn if_none_match_is_weak() {
        let req = |v: &str| {
            TestRequest::default()
                .insert_header((IF_NONE_MATCH, v))
                .to_http_request()
        };
        assert_eq!(held(&req("W/\"1-2\""), 1), Held::Versions(vec![2]));
        assert_eq!(held(&req("\"2-5\", \"1-3\""), 1), Held::Versions(vec![3]));
        assert_eq!(held(&req("*"), 1), Held::Any);
        assert_eq!(held(&req("0"), 1), Held::Versions(vec![]), "names nothing");
        assert_eq!(
            held(&TestRequest::default().to_http_request(), 1),
            Held::Nothing
        );
    }
}
