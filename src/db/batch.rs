//! How the writer stores one batch: every new record and every audit entry, in as few
//! statements as the backend allows, each entry linked into the writer's hash chain
//! (`Ledger`). The statements are built from the tables' write shapes (`NewRecord`,
//! `NewEntry`), never from column lists of their own.
//!
//! An entry's hash covers its fields as stored, so every stored value is settled here,
//! before hashing: `created` never below the newest committed entry's (so time windows
//! are id ranges, `histories::list`), and `resource_id` of a creation is the new
//! record's id.
//!
//! - SQLite, in-process, takes one multi-row INSERT per table: the records first
//!   (their ids come back), then the entries, with the newest committed `created` read
//!   in the same transaction.
//! - PostgreSQL gets one statement per batch, prepared once per connection: record ids
//!   were drawn ahead (the previous statement returns the next batch's), and the
//!   entries' `created` is set from the newest committed one this writer knows. The
//!   statement checks that guess under the feed lock and stores nothing if another
//!   replica committed later entries meanwhile; it then answers the true floor, and the
//!   batch is linked again and stored under the lock (see `pg_insert`). Alone the
//!   statement is its own transaction: a busy writer commits a batch in one round trip.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Binary, Bool, Integer, Nullable, Timestamp};
use diesel::sqlite::Sqlite;

use super::connection::DbConnection;
use super::error::StoreError;
use super::histories::{EntryColumns, NewEntry};
use super::idempotency::{KeyClaim, KeyColumns, NewKey};
use super::ledger::Ledger;
use super::randomizes::{NewRecord, RETURNED, Record, RecordColumns};
use super::schema::histories;
use super::shape::{Unnest, WriteShape};
use super::sqlite_rows::{self, SqliteRow};
use super::values::now;
use crate::chain::Tip;
use crate::chain::link::Link;

/// The chain columns, written after the entry's own.
const LINK_COLUMNS: [&str; 3] = ["chain", "seq", "hash"];
/// Columns one entry binds.
pub(crate) const ENTRY_WIDTH: usize = <NewEntry as WriteShape>::WIDTH + LINK_COLUMNS.len();
/// A statement that keeps storing nothing has met a bug, not contention: under the feed
/// lock the second attempt always stores.
const MAX_ATTEMPTS: usize = 4;

/// An audit entry to insert. `of_record` is the position, in the batch's records, of
/// the record whose creation the entry describes: its `resource_id` becomes that
/// record's id. `status`, when set, replaces the entry's: what a lookup in the batch
/// found decides it.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub entry: &'a NewEntry,
    pub of_record: Option<usize>,
    pub status: Option<i32>,
}

/// A response to store under an idempotency key (SPEC §13), with the write it describes.
#[derive(Debug, Clone)]
pub enum Keyed<'a> {
    /// The creation of record `of_record` (its position in the batch's records): 201 and
    /// the record, once its id is known.
    Created {
        claim: &'a KeyClaim,
        of_record: usize,
    },
    /// An update's or a delete's response, already known.
    Answered(NewKey),
}

