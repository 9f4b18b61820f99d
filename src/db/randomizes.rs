//! Queries on `randomizes`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::randomizes::dsl::*;
use super::{DbConnection, StoreError, escape_like};

type Backend = <DbConnection as Connection>::Backend;

pub use record::Randomize;

// Its own module: the derives bind locals named like the columns, which the dsl glob
// import above would shadow.
mod record {
    use chrono::NaiveDateTime;
    use diesel::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
    #[diesel(table_name = crate::db::schema::randomizes)]
    pub struct Randomize {
        pub id: i64,
        pub original: String,
        pub jumbled: String,
        pub version: i32,
        pub created: NaiveDateTime,
        pub updated: NaiveDateTime,
    }
}

const COLUMNS: (id, original, jumbled, version, created, updated) =
    (id, original, jumbled, version, created, updated);

/// A word and its jumble, as written by a create or an update.
#[derive(Debug, Clone)]
pub struct Jumbled {
    pub original: String,
    pub jumbled: String,
    pub at: NaiveDateTime,
}

/// `If-Match` reduced to what the store checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`, or `If-Match: *` (the record must merely exist).
    None,
    /// The record's version must be one of these (possibly none: always stale).
    VersionIn(Vec<i32>),
}

pub fn find(conn: &mut DbConnection, record_id: i64) -> Result<Randomize, StoreError> {
    // Not `.first()`: its bound `LIMIT ?` makes SQLite re-prepare the statement on every
    // execution (the planner reads LIMIT's value, so a new binding expires the plan).
    // A primary-key lookup needs no LIMIT.
    Ok(randomizes
        .find(record_id)
        .select(COLUMNS)
        .get_result(conn)?)
}

/// One page, newest first, and the total matching `contains` (case-insensitive,
/// wildcards literal).
pub fn list(
    conn: &mut DbConnection,
    contains: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Randomize>, i64), StoreError> {
    let filtered = || {
        let mut query = randomizes.into_boxed::<Backend>();
        if let Some(needle) = contains {
            let pattern = format!("%{}%", escape_like(&needle.to_lowercase()));
            query = query.filter(original_folded.like(pattern).escape('\\'));
        }
        query
    };
    let total = match contains {
        // Kept exact by triggers (see the count_randomizes migration): no scan.
        None => super::schema::randomizes_count::table
            .select(super::schema::randomizes_count::total)
            .get_result(conn)?,
        Some(_) => filtered().count().get_result(conn)?,
    };
    let rows = filtered()
        .select(COLUMNS)
        .order(id.desc())
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

/// Replaces the word; the version check and the write are one statement, so two
/// clients racing with the same ETag cannot both win.
pub fn update(
    conn: &mut DbConnection,
    record_id: i64,
    precondition: &Precondition,
    change: &Jumbled,
) -> Result<Randomize, StoreError> {
    let mut target = diesel::update(randomizes)
        .filter(id.eq(record_id))
        .into_boxed();
    if let Precondition::VersionIn(versions) = precondition {
        target = target.filter(version.eq_any(versions.clone()));
    }
    let updated_row = target
        .set((
            original.eq(&change.original),
            original_folded.eq(change.original.to_lowercase()),
            jumbled.eq(&change.jumbled),
            version.eq(version + 1),
            updated.eq(change.at),
        ))
        .returning(COLUMNS)
        .get_result(conn)
        .optional()?;
    updated_row.ok_or_else(|| missing_or_stale(conn, record_id))
}

pub fn delete(
    conn: &mut DbConnection,
    record_id: i64,
    precondition: &Precondition,
) -> Result<(), StoreError> {
    let mut target = diesel::delete(randomizes)
        .filter(id.eq(record_id))
        .into_boxed();
    if let Precondition::VersionIn(versions) = precondition {
        target = target.filter(version.eq_any(versions.clone()));
    }
    match target.execute(conn)? {
        0 => Err(missing_or_stale(conn, record_id)),
        _ => Ok(()),
    }
}

fn missing_or_stale(conn: &mut DbConnection, record_id: i64) -> StoreError {
    match randomizes
        .find(record_id)
        .select(id)
        .first::<i64>(conn)
        .optional()
    {
        Ok(Some(_)) => StoreError::PreconditionFailed,
        Ok(None) => StoreError::NotFound,
        Err(e) => e.into(),
    }
}
