//! Queries on `histories`, the audit trail (SPEC §5).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Array, Double, Integer, Nullable, Text, Timestamp};

use super::schema::histories;
use super::{DbConnection, StoreError};

/// One audit entry as written. Never holds a token, an `Authorization` header or a body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHistory {
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: i32,
    pub duration_ms: f64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub subject: Option<String>,
    pub created: NaiveDateTime,
}

/// One INSERT for all of `entries`.
pub fn insert_many(conn: &mut DbConnection, entries: &[&NewHistory]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    const TARGET: &str = "histories (request_id, method, path, query, status, duration_ms, \
                          client_ip, user_agent, subject, created)";
    match conn {
        // One array per column: the statement text is the same for every batch size, so
        // the server parses and plans ten parameters instead of ten per row.
        DbConnection::Postgres(pg) => {
            let column =
                |f: fn(&NewHistory) -> &str| entries.iter().map(|e| f(e)).collect::<Vec<_>>();
            let optional = |f: fn(&NewHistory) -> Option<&str>| {
                entries.iter().map(|e| f(e)).collect::<Vec<_>>()
            };
            diesel::sql_query(format!(
                "INSERT INTO {TARGET} SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
                 $4::text[], $5::int4[], $6::float8[], $7::text[], $8::text[], $9::text[], \
                 $10::timestamp[])"
            ))
            .bind::<Array<Text>, _>(column(|e| &e.request_id))
            .bind::<Array<Text>, _>(column(|e| &e.method))
            .bind::<Array<Text>, _>(column(|e| &e.path))
            .bind::<Array<Nullable<Text>>, _>(optional(|e| e.query.as_deref()))
            .bind::<Array<Integer>, _>(entries.iter().map(|e| e.status).collect::<Vec<_>>())
            .bind::<Array<Double>, _>(entries.iter().map(|e| e.duration_ms).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(optional(|e| e.client_ip.as_deref()))
            .bind::<Array<Nullable<Text>>, _>(optional(|e| e.user_agent.as_deref()))
            .bind::<Array<Nullable<Text>>, _>(optional(|e| e.subject.as_deref()))
            .bind::<Array<Timestamp>, _>(entries.iter().map(|e| e.created).collect::<Vec<_>>())
            .execute(pg)?;
        }
        DbConnection::Sqlite(sqlite) => {
            let sql = super::sqlite_multi_row_insert(TARGET, 10, entries.len());
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
            query.execute(sqlite)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct History {
    pub id: i64,
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: i32,
    pub duration_ms: f64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub subject: Option<String>,
    pub created: NaiveDateTime,
}

/// Narrows the history; every field is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Exact, upper-case.
    pub method: Option<String>,
    /// Case-sensitive prefix; wildcards are literal.
    pub path_prefix: Option<String>,
    pub status: Option<i32>,
    /// Inclusive.
    pub since: Option<NaiveDateTime>,
    /// Exclusive, so consecutive windows never count an entry twice.
    pub until: Option<NaiveDateTime>,
}

type Backend = <DbConnection as Connection>::Backend;

pub fn find(conn: &mut DbConnection, entry_id: i64) -> Result<History, StoreError> {
    // No `.first()`: see `randomizes::find`.
    Ok(histories::table.find(entry_id).get_result(conn)?)
}

/// One page, newest first, and the total matching `filter`.
pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<History>, i64), StoreError> {
    use histories::dsl;
    let filtered = || {
        let mut query = histories::table.into_boxed::<Backend>();
        if let Some(method) = &filter.method {
            query = query.filter(dsl::method.eq(method.clone()));
        }
        if let Some(prefix) = &filter.path_prefix {
            query = query.filter(
                dsl::path
                    .like(format!("{}%", super::escape_like(prefix)))
                    .escape('\\'),
            );
        }
        if let Some(status) = filter.status {
            query = query.filter(dsl::status.eq(status));
        }
        if let Some(since) = filter.since {
            query = query.filter(dsl::created.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(dsl::created.lt(until));
        }
        query
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order(dsl::id.desc())
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}
