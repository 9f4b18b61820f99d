//! Removing old audit entries in small steps (SPEC §11), and the lease that lets one
//! PostgreSQL replica at a time do it.
//!
//! Each step deletes the oldest `limit` entries before the cut, read from the
//! `created` index, and the next step starts at the last `created` the previous one
//! removed, so no step walks what earlier steps deleted (PostgreSQL keeps dead index
//! entries until vacuum).

use std::cell::Cell;
use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Timestamp};

use super::chain;
use super::connection::{ConnectOptions, DbConnection};
use super::error::StoreError;
use super::url::DatabaseUrl;
use super::values::now;
use crate::chain::{Checkpoint, Kind, SigningKey};

/// What one step removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removed {
    pub(crate) entries: usize,
    /// Where the next step starts.
    pub(crate) last_created: Option<NaiveDateTime>,
    /// For each chain the step shortened, the checkpoint of its last removed entry:
    /// verification of what remains starts there.
    pub(crate) cuts: Vec<Checkpoint>,
}

thread_local! {
    /// True while this thread's connection runs the purge's DELETE: what SQLite's
    /// `randomize_purging()` answers the append-only triggers (see the chains migration).
    static PURGING: Cell<bool> = const { Cell::new(false) };
}

/// What SQLite's `randomize_purging()` returns on this thread.
pub(crate) fn purging() -> bool {
    PURGING.with(Cell::get)
}

/// Runs `delete` as the retention purge, the one DELETE the append-only triggers let
/// through.
fn as_purge<T>(
    conn: &mut DbConnection,
    delete: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let postgres = matches!(conn, DbConnection::Postgres(_));
    if postgres {
        conn.batch_execute("SELECT set_config('randomize.purging', 'on', true)")?;
    }
    PURGING.with(|p| p.set(true));
    let deleted = delete(conn);
    PURGING.with(|p| p.set(false));
    if postgres && deleted.is_ok() {
        conn.batch_execute("SELECT set_config('randomize.purging', 'off', true)")?;
    }
    deleted
}

/// Deletes up to `limit` of the oldest entries created before `cut`, at or after
/// `from` (none: from the start), and records a cut checkpoint (signed with `key`) for
/// each chain it shortened. Oldest by `(created, id)`: both grow with `seq` within a
/// chain, so what goes of each chain is a prefix, and the cut is where the rest starts.
pub(crate) fn remove_step(
    conn: &mut DbConnection,
    cut: NaiveDateTime,
    from: Option<NaiveDateTime>,
    limit: i64,
    key: Option<&SigningKey>,
) -> Result<Removed, StoreError> {
    as_purge(conn, |conn| {
        let rows = delete_oldest(conn, cut, from, limit)?;
        let mut last: BTreeMap<i64, (i64, Vec<u8>)> = BTreeMap::new();
        for row in &rows {
            if let (Some(chain), Some(seq), Some(hash)) = (row.chain, row.seq, &row.hash)
                && last.get(&chain).is_none_or(|(s, _)| seq > *s)
            {
                last.insert(chain, (seq, hash.clone()));
            }
        }
        let at = now();
        let mut cuts = Vec::with_capacity(last.len());
        for (chain, (seq, hash)) in last {
            let hash = hash.try_into().map_err(|_| {
                StoreError::Internal(format!("chain {chain} seq {seq} has a malformed hash"))
            })?;
            let checkpoint = Checkpoint::new(chain, seq, hash, at, Kind::Cut, key);
            chain::forget_below(conn, chain, seq)?;
            chain::insert_checkpoint(conn, &checkpoint)?;
            cuts.push(checkpoint);
        }
        Ok(Removed {
            entries: rows.len(),
            last_created: rows.iter().map(|row| row.created).max(),
            cuts,
        })
    })
}

fn delete_oldest(
    conn: &mut DbConnection,
    cut: NaiveDateTime,
    from: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<Gone>, StoreError> {
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
         WHERE {from_clause}created < {cut_at} ORDER BY created, id LIMIT {limit_at}) \
         RETURNING created, chain, seq, hash"
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
    Ok(statement.load(conn)?)
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
    #[diesel(sql_type = Nullable<BigInt>)]
    chain: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Binary>)]
    hash: Option<Vec<u8>>,
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
