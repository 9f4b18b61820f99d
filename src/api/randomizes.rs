//! `/api/randomizes`: jumble a word, then read, list, replace and delete the records.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDateTime, SecondsFormat};
use serde::Serialize;

use super::etag;
use super::input::{WordInput, query_params, record_id};
use super::pagination::{PageRequest, PaginationHeader};
use crate::audit::AuditTicket;
use crate::db::randomizes::{self as store, Jumbled, Randomize};
use crate::db::{self};
use crate::error::{ApiError, FieldErrors};
use crate::jumble::jumble;
use crate::state::AppState;

/// Longest `original` filter accepted, in characters.
const MAX_FILTER_CHARS: usize = 256;

/// A stored record as the API shows it (SPEC §2).
#[derive(Debug, Serialize)]
pub struct Record {
    pub id: i64,
    pub original: String,
    pub jumbled: String,
    pub created: String,
    pub updated: String,
}

impl From<Randomize> for Record {
    fn from(r: Randomize) -> Self {
        Self {
            id: r.id,
            original: r.original,
            jumbled: r.jumbled,
            created: rfc3339(r.created),
            updated: rfc3339(r.updated),
        }
    }
}

/// `2023-05-23T02:37:57.698Z`: UTC, milliseconds.
fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn jumbled(input: WordInput) -> Jumbled {
    let jumbled = jumble(&input.word, input.seed);
    Jumbled {
        original: input.word.into_string(),
        jumbled,
        at: db::now(),
    }
}

fn with_etag(mut response: actix_web::HttpResponseBuilder, record: Randomize) -> HttpResponse {
    response
        .insert_header((header::ETAG, etag::of(&record)))
        .json(Record::from(record))
}

pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let change = jumbled(WordInput::parse(&req, &body, state.max_word_graphemes)?);
    let record = audit
        .write(state.db.writer(), StatusCode::CREATED, move |conn| {
            store::insert(conn, &change)
        })
        .await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/randomizes/{}", record.id)));
    Ok(with_etag(response, record))
}

pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let record = state.db.read(move |conn| store::find(conn, id)).await?;
    let tag = etag::of(&record);
    if etag::none_match_hits(&req, &tag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    Ok(with_etag(HttpResponse::Ok(), record))
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    let mut errors = FieldErrors::new();
    let page = PageRequest::from_params(&params, &mut errors);
    let contains = params.get("original").cloned().filter(|s| !s.is_empty());
    if contains
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_FILTER_CHARS)
    {
        errors.insert(
            "original".into(),
            vec![format!("must be at most {MAX_FILTER_CHARS} characters")],
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (rows, total) = state
        .db
        .read(move |conn| store::list(conn, contains.as_deref(), page.offset(), page.page_size))
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
    Ok(response.json(rows.into_iter().map(Record::from).collect::<Vec<_>>()))
}

pub async fn update(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let precondition = etag::if_match(&req, id);
    let change = jumbled(WordInput::parse(&req, &body, state.max_word_graphemes)?);
    let record = audit
        .write(state.db.writer(), StatusCode::OK, move |conn| {
            store::update(conn, id, &precondition, &change)
        })
        .await?;
    Ok(with_etag(HttpResponse::Ok(), record))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let precondition = etag::if_match(&req, id);
    audit
        .write(state.db.writer(), StatusCode::NO_CONTENT, move |conn| {
            store::delete(conn, id, &precondition)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
