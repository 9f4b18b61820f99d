//! How the writer stores one batch: every new record and every audit entry, in as few
//! statements as the backend allows.
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
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamp};

use super::histories::NewHistory;
use super::randomizes::{Jumbled, Randomize};
use super::{DbConnection, StoreError};

const RECORD_COLUMNS: &str =
    "randomizes (original, original_folded, jumbled, version, created, updated)";
const RETURNING: &str = "id, original, jumbled, version, created, updated";
const AUDIT_COLUMNS: &str = "histories (request_id, method, path, query, status, duration_ms, \
                             client_ip, user_agent, subject, created)";

/// Inserts `new` and `entries`; the records come back in the order of `new`. Runs in
/// the caller's transaction if one is open; on PostgreSQL it is atomic on its own too.
pub fn insert(
    conn: &mut DbConnection,
    new: &[&Jumbled],
    entries: &[&NewHistory],
) -> Result<Vec<Randomize>, StoreError> {
    let inserted = match conn {
        DbConnection::Postgres(pg) if !new.is_empty() => {
            PgBatch::new(new, entries).load::<Randomize>(pg)?
        }
        DbConnection::Postgres(pg) => {
            if !entries.is_empty() {
                PgAudit(AuditArrays::new(entries)).execute(pg)?;
            }
            Vec::new()
        }
        DbConnection::Sqlite(sqlite) => {
            let inserted = sqlite_records(sqlite, new)?;
            sqlite_audit(sqlite, entries)?;
            inserted
        }
    };
    in_request_order(new, inserted)
}

/// Neither backend promises RETURNING rows in input order (SQLite documents it as
/// arbitrary), so rows are matched back by content. Rows with equal content differ only
/// in id, and either of them is a correct answer to either request.
fn in_request_order(
    new: &[&Jumbled],
    inserted: Vec<Randomize>,
) -> Result<Vec<Randomize>, StoreError> {
    let mut waiting: HashMap<(&str, &str, NaiveDateTime), Vec<usize>> = HashMap::new();
    for (index, n) in new.iter().enumerate() {
        let key = (n.original.as_str(), n.jumbled.as_str(), n.at);
        waiting.entry(key).or_default().push(index);
    }
    let targets: Vec<Option<usize>> = inserted
        .iter()
        .map(|r| {
            let key = (r.original.as_str(), r.jumbled.as_str(), r.created);
            waiting.get_mut(&key).and_then(Vec::pop)
        })
        .collect();
    let mut records: Vec<Option<Randomize>> = vec![None; new.len()];
    for (record, target) in inserted.into_iter().zip(targets) {
        if let Some(index) = target {
            records[index] = Some(record);
        }
    }
    records
        .into_iter()
        .map(|record| {
            record.ok_or_else(|| StoreError::Task("an inserted record did not come back".into()))
        })
        .collect()
}

/// The audit entries as one array per column.
struct AuditArrays<'a> {
    request_id: Vec<&'a str>,
    method: Vec<&'a str>,
    path: Vec<&'a str>,
    query: Vec<Option<&'a str>>,
    status: Vec<i32>,
    duration_ms: Vec<f64>,
    client_ip: Vec<Option<&'a str>>,
    user_agent: Vec<Option<&'a str>>,
    subject: Vec<Option<&'a str>>,
    created: Vec<NaiveDateTime>,
}

impl<'a> AuditArrays<'a> {
    fn new(entries: &[&'a NewHistory]) -> Self {
        let text = |f: fn(&'a NewHistory) -> &'a str| entries.iter().map(|e| f(e)).collect();
        let optional =
            |f: fn(&'a NewHistory) -> Option<&'a str>| entries.iter().map(|e| f(e)).collect();
        Self {
            request_id: text(|e| &e.request_id),
            method: text(|e| &e.method),
            path: text(|e| &e.path),
            query: optional(|e| e.query.as_deref()),
            status: entries.iter().map(|e| e.status).collect(),
            duration_ms: entries.iter().map(|e| e.duration_ms).collect(),
            client_ip: optional(|e| e.client_ip.as_deref()),
            user_agent: optional(|e| e.user_agent.as_deref()),
            subject: optional(|e| e.subject.as_deref()),
            created: entries.iter().map(|e| e.created).collect(),
        }
    }

    /// `UNNEST(…)` of the ten arrays, as the next ten parameters.
    fn walk_unnest<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UNNEST(");
        array::<Text, _>(out, &self.request_id, "text[], ")?;
        array::<Text, _>(out, &self.method, "text[], ")?;
        array::<Text, _>(out, &self.path, "text[], ")?;
        array::<Nullable<Text>, _>(out, &self.query, "text[], ")?;
        array::<Integer, _>(out, &self.status, "int4[], ")?;
        array::<Double, _>(out, &self.duration_ms, "float8[], ")?;
        array::<Nullable<Text>, _>(out, &self.client_ip, "text[], ")?;
        array::<Nullable<Text>, _>(out, &self.user_agent, "text[], ")?;
        array::<Nullable<Text>, _>(out, &self.subject, "text[], ")?;
        array::<Timestamp, _>(out, &self.created, "timestamp[])")
    }
}

/// One column's values as one array parameter, cast so the statement's text fixes its
/// type, followed by `then` (the separator or closing SQL).
fn array<'b, ST, U>(out: &mut AstPass<'_, 'b, Pg>, values: &'b [U], then: &str) -> QueryResult<()>
where
    ST: 'static,
    Pg: HasSqlType<ST>,
    U: ToSql<ST, Pg>,
{
    out.push_bind_param::<Array<ST>, [U]>(values)?;
    out.push_sql("::");
    out.push_sql(then);
    Ok(())
}

/// `INSERT INTO histories … SELECT * FROM UNNEST(…)`: a batch of reads' audit entries.
struct PgAudit<'a>(AuditArrays<'a>);

impl QueryFragment<Pg> for PgAudit<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&format!("INSERT INTO {AUDIT_COLUMNS} SELECT * FROM "));
        self.0.walk_unnest(&mut out)
    }
}

