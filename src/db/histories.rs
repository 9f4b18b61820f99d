//! Queries on `histories`, the audit trail (SPEC §5).

use chrono::NaiveDateTime;
use diesel::prelude::*;

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
