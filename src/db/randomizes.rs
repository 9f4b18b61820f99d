//! The `randomizes` table: stored records, their write shape and their queries.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text, Timestamp};

use super::connection::DbConnection;
use super::error::StoreError;
use super::page::{CountCapped, Page, Start, Window, explain};
use super::schema::{randomizes, randomizes_count};
use super::shape::write_shape;
use super::values::{escape_like, fold};

write_shape! {
    /// A record as written: by a create whole, by an update its word columns and `updated`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct NewRecord into "randomizes", unnested as RecordColumns {
        original: String => Text,
        original_folded: String => Text,
        jumbled: String => Text,
        version: i32 => Integer,
        created: NaiveDateTime => Timestamp,
        updated: NaiveDateTime => Timestamp,
    }
}

impl NewRecord {
    /// A word and its jumble, written at `at`.
    pub fn new(original: String, jumbled: String, at: NaiveDateTime) -> Self {
        Self {
            original_folded: fold(&original),
            original,
            jumbled,
            version: 1,
            created: at,
            updated: at,
        }
    }
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
#[diesel(table_name = randomizes)]
pub struct Record {
    pub id: i64,
    pub original: String,
    pub jumbled: String,
    pub version: i32,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
}

impl Record {
    /// What storing `new` under `id` stores.
    pub(crate) fn stored(id: i64, new: &NewRecord) -> Self {
        Self {
            id,
            original: new.original.clone(),
            jumbled: new.jumbled.clone(),
            version: new.version,
            created: new.created,
            updated: new.updated,
        }
    }
}

/// The columns of [`Record`], in its field order (also what batch INSERTs return).
pub(crate) const RETURNED: &str = "id, original, jumbled, version, created, updated";

type Columns = (
    randomizes::id,
    randomizes::original,
    randomizes::jumbled,
    randomizes::version,
    randomizes::created,
    randomizes::updated,
);

type RecordSqlType = (
    diesel::sql_types::BigInt,
    Text,
    Text,
    Integer,
    Timestamp,
    Timestamp,
);

const COLUMNS: Columns = (
    randomizes::id,
    randomizes::original,
    randomizes::jumbled,
    randomizes::version,
    randomizes::created,
    randomizes::updated,
);

/// `If-Match` reduced to what the store checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// No `If-Match`, or `If-Match: *` (the record must merely exist).
    None,
    /// The record's version must be one of these (possibly none: always stale).
    VersionIn(Vec<i32>),
}

/// `If-None-Match` reduced to what a lookup checks: which versions of the record the
/// client already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// No `If-None-Match`: the record is always sent.
    Nothing,
    /// `If-None-Match: *`: any current version is one the client holds.
    Any,
    /// The client holds these versions (possibly none of this record).
    Versions(Vec<i32>),
}

/// What a lookup found, given what the client holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Missing,
    /// The client's copy is current (304).
    Unchanged,
    Current,
}

impl Held {
    pub(crate) fn judge(&self, found: Option<&Record>) -> Freshness {
        match (found, self) {
            (None, _) => Freshness::Missing,
            (Some(_), Self::Any) => Freshness::Unchanged,
            (Some(record), Self::Versions(held)) if held.contains(&record.version) => {
                Freshness::Unchanged
            }
            (Some(_), _) => Freshness::Current,
        }
    }
}

impl Freshness {
    /// The status `GET /api/randomizes/{id}` answers, and its audit entry records.
    pub(crate) fn status(self) -> u16 {
        match self {
            Self::Missing => 404,
            Self::Unchanged => 304,
            Self::Current => 200,
        }
    }
}

type Backend = <DbConnection as Connection>::Backend;

/// The records with these ids that exist, in no particular order: every lookup a
/// writer batch holds, in one statement. (No `LIMIT`: a bound one makes SQLite
/// re-prepare the statement on every execution, as the planner reads its value.)
pub(crate) fn find_many(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<Record>, StoreError> {
    Ok(randomizes::table
        .filter(randomizes::id.eq_any(ids))
        .select(COLUMNS)
        .load(conn)?)
}

/// Whether a folded needle is long enough (three characters) for the trigram index.
fn has_trigrams(folded: &str) -> bool {
    folded.chars().nth(2).is_some()
}

/// The records whose `original` contains `needle` (case-insensitive, wildcards
/// literal), or all of them; without order or paging.
fn matching(conn: &DbConnection, needle: Option<&str>) -> randomizes::BoxedQuery<'static, Backend> {
    let mut query = randomizes::table.into_boxed::<Backend>();
    let Some(needle) = needle else {
        return query;
    };
    let folded = fold(needle);
    if has_trigrams(&folded) && matches!(conn, DbConnection::Sqlite(_)) {
        // The FTS5 trigram table narrows to the rows holding the needle's trigrams; a
        // quoted phrase is literal (only `"` is special, doubled). The LIKE below
        // keeps the answer exactly that of a scan. PostgreSQL's pg_trgm index serves
        // the LIKE itself.
        let phrase = format!("\"{}\"", folded.replace('"', "\"\""));
        query = query.filter(
            sql::<Bool>(
                "id IN (SELECT rowid FROM randomizes_trigram WHERE randomizes_trigram MATCH ",
            )
            .bind::<Text, _>(phrase)
            .sql(")"),
        );
    }
    let pattern = format!("%{}%", escape_like(&folded));
    query.filter(randomizes::original_folded.like(pattern).escape('\\'))
}

