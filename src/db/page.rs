//! One page of a list, read by keyset: the rows after a position (a cursor's id) or,
//! for the first `MAX_MATCHES` matches only, after an offset; plus whether more follow
//! and, when it is cheap, how many match. Nothing here reads rows outside the page but
//! the bounded count.

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;

/// Page mode reaches this many matches at most, and counts up to it (SPEC §10): an exact
/// count beyond would cost a scan.
pub(crate) const MAX_MATCHES: i64 = 10_000;

/// Which way a list runs; ids are the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Skip this many matches (page mode; at most `MAX_MATCHES`).
    Offset(i64),
    /// The matches after this id, in the list's order (cursor mode).
    After(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub order: Order,
    pub start: Start,
    pub size: i64,
}

/// A page of rows. `total` is the exact number of matches when the list knows it
/// cheaply: at most `MAX_MATCHES` of them, or a kept counter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page<T> {
    pub(crate) rows: Vec<T>,
    pub(crate) more: bool,
    pub(crate) total: Option<i64>,
}

impl<T> Page<T> {
    /// The same page with each row converted.
    pub(crate) fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U> {
        Page {
            rows: self.rows.into_iter().map(convert).collect(),
            more: self.more,
            total: self.total,
        }
    }

    /// `fetched` was read with `LIMIT size + 1`: the extra row only says that more follow.
    pub(crate) fn from_fetched(mut fetched: Vec<T>, window: &Window) -> Self {
        let size = usize::try_from(window.size).unwrap_or(usize::MAX);
        let more = fetched.len() > size;
        fetched.truncate(size);
        Self {
            rows: fetched,
            more,
            total: None,
        }
    }

    /// In page mode, a page that ends the list tells the total by itself; otherwise it
    /// takes `count` (bounded by the caller).
    pub(crate) fn with_total(
        mut self,
        window: &Window,
        count: impl FnOnce() -> Result<i64, super::StoreError>,
    ) -> Result<Self, super::StoreError> {
        let Start::Offset(offset) = window.start else {
            return Ok(self);
        };
        let counted = if !self.more && (!self.rows.is_empty() || offset == 0) {
            offset + self.rows.len() as i64
        } else {
            count()?
        };
        self.total = (counted <= MAX_MATCHES).then_some(counted);
        Ok(self)
    }
}

/// `SELECT COUNT(*) FROM (<query> LIMIT MAX_MATCHES + 1)`: how many rows match, read
/// no further than one past the page-mode window. `<query>` has no LIMIT of its own.
pub(crate) struct CountCapped<Q>(pub(crate) Q);

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for CountCapped<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}) capped", MAX_MATCHES + 1));
        Ok(())
    }
}

impl<Q> QueryId for CountCapped<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for CountCapped<Q> {
    type SqlType = BigInt;
}

impl<Q, C> RunQueryDsl<C> for CountCapped<Q> {}

/// `EXPLAIN` of a query, as the backend plans it with these bound values: what the
/// index tests read (`histories::plan`, `randomizes::plan`).
struct Explain<Q> {
    query: Q,
    sqlite: bool,
}

/// One line of a plan: SQLite's `detail` column, PostgreSQL's `QUERY PLAN`.
#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(if self.sqlite {
            "EXPLAIN QUERY PLAN "
        } else {
            "EXPLAIN "
        });
        self.query.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Q, C> RunQueryDsl<C> for Explain<Q> {}

/// The plan of `query` on `conn`, one line per step.
pub(crate) fn explain<Q>(
    conn: &mut super::DbConnection,
    query: Q,
) -> Result<Vec<String>, super::StoreError>
where
    Q: QueryFragment<<super::DbConnection as Connection>::Backend>,
{
    let sqlite = matches!(conn, super::DbConnection::Sqlite(_));
    let explain = Explain { query, sqlite };
    Ok(if sqlite {
        explain
            .load::<SqlitePlanLine>(conn)?
            .into_iter()
            .map(|l| l.detail)
            .collect()
    } else {
        explain
            .load::<PgPlanLine>(conn)?
            .into_iter()
            .map(|l| l.line)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: Start) -> Window {
        Window {
            order: Order::NewestFirst,
            start,
            size: 10,
        }
    }

    #[test]
    fn the_extra_row_means_more() {
        let page = Page::from_fetched((0..11).collect(), &window(Start::Offset(0)));
        assert_eq!((page.rows.len(), page.more), (10, true));
        let page = Page::from_fetched((0..10).collect(), &window(Start::Offset(0)));
        assert_eq!((page.rows.len(), page.more), (10, false));
    }

    #[test]
    fn a_last_page_counts_itself_and_a_large_count_is_withheld() {
        let last = Page::from_fetched((0..3).collect::<Vec<i32>>(), &window(Start::Offset(20)));
        let counted = last.with_total(&window(Start::Offset(20)), || panic!("no count needed"));
        assert_eq!(counted.ok().map(|p| p.total), Some(Some(23)));
        let full = Page::from_fetched((0..11).collect::<Vec<i32>>(), &window(Start::Offset(0)));
        let counted = full.with_total(&window(Start::Offset(0)), || Ok(MAX_MATCHES + 1));
        assert_eq!(counted.ok().map(|p| p.total), Some(None));
        let cursor = Page::from_fetched(vec![1], &window(Start::After(5)));
        let counted = cursor.with_total(&window(Start::After(5)), || {
            panic!("no count in cursor mode")
        });
        assert_eq!(counted.ok().map(|p| p.total), Some(None));
    }
}
