//! The `randomizes` table: stored records, their write shape and their queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Timestamp};

use super::connection::DbConnection;
use super::error::StoreError;
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

type Backend = <DbConnection as Connection>::Backend;

pub(crate) fn find(conn: &mut DbConnection, record_id: i64) -> Result<Record, StoreError> {
    // Not `.first()`: its bound `LIMIT ?` makes SQLite re-prepare the statement on every
    // execution (the planner reads LIMIT's value, so a new binding expires the plan).
    // A primary-key lookup needs no LIMIT.
    Ok(randomizes::table
        .find(record_id)
        .select(COLUMNS)
        .get_result(conn)?)
}

/// One page, newest first, and the total matching `contains` (case-insensitive,
/// wildcards literal).
pub(crate) fn list(
    conn: &mut DbConnection,
    contains: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Record>, i64), StoreError> {
    let filtered = || {
        let mut query = randomizes::table.into_boxed::<Backend>();
        if let Some(needle) = contains {
            let pattern = format!("%{}%", escape_like(&fold(needle)));
            query = query.filter(randomizes::original_folded.like(pattern).escape('\\'));
        }
        query
    };
    let total = match contains {
        // Kept exact by triggers (see the count_randomizes migration): no scan.
        None => randomizes_count::table
            .select(randomizes_count::total)
            .get_result(conn)?,
        Some(_) => filtered().count().get_result(conn)?,
    };
    let rows = filtered()
        .select(COLUMNS)
        .order(randomizes::id.desc())
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
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
