//! How the writer stores one batch: every new record and every audit entry, in as few
//! statements as the backend allows. The statements are built from the tables' write
//! shapes (`NewRecord`, `NewEntry`), never from column lists of their own.
//!
//! PostgreSQL gets one statement per batch, prepared once per connection: a data-modifying
//! CTE inserts the records and the audit entries from one array per column (`UNNEST`), so
//! the statement text is the same for every batch size. Alone it is its own transaction,
//! which is how the writer commits a batch in a single round trip. SQLite, in-process,
//! takes one multi-row INSERT per table.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};
use std::sync::OnceLock;

use super::connection::DbConnection;
use super::error::StoreError;
use super::histories::{EntryColumns, NewEntry};
use super::randomizes::{NewRecord, RETURNED, Record, RecordColumns};
use super::schema::histories;
use super::shape::{SqliteStatement, Unnest, WriteShape};

/// An audit entry to insert. `of_record` is the position, in the batch's records, of
/// the record whose creation the entry describes: its `resource_id` becomes that
/// record's id, which only the database knows.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub entry: &'a NewEntry,
    pub of_record: Option<usize>,
}

/// Inserts `records` and `entries`; the stored records come back in the order of
/// `records`. Runs in the caller's transaction if one is open; on PostgreSQL it is atomic
/// on its own too.
pub fn insert(
    conn: &mut DbConnection,
    records: &[&NewRecord],
    entries: &[Audit<'_>],
) -> Result<Vec<Record>, StoreError> {
    match conn {
        DbConnection::Postgres(pg) if !records.is_empty() => {
            let rows = in_history_order(entries, None);
            let rows: Vec<&NewEntry> = rows.iter().map(AsRef::as_ref).collect();
            let stored = PgBatch {
                records: RecordColumns::new(records),
                entries: EntryColumns::new(&rows),
                // 1-based, as `WITH ORDINALITY` counts.
                of_record: entries
                    .iter()
                    .map(|a| a.of_record.map(|i| i as i64 + 1))
                    .collect(),
            }
            .load::<Record>(pg)?;
            in_request_order(records, stored)
        }
        DbConnection::Postgres(pg) => {
            if !entries.is_empty() {
                let rows = in_history_order(entries, None);
                let rows: Vec<&NewEntry> = rows.iter().map(AsRef::as_ref).collect();
                PgAppend(EntryColumns::new(&rows)).execute(pg)?;
            }
            Ok(Vec::new())
        }
        DbConnection::Sqlite(sqlite) => {
            let stored = if records.is_empty() {
                Vec::new()
            } else {
                let returning = format!(" RETURNING {RETURNED}");
                let stored = sqlite_insert(records, &returning).load::<Record>(sqlite)?;
                in_request_order(records, stored)?
            };
            if !entries.is_empty() {
                // One writer per file: the newest committed entry is the floor.
                let floor = histories::table
                    .select(diesel::dsl::max(histories::created))
                    .get_result::<Option<NaiveDateTime>>(sqlite)?;
                let rows = in_history_order(entries, floor);
                let rows: Vec<Cow<'_, NewEntry>> = rows
                    .into_iter()
                    .zip(entries)
                    .map(
                        |(row, audit)| match audit.of_record.and_then(|i| stored.get(i)) {
                            Some(record) => Cow::Owned(NewEntry {
                                resource_id: Some(record.id),
                                ..row.into_owned()
                            }),
                            None => row,
                        },
                    )
                    .collect();
                let rows: Vec<&NewEntry> = rows.iter().map(AsRef::as_ref).collect();
                sqlite_insert(&rows, "").execute(sqlite)?;
            }
            Ok(stored)
        }
    }
}

/// The entries with `created` never decreasing in insertion (= id) order, starting
/// from `floor`, so a time window of the history is an id range (`histories::list`).
/// Stamps taken on several threads reach the writer a few microseconds out of order;
/// such an entry takes its predecessor's time. On PostgreSQL the floor of committed
/// entries is applied in the statement itself, under the feed lock.
fn in_history_order<'a>(
    entries: &[Audit<'a>],
    floor: Option<NaiveDateTime>,
) -> Vec<Cow<'a, NewEntry>> {
    let mut newest = floor;
    entries
        .iter()
        .map(|audit| match newest {
            Some(at) if audit.entry.created < at => Cow::Owned(NewEntry {
                created: at,
                ..audit.entry.clone()
            }),
            _ => {
                newest = Some(audit.entry.created);
                Cow::Borrowed(audit.entry)
            }
        })
        .collect()
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

/// `INSERT INTO table (…) VALUES (?, …), (?, …), …` with every row bound. SQLite has no
/// arrays to bind, and diesel's typed multi-row INSERT is not available for it through
/// `MultiConnection`.
fn sqlite_insert<'a, S: WriteShape>(rows: &[&'a S], then: &str) -> SqliteStatement<'a> {
    let row = format!("({})", vec!["?"; S::WIDTH].join(", "));
    let sql = format!(
        "INSERT INTO {} VALUES {}{then}",
        S::target(),
        vec![row; rows.len()].join(", ")
    );
    rows.iter()
        .fold(diesel::sql_query(sql).into_boxed(), |statement, row| {
            row.bind_sqlite(statement)
        })
}

