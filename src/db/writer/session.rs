//! The writer's connection, and the two facts that decide how a batch may be sent on it.

use std::sync::Arc;

use diesel::connection::SimpleConnection;

use crate::db::connection::{ConnectOptions, DbConnection};
use crate::db::error::StoreError;
use crate::db::ledger::Ledger;
use crate::db::status::WriterStatus;
use crate::db::url::DatabaseUrl;

/// How a batch reached the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// Queued while the previous batch was being stored: the connection was just used.
    Busy,
    /// The writer waited for it: the connection sat unused and may have died meanwhile
    /// (a PostgreSQL restart).
    AfterIdle,
}

/// How a batch is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// PostgreSQL, inserts only: one statement that is its own transaction (one round
    /// trip). Only on a connection known to be alive, because a failure cannot tell
    /// whether the statement reached the server.
    OneStatement,
    /// `BEGIN`, the jobs, `COMMIT`. A connection that died idle fails at `BEGIN`, before
    /// any of the batch was sent, so the batch can start over on a fresh one.
    Transaction,
}

pub(super) struct Session {
    options: ConnectOptions,
    conn: Option<DbConnection>,
    status: Arc<WriterStatus>,
    ledger: Ledger,
}

impl Session {
    pub(super) fn new(options: ConnectOptions, status: Arc<WriterStatus>, ledger: Ledger) -> Self {
        Self {
            options,
            conn: None,
            status,
            ledger,
        }
    }

    /// The writer's chain.
    pub(super) fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// Where the outcomes of this session's jobs are counted.
    pub(super) fn status(&self) -> Arc<WriterStatus> {
        Arc::clone(&self.status)
    }

    pub(super) fn plan(&self, arrival: Arrival, insert_only: bool) -> Plan {
        let postgres = matches!(self.options.url, DatabaseUrl::Postgres(_));
        let known_alive = self.conn.is_none() || arrival == Arrival::Busy;
        if postgres && known_alive && insert_only {
            Plan::OneStatement
        } else {
            Plan::Transaction
        }
    }

    /// The connection, with a transaction open if `plan` says so, and the chain its
    /// entries are linked onto.
    ///
    /// A reused PostgreSQL connection that fails at `BEGIN` died while idle: nothing of
    /// the batch reached the server, so it starts over once on a fresh connection. A
    /// failure after `BEGIN` is never retried here: a lost `COMMIT` reply may hide a
    /// commit that happened.
    pub(super) fn ready(
        &mut self,
        plan: Plan,
    ) -> Result<(&mut DbConnection, &mut Ledger), StoreError> {
        let reused_postgres = matches!(self.conn, Some(DbConnection::Postgres(_)));
        let opened = match self.open(plan) {
            Err(error) if reused_postgres && !matches!(error, StoreError::Locked(_)) => {
                tracing::info!(%error, "writer connection lost while idle; reconnecting");
                self.open(plan)
            }
            opened => opened,
        };
        match opened {
            Ok(()) => match self.conn.as_mut() {
                Some(conn) => Ok((conn, &mut self.ledger)),
                None => Err(StoreError::Internal(
                    "the writer's connection vanished".into(),
                )),
            },
            Err(error) => {
                // A refusal is reported by the status, once per interval.
                if !matches!(error, StoreError::Unwritable(_)) {
                    tracing::warn!(%error, "writer cannot begin a transaction");
                }
                Err(match error {
                    // Already waited DATABASE_TIMEOUT on a healthy connection.
                    StoreError::Locked(_) | StoreError::Unwritable(_) => error,
                    other => StoreError::Unavailable(other.to_string()),
                })
            }
        }
    }

    fn open(&mut self, plan: Plan) -> Result<(), StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let mut conn = self
                    .options
                    .connect()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                // The last commit on the old connection may or may not have landed.
                self.ledger.resync(&mut conn)?;
                conn
            }
        };
        let conn = self.conn.insert(conn);
        // The chain is registered in a commit of its own, before any batch's
        // transaction: a batch that rolls back must not take the registration with it
        // (SQLite would hand the same id to the next process).
        if self.ledger.current().is_none() {
            self.ledger.tip(conn)?;
        }
        if plan == Plan::Transaction
            && let Err(error) = begin(conn)
        {
            // A lock held elsewhere (SQLite's BEGIN IMMEDIATE) leaves the connection fine.
            if !matches!(error, StoreError::Locked(_)) {
                self.conn = None;
            }
            return Err(error);
        }
        Ok(())
    }

    /// Whether `error`, which failed a batch, means the connection is gone (rather than
    /// one job being at fault).
    pub(super) fn is_lost(&mut self, error: &StoreError) -> bool {
        matches!(error, StoreError::Unavailable(_))
            || self
                .conn
                .as_mut()
                .is_none_or(|conn| conn.batch_execute("SELECT 1").is_err())
    }

    /// Reads the chain's tip back from the database (after a batch failed in a way that
    /// may mean the tip held here is not the committed one).
    pub(super) fn resync(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && let Err(error) = self.ledger.resync(conn)
        {
            tracing::warn!(%error, "cannot read the audit chain's tip back; reconnecting");
            self.conn = None;
        }
    }

    /// Drops the connection; the next batch opens a fresh one.
    pub(super) fn close(&mut self) {
        self.conn = None;
    }
}

fn begin(conn: &mut DbConnection) -> Result<(), StoreError> {
    // IMMEDIATE takes SQLite's write lock up front, so the transaction cannot fail
    // half-way on lock upgrade if another process writes the file.
    // On PostgreSQL the audit feed's lock comes first (see the forensic-fields
    // migration): a transaction that updated a record before waiting for it could
    // deadlock with another replica's batch holding it and waiting for that row.
    let statement = match conn {
        DbConnection::Sqlite(_) => "BEGIN IMMEDIATE",
        DbConnection::Postgres(_) => "BEGIN; SELECT histories_feed_lock()",
    };
    Ok(conn.batch_execute(statement)?)
}
