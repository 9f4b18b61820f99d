//! The `histories` table: the audit trail (SPEC §5), its write shape and its queries.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamp};

use super::connection::DbConnection;
use super::error::StoreError;
use super::page::{CountCapped, Order, Page, Start, Window, explain};
use super::schema::histories;
use super::shape::write_shape;
use super::values::prefix_end;
use crate::chain::EntryFields;

write_shape! {
    /// One audit entry as written. Never holds a token, an `Authorization` header or a body.
    #[derive(Debug, Clone, PartialEq)]
    pub struct NewEntry into "histories", unnested as EntryColumns {
        request_id: String => Text,
        method: String => Text,
        path: String => Text,
        query: Option<String> => Nullable<Text>,
        status: i32 => Integer,
        duration_ms: f64 => Double,
        client_ip: Option<String> => Nullable<Text>,
        user_agent: Option<String> => Nullable<Text>,
        subject: Option<String> => Nullable<Text>,
        created: NaiveDateTime => Timestamp,
        resource_id: Option<i64> => Nullable<BigInt>,
        token_id: Option<String> => Nullable<Text>,
        trace_id: Option<String> => Nullable<Text>,
    }
}

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Queryable)]
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
    pub created: NaiveDateTime,
    pub resource_id: Option<i64>,
    pub token_id: Option<String>,
    pub trace_id: Option<String>,
    /// Where the entry sits in its writer's hash chain (SPEC §12); `None` for entries
    /// written before chaining.
    pub chain: Option<i64>,
    pub seq: Option<i64>,
    pub hash: Option<Vec<u8>>,
}

/// The fields an entry's hash covers, borrowed from either entry struct (they share
/// the field names).
macro_rules! entry_fields {
    ($entry:expr) => {
        EntryFields {
            request_id: &$entry.request_id,
            method: &$entry.method,
            path: &$entry.path,
            query: $entry.query.as_deref(),
            status: $entry.status,
            duration_ms: $entry.duration_ms,
            client_ip: $entry.client_ip.as_deref(),
            user_agent: $entry.user_agent.as_deref(),
            subject: $entry.subject.as_deref(),
            created: $entry.created,
            resource_id: $entry.resource_id,
            token_id: $entry.token_id.as_deref(),
            trace_id: $entry.trace_id.as_deref(),
        }
    };
}

impl Entry {
    /// The fields its hash covers.
    pub fn fields(&self) -> EntryFields<'_> {
        entry_fields!(self)
    }
}

impl NewEntry {
    /// The fields its hash covers, as they will be stored.
    pub fn fields(&self) -> EntryFields<'_> {
        entry_fields!(self)
    }
}

/// Narrows the history; every field is optional and they combine with AND. Each one
/// alone is served by an index (see the index migrations).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Exact, upper-case.
    pub method: Option<String>,
    /// Case-sensitive prefix; wildcards are literal.
    pub path_prefix: Option<String>,
    pub status: Option<i32>,
    /// Exact.
    pub subject: Option<String>,
    pub resource_id: Option<i64>,
    /// Exact.
    pub request_id: Option<String>,
    /// Inclusive.
    pub since: Option<NaiveDateTime>,
    /// Exclusive, so consecutive windows never count an entry twice.
    pub until: Option<NaiveDateTime>,
}

type Backend = <DbConnection as Connection>::Backend;

pub(crate) fn find(conn: &mut DbConnection, entry_id: i64) -> Result<Entry, StoreError> {
    // No `.first()`: see `randomizes::find_many`.
    Ok(histories::table.find(entry_id).get_result(conn)?)
}

/// How many of the newest entries a `path` page walks by id on SQLite before it asks
/// the `path` index (`newest_walk`): a bound on the cost of a page either way.
const NEWEST_WALK: i64 = 4_000;

/// How a `path` prefix is matched.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathBy {
    /// One range of the `(path)` index.
    Index,
    /// Tested on each row read (SQLite's unary `+` keeps the planner off the index).
    Row,
}

/// The entries matching `filter`, without order or paging.
fn matching(filter: &Filter) -> histories::BoxedQuery<'static, Backend> {
    matching_by(filter, PathBy::Index)
}

fn matching_by(filter: &Filter, path_by: PathBy) -> histories::BoxedQuery<'static, Backend> {
    use histories::dsl;
    let mut query = histories::table.into_boxed::<Backend>();
    if let Some(method) = &filter.method {
        query = query.filter(dsl::method.eq(method.clone()));
    }
    match (&filter.path_prefix, path_by) {
        (Some(prefix), PathBy::Index) => {
            // A range, not LIKE: one B-tree range on both backends (`path` compares bytes).
            query = query.filter(dsl::path.ge(prefix.clone()));
            if let Some(end) = prefix_end(prefix) {
                query = query.filter(dsl::path.lt(end));
            }
        }
        (Some(prefix), PathBy::Row) => {
            query = query.filter(sql::<Bool>("+path >= ").bind::<Text, _>(prefix.clone()));
            if let Some(end) = prefix_end(prefix) {
                query = query.filter(sql::<Bool>("+path < ").bind::<Text, _>(end));
            }
        }
        (None, _) => {}
    }
    if let Some(status) = filter.status {
        query = query.filter(dsl::status.eq(status));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(dsl::subject.eq(subject.clone()));
    }
    if let Some(resource_id) = filter.resource_id {
        query = query.filter(dsl::resource_id.eq(resource_id));
    }
    if let Some(request_id) = &filter.request_id {
        query = query.filter(dsl::request_id.eq(request_id.clone()));
    }
    // `created` never decreases in id order (the writer sees to it: `batch::insert`), so
    // a time window is an id range whose ends are one index probe each, and the page
    // is then read like any other: by id, from its position.
    if let Some(since) = filter.since {
        query = query.filter(
            sql::<Bool>("id >= (SELECT id FROM histories WHERE created >= ")
                .bind::<Timestamp, _>(since)
                .sql(" ORDER BY created, id LIMIT 1)"),
        );
    }
    if let Some(until) = filter.until {
        query = query.filter(
            sql::<Bool>("id < COALESCE((SELECT id FROM histories WHERE created >= ")
                .bind::<Timestamp, _>(until)
                .sql(" ORDER BY created, id LIMIT 1), 9223372036854775807)"),
        );
    }
    query
}