/// `INSERT INTO histories … SELECT * FROM UNNEST(…)`: a batch of audit entries alone.
struct PgAppend<'a>(EntryColumns<'a>);

impl QueryFragment<Pg> for PgAppend<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = pg_batch_sql();
        out.push_sql(&sql.append);
        self.0.walk_arrays(&mut out)?;
        out.push_sql(&sql.append_end);
        Ok(())
    }
}

/// Same SQL for every value, so diesel prepares it once per connection (a named
/// statement) instead of the server parsing and planning it for every batch.
impl QueryId for PgAppend<'_> {
    type QueryId = PgAppend<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<PgConnection> for PgAppend<'_> {}

/// The records and the audit entries in one statement, returning the records.
///
/// The records' ids are drawn first (`input`, materialized once), so an entry about a
/// creation can carry the id of the record it created (`of_record` joins them).
struct PgBatch<'a> {
    records: RecordColumns<'a>,
    entries: EntryColumns<'a>,
    of_record: Vec<Option<i64>>,
}

impl QueryFragment<Pg> for PgBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = pg_batch_sql();
        out.push_sql(&sql.input);
        self.records.walk_arrays(&mut out)?;
        out.push_sql(&sql.records);
        self.entries.walk_arrays(&mut out)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.of_record)?;
        out.push_sql(&sql.audit);
        Ok(())
    }
}

/// The fixed text around the batch statements' array parameters, derived from the
/// write shapes.
struct PgBatchSql {
    input: String,
    records: String,
    audit: String,
    append: String,
    append_end: String,
}

fn pg_batch_sql() -> &'static PgBatchSql {
    static SQL: OnceLock<PgBatchSql> = OnceLock::new();
    SQL.get_or_init(|| {
        let record_columns = NewRecord::COLUMNS.join(", ");
        let entry_columns = NewEntry::COLUMNS.join(", ");
        // `created` never below the newest committed entry's (read under the feed lock,
        // once per statement: see the forensic-fields migration), so time windows are
        // id ranges whichever replica wrote.
        let entry_values = |with_records: bool| {
            NewEntry::COLUMNS
                .iter()
                .map(|&column| match column {
                    "resource_id" if with_records => "COALESCE(e.resource_id, input.id)".to_owned(),
                    "created" => "GREATEST(e.created, (SELECT histories_created_floor()))".to_owned(),
                    column => format!("e.{column}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let batch_values = entry_values(true);
        PgBatchSql {
            input: "WITH input AS MATERIALIZED (SELECT nextval('randomizes_id_seq'::regclass) AS id, u.* \
                    FROM UNNEST("
                .to_owned(),
            records: format!(
                ") WITH ORDINALITY AS u({record_columns}, ord)), \
                 records AS (INSERT INTO randomizes (id, {record_columns}) \
                 SELECT id, {record_columns} FROM input RETURNING {RETURNED}), \
                 audit AS (INSERT INTO histories ({entry_columns}) SELECT {batch_values} FROM UNNEST("
            ),
            audit: format!(
                "::int8[]) AS e({entry_columns}, record_ord) \
                 LEFT JOIN input ON input.ord = e.record_ord) \
                 SELECT {RETURNED} FROM records"
            ),
            append: format!(
                "INSERT INTO histories ({entry_columns}) SELECT {} FROM UNNEST(",
                entry_values(false)
            ),
            append_end: format!(") AS e({entry_columns})"),
        }
    })
}

impl QueryId for PgBatch<'_> {
    type QueryId = PgBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for PgBatch<'_> {
    type SqlType = (BigInt, Text, Text, Integer, Timestamp, Timestamp);
}

impl RunQueryDsl<PgConnection> for PgBatch<'_> {}
