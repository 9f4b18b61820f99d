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
    /// Worth retrying once an operator acts: the database refuses every write (disk
    /// full, read-only). Reported once per interval by `WriterStatus`, not per request.
    #[error("the database cannot take writes: {0}")]
    Unwritable(Unwritable),
    /// Another request with the same `Idempotency-Key` committed first (SPEC §13):
    /// its stored response is the answer.
    #[error("the idempotency key is already stored")]
    KeyTaken,
    #[error("database query failed")]
    Query(#[source] Arc<DieselError>),
    /// A broken promise inside the service (a lost reply, a cancelled blocking task):
    /// a bug to log, never the client's fault.
    #[error("internal storage failure: {0}")]
    Internal(String),
}

/// Why the database refuses writes (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unwritable {
    /// SQLite `SQLITE_FULL`; PostgreSQL out of disk space (53100).
    Full,
    /// SQLite `SQLITE_READONLY`; PostgreSQL read-only transaction (25006), a standby.
    ReadOnly,
    /// SQLite `SQLITE_IOERR`: the file could not be written.
    Io,
}

impl Unwritable {
    /// A metric label and a log field.
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "disk_full",
            Self::ReadOnly => "read_only",
            Self::Io => "io_error",
        }
    }

    fn of(kind: &DatabaseErrorKind, message: &str) -> Option<Self> {
        const FULL: [&str; 3] = [
            "database or disk is full",
            "No space left on device",
            "could not extend file",
        ];
        const READ_ONLY: [&str; 2] = ["readonly database", "read-only transaction"];
        if FULL.iter().any(|m| message.contains(m)) {
            Some(Self::Full)
        } else if matches!(kind, DatabaseErrorKind::ReadOnlyTransaction)
            || READ_ONLY.iter().any(|m| message.contains(m))
        {
            Some(Self::ReadOnly)
        } else if message.contains("disk I/O error") {
            Some(Self::Io)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Full => "the disk is full",
            Self::ReadOnly => "it is read-only",
            Self::Io => "the file cannot be written (I/O error)",
        })
    }
}

impl StoreError {
    /// A metric label: the kind of failure, never its text.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::PreconditionFailed => "precondition_failed",
            Self::Unavailable(_) => "unavailable",
            Self::Locked(_) => "locked",
            Self::Unwritable(cause) => cause.label(),
            Self::KeyTaken => "key_taken",
            Self::Query(_) => "query",
            Self::Internal(_) => "internal",
        }
    }

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
                } else if let Some(cause) = Unwritable::of(&kind, message) {
                    Self::Unwritable(cause)
                } else if is_lock_timeout(message) {
                    Self::Locked(message.to_owned())
                } else if matches!(kind, DatabaseErrorKind::UniqueViolation)
                    && message.contains("idempotency_keys")
                {
                    Self::KeyTaken
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

/// SQLite after `busy_timeout`; PostgreSQL after `lock_timeout` (55P03) or a read's
/// `statement_timeout` (57014): waited `DATABASE_TIMEOUT`, the connection is fine.
fn is_lock_timeout(message: &str) -> bool {
    const LOCKED: [&str; 4] = [
        "database is locked",
        "database table is locked",
        "canceling statement due to lock timeout",
        "canceling statement due to statement timeout",
    ];
    LOCKED.iter().any(|l| message.contains(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_read_only_database_is_told_apart_from_a_broken_query() {
        let unknown = DatabaseErrorKind::Unknown;
        for (message, cause) in [
            ("database or disk is full", Some(Unwritable::Full)),
            (
                "could not extend file \"base/1/2\": No space left on device",
                Some(Unwritable::Full),
            ),
            (
                "attempt to write a readonly database",
                Some(Unwritable::ReadOnly),
            ),
            (
                "cannot execute INSERT in a read-only transaction",
                Some(Unwritable::ReadOnly),
            ),
            ("disk I/O error", Some(Unwritable::Io)),
            ("no such table: histories", None),
        ] {
            assert_eq!(Unwritable::of(&unknown, message), cause, "{message}");
        }
        assert_eq!(
            Unwritable::of(&DatabaseErrorKind::ReadOnlyTransaction, "x"),
            Some(Unwritable::ReadOnly)
        );
    }
}
