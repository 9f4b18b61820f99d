//! Removing old audit entries in small steps (SPEC §11), and the lease that lets one
//! PostgreSQL replica at a time do it.
//!
//! Each step deletes the oldest `limit` entries before the cut, read from the
//! `created` index, and the next step starts at the last `created` the previous one
//! removed, so no step walks what earlier steps deleted (PostgreSQL keeps dead index
//! entries until vacuum).

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Timestamp};

use super::connection::{ConnectOptions, DbConnection};
use super::error::StoreError;
use super::url::DatabaseUrl;

/// What one step removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    pub(crate) entries: usize,
    /// Where the next step starts.
    pub(crate) last_created: Option<NaiveDateTime>,
}

/// Deletes up to `limit` of the oldest entries created before `cut`, at or after
/// `from` (none: from the start).
pub(crate) fn remove_step(
    conn: &mut DbConnection,
    cut: NaiveDateTime,
    from: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Removed, StoreError> {
    // Raw SQL: diesel cannot delete from a table filtered by a subselect of itself.
    let (sqlite, from_clause) = match (&*conn, from.is_some()) {
        (DbConnection::Sqlite(_), true) => (true, "created >= ? AND "),
        (DbConnection::Sqlite(_), false) => (true, ""),
        (DbConnection::Postgres(_), true) => (false, "created >= $3 AND "),
        (DbConnection::Postgres(_), false) => (false, ""),
    };
    let (cut_at, limit_at) = if sqlite { ("?", "?") } else { ("$1", "$2") };
    let sql = format!(
        "DELETE FROM histories WHERE id IN (SELECT id FROM histories \
         WHERE {from_clause}created < {cut_at} ORDER BY created LIMIT {limit_at}) \
         RETURNING id, created"
    );
    let statement = diesel::sql_query(sql).into_boxed();
    let statement = match (sqlite, from) {
        // SQLite numbers `?` in order of appearance; PostgreSQL by `$n`.
        (true, Some(from)) => statement.bind::<Timestamp, _>(from),
        _ => statement,
    };
    let statement = statement.bind::<Timestamp, _>(cut).bind::<BigInt, _>(limit);
    let statement = match (sqlite, from) {
        (false, Some(from)) => statement.bind::<Timestamp, _>(from),
        _ => statement,
    };
    let rows: Vec<Gone> = statement.load(conn)?;
    Ok(Removed {
        entries: rows.len(),
        last_created: rows.into_iter().map(|row| row.created).max(),
    })
}

/// Whether any entry is older than `cut` (one probe: the oldest entry).
pub(crate) fn any_before(conn: &mut DbConnection, cut: NaiveDateTime) -> Result<bool, StoreError> {
    Ok(super::footprint::oldest_entry(conn)?.is_some_and(|oldest| oldest < cut))
}

/// Held while this process purges; on PostgreSQL a session advisory lock on a
/// connection of its own, released when the lease is dropped (or the process dies).
pub(crate) struct Lease {
    _conn: Option<DbConnection>,
}

#[derive(QueryableByName)]
struct Gone {
    #[diesel(sql_type = Timestamp)]
    created: NaiveDateTime,
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    taken: bool,
}

/// The purge lease, if no other process holds it. SQLite has one writing process per
/// file, so there it is always granted. On PostgreSQL the lock is named after the
/// schema the history lives in: deployments sharing a database in schemas of their own
/// purge independently.
pub(crate) fn try_lease(options: &ConnectOptions) -> Result<Option<Lease>, StoreError> {
    if !matches!(options.url, DatabaseUrl::Postgres(_)) {
        return Ok(Some(Lease { _conn: None }));
    }
    let mut conn = options
        .connect()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    conn.batch_execute("SET application_name = 'randomize audit purge'")?;
    let taken: Taken =
        diesel::sql_query("SELECT pg_try_advisory_lock(hashtext('randomize audit purge ' || current_schema())) AS taken")
            .get_result(&mut conn)?;
    Ok(taken.taken.then_some(Lease { _conn: Some(conn) }))
}
