//! `StoreError`: why a unit of database work did not happen, sorted by what the caller
//! can do about it.

use std::sync::Arc;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Cloneable, because one failed batch answers every request that was in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("no such record")]
    NotFound,
    #[error("the record changed since the client last read it")]
    PreconditionFailed,
    /// Worth retrying: pool exhausted, connection lost or shutting down.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Worth retrying: a lock held elsewhere (another process's write, an operator's DDL)
    /// outlasted `DATABASE_TIMEOUT`. The connection itself is fine.
    #[error("database locked: {0}")]
    Locked(String),
    #[error("database query failed")]
    Query(#[source] Arc<DieselError>),
    /// A broken promise inside the service (a lost reply, a cancelled blocking task):
    /// a bug to log, never the client's fault.
    #[error("internal storage failure: {0}")]
    Internal(String),
}

impl StoreError {
    /// Poisons the transaction it ran in (an SQL error aborts a PostgreSQL transaction);
    /// `NotFound` and `PreconditionFailed` are decided without failing a statement.
    pub(crate) fn aborts_transaction(&self) -> bool {
        !matches!(self, Self::NotFound | Self::PreconditionFailed)
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(kind, info) => {
                let message = info.message();
                if is_unavailable(&kind, message) {
                    Self::Unavailable(message.to_owned())
                } else if is_lock_timeout(message) {
                    Self::Locked(message.to_owned())
                } else {
                    Self::Query(Arc::new(DieselError::DatabaseError(kind, info)))
                }
            }
            DieselError::BrokenTransactionManager => Self::Unavailable("broken transaction".into()),
            other => Self::Query(Arc::new(other)),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

fn is_unavailable(kind: &DatabaseErrorKind, message: &str) -> bool {
    const TRANSIENT: [&str; 5] = [
        "terminating connection",
        "server closed the connection",
        "connection to server",
        "the database system is",
        "no connection to the server",
    ];
    matches!(
        kind,
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
    ) || TRANSIENT.iter().any(|t| message.contains(t))
}

/// SQLite after `busy_timeout`; PostgreSQL after `lock_timeout` (55P03).
fn is_lock_timeout(message: &str) -> bool {
    const LOCKED: [&str; 3] = [
        "database is locked",
        "database table is locked",
        "canceling statement due to lock timeout",
    ];
    LOCKED.iter().any(|l| message.contains(l))
}
