//! `/api/randomizes`: jumble a word, then read, list, replace and delete the records.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDateTime, SecondsFormat};
use serde::Serialize;

use super::etag;
use super::input::{RandomizeRequest, WordInput, query_params, record_id};
use super::pagination::{PageRequest, PaginationHeader};
use crate::audit::AuditTicket;
use crate::db::randomizes::{self as store, Jumbled, Randomize};
use crate::db::{self};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::jumble::jumble;
use crate::state::AppState;

/// Longest `original` filter accepted, in characters.
const MAX_FILTER_CHARS: usize = 256;

/// A stored record as the API shows it (SPEC §2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": 1, "original": "string", "jumbled": "gsntri",
    "created": "2023-05-23T02:37:57.698Z", "updated": "2023-05-23T02:37:57.698Z"
}))]
pub struct Record {
    pub id: i64,
    /// The word as stored: NFC-normalised.
    pub original: String,
    /// The word's grapheme clusters in a new order.
    pub jumbled: String,
    /// RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    pub created: String,
    /// Moves on every PUT; equals `created` until then.
    #[schema(format = DateTime)]
    pub updated: String,
}

/// Query parameters of `GET /api/randomizes`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: `list` parses the query itself
pub struct ListParams {
    /// 1-based page number; a page past the end is an empty array.
    #[param(minimum = 1, maximum = 2147483647, default = 1)]
    page: Option<i64>,
    /// Records per page.
    #[param(minimum = 1, maximum = 100, default = 10)]
    page_size: Option<i64>,
    /// Case-insensitive substring of `original`; `%`, `_` and `\` match themselves.
    #[param(max_length = 256)]
    original: Option<String>,
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

#[utoipa::path(
    post, path = "/api/randomizes", tag = "randomizes", operation_id = "create_randomize",
    summary = "Jumble a word and store it",
    description = "Shuffles the word's grapheme clusters (so accents, flags and emoji stay whole) and stores \
        the original with the result. The result differs from the word whenever it has two or more distinct \
        graphemes. Send `seed` to get the same result for the same word every time, on every release.",
    request_body(content = RandomizeRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored; the body is the new record", body = Record,
            headers(("Location" = String, description = "`/api/randomizes/{id}` of the new record"),
                    ("ETag" = String, description = "Entity tag of the record, for `If-Match` / `If-None-Match`"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over `MAX_BODY_BYTES`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `word` or `seed`; see `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    )
)]
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let change = jumbled(WordInput::parse(&req, &body, state.max_word_graphemes)?);
    let record = audit.create(state.db.writer(), change).await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/randomizes/{}", record.id)));
    Ok(with_etag(response, record))
}

#[utoipa::path(
    get, path = "/api/randomizes/{id}", tag = "randomizes", operation_id = "get_randomize",
    summary = "Read one record",
    description = "Send the `ETag` you hold as `If-None-Match` to get 304 Not Modified when nothing changed.",
    params(
        ("id" = i64, Path, description = "Record id", minimum = 1, maximum = 9223372036854775807_i64),
        ("If-None-Match" = Option<String>, Header, description = "ETag(s) from an earlier read; 304 when one matches", nullable = false,
            pattern = r#"^(\*|(W/)?"[\x21\x23-\x7e]*"(, ?(W/)?"[\x21\x23-\x7e]*")*)$"#),
    ),
    responses(
        (status = 200, description = "The record", body = Record,
            headers(("ETag" = String, description = "Entity tag of the record"))),
        (status = 304, description = "Not modified since the ETag you sent",
            headers(("ETag" = String, description = "Entity tag of the record"))),
        (status = 400, description = "`If-None-Match` is not a list of entity tags", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No record with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let record = state.db.read(move |conn| store::find(conn, id)).await?;
    let tag = etag::of(&record);
    if etag::none_match_hits(&req, &tag)? {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    Ok(with_etag(HttpResponse::Ok(), record))
}

#[utoipa::path(
    get, path = "/api/randomizes", tag = "randomizes", operation_id = "list_randomizes",
    summary = "List records, newest first",
    params(ListParams),
    responses(
        (status = 200, description = "One page of records", body = Vec<Record>,
            headers(("X-Pagination" = String, description = "JSON: `total`, `total_pages`, `first_page`, `last_page`, `page`, `previous_page`, `next_page` (absent neighbours omitted)"),
                    ("Link" = String, description = "RFC 8288 links: `first`, `prev`, `next`, `last`"))),
        (status = 422, description = "Invalid `page`, `page_size` or `original`; see `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req, &["page", "page_size", "original"])?;
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

#[utoipa::path(
    put, path = "/api/randomizes/{id}", tag = "randomizes", operation_id = "update_randomize",
    summary = "Replace a record's word",
    description = "Stores a new word, jumbled afresh; `updated` moves, `created` stays. Send the record's `ETag` \
        as `If-Match` to be sure nobody changed it since you read it (412 otherwise); without `If-Match` the \
        write is unconditional.",
    params(
        ("id" = i64, Path, description = "Record id", minimum = 1, maximum = 9223372036854775807_i64),
        ("If-Match" = Option<String>, Header, description = "ETag the record must still have (or `*`)", nullable = false,
            pattern = r#"^(\*|(W/)?"[\x21\x23-\x7e]*"(, ?(W/)?"[\x21\x23-\x7e]*")*)$"#),
    ),
    request_body(content = RandomizeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated record", body = Record,
            headers(("ETag" = String, description = "New entity tag"))),
        (status = 400, description = "Malformed JSON, or `If-Match` is not `*` or a list of entity tags", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No record with this id", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` is stale: GET the record again", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over `MAX_BODY_BYTES`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `word` or `seed`; see `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let precondition = etag::if_match(&req, id)?;
    let change = jumbled(WordInput::parse(&req, &body, state.max_word_graphemes)?);
    let record = audit
        .write(state.db.writer(), StatusCode::OK, move |conn| {
            store::update(conn, id, &precondition, &change)
        })
        .await?;
    Ok(with_etag(HttpResponse::Ok(), record))
}

#[utoipa::path(
    delete, path = "/api/randomizes/{id}", tag = "randomizes", operation_id = "delete_randomize",
    summary = "Delete a record",
    params(
        ("id" = i64, Path, description = "Record id", minimum = 1, maximum = 9223372036854775807_i64),
        ("If-Match" = Option<String>, Header, description = "ETag the record must still have (or `*`)", nullable = false,
            pattern = r#"^(\*|(W/)?"[\x21\x23-\x7e]*"(, ?(W/)?"[\x21\x23-\x7e]*")*)$"#),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`If-Match` is not `*` or a list of entity tags", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No record with this id", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` is stale", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = record_id(&req)?;
    let precondition = etag::if_match(&req, id)?;
    audit
        .write(state.db.writer(), StatusCode::NO_CONTENT, move |conn| {
            store::delete(conn, id, &precondition)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
