//! The error answers of the API as the OpenAPI document states them, declared once.
//! An operation lists the statuses it can answer (`ProblemResponse<404>`); the body is
//! always the `Problem` schema, as `error.rs` renders it.

use std::collections::BTreeMap;

use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type,
};

use crate::error::PROBLEM_JSON;

/// An error answer with status `STATUS`, for `responses(...)` of `utoipa::path`.
/// Uninhabited: it exists only as a type to document with.
pub(crate) enum ProblemResponse<const STATUS: u16> {}

impl<const STATUS: u16> utoipa::IntoResponses for ProblemResponse<STATUS> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let (description, headers) = described(STATUS);
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build();
        let mut response = ResponseBuilder::new()
            .description(description)
            .content(PROBLEM_JSON, content);
        for (name, kind, about) in headers {
            let schema = ObjectBuilder::new().schema_type(kind.clone());
            let header = HeaderBuilder::new()
                .schema(schema)
                .description(Some(*about))
                .build();
            response = response.header(*name, header);
        }
        BTreeMap::from([(STATUS.to_string(), RefOr::T(response.build()))])
    }
}

type Headers = &'static [(&'static str, Type, &'static str)];

const RETRY_AFTER: Headers = &[(
    "Retry-After",
    Type::Integer,
    "Seconds to wait before retrying",
)];

fn described(status: u16) -> (&'static str, Headers) {
    match status {
        400 => ("Malformed request: the body is not well-formed JSON", &[]),
        401 => (
            "No token, or an invalid or expired one",
            &[(
                "WWW-Authenticate",
                Type::String,
                "`Bearer`, or `Bearer error=\"invalid_token\"`",
            )],
        ),
        403 => ("The token lacks the `histories:read` scope", &[]),
        404 => ("Nothing with this id", &[]),
        409 => (
            "A request with the same `Idempotency-Key` is still in progress: retry to get its response",
            RETRY_AFTER,
        ),
        412 => (
            "`If-Match` names no current version of the record: GET it again",
            &[],
        ),
        413 => ("Body over `MAX_BODY_BYTES`", &[]),
        415 => ("The body is not `application/json` (UTF-8)", &[]),
        422 => (
            "Invalid input: `errors` names each bad field or parameter and what is wrong with it",
            &[],
        ),
        503 => (
            "Not available right now (the database does not answer, or the service is not \
             ready: `detail` says why); retry after `Retry-After` seconds",
            RETRY_AFTER,
        ),
        _ => ("An error; see `detail`", &[]),
    }
}
