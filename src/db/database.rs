//! `Database`: the handle request handlers use — pooled reads, serialized batched writes.

use std::sync::Arc;

use diesel::connection::SimpleConnection;

use super::config::DatabaseConfig;
use super::connection::{ConnectOptions, DbConnection, Pool, pool};
use super::error::StoreError;
use super::ledger::Ledger;
use super::retention::{Lease, try_lease};
use super::writer::Writer;
use crate::chain::SigningKey;

#[derive(Clone)]
pub struct Database {
    pool: Pool,
    writer: Arc<Writer>,
    backend: &'static str,
    options: ConnectOptions,
}

impl Database {
    /// Opens the pool and starts the writer; the writer signs its checkpoints with
    /// `signing` (SPEC §12), or records them unsigned without one.
    pub fn open(config: &DatabaseConfig, signing: Option<Arc<SigningKey>>) -> Self {
        let options = ConnectOptions::serving(config);
        Self {
            pool: pool(config),
            writer: Arc::new(Writer::start(options.clone(), Ledger::new(signing))),
            backend: config.url.backend(),
            options,
        }
    }

    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn pool_state(&self) -> r2d2::State {
        self.pool.state()
    }

    pub(crate) fn pool_max_size(&self) -> u32 {
        self.pool.max_size()
    }

    pub(crate) fn writer(&self) -> &Writer {
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
    pub(crate) async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
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
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// The purge lease (`retention::try_lease`), on a connection of its own.
    pub(crate) async fn purge_lease(&self) -> Result<Option<Lease>, StoreError> {
        let options = self.options.clone();
        actix_web::web::block(move || try_lease(&options))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
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
pub(crate) fn ping(options: &ConnectOptions) -> anyhow::Result<()> {
    let mut conn = options.connect()?;
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DatabaseUrl, SqliteSynchronous};

    #[actix_web::test]
    async fn shutdown_closes_the_pooled_connections() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = DatabaseUrl::parse(&dir.path().join("db.sqlite3").display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let db = Database::open(
            &DatabaseConfig {
                url,
                pool_size: 2,
                timeout: std::time::Duration::from_secs(1),
                sqlite_synchronous: SqliteSynchronous::Full,
            },
            None,
        );
        let answered = db.read(|conn| Ok(conn.batch_execute("SELECT 1")?)).await;
        assert!(answered.is_ok());
        assert_eq!(db.pool_state().connections, 1);

        db.shutdown().await;

        assert_eq!(db.pool_state().connections, 0);
    }
}
