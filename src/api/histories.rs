//! `/api/histories`: the audit trail, for holders of a `histories:read` token.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, SecondsFormat};
use serde::Serialize;

use super::bearer::HistoriesReader;
use super::input::{query_params, record_id};
use super::pagination::{PageRequest, PaginationHeader};
use crate::db::histories::{self as store, Filter, History};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::state::AppState;

/// One audit entry as the API shows it (SPEC §5). Never holds a token or a body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": 7, "request_id": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c", "method": "POST", "path": "/api/randomizes",
    "query": null, "status": 201, "duration_ms": 0.412, "client_ip": "203.0.113.7",
    "user_agent": "curl/8.5.0", "subject": null, "created": "2023-05-23T02:37:57.698Z"
}))]
pub struct Entry {
    pub id: i64,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    pub method: String,
    /// As received (percent-encoded), control characters escaped.
    pub path: String,
    pub query: Option<String>,
    pub status: i32,
    /// Until the entry was committed.
    pub duration_ms: f64,
    /// Peer address, or the forwarded client when the peer is a trusted proxy.
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The token's `sub`, when a token verified.
    pub subject: Option<String>,
    #[schema(format = DateTime)]
    pub created: String,
}

/// Query parameters of `GET /api/histories`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: `list` parses the query itself
pub struct HistoryParams {
    #[param(minimum = 1, maximum = 2147483647, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 10)]
    page_size: Option<i64>,
    /// HTTP method, case-insensitive (`get` = `GET`).
    #[param(pattern = "^[A-Za-z]{1,16}$")]
    method: Option<String>,
    /// Response status.
    #[param(minimum = 100, maximum = 599)]
    status: Option<i32>,
    /// Path prefix, case-sensitive; `%` and `_` match themselves.
    #[param(min_length = 1, max_length = 2048)]
    path: Option<String>,
    /// Entries created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Entries created before this instant (RFC 3339). A window ending before `since` is empty.
    #[param(format = DateTime)]
    until: Option<String>,
}

impl From<History> for Entry {
    fn from(h: History) -> Self {
        Self {
            id: h.id,
            request_id: h.request_id,
            method: h.method,
            path: h.path,
            query: h.query,
            status: h.status,
            duration_ms: h.duration_ms,
            client_ip: h.client_ip,
            user_agent: h.user_agent,
            subject: h.subject,
            created: h
                .created
                .and_utc()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

#[utoipa::path(
    get, path = "/api/histories", tag = "histories", operation_id = "list_histories",
    summary = "Read the audit history, newest first",
    description = "Every request under `/api/` is recorded, failures and reads of this endpoint included. \
        Requires a bearer JWT with the `histories:read` scope (mint one with `randomize token`).",
    params(HistoryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of entries", body = Vec<Entry>,
            headers(("X-Pagination" = String, description = "JSON paging metadata, as on `/api/randomizes`"),
                    ("Link" = String, description = "RFC 8288 links: `first`, `prev`, `next`, `last`"))),
        (status = 401, description = "No token, or an invalid or expired one", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`, or `Bearer error=\"invalid_token\"`"))),
        (status = 403, description = "The token lacks the `histories:read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter or paging; see `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: HistoriesReader,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(
        &req,
        &[
            "page",
            "page_size",
            "method",
            "status",
            "path",
            "since",
            "until",
        ],
    )?;
    let mut errors = FieldErrors::new();
    let page = PageRequest::from_params(&params, &mut errors);
    let filter = parse_filter(&params, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (rows, total) = state
        .db
        .read(move |conn| store::list(conn, &filter, page.offset(), page.page_size))
        .await?;
    let pagination = PaginationHeader::new(page, total);
    let mut response = HttpResponse::Ok();
    response.insert_header((
        HeaderName::from_static("x-pagination"),
        serde_json::to_string(&pagination).map_err(|e| ApiError::Internal(e.to_string()))?,
    ));
    if let Some(link) = pagination.link(&req, &params, page.page_size) {
        response.insert_header((header::LINK, link));
    }
    Ok(response.json(rows.into_iter().map(Entry::from).collect::<Vec<_>>()))
}

#[utoipa::path(
    get, path = "/api/histories/{id}", tag = "histories", operation_id = "get_history",
    summary = "Read one audit entry",
    params(("id" = i64, Path, description = "Entry id", minimum = 1, maximum = 9223372036854775807_i64)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The entry", body = Entry),
        (status = 401, description = "No token, or an invalid or expired one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `histories:read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No entry with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: HistoriesReader,
) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let entry = state.db.read(move |conn| store::find(conn, id)).await?;
    Ok(HttpResponse::Ok().json(Entry::from(entry)))
}

fn parse_filter(
    params: &std::collections::HashMap<String, String>,
    errors: &mut FieldErrors,
) -> Filter {
    let mut fail = |field: &str, message: &str| {
        errors.insert(field.to_owned(), vec![message.to_owned()]);
    };
    let mut filter = Filter::default();
    if let Some(method) = params.get("method") {
        if (1..=16).contains(&method.len()) && method.bytes().all(|b| b.is_ascii_alphabetic()) {
            filter.method = Some(method.to_ascii_uppercase());
        } else {
            fail("method", "must be an HTTP method name such as GET");
        }
    }
    if let Some(status) = params.get("status") {
        match status.parse::<i32>() {
            Ok(code) if (100..=599).contains(&code) => filter.status = Some(code),
            _ => fail("status", "must be an HTTP status code from 100 to 599"),
        }
    }
    if let Some(path) = params.get("path") {
        if (1..=2048).contains(&path.chars().count()) {
            filter.path_prefix = Some(path.clone());
        } else {
            fail("path", "must be a path prefix of 1 to 2048 characters");
        }
    }
    for (field, slot) in [("since", &mut filter.since), ("until", &mut filter.until)] {
        if let Some(raw) = params.get(field) {
            match parse_instant(raw) {
                Some(at) => *slot = Some(at),
                None => fail(
                    field,
                    "must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z",
                ),
            }
        }
    }
    filter
}

fn parse_instant(raw: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.naive_utc())
}
