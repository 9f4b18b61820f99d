//! `/api/histories`: the audit trail, for holders of a `histories:read` token.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::bearer::HistoriesReader;
use super::cursor::{self, List};
use super::entry::EntryView;
use super::export::{self, Format, Selection};
use super::input::path_id;
use super::pagination::{Listing, PageParams, parse_order};
use super::problems::ProblemResponse;
use super::query;
use super::timestamp::parse_instant;
use crate::db::histories::{self as store, Filter};
use crate::db::page::Order;
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// The `{id}` of an audit entry.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct EntryId {
    /// Entry id
    #[param(minimum = 1)]
    id: i64,
}

impl From<EntryId> for i64 {
    fn from(path: EntryId) -> Self {
        path.id
    }
}

/// The filters of `GET /api/histories`; they combine with AND.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntryFilter {
    /// HTTP method, case-insensitive (`get` = `GET`).
    #[param(pattern = "^[A-Za-z]{1,16}$")]
    method: Option<String>,
    /// Response status.
    #[param(value_type = Option<i32>, minimum = 100, maximum = 599)]
    status: Option<String>,
    /// Path prefix, case-sensitive; `%` and `_` match themselves.
    #[param(
        min_length = 1,
        max_length = 2048,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    path: Option<String>,
    /// The token `sub` that acted, exactly.
    #[param(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    subject: Option<String>,
    /// The record the request read, changed, deleted or created.
    #[param(value_type = Option<i64>, minimum = 1)]
    resource_id: Option<String>,
    /// The request's `X-Request-Id`, exactly.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    request_id: Option<String>,
    /// Entries created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Entries created before this instant (RFC 3339). A window ending before `since` is empty.
    #[param(format = DateTime)]
    until: Option<String>,
    /// `desc` (default): newest first. `asc`: oldest first, the feed a collector polls
    /// by following `next`; it never skips an entry that commits late.
    #[param(value_type = Option<String>, pattern = "^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])$")]
    order: Option<String>,
}

impl EntryFilter {
    /// The store's filter and the order, adding what is wrong to `errors`.
    fn into_filter(self, errors: &mut FieldErrors) -> (Filter, Order) {
        let order = parse_order(self.order, errors);
        let mut fail = |field: &str, message: &str| {
            errors.insert(field.to_owned(), vec![message.to_owned()]);
        };
        let mut filter = Filter::default();
        if let Some(method) = self.method {
            if (1..=16).contains(&method.len()) && method.bytes().all(|b| b.is_ascii_alphabetic()) {
                filter.method = Some(method.to_ascii_uppercase());
            } else {
                fail("method", "must be an HTTP method name such as GET");
            }
        }
        if let Some(status) = self.status {
            match status.parse::<i32>() {
                Ok(code) if (100..=599).contains(&code) => filter.status = Some(code),
                _ => fail("status", "must be an HTTP status code from 100 to 599"),
            }
        }
        if let Some(path) = self.path {
            if (1..=2048).contains(&path.chars().count()) {
                filter.path_prefix = Some(path);
            } else {
                fail("path", "must be a path prefix of 1 to 2048 characters");
            }
        }
        for (field, raw, slot, max) in [
            ("subject", self.subject, &mut filter.subject, 512),
            ("request_id", self.request_id, &mut filter.request_id, 200),
        ] {
            match raw {
                Some(value) if (1..=max).contains(&value.chars().count()) => *slot = Some(value),
                Some(_) => fail(field, &format!("must be 1 to {max} characters")),
                None => {}
            }
        }
        if let Some(raw) = self.resource_id {
            match raw.parse::<i64>() {
                Ok(id) if id >= 1 => filter.resource_id = Some(id),
                _ => fail("resource_id", "must be a record id (a positive integer)"),
            }
        }
        for (field, raw, slot) in [
            ("since", self.since, &mut filter.since),
            ("until", self.until, &mut filter.until),
        ] {
            if let Some(raw) = raw {
                match parse_instant(&raw) {
                    Some(at) => *slot = Some(at),
                    None => fail(
                        field,
                        "must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z",
                    ),
                }
            }
        }
        (filter, order)
    }
}

