//! Queries on `histories`, the audit trail (SPEC §5).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::histories;
use super::{DbConnection, StoreError};

/// One audit entry as written. Never holds a token, an `Authorization` header or a body.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = histories)]
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

pub fn insert(conn: &mut DbConnection, entry: &NewHistory) -> Result<(), StoreError> {
    diesel::insert_into(histories::table)
        .values(entry)
        .execute(conn)?;
    Ok(())
}