/// The statement that reads one page (the extra row tells whether more follow).
fn page_query(filter: &Filter, window: &Window) -> histories::BoxedQuery<'static, Backend> {
    use histories::dsl;
    let mut query = matching(filter);
    query = match (window.order, window.start) {
        (Order::NewestFirst, Start::After(id)) => query.filter(dsl::id.lt(id)),
        (Order::OldestFirst, Start::After(id)) => query.filter(dsl::id.gt(id)),
        (_, Start::Offset(_)) => query,
    };
    query = match window.order {
        Order::NewestFirst => query.order(dsl::id.desc()),
        Order::OldestFirst => query.order(dsl::id.asc()),
    };
    if let Start::Offset(offset) = window.start {
        query = query.offset(offset);
    }
    query.limit(window.size + 1)
}

/// On SQLite, the newest page of a `path` prefix looked for among the newest
/// `NEWEST_WALK` entries only, by id. The `(path)` index yields a prefix's matches in
/// path order, so a prefix that spans many paths (`/api/randomizes/77` holds 770–779,
/// 7700–7799, …) costs a sort of all its matches; SQLite keeps that plan even with
/// statistics (PostgreSQL's planner walks the key by itself). A dense prefix fills its
/// page within the walk; a sparse one falls back to the index, having read at most
/// `NEWEST_WALK` rows more.
fn newest_walk(
    filter: &Filter,
    window: &Window,
) -> Option<histories::BoxedQuery<'static, Backend>> {
    use histories::dsl;
    filter.path_prefix.as_ref()?;
    if window.order != Order::NewestFirst {
        return None;
    }
    let query = matching_by(filter, PathBy::Row);
    let query = match window.start {
        Start::After(id) => query
            .filter(dsl::id.lt(id))
            .filter(dsl::id.ge(id.saturating_sub(NEWEST_WALK))),
        Start::Offset(0) => query.filter(
            sql::<Bool>("id > (SELECT COALESCE(MAX(id), 0) FROM histories) - ")
                .bind::<BigInt, _>(NEWEST_WALK),
        ),
        Start::Offset(_) => return None,
    };
    Some(query.order(dsl::id.desc()).limit(window.size + 1))
}

/// One page of the entries matching `filter`.
pub(crate) fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    window: &Window,
) -> Result<Page<Entry>, StoreError> {
    let walk = match conn {
        DbConnection::Sqlite(_) => newest_walk(filter, window),
        DbConnection::Postgres(_) => None,
    };
    let walked = walk.map(|walk| walk.load::<Entry>(conn)).transpose()?;
    let fetched = match walked {
        // A full page and its lookahead row: the index cannot answer otherwise.
        Some(walked) if walked.len() as i64 > window.size => walked,
        _ => page_query(filter, window).load(conn)?,
    };
    Page::from_fetched(fetched, window).with_total(window, || {
        Ok(CountCapped(matching(filter).select(histories::id)).get_result(conn)?)
    })
}

/// Up to `size` entries matching `filter` past id `after`, in `order`: one step of a
/// walk over every match (the export), each one the same index-backed read as a page.
pub(crate) fn next_batch(
    conn: &mut DbConnection,
    filter: &Filter,
    order: Order,
    after: i64,
    size: i64,
) -> Result<Vec<Entry>, StoreError> {
    let window = Window {
        order,
        start: Start::After(after),
        size: size - 1,
    };
    Ok(page_query(filter, &window).load(conn)?)
}

/// The newest entry's id: where a walk that began now ends.
pub(crate) fn newest_id(conn: &mut DbConnection) -> Result<Option<i64>, StoreError> {
    Ok(histories::table
        .select(diesel::dsl::max(histories::id))
        .get_result(conn)?)
}

/// How the backend plans the page `list` reads (for the tests that keep every filter
/// on an index).
#[doc(hidden)]
pub fn plan(
    conn: &mut DbConnection,
    filter: &Filter,
    window: &Window,
) -> Result<Vec<String>, StoreError> {
    explain(conn, page_query(filter, window))
}

/// How SQLite plans the walk a `path` page tries first, if it has one.
#[doc(hidden)]
pub fn walk_plan(
    conn: &mut DbConnection,
    filter: &Filter,
    window: &Window,
) -> Result<Option<Vec<String>>, StoreError> {
    newest_walk(filter, window)
        .map(|walk| explain(conn, walk))
        .transpose()
}