/// Same SQL for every value, so diesel prepares it once per connection (a named
/// statement) instead of the server parsing and planning it for every batch.
impl QueryId for PgAudit<'_> {
    type QueryId = PgAudit<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<PgConnection> for PgAudit<'_> {}

/// The records and the audit entries in one statement, returning the records.
struct PgBatch<'a> {
    original: Vec<&'a str>,
    folded: Vec<String>,
    jumbled: Vec<&'a str>,
    at: Vec<NaiveDateTime>,
    audit: AuditArrays<'a>,
}

impl<'a> PgBatch<'a> {
    fn new(new: &[&'a Jumbled], entries: &[&'a NewHistory]) -> Self {
        Self {
            original: new.iter().map(|n| n.original.as_str()).collect(),
            folded: new.iter().map(|n| n.original.to_lowercase()).collect(),
            jumbled: new.iter().map(|n| n.jumbled.as_str()).collect(),
            at: new.iter().map(|n| n.at).collect(),
            audit: AuditArrays::new(entries),
        }
    }
}

impl QueryFragment<Pg> for PgBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&format!(
            "WITH records AS (INSERT INTO {RECORD_COLUMNS} SELECT o, f, j, 1, c, c FROM UNNEST("
        ));
        array::<Text, _>(&mut out, &self.original, "text[], ")?;
        array::<Text, _>(&mut out, &self.folded, "text[], ")?;
        array::<Text, _>(&mut out, &self.jumbled, "text[], ")?;
        array::<Timestamp, _>(&mut out, &self.at, "timestamp[]")?;
        out.push_sql(&format!(
            ") AS t (o, f, j, c) RETURNING {RETURNING}), \
             audit AS (INSERT INTO {AUDIT_COLUMNS} SELECT * FROM "
        ));
        self.audit.walk_unnest(&mut out)?;
        out.push_sql(&format!(") SELECT {RETURNING} FROM records"));
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

/// `INSERT INTO {target} VALUES (?, …), (?, …), …` for `rows` rows of `columns`. SQLite
/// has no arrays to bind, and diesel's typed multi-row INSERT is not available for it
/// through `MultiConnection`.
fn sqlite_multi_row_insert(target: &str, columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("INSERT INTO {target} VALUES {}", vec![row; rows].join(", "))
}

fn sqlite_records(
    conn: &mut SqliteConnection,
    new: &[&Jumbled],
) -> Result<Vec<Randomize>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{} RETURNING {RETURNING}",
        sqlite_multi_row_insert(RECORD_COLUMNS, 6, new.len())
    );
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    for n in new {
        query = query
            .bind::<Text, _>(&n.original)
            .bind::<Text, _>(n.original.to_lowercase())
            .bind::<Text, _>(&n.jumbled)
            .bind::<Integer, _>(1)
            .bind::<Timestamp, _>(n.at)
            .bind::<Timestamp, _>(n.at);
    }
    Ok(query.load(conn)?)
}

fn sqlite_audit(conn: &mut SqliteConnection, entries: &[&NewHistory]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let sql = sqlite_multi_row_insert(AUDIT_COLUMNS, 10, entries.len());
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    for e in entries {
        query = query
            .bind::<Text, _>(&e.request_id)
            .bind::<Text, _>(&e.method)
            .bind::<Text, _>(&e.path)
            .bind::<Nullable<Text>, _>(&e.query)
            .bind::<Integer, _>(e.status)
            .bind::<Double, _>(e.duration_ms)
            .bind::<Nullable<Text>, _>(&e.client_ip)
            .bind::<Nullable<Text>, _>(&e.user_agent)
            .bind::<Nullable<Text>, _>(&e.subject)
            .bind::<Timestamp, _>(e.created);
    }
    query.execute(conn)?;
    Ok(())
}