/// The rows `keys` store, given the batch's records as stored.
fn key_rows(keys: &[Keyed<'_>], stored: &[Record]) -> Result<Vec<NewKey>, StoreError> {
    let at = now();
    keys.iter()
        .map(|keyed| match keyed {
            Keyed::Created { claim, of_record } => stored
                .get(*of_record)
                .map(|record| NewKey::answered(claim, 201, Some(record), at))
                .ok_or_else(|| StoreError::Internal("a keyed record did not come back".into())),
            Keyed::Answered(row) => Ok(row.clone()),
        })
        .collect()
}

/// Inserts `records` and `entries`, linking the entries onto `ledger`'s chain, and the
/// responses `keys` stores; the stored records come back in the order of `records`. `locked`: a transaction holding
/// the feed lock is open (PostgreSQL), so the statement joins it. The new tip is staged
/// in `ledger`, for the caller to commit once the transaction did.
pub fn insert(
    conn: &mut DbConnection,
    records: &[&NewRecord],
    entries: &[Audit<'_>],
    keys: &[Keyed<'_>],
    ledger: &mut Ledger,
    locked: bool,
) -> Result<Vec<Record>, StoreError> {
    let tip = ledger.tip(conn)?;
    match conn {
        DbConnection::Postgres(pg) => pg_insert(pg, records, entries, keys, ledger, tip, locked),
        DbConnection::Sqlite(sqlite) => {
            let stored = if records.is_empty() {
                Vec::new()
            } else {
                let (head, returning) =
                    (sqlite_head::<NewRecord>(), format!(" RETURNING {RETURNED}"));
                let mut stored = Vec::with_capacity(records.len());
                for chunk in sqlite_rows::chunks(&head, records, &returning) {
                    stored.extend(chunk.load::<Record>(sqlite)?);
                }
                in_request_order(records, stored)?
            };
            if !entries.is_empty() {
                // The transaction holds the write lock: this is the floor until commit.
                let floor = histories::table
                    .select(diesel::dsl::max(histories::created))
                    .get_result::<Option<NaiveDateTime>>(sqlite)?;
                let ids: Vec<i64> = stored.iter().map(|r| r.id).collect();
                let rows = settled(entries, floor, &ids);
                let links = tip.link(rows.iter().map(|row| row.fields()));
                let entry_rows: Vec<EntryRow<'_>> = rows
                    .iter()
                    .zip(&links)
                    .map(|(entry, link)| EntryRow {
                        entry: entry.as_ref(),
                        link,
                    })
                    .collect();
                for chunk in sqlite_rows::chunks(sqlite_entries_head(), &entry_rows, "") {
                    chunk.execute(sqlite)?;
                }
                stage(ledger, tip, &rows, &links);
            }
            if !keys.is_empty() {
                let rows = key_rows(keys, &stored)?;
                let rows: Vec<&NewKey> = rows.iter().collect();
                for chunk in sqlite_rows::chunks(&sqlite_head::<NewKey>(), &rows, "") {
                    chunk.execute(sqlite)?;
                }
            }
            Ok(stored)
        }
    }
}

/// The entries as they will be stored: `created` never decreasing in insertion (= id)
/// order and never below `floor`, and a creation's `resource_id` its record's id
/// (`ids` in the order of the batch's records). Stamps taken on several threads reach
/// the writer a few microseconds out of order; such an entry takes its predecessor's
/// time.
fn settled<'a>(
    entries: &[Audit<'a>],
    floor: Option<NaiveDateTime>,
    ids: &[i64],
) -> Vec<Cow<'a, NewEntry>> {
    let mut newest = floor;
    entries
        .iter()
        .map(|audit| {
            let created = match newest {
                Some(at) if audit.entry.created < at => at,
                _ => audit.entry.created,
            };
            newest = Some(created);
            let resource_id = audit
                .of_record
                .and_then(|i| ids.get(i).copied())
                .or(audit.entry.resource_id);
            let status = audit.status.unwrap_or(audit.entry.status);
            if created == audit.entry.created
                && resource_id == audit.entry.resource_id
                && status == audit.entry.status
            {
                Cow::Borrowed(audit.entry)
            } else {
                Cow::Owned(NewEntry {
                    created,
                    resource_id,
                    status,
                    ..audit.entry.clone()
                })
            }
        })
        .collect()
}

fn stage(ledger: &mut Ledger, tip: Tip, rows: &[Cow<'_, NewEntry>], links: &[Link]) {
    let newest = rows.last().map(|row| row.created);
    let tip = links.last().map_or(tip, Tip::after);
    ledger.stage(tip, newest);
}

/// The PostgreSQL batch: one statement, again under the feed lock if another replica's
/// entries moved the floor.
fn pg_insert(
    pg: &mut PgConnection,
    records: &[&NewRecord],
    entries: &[Audit<'_>],
    keys: &[Keyed<'_>],
    ledger: &mut Ledger,
    tip: Tip,
    locked: bool,
) -> Result<Vec<Record>, StoreError> {
    let (ids, mut refill) = ledger.ids_for(pg, records.len())?;
    let created: Vec<Record> = records
        .iter()
        .zip(&ids)
        .map(|(new, &id)| Record::stored(id, new))
        .collect();
    let key_rows = key_rows(keys, &created)?;
    let key_refs: Vec<&NewKey> = key_rows.iter().collect();
    let mut floor = ledger.floor();
    let mut opened = false;
    // Whether the attempt stored the batch.
    let mut attempt = || -> Result<bool, StoreError> {
        let rows = settled(entries, floor, &ids);
        let links = tip.link(rows.iter().map(|row| row.fields()));
        let row_refs: Vec<&NewEntry> = rows.iter().map(AsRef::as_ref).collect();
        let answer: (Option<NaiveDateTime>, bool, Vec<i64>) = PgBatch {
            first_created: rows.first().map(|row| row.created),
            ids: &ids,
            records: RecordColumns::new(records),
            entries: EntryColumns::new(&row_refs),
            links: LinkColumns::new(&links),
            keys: KeyColumns::new(&key_refs),
            refill,
        }
        .get_result(pg)?;
        let (committed_floor, stored, drawn) = answer;
        refill = 0;
        if stored {
            ledger.used_ids(ids.len(), drawn);
            stage(ledger, tip, &rows, &links);
            return Ok(true);
        }
        ledger.more_ids(drawn);
        ledger.raise_floor(committed_floor);
        floor = committed_floor;
        if !locked && !opened {
            pg.batch_execute("BEGIN")?;
            opened = true;
            pg.batch_execute("SELECT histories_feed_lock()")?;
        }
        Ok(false)
    };
    let mut outcome = Err(StoreError::Internal(
        "the audit floor kept moving under the feed lock".into(),
    ));
    for _ in 0..MAX_ATTEMPTS {
        match attempt() {
            Ok(false) => continue,
            Ok(true) => {
                outcome = Ok(());
                break;
            }
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    if opened {
        let ended = match &outcome {
            Ok(_) => pg.batch_execute("COMMIT"),
            Err(_) => pg.batch_execute("ROLLBACK"),
        };
        if let Err(error) = ended {
            ledger.abandon();
            return Err(error.into());
        }
    }
    if outcome.is_err() {
        ledger.abandon();
    }
    outcome.map(|()| created)
}

/// Neither backend promises RETURNING rows in input order (SQLite documents it as
/// arbitrary), so rows are matched back by content. Rows with equal content differ only
/// in id, and either of them is a correct answer to either request.
fn in_request_order(
    records: &[&NewRecord],
    stored: Vec<Record>,
) -> Result<Vec<Record>, StoreError> {
    let mut waiting: HashMap<(&str, &str, NaiveDateTime), Vec<usize>> = HashMap::new();
    for (index, new) in records.iter().enumerate() {
        let key = (new.original.as_str(), new.jumbled.as_str(), new.created);
        waiting.entry(key).or_default().push(index);
    }
    let targets: Vec<Option<usize>> = stored
        .iter()
        .map(|r| {
            let key = (r.original.as_str(), r.jumbled.as_str(), r.created);
            waiting.get_mut(&key).and_then(Vec::pop)
        })
        .collect();
    let mut ordered: Vec<Option<Record>> = vec![None; records.len()];
    for (record, target) in stored.into_iter().zip(targets) {
        if let Some(index) = target {
            ordered[index] = Some(record);
        }
    }
    ordered
        .into_iter()
        .map(|record| {
            record
                .ok_or_else(|| StoreError::Internal("an inserted record did not come back".into()))
        })
        .collect()
}

/// `INSERT INTO table (…) VALUES ` of a write shape. SQLite has no arrays to bind, and
/// diesel's typed multi-row INSERT is not available for it through `MultiConnection`:
/// the rows follow as `sqlite_rows` chunks.
fn sqlite_head<S: WriteShape>() -> String {
    format!("INSERT INTO {} VALUES ", S::target())
}

/// The head of the entries' multi-row INSERT: each row its fields and then its link.
fn sqlite_entries_head() -> &'static str {
    static HEAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
        format!(
            "INSERT INTO histories ({}, {}) VALUES ",
            NewEntry::COLUMNS.join(", "),
            LINK_COLUMNS.join(", ")
        )
    })
}

/// One entry row: its fields, then its link.
struct EntryRow<'a> {
    entry: &'a NewEntry,
    link: &'a Link,
}

impl SqliteRow for EntryRow<'_> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.entry.walk_sqlite(out)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.link.chain)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.link.seq)?;
        out.push_sql(", ");
        out.push_bind_param::<Binary, _>(&self.link.hash[..])
    }
}

/// The links of a batch's entries, one array per column.
struct LinkColumns<'a> {
    chain: Vec<i64>,
    seq: Vec<i64>,
    hash: Vec<&'a [u8]>,
}

