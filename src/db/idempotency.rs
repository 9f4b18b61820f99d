//! The `idempotency_keys` table (SPEC §13): the first response of a keyed write, stored
//! with the write in the writer's transaction (`batch::insert`), read back for replays,
//! and purged after `IDEMPOTENCY_TTL`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer, Nullable, Text, Timestamp};

use super::connection::DbConnection;
use super::error::StoreError;
use super::randomizes::Record;
use super::schema::idempotency_keys;
use super::shape::write_shape;

/// What a keyed request brings to its write: the key and the request's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub key: String,
    pub fingerprint: Vec<u8>,
}

write_shape! {
    /// A stored response: the status and the record it showed (none for a delete).
    #[derive(Debug, Clone, PartialEq)]
    pub struct NewKey into "idempotency_keys", unnested as KeyColumns {
        key: String => Text,
        fingerprint: Vec<u8> => Binary,
        status: i32 => Integer,
        record_id: Option<i64> => Nullable<BigInt>,
        version: Option<i32> => Nullable<Integer>,
        original: Option<String> => Nullable<Text>,
        jumbled: Option<String> => Nullable<Text>,
        record_created: Option<NaiveDateTime> => Nullable<Timestamp>,
        record_updated: Option<NaiveDateTime> => Nullable<Timestamp>,
        created: NaiveDateTime => Timestamp,
    }
}

impl NewKey {
    /// The response `claim`'s request got: `status` with `record`, or without one.
    pub(crate) fn answered(
        claim: &KeyClaim,
        status: i32,
        record: Option<&Record>,
        at: NaiveDateTime,
    ) -> Self {
        Self {
            key: claim.key.clone(),
            fingerprint: claim.fingerprint.clone(),
            status,
            record_id: record.map(|r| r.id),
            version: record.map(|r| r.version),
            original: record.map(|r| r.original.clone()),
            jumbled: record.map(|r| r.jumbled.clone()),
            record_created: record.map(|r| r.created),
            record_updated: record.map(|r| r.updated),
            created: at,
        }
    }
}

/// A stored response, as read back.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct StoredKey {
    pub key: String,
    pub fingerprint: Vec<u8>,
    pub status: i32,
    pub record_id: Option<i64>,
    pub version: Option<i32>,
    pub original: Option<String>,
    pub jumbled: Option<String>,
    pub record_created: Option<NaiveDateTime>,
    pub record_updated: Option<NaiveDateTime>,
    pub created: NaiveDateTime,
}

impl StoredKey {
    /// The record the response showed, if it showed one.
    pub fn record(&self) -> Option<Record> {
        Some(Record {
            id: self.record_id?,
            original: self.original.clone()?,
            jumbled: self.jumbled.clone()?,
            version: self.version?,
            created: self.record_created?,
            updated: self.record_updated?,
        })
    }
}

pub(crate) fn find(conn: &mut DbConnection, key: &str) -> Result<Option<StoredKey>, StoreError> {
    Ok(idempotency_keys::table
        .find(key)
        .load::<StoredKey>(conn)?
        .pop())
}

/// Removes up to `limit` keys stored before `before`; how many went.
pub(crate) fn expire(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<usize, StoreError> {
    // Raw SQL: diesel cannot delete from a table filtered by a limited subselect of it.
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys \
             WHERE created < ? ORDER BY created LIMIT ?)"
        }
        DbConnection::Postgres(_) => {
            "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys \
             WHERE created < $1 ORDER BY created LIMIT $2)"
        }
    };
    Ok(diesel::sql_query(sql)
        .bind::<Timestamp, _>(before)
        .bind::<BigInt, _>(limit)
        .execute(conn)?)
}
