//! `/api/randomizes`: jumble a word, then read, list, replace and delete the records.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::cursor::{self, List};
use super::etag::{self, IfMatch, IfNoneMatch};
use super::idempotency::{self, Begin, KeyHeader, Lookup, Written};
use super::input::{RandomizeRequest, WordInput, path_id};
use super::pagination::{Listing, PageParams};
use super::problems::ProblemResponse;
use super::query;
use super::timestamp::rfc3339;
use crate::audit::AuditTicket;
use crate::db::page::Order;
use crate::db::randomizes::{self as store, Freshness, NewRecord, Record};
use crate::db::{self, Done, Job, StoreError};
use crate::error::{ApiError, FieldErrors};
use crate::jumble::jumble;
use crate::state::AppState;

/// Longest `original` filter accepted, in characters.
const MAX_FILTER_CHARS: usize = 256;

/// A stored record as the API shows it (SPEC §2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Record, example = json!({
    "id": 1, "original": "string", "jumbled": "gsntri",
    "created": "2023-05-23T02:37:57.698Z", "updated": "2023-05-23T02:37:57.698Z"
}))]
pub(crate) struct RecordView {
    id: i64,
    /// The word as stored: NFC-normalised.
    original: String,
    /// The word's grapheme clusters in a new order.
    jumbled: String,
    /// RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    created: String,
    /// Moves on every PUT; equals `created` until then.
    #[schema(format = DateTime)]
    updated: String,
}

impl From<Record> for RecordView {
    fn from(r: Record) -> Self {
        Self {
            id: r.id,
            original: r.original,
            jumbled: r.jumbled,
            created: rfc3339(r.created),
            updated: rfc3339(r.updated),
        }
    }
}

/// The `{id}` of a record.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RecordId {
    /// Record id
    #[param(minimum = 1)]
    id: i64,
}

impl From<RecordId> for i64 {
    fn from(path: RecordId) -> Self {
        path.id
    }
}

/// The filter of `GET /api/randomizes`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordFilter {
    /// Case-insensitive substring of `original`; `%`, `_` and `\` match themselves.
    /// No control characters (no stored word has any).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    original: Option<String>,
}

impl RecordFilter {
    /// The needle, if any, adding what is wrong to `errors`.
    fn into_needle(self, errors: &mut FieldErrors) -> Option<String> {
        let needle = self.original.filter(|s| !s.is_empty())?;
        if needle.chars().count() > MAX_FILTER_CHARS {
            errors.insert(
                "original".into(),
                vec![format!("must be at most {MAX_FILTER_CHARS} characters")],
            );
        } else if needle.chars().any(char::is_control) {
            // A NUL in an FTS5 MATCH string is an SQLite error, not "no match".
            errors.insert(
                "original".into(),
                vec!["must not contain control characters".into()],
            );
        }
        Some(needle)
    }
}

fn jumbled(input: WordInput) -> NewRecord {
    let jumbled = jumble(&input.word, input.seed);
    NewRecord::new(input.word.into_string(), jumbled, db::now())
}

fn with_etag(mut response: actix_web::HttpResponseBuilder, record: Record) -> HttpResponse {
    response
        .insert_header((header::ETAG, etag::of(&record)))
        .json(RecordView::from(record))
}

#[utoipa::path(
    post, path = "/api/randomizes", tag = "randomizes", operation_id = "create_randomize",
    summary = "Jumble a word and store it",
    description = "Shuffles the word's grapheme clusters (so accents, flags and emoji stay whole) and stores \
        the original with the result. The result differs from the word whenever it has two or more distinct \
        graphemes. Send `seed` to get the same result for the same word every time, on every release.",
    params(KeyHeader),
    request_body(content = RandomizeRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored; the body is the new record (or, for a retried `Idempotency-Key`, the first response again)", body = RecordView,
            headers(("Location" = String, description = "`/api/randomizes/{id}` of the new record"),
                    ("ETag" = String, description = "Entity tag of the record, for `If-Match` / `If-None-Match`"),
                    ("Idempotent-Replayed" = String, description = "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`"))),
        ProblemResponse<400>, ProblemResponse<409>, ProblemResponse<413>, ProblemResponse<415>, ProblemResponse<422>,
        ProblemResponse<503>,
    )
)]
pub(crate) async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let record = jumbled(WordInput::parse(&req, &body, state.max_word_graphemes)?);
    let key = match idempotency::begin(&req, &body, &state, &audit, Lookup::OnConflict).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Run(key) => key,
    };
    let written = idempotency::write(&state, &audit, key, StatusCode::CREATED, |entry, key| {
        Job::Create { record, entry, key }
    })
    .await?;
    let created = match written {
        Written::Done(done) => done.into_record()?,
        Written::Replayed(response) => return Ok(response),
    };
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/randomizes/{}", created.id)));
    Ok(with_etag(response, created))
}

#[utoipa::path(
    get, path = "/api/randomizes/{id}", tag = "randomizes", operation_id = "get_randomize",
    summary = "Read one record",
    description = "Send the `ETag` you hold as `If-None-Match` to get 304 Not Modified when nothing changed.",
    params(RecordId, IfNoneMatch),
    responses(
        (status = 200, description = "The record", body = RecordView,
            headers(("ETag" = String, description = "Entity tag of the record"))),
        (status = 304, description = "Not modified since the ETag you sent",
            headers(("ETag" = String, description = "Entity tag of the record"))),
        ProblemResponse<404>, ProblemResponse<503>,
    )
)]
pub(crate) async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<RecordId>(&req)?;
    audit.set_resource(id);
    let held = etag::held(&req, id);
    // Read in the writer's batch, where the entry commits with it: one hand-off and
    // one statement for every lookup waiting, as for a write. The entry's status is
    // the writer's `held.judge`, which decides this answer too.
    let done = audit
        .write(state.db.writer(), StatusCode::OK, |entry| Job::Find {
            id,
            held: held.clone(),
            entry,
        })
        .await?;
    let Done::Found(found) = done else {
        return Err(ApiError::Internal(format!(
            "the writer answered {done:?} to a lookup"
        )));
    };
    match (held.judge(found.as_ref()), found) {
        (Freshness::Current, Some(record)) => Ok(with_etag(HttpResponse::Ok(), record)),
        (Freshness::Unchanged, Some(record)) => Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag::of(&record)))
            .finish()),
        _ => Err(StoreError::NotFound.into()),
    }
}