impl<'a> LinkColumns<'a> {
    fn new(links: &'a [Link]) -> Self {
        Self {
            chain: links.iter().map(|l| l.chain).collect(),
            seq: links.iter().map(|l| l.seq).collect(),
            hash: links.iter().map(|l| l.hash.as_slice()).collect(),
        }
    }
}

/// The records and the audit entries in one statement, storing them only if no entry
/// committed elsewhere is newer than the batch's first; it answers the newest committed
/// `created`, whether it stored, and `refill` record ids for the next batches.
struct PgBatch<'a> {
    first_created: Option<NaiveDateTime>,
    ids: &'a [i64],
    records: RecordColumns<'a>,
    entries: EntryColumns<'a>,
    links: LinkColumns<'a>,
    keys: KeyColumns<'a>,
    refill: i32,
}

impl QueryFragment<Pg> for PgBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = pg_batch_sql();
        out.push_sql(&sql.guard);
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.first_created)?;
        out.push_sql(&sql.records);
        out.push_bind_param::<Array<BigInt>, _>(self.ids)?;
        out.push_sql("::int8[], ");
        self.records.walk_arrays(&mut out)?;
        out.push_sql(&sql.audit);
        self.entries.walk_arrays(&mut out)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.links.chain)?;
        out.push_sql("::int8[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.links.seq)?;
        out.push_sql("::int8[], ");
        out.push_bind_param::<Array<Binary>, _>(&self.links.hash)?;
        out.push_sql(&sql.keys);
        self.keys.walk_arrays(&mut out)?;
        out.push_sql(&sql.answer);
        out.push_bind_param::<Integer, _>(&self.refill)?;
        out.push_sql("::int4)) AS ids");
        Ok(())
    }
}