#[utoipa::path(
    get, path = "/api/histories", tag = "histories", operation_id = "list_histories",
    summary = "Read the audit history, newest first",
    description = "Every request under `/api/` is recorded, failures and reads of this endpoint included. \
        Requires a bearer JWT with the `histories:read` scope (mint one with `randomize token`). \
        Paging as on `/api/randomizes`: pages for the first 10000 matches, then the `cursor` of `Link: rel=\"next\"`. \
        Collectors poll `order=asc` and follow `next`: the last page still links onwards, and no entry is \
        skipped even when several replicas commit concurrently. Every filter alone is index-backed. \
        Export: send `Accept: application/x-ndjson` or `text/csv` for every match in one streamed \
        response (constant memory, ending at the newest entry when the request began); CSV cells \
        that begin with `=`, `+`, `-`, `@` or a tab get a leading `'` so no spreadsheet runs them.",
    params(PageParams, EntryFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of entries (JSON); or, with `Accept: application/x-ndjson` \
            or `text/csv`, every matching entry as a stream, oldest first unless `order` says otherwise \
            (no paging: `page`, `page_size` and `cursor` are refused)",
            content(
                (Vec<EntryView> = "application/json"),
                (String = "application/x-ndjson", example = json!("{\"id\":7,\"method\":\"POST\",\"…\":\"…\"}\n")),
                (String = "text/csv", example = json!("id,request_id,method,path,…\r\n7,3f1c2a9e-…,POST,/api/randomizes,…\r\n")),
            ),
            headers(("X-Pagination" = String, description = "Page mode only; as on `/api/randomizes` (totals when at most 10000 entries match)"),
                    ("Link" = String, description = "RFC 8288: `first`, `prev`, `last` as page numbers (page mode); `next` as a `cursor` while more entries match, and always for `order=asc`"))),
        ProblemResponse<401>, ProblemResponse<403>, ProblemResponse<422>, ProblemResponse<503>,
    )
)]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: HistoriesReader,
) -> Result<HttpResponse, ApiError> {
    if let Some(format) = Format::negotiate(&req) {
        return export(&req, &state, format).await;
    }
    let (paging, filter, pairs) = query::parse::<PageParams, EntryFilter>(&req)?;
    let mut errors = FieldErrors::new();
    let paging = paging.into_paging(&mut errors);
    let (filter, order) = filter.into_filter(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let key = cursor::key(&state).await?;
    let listing = Listing::new(&req, &pairs, key, List::Histories, order, paging);
    let window = listing.window()?;
    let page = state
        .db
        .read(move |conn| store::list(conn, &filter, &window))
        .await?;
    let last_id = page.rows.last().map(|e| e.id);
    listing.respond(&window, &page.map(EntryView::from), last_id)
}

/// `GET /api/histories` with an export `Accept`: the filters of the list, no paging.
async fn export(
    req: &HttpRequest,
    state: &AppState,
    format: Format,
) -> Result<HttpResponse, ApiError> {
    let (_, filter, pairs) = query::parse::<PageParams, EntryFilter>(req)?;
    let given = |name: &str| pairs.iter().any(|(n, _)| n == name);
    let mut errors = FieldErrors::new();
    for name in ["page", "page_size", "cursor"] {
        if given(name) {
            errors.insert(
                name.to_owned(),
                vec!["does not apply to an export, which streams every match".to_owned()],
            );
        }
    }
    let (filter, order) = filter.into_filter(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let order = if given("order") {
        order
    } else {
        Order::OldestFirst
    };
    let through = export::newest_id(&state.db).await?;
    let chunks = export::walk(
        state.db.clone(),
        Selection { filter, order },
        format,
        through,
    );
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((header::VARY, "Accept"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"histories.{}\"", format.extension()),
        ))
        .streaming(chunks.map(|chunk| chunk.map(|c| c.bytes))))
}

#[utoipa::path(
    get, path = "/api/histories/{id}", tag = "histories", operation_id = "get_history",
    summary = "Read one audit entry",
    params(EntryId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The entry", body = EntryView),
        ProblemResponse<401>, ProblemResponse<403>, ProblemResponse<404>, ProblemResponse<503>,
    )
)]
pub(crate) async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: HistoriesReader,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<EntryId>(&req)?;
    let entry = state.db.read(move |conn| store::find(conn, id)).await?;
    Ok(HttpResponse::Ok().json(EntryView::from(entry)))
}
