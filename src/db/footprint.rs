//! How much the database holds, for `/metrics`: its size on disk and the age of the
//! oldest audit entry (what retention keeps bounded).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::connection::DbConnection;
use super::error::StoreError;
use super::schema::histories;

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// The database's size in bytes: SQLite's pages (the WAL aside), PostgreSQL's
/// `pg_database_size`.
pub(crate) fn size_bytes(conn: &mut DbConnection) -> Result<i64, StoreError> {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
        }
        DbConnection::Postgres(_) => "SELECT pg_database_size(current_database()) AS bytes",
    };
    Ok(diesel::sql_query(sql).get_result::<Bytes>(conn)?.bytes)
}

/// When the oldest entry still held was created (`created` follows id order).
pub(crate) fn oldest_entry(conn: &mut DbConnection) -> Result<Option<NaiveDateTime>, StoreError> {
    Ok(histories::table
        .select(histories::created)
        .order(histories::id.asc())
        .limit(1)
        .load(conn)?
        .pop())
}
