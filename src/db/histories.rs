//! The `histories` table: the audit trail (SPEC §5), its write shape and its queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Double, Integer, Nullable, Text, Timestamp};

use super::connection::DbConnection;
use super::error::StoreError;
use super::schema::histories;
use super::shape::write_shape;
use super::values::escape_like;

write_shape! {
    /// One audit entry as written. Never holds a token, an `Authorization` header or a body.
    #[derive(Debug, Clone, PartialEq)]
    pub struct NewEntry into "histories", unnested as EntryColumns {
        request_id: String => Text,
        method: String => Text,
        path: String => Text,
        query: Option<String> => Nullable<Text>,
        status: i32 => Integer,
        duration_ms: f64 => Double,
        client_ip: Option<String> => Nullable<Text>,
        user_agent: Option<String> => Nullable<Text>,
        subject: Option<String> => Nullable<Text>,
        created: NaiveDateTime => Timestamp,
    }
}

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct Entry {
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
pub(crate) struct Filter {
    /// Exact, upper-case.
    pub(crate) method: Option<String>,
    /// Case-sensitive prefix; wildcards are literal.
    pub(crate) path_prefix: Option<String>,
    pub(crate) status: Option<i32>,
    /// Inclusive.
    pub(crate) since: Option<NaiveDateTime>,
    /// Exclusive, so consecutive windows never count an entry twice.
    pub(crate) until: Option<NaiveDateTime>,
}

type Backend = <DbConnection as Connection>::Backend;

pub(crate) fn find(conn: &mut DbConnection, entry_id: i64) -> Result<Entry, StoreError> {
    // No `.first()`: see `randomizes::find`.
    Ok(histories::table.find(entry_id).get_result(conn)?)
}

/// One page, newest first, and the total matching `filter`.
pub(crate) fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Entry>, i64), StoreError> {
    use histories::dsl;
    let filtered = || {
        let mut query = histories::table.into_boxed::<Backend>();
        if let Some(method) = &filter.method {
            query = query.filter(dsl::method.eq(method.clone()));
        }
        if let Some(prefix) = &filter.path_prefix {
            query = query.filter(
                dsl::path
                    .like(format!("{}%", escape_like(prefix)))
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