/// The fixed text around the batch statement's parameters, derived from the write
/// shapes.
struct PgBatchSql {
    guard: String,
    records: String,
    audit: String,
    keys: String,
    answer: String,
}

fn pg_batch_sql() -> &'static PgBatchSql {
    static SQL: OnceLock<PgBatchSql> = OnceLock::new();
    SQL.get_or_init(|| {
        let record_columns = NewRecord::COLUMNS.join(", ");
        let entry_columns = format!(
            "{}, {}",
            NewEntry::COLUMNS.join(", "),
            LINK_COLUMNS.join(", ")
        );
        let key_columns = NewKey::COLUMNS.join(", ");
        // The floor is read under the feed lock (see the forensic-fields migration), once:
        // the entries' ids are drawn under the same lock, so nothing can commit between.
        PgBatchSql {
            guard: "WITH guard AS MATERIALIZED (SELECT histories_created_floor() AS floor), \
                    ok AS MATERIALIZED (SELECT 1 FROM guard \
                    WHERE guard.floor IS NULL OR guard.floor <= COALESCE("
                .to_owned(),
            records: format!(
                "::timestamp, guard.floor)), \
                 records AS (INSERT INTO randomizes (id, {record_columns}) \
                 SELECT * FROM UNNEST("
            ),
            audit: format!(
                ") AS u(id, {record_columns}) WHERE EXISTS (SELECT 1 FROM ok)), \
                 audit AS (INSERT INTO histories ({entry_columns}) SELECT * FROM UNNEST("
            ),
            keys: format!(
                "::bytea[]) AS e({entry_columns}) WHERE EXISTS (SELECT 1 FROM ok)), \
                 keys AS (INSERT INTO idempotency_keys ({key_columns}) SELECT * FROM UNNEST("
            ),
            answer: format!(
                ") AS k({key_columns}) WHERE EXISTS (SELECT 1 FROM ok)) \
                 SELECT (SELECT floor FROM guard) AS floor, EXISTS (SELECT 1 FROM ok) AS stored, \
                 ARRAY(SELECT nextval('randomizes_id_seq'::regclass) FROM generate_series(1, "
            ),
        }
    })
}

impl QueryId for PgBatch<'_> {
    type QueryId = PgBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for PgBatch<'_> {
    type SqlType = (Nullable<Timestamp>, Bool, Array<BigInt>);
}

impl RunQueryDsl<PgConnection> for PgBatch<'_> {}
