//! The chains' tables (SPEC §12): registering a writer's chain, finding its tip again,
//! storing and reading checkpoints, and walking a chain for verification.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::connection::DbConnection;
use super::error::StoreError;
use super::histories::Entry;
use super::page::{Order, Page, Start, Window};
use super::schema::{audit_chains, audit_checkpoints, histories};
use crate::chain::{Checkpoint, Kind, Tip};

/// Registers a new chain; its first entry will be seq 1.
pub(crate) fn open(conn: &mut DbConnection, started: NaiveDateTime) -> Result<Tip, StoreError> {
    let id: i64 = diesel::insert_into(audit_chains::table)
        .values(audit_chains::started.eq(started))
        .returning(audit_chains::id)
        .get_result(conn)?;
    Ok(Tip::start(id))
}

/// The newest committed entry of `chain`: after a lost connection, the writer cannot
/// know whether its last commit landed, so it asks.
pub(crate) fn tip(conn: &mut DbConnection, chain: i64) -> Result<Tip, StoreError> {
    let newest: Option<(Option<i64>, Option<Vec<u8>>)> = histories::table
        .filter(histories::chain.eq(chain))
        .order(histories::seq.desc())
        .select((histories::seq, histories::hash))
        .limit(1)
        .load(conn)?
        .pop();
    match newest {
        None => Ok(Tip::start(chain)),
        Some((Some(seq), Some(hash))) => Ok(Tip {
            chain,
            seq,
            hash: hash.try_into().map_err(|_| {
                StoreError::Internal(format!("chain {chain} seq {seq} has a malformed hash"))
            })?,
        }),
        Some(_) => Err(StoreError::Internal(format!(
            "chain {chain}'s newest entry has no seq or hash"
        ))),
    }
}

/// The tip once every commit that may still be in flight has settled: on PostgreSQL
/// read under the feed lock, which a batch of the old connection holds until it
/// committed or rolled back. When retention removed every entry of the chain, its
/// newest cut checkpoint is the tip (a new entry must link onto it, not restart at 1).
pub(crate) fn settled_tip(conn: &mut DbConnection, chain: i64) -> Result<Tip, StoreError> {
    use diesel::connection::SimpleConnection;
    let postgres = matches!(conn, DbConnection::Postgres(_));
    if postgres {
        conn.batch_execute("BEGIN; SELECT histories_feed_lock()")?;
    }
    let read = (|| {
        let entries = tip(conn, chain)?;
        let checkpointed: Option<(i64, Vec<u8>)> = audit_checkpoints::table
            .filter(audit_checkpoints::chain.eq(chain))
            .order(audit_checkpoints::seq.desc())
            .select((audit_checkpoints::seq, audit_checkpoints::hash))
            .limit(1)
            .load(conn)?
            .pop();
        Ok(match checkpointed {
            Some((seq, hash)) if seq > entries.seq => Tip {
                chain,
                seq,
                hash: hash.try_into().map_err(|_| {
                    StoreError::Internal(format!("chain {chain}'s checkpoint has a malformed hash"))
                })?,
            },
            _ => entries,
        })
    })();
    if postgres {
        let end = if read.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.batch_execute(end)?;
    }
    read
}

/// A checkpoint row.
#[derive(Debug, Clone, Queryable)]
pub struct StoredCheckpoint {
    pub id: i64,
    pub chain: i64,
    pub seq: i64,
    pub hash: Vec<u8>,
    pub created: NaiveDateTime,
    pub kind: String,
    pub signature: Option<Vec<u8>>,
}

impl StoredCheckpoint {
    /// The checkpoint, if the row holds a well-formed one.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            chain: self.chain,
            seq: self.seq,
            hash: self.hash.as_slice().try_into().ok()?,
            created: self.created,
            kind: Kind::parse(&self.kind)?,
            signature: self.signature.clone(),
        })
    }
}

pub(crate) fn insert_checkpoint(
    conn: &mut DbConnection,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    diesel::insert_into(audit_checkpoints::table)
        .values((
            audit_checkpoints::chain.eq(checkpoint.chain),
            audit_checkpoints::seq.eq(checkpoint.seq),
            audit_checkpoints::hash.eq(checkpoint.hash.as_slice()),
            audit_checkpoints::created.eq(checkpoint.created),
            audit_checkpoints::kind.eq(checkpoint.kind.as_str()),
            audit_checkpoints::signature.eq(checkpoint.signature.as_deref()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops the checkpoints of `chain` that a retention cut at `seq` supersedes (their
/// entries are gone; the log keeps every line).
pub(crate) fn forget_below(
    conn: &mut DbConnection,
    chain: i64,
    seq: i64,
) -> Result<(), StoreError> {
    diesel::delete(
        audit_checkpoints::table
            .filter(audit_checkpoints::chain.eq(chain))
            .filter(audit_checkpoints::seq.lt(seq)),
    )
    .execute(conn)?;
    Ok(())
}

/// One page of checkpoints, newest first.
pub(crate) fn list_checkpoints(
    conn: &mut DbConnection,
    chain: Option<i64>,
    window: &Window,
) -> Result<Page<StoredCheckpoint>, StoreError> {
    use audit_checkpoints::dsl;
    let matching = || {
        let mut query = audit_checkpoints::table.into_boxed();
        if let Some(chain) = chain {
            query = query.filter(dsl::chain.eq(chain));
        }
        query
    };
    let mut query = matching();
    if let Start::After(id) = window.start {
        query = match window.order {
            Order::NewestFirst => query.filter(dsl::id.lt(id)),
            Order::OldestFirst => query.filter(dsl::id.gt(id)),
        };
    }
    query = match window.order {
        Order::NewestFirst => query.order(dsl::id.desc()),
        Order::OldestFirst => query.order(dsl::id.asc()),
    };
    if let Start::Offset(offset) = window.start {
        query = query.offset(offset);
    }
    let fetched = query.limit(window.size + 1).load(conn)?;
    Page::from_fetched(fetched, window)
        .with_total(window, || Ok(matching().count().get_result(conn)?))
}

/// Every checkpoint, oldest first (verification holds them all).
pub(crate) fn all_checkpoints(
    conn: &mut DbConnection,
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::id.asc())
        .load(conn)?)
}

/// Up to `size` chained entries after `(chain, seq)` in chain-then-seq order: one step of
/// a walk over every chain, on the `(chain, seq)` index.
pub(crate) fn next_links(
    conn: &mut DbConnection,
    after: (i64, i64),
    size: i64,
) -> Result<Vec<Entry>, StoreError> {
    let (chain, seq) = after;
    // A row-value comparison is one range of the index on both backends (an OR of two
    // conditions is not, on PostgreSQL); entries without a chain never compare true.
    Ok(histories::table
        .filter(
            sql::<Bool>("(chain, seq) > (")
                .bind::<BigInt, _>(chain)
                .sql(", ")
                .bind::<BigInt, _>(seq)
                .sql(")"),
        )
        .order((histories::chain.asc(), histories::seq.asc()))
        .limit(size)
        .load(conn)?)
}

/// Up to `size` entries without a chain past id `after` (those from before chaining).
pub(crate) fn next_unchained(
    conn: &mut DbConnection,
    after: i64,
    size: i64,
) -> Result<Vec<Entry>, StoreError> {
    Ok(histories::table
        .filter(histories::chain.is_null())
        .filter(histories::id.gt(after))
        .order(histories::id.asc())
        .limit(size)
        .load(conn)?)
}
