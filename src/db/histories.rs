//! The `histories` table: the audit trail (SPEC §5), its write shape and its queries.

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
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

/// Where a record is served: this, then its id in decimal (`api::routes`).
const RECORD_PATH: &str = "/api/randomizes/";

/// The entries the `resource_id` index holds (the `underived_resource` migration's
/// `WHERE`, which SQLite needs to see in a query to use that partial index): those
/// whose path does not say their record. The others, most of the history (every read
/// of a record), are found by their path, so that each such entry lands at a random
/// leaf of one large index rather than two (docs/PERFORMANCE.md, "One index per record
/// read").
const PATH_NOT_RECORDS: &str = "path <> '/api/randomizes/' || CAST(resource_id AS TEXT)";

/// Which entries of a `resource_id` filter a query reads. Each of the two parts is one
/// index range in id order; a page reads both and merges them (`read_page`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Every match, as one OR (where order does not matter: the count).
    Whole,
    /// Matches whose path is not their record's: the `resource_id` index.
    ByResource,
    /// Matches at their record's path: one key of the `path` index.
    ByPath,
}

/// The parts a page of `filter` is read in.
fn parts(filter: &Filter) -> &'static [Part] {
    if filter.resource_id.is_some() {
        &[Part::ByResource, Part::ByPath]
    } else {
        &[Part::Whole]
    }
}

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
    matching_by(filter, PathBy::Index, Part::Whole)
}

fn matching_by(
    filter: &Filter,
    path_by: PathBy,
    part: Part,
) -> histories::BoxedQuery<'static, Backend> {
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
        let record_path = format!("{RECORD_PATH}{resource_id}");
        let by_resource = dsl::resource_id
            .eq(resource_id)
            .and(sql::<Bool>(PATH_NOT_RECORDS));
        let by_path = dsl::path
            .eq(record_path)
            .and(dsl::resource_id.eq(resource_id));
        query = match part {
            Part::Whole => query.filter(by_resource.or(by_path)),
            Part::ByResource => query.filter(by_resource),
            Part::ByPath => query.filter(by_path),
        };
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

/// The statement that reads one page of `part` (the extra row tells whether more
/// follow).
fn page_query(
    filter: &Filter,
    window: &Window,
    part: Part,
) -> histories::BoxedQuery<'static, Backend> {
    use histories::dsl;
    let mut query = matching_by(filter, PathBy::Index, part);
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
    let query = matching_by(filter, PathBy::Row, Part::Whole);
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
        _ => read_page(conn, filter, window)?,
    };
    Page::from_fetched(fetched, window).with_total(window, || {
        Ok(CountCapped(matching(filter).select(histories::id)).get_result(conn)?)
    })
}

/// The page's rows and its lookahead row, read part by part (`parts`) in one snapshot
/// and merged in the window's order.
fn read_page(
    conn: &mut DbConnection,
    filter: &Filter,
    window: &Window,
) -> Result<Vec<Entry>, StoreError> {
    let parts = parts(filter);
    if let [part] = parts {
        return Ok(page_query(filter, window, *part).load(conn)?);
    }
    // Each part reads from the start of the window to its end; page mode's offset is at
    // most `MAX_MATCHES`, so that stays bounded.
    let (skip, reach) = match window.start {
        Start::Offset(offset) => (
            offset,
            Window {
                start: Start::Offset(0),
                size: offset.saturating_add(window.size),
                ..*window
            },
        ),
        Start::After(_) => (0, *window),
    };
    let mut rows = in_one_snapshot(conn, |conn| {
        let mut rows = Vec::new();
        for part in parts {
            rows.extend(page_query(filter, &reach, *part).load::<Entry>(conn)?);
        }
        Ok(rows)
    })?;
    match window.order {
        Order::NewestFirst => rows.sort_unstable_by_key(|e| std::cmp::Reverse(e.id)),
        Order::OldestFirst => rows.sort_unstable_by_key(|e| e.id),
    }
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let keep = usize::try_from(window.size.saturating_add(1)).unwrap_or(usize::MAX);
    Ok(rows.into_iter().skip(skip).take(keep).collect())
}

/// Runs `read` in one read-only transaction that sees one snapshot throughout (on
/// PostgreSQL, REPEATABLE READ; a SQLite read transaction always does): the parts of a
/// page must not straddle a commit, or the ascending feed could step past an entry
/// that one part saw committed and the other did not.
fn in_one_snapshot<T>(
    conn: &mut DbConnection,
    read: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(|conn| {
        if matches!(conn, DbConnection::Postgres(_)) {
            conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        read(conn)
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
    read_page(conn, filter, &window)
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
    let mut plans = Vec::new();
    for part in parts(filter) {
        plans.extend(explain(conn, page_query(filter, window, *part))?);
    }
    Ok(plans)
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
