//! `/api/histories`: the audit trail, for holders of a `histories:read` token.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, SecondsFormat};
use serde::Serialize;

use super::bearer::HistoriesReader;
use super::input::{query_params, record_id};
use super::pagination::{PageRequest, PaginationHeader};
use crate::db::histories::{self as store, Filter, History};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// One audit entry as the API shows it (SPEC §5).
#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: i64,
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: i32,
    pub duration_ms: f64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub subject: Option<String>,
    pub created: String,
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

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: HistoriesReader,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
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
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && until < since
    {
        fail("until", "must not be before `since`");
    }
    filter
}

fn parse_instant(raw: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.naive_utc())
}
