//! How the writer stores one batch: every new record and every audit entry, in as few
//! statements as the backend allows. The statements are built from the tables' write
//! shapes (`NewRecord`, `NewEntry`), never from column lists of their own.
//!
//! PostgreSQL gets one statement per batch, prepared once per connection: a data-modifying
//! CTE inserts the records and the audit entries from one array per column (`UNNEST`), so
//! the statement text is the same for every batch size. Alone it is its own transaction,
//! which is how the writer commits a batch in a single round trip. SQLite, in-process,
//! takes one multi-row INSERT per table.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use super::connection::DbConnection;
use super::error::StoreError;
use super::histories::{EntryColumns, NewEntry};
use super::randomizes::{NewRecord, RETURNED, Record, RecordColumns};
use super::shape::{SqliteStatement, Unnest, WriteShape};

/// Inserts `records` and `entries`; the stored records come back in the order of
/// `records`. Runs in the caller's transaction if one is open; on PostgreSQL it is atomic
/// on its own too.
pub fn insert(
    conn: &mut DbConnection,
    records: &[&NewRecord],
    entries: &[&NewEntry],
) -> Result<Vec<Record>, StoreError> {
    let stored = match conn {
        DbConnection::Postgres(pg) if !records.is_empty() => PgBatch {
            records: RecordColumns::new(records),
            entries: EntryColumns::new(entries),
        }
        .load::<Record>(pg)?,
        DbConnection::Postgres(pg) => {
            if !entries.is_empty() {
                PgAppend(EntryColumns::new(entries)).execute(pg)?;
            }
            Vec::new()
        }
        DbConnection::Sqlite(sqlite) => {
            let stored = if records.is_empty() {
                Vec::new()
            } else {
                let returning = format!(" RETURNING {RETURNED}");
                sqlite_insert(records, &returning).load::<Record>(sqlite)?
            };
            if !entries.is_empty() {
                sqlite_insert(entries, "").execute(sqlite)?;
            }
            stored
        }
    };
    in_request_order(records, stored)
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
        insert_unnested::<NewEntry>(&mut out, &self.0)
    }
}

/// `INSERT INTO table (…) SELECT * FROM UNNEST(…)` for the rows in `columns`.
fn insert_unnested<'b, S: WriteShape>(
    out: &mut AstPass<'_, 'b, Pg>,
    columns: &'b impl Unnest,
) -> QueryResult<()> {
    out.push_sql("INSERT INTO ");
    out.push_sql(S::target());
    out.push_sql(" SELECT * FROM ");
    columns.walk_unnest(out)
}

/// Same SQL for every value, so diesel prepares it once per connection (a named
/// statement) instead of the server parsing and planning it for every batch.
impl QueryId for PgAppend<'_> {
    type QueryId = PgAppend<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<PgConnection> for PgAppend<'_> {}

/// The records and the audit entries in one statement, returning the records.
struct PgBatch<'a> {
    records: RecordColumns<'a>,
    entries: EntryColumns<'a>,
}

impl QueryFragment<Pg> for PgBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH records AS (");
        insert_unnested::<NewRecord>(&mut out, &self.records)?;
        out.push_sql(" RETURNING ");
        out.push_sql(RETURNED);
        out.push_sql("), audit AS (");
        insert_unnested::<NewEntry>(&mut out, &self.entries)?;
        out.push_sql(") SELECT ");
        out.push_sql(RETURNED);
        out.push_sql(" FROM records");
        Ok(())
    }
}

impl QueryId for PgBatch<'_> {
    type QueryId = PgBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for PgBatch<'_> {
    type SqlType = (BigInt, Text, Text, Integer, Timestamp, Timestamp);
}

impl RunQueryDsl<PgConnection> for PgBatch<'_> {}