/// The statement that reads one page (the extra row tells whether more follow).
fn page_query(
    conn: &DbConnection,
    needle: Option<&str>,
    window: &Window,
) -> randomizes::BoxedQuery<'static, Backend, RecordSqlType> {
    let query = matching(conn, needle);
    let query = match window.start {
        Start::After(id) => query.filter(randomizes::id.lt(id)),
        Start::Offset(offset) => query.offset(offset),
    };
    let query = query.select(COLUMNS).limit(window.size + 1);
    if uses_trigrams(conn, needle) {
        // Ordered by an expression, not the key: otherwise PostgreSQL may walk the
        // primary key backwards hoping to meet matches soon, which for a rare needle
        // reads the whole table. This way it reads the trigram index's matches and sorts
        // them.
        query.order(sql::<diesel::sql_types::BigInt>("id + 0").desc())
    } else {
        query.order(randomizes::id.desc())
    }
}

/// Whether the needle is looked up in the trigram index, on PostgreSQL.
fn uses_trigrams(conn: &DbConnection, needle: Option<&str>) -> bool {
    matches!(conn, DbConnection::Postgres(_))
        && needle.is_some_and(|needle| has_trigrams(&fold(needle)))
}

/// One page of the records whose `original` contains `needle`, or of all of them.
pub(crate) fn list(
    conn: &mut DbConnection,
    needle: Option<&str>,
    window: &Window,
) -> Result<Page<Record>, StoreError> {
    let fetched = page_query(conn, needle, window).load(conn)?;
    let page = Page::from_fetched(fetched, window);
    match (needle, window.start) {
        // Kept exact by triggers (see the count_randomizes migration): no scan, so the
        // unfiltered list always tells its total.
        (None, Start::Offset(_)) => Ok(Page {
            total: Some(
                randomizes_count::table
                    .select(randomizes_count::total)
                    .get_result(conn)?,
            ),
            ..page
        }),
        _ => page.with_total(window, || {
            Ok(CountCapped(matching(conn, needle).select(randomizes::id)).get_result(conn)?)
        }),
    }
}

/// How the backend plans the page `list` reads (for the index tests).
#[doc(hidden)]
pub fn plan(
    conn: &mut DbConnection,
    needle: Option<&str>,
    window: &Window,
) -> Result<Vec<String>, StoreError> {
    let query = page_query(conn, needle, window);
    explain(conn, query)
}

/// Replaces the word; the version check and the write are one statement, so two
/// clients racing with the same ETag cannot both win.
pub(crate) fn update(
    conn: &mut DbConnection,
    record_id: i64,
    precondition: &Precondition,
    change: &NewRecord,
) -> Result<Record, StoreError> {
    use randomizes::dsl;
    let mut target = diesel::update(randomizes::table)
        .filter(dsl::id.eq(record_id))
        .into_boxed();
    if let Precondition::VersionIn(versions) = precondition {
        target = target.filter(dsl::version.eq_any(versions.clone()));
    }
    let updated_row = target
        .set((
            dsl::original.eq(&change.original),
            dsl::original_folded.eq(&change.original_folded),
            dsl::jumbled.eq(&change.jumbled),
            dsl::version.eq(dsl::version + 1),
            dsl::updated.eq(change.updated),
        ))
        .returning(COLUMNS)
        .get_result(conn)
        .optional()?;
    updated_row.ok_or_else(|| missing_or_stale(conn, record_id))
}

pub(crate) fn delete(
    conn: &mut DbConnection,
    record_id: i64,
    precondition: &Precondition,
) -> Result<(), StoreError> {
    use randomizes::dsl;
    let mut target = diesel::delete(randomizes::table)
        .filter(dsl::id.eq(record_id))
        .into_boxed();
    if let Precondition::VersionIn(versions) = precondition {
        target = target.filter(dsl::version.eq_any(versions.clone()));
    }
    match target.execute(conn)? {
        0 => Err(missing_or_stale(conn, record_id)),
        _ => Ok(()),
    }
}

fn missing_or_stale(conn: &mut DbConnection, record_id: i64) -> StoreError {
    match randomizes::table
        .find(record_id)
        .select(randomizes::id)
        .first::<i64>(conn)
        .optional()
    {
        Ok(Some(_)) => StoreError::PreconditionFailed,
        Ok(None) => StoreError::NotFound,
        Err(e) => e.into(),
    }
}
