//! The `service_heartbeat` row: the smallest real write, for learning whether the
//! database takes writes again.

use diesel::prelude::*;

use super::connection::DbConnection;
use super::error::StoreError;
use super::schema::service_heartbeat::dsl;
use super::values::now;

pub(crate) fn beat(conn: &mut DbConnection) -> Result<(), StoreError> {
    diesel::update(dsl::service_heartbeat.find(1))
        .set(dsl::beat.eq(now()))
        .execute(conn)?;
    Ok(())
}
