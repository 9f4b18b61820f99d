//! Storage: connections, schema, queries, migrations and the group-commit writer.
//!
//! Queries are plain sync functions taking `&mut DbConnection`. Reads run on the pool
//! (`Database::read`); every write goes through the single writer (`Database::write`).

pub mod batch;
mod connection;
pub mod histories;
pub mod migrations;
pub mod randomizes;
pub mod schema;
mod url;
pub mod writer;

use std::sync::Arc;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub use connection::{ConnectOptions, DbConnection, Pool, pool};
pub use url::DatabaseUrl;
pub use writer::Writer;

use crate::config::DatabaseConfig;

/// Why a unit of database work did not happen.
#[derive(Debug, thiserror::Error)]
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
    Query(#[source] DieselError),
    #[error("database task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Poisons the batch it ran in (an SQL error aborts a PostgreSQL transaction);
    /// `NotFound` and `PreconditionFailed` are decided without failing a statement.
    pub fn aborts_transaction(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Locked(_) | Self::Query(_) | Self::Task(_)
        )
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
                    Self::Query(DieselError::DatabaseError(kind, info))
                }
            }
            DieselError::BrokenTransactionManager => Self::Unavailable("broken transaction".into()),
            other => Self::Query(other),
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

/// Timestamps are stored as UTC `TIMESTAMP` truncated to milliseconds, so what is
/// stored is exactly what the API shows (and ETags stay stable).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(3)
}

/// The handle request handlers use: pooled reads, serialized batched writes.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    writer: Arc<Writer>,
    backend: &'static str,
}

impl Database {
    pub fn open(config: &DatabaseConfig) -> Self {
        Self {
            pool: pool(config),
            writer: Arc::new(Writer::start(ConnectOptions::serving(config))),
            backend: config.url.backend(),
        }
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub fn pool_state(&self) -> r2d2::State {
        self.pool.state()
    }

    pub fn pool_max_size(&self) -> u32 {
        self.pool.max_size()
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Runs `query` on a pooled connection on the blocking pool (checking out a
    /// connection blocks too, so it happens there), inside the caller's tracing span.
    ///
    /// A PostgreSQL connection that was idle in the pool may have died with a server
    /// restart. Rather than testing every connection on checkout (a round trip per
    /// read), a read that finds a connection opened before it began lost discards it and
    /// runs again on another; reads are idempotent, and every retry closes one of those
    /// connections, so this ends when a connection opened since answers or fails (a
    /// real outage: 503).
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        actix_web::web::block(move || {
            let _entered = span.enter();
            let began = std::time::Instant::now();
            loop {
                let mut pooled = pool.get()?;
                let result = query(&mut pooled.conn);
                if let Err(StoreError::Unavailable(error)) = &result {
                    pooled.lost = true;
                    if pooled.opened < began {
                        tracing::debug!(%error, "pooled connection lost; retrying on another");
                        continue;
                    }
                }
                return result;
            }
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Stops the writer after it has committed everything queued, then closes the
    /// pool's idle connections.
    ///
    /// Closed here, they end their sessions before `main` returns (PostgreSQL sees a
    /// clean goodbye), instead of whenever an HTTP worker thread that is still winding
    /// down drops the last pool handle, or not at all.
    pub async fn shutdown(&self) {
        let writer = Arc::clone(&self.writer);
        let pool = self.pool.clone();
        let closed = actix_web::web::block(move || {
            writer.shutdown();
            // min_idle is 0, so the pool opens no replacements: this ends.
            while let Some(mut idle) = pool.try_get() {
                idle.lost = true;
            }
        });
        if let Err(error) = closed.await {
            tracing::error!(%error, "database connections did not close cleanly");
        }
    }
}

/// Connects once and runs `SELECT 1`: does the database answer at all?
pub fn ping(options: &ConnectOptions) -> anyhow::Result<()> {
    use diesel::connection::SimpleConnection;
    let mut conn = options.connect()?;
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

/// `%`, `_` and `\` match themselves in a LIKE pattern built from user input.
pub fn escape_like(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn shutdown_closes_the_pooled_connections() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = DatabaseUrl::parse(&dir.path().join("db.sqlite3").display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let db = Database::open(&DatabaseConfig {
            url,
            pool_size: 2,
            timeout: std::time::Duration::from_secs(1),
            sqlite_synchronous: crate::config::SqliteSynchronous::Full,
        });
        let answered = db
            .read(|conn| {
                use diesel::connection::SimpleConnection;
                Ok(conn.batch_execute("SELECT 1")?)
            })
            .await;
        assert!(answered.is_ok());
        assert_eq!(db.pool_state().connections, 1);

        db.shutdown().await;

        assert_eq!(db.pool_state().connections, 0);
    }

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn now_has_millisecond_precision() {
        assert_eq!(now().and_utc().timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
