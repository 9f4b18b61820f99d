//! The one error type of the HTTP API, rendered as RFC 9457 problem+json (SPEC §4).
//!
//! Every error response comes from here: handler errors directly, and actix's own
//! (payload, routing) through `ApiError::from_foreign` in the request middleware.
//! Internal causes are logged once, here, under the request id; bodies carry only
//! what the client can act on.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::StoreError;
use crate::request_id;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Field name → what is wrong with it.
pub(crate) type FieldErrors = BTreeMap<String, Vec<String>>;

/// The most field errors a problem body lists (SPEC §14).
pub(crate) const MAX_FIELD_ERRORS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request did not arrive whole within {}; send it again, faster", humantime::format_duration(*.0))]
    RequestTimeout(std::time::Duration),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request has invalid fields; see `errors`")]
    Validation(FieldErrors),
    /// Page mode ends at the first `max` matches (SPEC §10).
    #[error(
        "page × page_size may reach the first {max} matches only; to read further, follow the \
         `next` link, whose `cursor` walks every match"
    )]
    PageBeyondWindow { max: i64 },
    /// No usable credentials. `invalid_token` is false when none were sent at all.
    #[error("{detail}")]
    Unauthorized { invalid_token: bool, detail: String },
    #[error("the token lacks the `{scope}` scope")]
    Forbidden { scope: &'static str },
    #[error("no resource at this address")]
    NotFound,
    #[error("this method is not allowed here; allowed: {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error(
        "If-Match names no current version of the record (it changed since that ETag was read, \
         or the value is not an entity tag); GET it again and retry with its ETag"
    )]
    PreconditionFailed,
    /// SPEC §13: the first request with this `Idempotency-Key` has not completed.
    #[error(
        "a request with this Idempotency-Key is still in progress; retry once it has completed \
         to get its response"
    )]
    KeyInFlight,
    /// `RATE_LIMIT`: this client sent more than its share; retry after the wait.
    #[error("too many requests from this client; retry after {} s", .retry_after_secs)]
    RateLimited {
        retry_after_secs: u64,
        policy: String,
    },
    /// Retry later: the reason is logged, the client sees a generic detail.
    #[error("the database is unavailable; retry shortly")]
    Unavailable(String),
    /// The database refuses writes (full, read-only): nothing was changed or recorded.
    /// Logged by the writer's status once per interval, not here.
    #[error("the database cannot take writes right now ({0}); nothing was changed; retry later")]
    Unwritable(crate::db::Unwritable),
    /// Readiness: the detail is meant for operators and says what is missing.
    #[error("not ready: {0}")]
    NotReady(std::borrow::Cow<'static, str>),
    /// Any other client error actix raised on its own.
    #[error("{detail}")]
    Client { status: StatusCode, detail: String },
    /// A bug or an unexpected failure: the cause is logged, never sent.
    #[error("an unexpected error occurred; quote the request id when reporting it")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    /// Wraps an error actix produced itself (not from our handlers).
    pub(crate) fn from_foreign(status: StatusCode, detail: String, limit: usize) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge { limit },
            s if s.is_client_error() => Self::Client { status: s, detail },
            _ => Self::Internal(detail),
        }
    }

    /// The response, with `request_id` in the body when known.
    pub(crate) fn to_response(&self, request_id: Option<&str>) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Internal(cause) => tracing::error!(request_id, cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(request_id, cause, "database unavailable"),
            _ => {}
        }
        let detail = match self {
            Self::Validation(errors) if errors.len() > MAX_FIELD_ERRORS => format!(
                "the request has {} invalid fields; `errors` lists the first {MAX_FIELD_ERRORS}",
                errors.len()
            ),
            _ => self.to_string(),
        };
        let problem = Problem {
            kind: "about:blank".into(),
            title: title(status).into(),
            status: status.as_u16(),
            detail,
            errors: match self {
                // Bounded echo: 6,000 unknown parameters must not make a 431 KB answer.
                Self::Validation(errors) => Some(
                    errors
                        .iter()
                        .take(MAX_FIELD_ERRORS)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                Self::PageBeyondWindow { max } => Some(BTreeMap::from([(
                    "page".to_owned(),
                    vec![format!(
                        "page × page_size must be at most {max}; use `cursor` beyond"
                    )],
                )])),
                _ => None,
            },
            request_id: request_id.map(str::to_owned),
        };
        let mut response = HttpResponse::build(status);
        match self {
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            Self::RateLimited {
                retry_after_secs,
                policy,
            } => {
                response.insert_header((header::RETRY_AFTER, *retry_after_secs));
                if let Ok(policy) = HeaderValue::from_str(policy) {
                    response.insert_header(("ratelimit-policy", policy));
                }
                response.insert_header((
                    "ratelimit",
                    format!("\"per-client\";r=0;t={retry_after_secs}"),
                ));
            }
            Self::Unavailable(_) | Self::NotReady(_) | Self::KeyInFlight => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            // An operator must free space or lift read-only mode: no point in hammering.
            Self::Unwritable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("10")));
            }
            Self::Unauthorized { invalid_token, .. } => {
                let challenge = if *invalid_token {
                    r#"Bearer error="invalid_token""#
                } else {
                    "Bearer"
                };
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                ));
            }
            Self::Forbidden { scope } => {
                let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            _ => {}
        }
        response.content_type(PROBLEM_JSON).json(problem)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) | Self::PageBeyondWindow { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::KeyInFlight => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::NotReady(_) | Self::Unwritable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Client { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let id = request_id::current();
        self.to_response(id.as_deref())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::PreconditionFailed => Self::PreconditionFailed,
            StoreError::Unavailable(reason) | StoreError::Locked(reason) => {
                Self::Unavailable(reason)
            }
            StoreError::Unwritable(cause) => Self::Unwritable(cause),
            other => Self::Internal(error_chain(&other)),
        }
    }
}

/// "outer: inner: innermost", for the log.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// RFC 9457 problem details: the body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank", "title": "Unprocessable Content", "status": 422,
    "detail": "the request has invalid fields; see `errors`",
    "errors": {"word": ["must not be empty"]},
    "request_id": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"
}))]
pub(crate) struct Problem {
    /// Always `about:blank`: the status code says what happened.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What went wrong, for a human; never internal details.
    detail: String,
    /// Field name → messages, on validation errors (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<FieldErrors>,
    /// Same as the `X-Request-Id` response header; quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// RFC 9110 reason phrases (the `http` crate still has some pre-9110 names).
fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}
