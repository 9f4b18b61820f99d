//! `service_secrets`: keys the service generates for itself at migration time and keeps
//! in the database, so every replica shares them and they outlive restarts.

use diesel::prelude::*;

use super::connection::DbConnection;
use super::error::StoreError;
use super::schema::service_secrets;

/// Signs paging cursors (`api::cursor`).
pub(crate) const CURSOR: &str = "cursor";

pub(crate) fn get(conn: &mut DbConnection, name: &str) -> Result<Vec<u8>, StoreError> {
    Ok(service_secrets::table
        .find(name)
        .select(service_secrets::secret)
        .get_result(conn)?)
}
