//! SQLite's multi-row INSERT, kept prepared.
//!
//! SQLite has no arrays to bind (PostgreSQL's batch binds one per column, `UNNEST`), so
//! a batch's rows are `VALUES (?, …), (?, …), …`, and the statement's text depends on
//! how many rows it holds. diesel keeps a prepared statement per distinct text unless
//! the query says it must not be cached (its `sql_query` does, so every batch was
//! parsed and planned afresh: a tenth of the writer's time under load). Here rows go in
//! chunks of a power of two up to `MAX_CHUNK`, so a table has at most nine statement
//! texts, each prepared once per connection.

use diesel::QueryResult;
use diesel::RunQueryDsl;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Untyped;
use diesel::sqlite::{Sqlite, SqliteConnection};

use super::shape::WriteShape;

/// The largest chunk: a batch of `MAX_BATCH` (512) rows is two statements.
const MAX_CHUNK: usize = 256;

/// One row's parameters.
pub(crate) trait SqliteRow {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

impl<S: WriteShape> SqliteRow for &S {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        (**self).walk_sqlite(out)
    }
}

/// `{head}(row), (row), …{tail}` for one chunk of rows.
pub(crate) struct SqliteRows<'a, R> {
    head: &'a str,
    rows: &'a [R],
    tail: &'a str,
}

/// The statements that insert `rows`: `head` is `INSERT INTO t (…) VALUES `, `tail`
/// what follows the rows (`RETURNING …`, or nothing).
pub(crate) fn chunks<'a, R>(
    head: &'a str,
    rows: &'a [R],
    tail: &'a str,
) -> impl Iterator<Item = SqliteRows<'a, R>> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = chunk_size(rest.len());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        Some(SqliteRows {
            head,
            rows: chunk,
            tail,
        })
    })
}

/// The largest power of two, at most `MAX_CHUNK`, that `remaining` rows fill.
fn chunk_size(remaining: usize) -> usize {
    let fits = 1usize << (usize::BITS - 1 - remaining.leading_zeros());
    fits.min(MAX_CHUNK)
}

impl<R: SqliteRow> QueryFragment<Sqlite> for SqliteRows<'_, R> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(self.head);
        let mut separator = "(";
        for row in self.rows {
            out.push_sql(separator);
            row.walk(&mut out)?;
            separator = "), (";
        }
        out.push_sql(")");
        out.push_sql(self.tail);
        Ok(())
    }
}

impl<R> QueryId for SqliteRows<'_, R> {
    type QueryId = ();
    // Cached by its text: one prepared statement per table and chunk size.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<R> Query for SqliteRows<'_, R> {
    type SqlType = Untyped;
}

impl<R> RunQueryDsl<SqliteConnection> for SqliteRows<'_, R> {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::{Connection, InstrumentationEvent, SimpleConnection};
    use diesel::sql_types::BigInt;

    use super::*;

    struct Value(i64);

    impl SqliteRow for Value {
        fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            out.push_bind_param::<BigInt, _>(&self.0)
        }
    }

    /// The point of the module: batches of any size reuse a few prepared statements.
    #[test]
    fn each_chunk_size_is_prepared_once_per_connection() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap_or_else(|e| panic!("{e}"));
        conn.batch_execute("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap_or_else(|e| panic!("{e}"));
        let prepared = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&prepared);
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        for size in [5, 5, 7, 4, 1, 300, 6] {
            let rows: Vec<Value> = (0..size).map(Value).collect();
            for chunk in chunks("INSERT INTO t (v) VALUES ", &rows, "") {
                chunk.execute(&mut conn).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        // Chunks of 4, 1, 2, 256, 32 and 8 rows: six texts for 328 rows in 15 statements.
        assert_eq!(prepared.load(Ordering::Relaxed), 6);
        let stored: i64 = diesel::select(diesel::dsl::sql::<BigInt>("(SELECT COUNT(*) FROM t)"))
            .get_result(&mut conn)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored, 328);
    }

    #[test]
    fn batches_are_cut_into_few_shapes() {
        let sizes = |n: usize| {
            let rows = vec![0u8; n];
            chunks("", &rows, "")
                .map(|c| c.rows.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(63), [32, 16, 8, 4, 2, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(512), [256, 256]);
        assert_eq!(sizes(300), [256, 32, 8, 4]);
    }
}