#[utoipa::path(
    get, path = "/api/randomizes", tag = "randomizes", operation_id = "list_randomizes",
    summary = "List records, newest first",
    description = "Two ways to page. **Page mode** (`page`, `page_size`) reaches the first 10000 matches. \
        **Cursor mode**: follow `Link: rel=\"next\"`, whose opaque `cursor` walks every match exactly once, \
        however many records are written meanwhile; it is there whenever more rows match, in both modes.",
    params(PageParams, RecordFilter),
    responses(
        (status = 200, description = "One page of records", body = Vec<RecordView>,
            headers(("X-Pagination" = String, description = "Page mode only. JSON: `total`, `total_pages`, `last_page` (when at most 10000 rows match; \
                        always without a filter), `first_page`, `page`, `previous_page`, `next_page` (while inside the 10000-match window); absent neighbours omitted"),
                    ("Link" = String, description = "RFC 8288: `first`, `prev`, `last` as page numbers (page mode); `next` as a `cursor` while more rows match"))),
        ProblemResponse<422>, ProblemResponse<503>,
    )
)]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let (paging, filter, pairs) = query::parse::<PageParams, RecordFilter>(&req)?;
    let mut errors = FieldErrors::new();
    let paging = paging.into_paging(&mut errors);
    let needle = filter.into_needle(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let key = cursor::key(&state).await?;
    let listing = Listing::new(&req, &pairs, key, List::Records, Order::NewestFirst, paging);
    let window = listing.window()?;
    let page = if needle.is_none() && db::page_is_bounded(&window) {
        // The newest page, and every cursor step: read in the writer's batch, with the
        // entry, like a lookup. A filter's cost depends on the data: those stay on the
        // pool, where they cannot hold a write up.
        match audit
            .write(state.db.writer(), StatusCode::OK, |entry| Job::List {
                window,
                entry,
            })
            .await?
        {
            Done::Listed(page) => page,
            other => {
                return Err(ApiError::Internal(format!(
                    "the writer answered {other:?} to a list"
                )));
            }
        }
    } else {
        state
            .db
            .read(move |conn| store::list(conn, needle.as_deref(), &window))
            .await?
    };
    let last_id = page.rows.last().map(|r| r.id);
    listing.respond(&window, &page.map(RecordView::from), last_id)
}

#[utoipa::path(
    put, path = "/api/randomizes/{id}", tag = "randomizes", operation_id = "update_randomize",
    summary = "Replace a record's word",
    description = "Stores a new word, jumbled afresh; `updated` moves, `created` stays. Send the record's `ETag` \
        as `If-Match` to be sure nobody changed it since you read it (412 otherwise); without `If-Match` the \
        write is unconditional.",
    params(RecordId, IfMatch, KeyHeader),
    request_body(content = RandomizeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated record", body = RecordView,
            headers(("ETag" = String, description = "New entity tag"),
                    ("Idempotent-Replayed" = String, description = "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`"))),
        ProblemResponse<400>, ProblemResponse<404>, ProblemResponse<409>, ProblemResponse<412>, ProblemResponse<413>,
        ProblemResponse<415>, ProblemResponse<422>, ProblemResponse<503>,
    )
)]
pub(crate) async fn update(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<RecordId>(&req)?;
    audit.set_resource(id);
    let precondition = etag::if_match(&req, id);
    let change = jumbled(WordInput::parse(&req, &body, state.max_word_graphemes)?);
    let key = match idempotency::begin(&req, &body, &state, &audit, Lookup::First).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Run(key) => key,
    };
    let written = idempotency::write(&state, &audit, key, StatusCode::OK, |entry, key| {
        Job::Update {
            id,
            precondition,
            change,
            entry,
            key,
        }
    })
    .await?;
    match written {
        Written::Done(done) => Ok(with_etag(HttpResponse::Ok(), done.into_record()?)),
        Written::Replayed(response) => Ok(response),
    }
}

#[utoipa::path(
    delete, path = "/api/randomizes/{id}", tag = "randomizes", operation_id = "delete_randomize",
    summary = "Delete a record",
    params(RecordId, IfMatch, KeyHeader),
    responses(
        (status = 204, description = "Deleted",
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`"))),
        ProblemResponse<404>, ProblemResponse<409>, ProblemResponse<412>, ProblemResponse<422>, ProblemResponse<503>,
    )
)]
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    audit: AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<RecordId>(&req)?;
    audit.set_resource(id);
    let precondition = etag::if_match(&req, id);
    let key = match idempotency::begin(&req, &[], &state, &audit, Lookup::First).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Run(key) => key,
    };
    let written = idempotency::write(&state, &audit, key, StatusCode::NO_CONTENT, |entry, key| {
        Job::Delete {
            id,
            precondition,
            entry,
            key,
        }
    })
    .await?;
    match written {
        Written::Done(_) => Ok(HttpResponse::NoContent().finish()),
        Written::Replayed(response) => Ok(response),
    }
}
