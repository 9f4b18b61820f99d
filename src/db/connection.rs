//! One connection type for both backends, and the r2d2 manager that opens it.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

use super::config::{DatabaseConfig, SqliteSynchronous};
use super::url::DatabaseUrl;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

diesel::define_sql_function! {
    /// Whether this connection's thread runs the retention purge (SQLite triggers).
    fn randomize_purging() -> diesel::sql_types::Bool;
}

/// What a connection needs to be opened the way this service relies on.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: DatabaseUrl,
    pub timeout: Duration,
    pub sqlite_synchronous: SqliteSynchronous,
    /// PostgreSQL gives up waiting for a lock after `timeout` (`lock_timeout`), as SQLite
    /// does through `busy_timeout`. For the serving connections: a table locked by an
    /// operator's DDL must answer 503, not hold every request. Migrations wait instead.
    pub(crate) bounded_lock_waits: bool,
    /// PostgreSQL cancels a statement that runs longer than `timeout`
    /// (`statement_timeout`): for the pool's reads, so a slow query answers 503 instead
    /// of holding a connection and a blocking thread (SPEC §14). Not for the writer,
    /// whose batches are bounded by their size.
    pub(crate) bounded_statements: bool,
}

impl From<&DatabaseConfig> for ConnectOptions {
    fn from(config: &DatabaseConfig) -> Self {
        Self {
            url: config.url.clone(),
            timeout: config.timeout,
            sqlite_synchronous: config.sqlite_synchronous,
            bounded_lock_waits: false,
            bounded_statements: false,
        }
    }
}

impl ConnectOptions {
    /// For the connections that serve requests: the pool's and the writer's.
    pub(crate) fn serving(config: &DatabaseConfig) -> Self {
        Self {
            bounded_lock_waits: true,
            ..Self::from(config)
        }
    }

    /// For the pool's read connections.
    pub(crate) fn reading(config: &DatabaseConfig) -> Self {
        Self {
            bounded_statements: true,
            ..Self::serving(config)
        }
    }

    pub fn connect(&self) -> Result<DbConnection, ConnectionError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        ConnectionError::BadConnection(format!(
                            "cannot create {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                let target = path.to_str().ok_or_else(|| {
                    ConnectionError::InvalidConnectionUrl("the SQLite path is not UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(target)?;
                // WAL lets the pool read while the writer commits; busy_timeout makes a
                // second process (a migration, an operator's sqlite3) wait instead of
                // failing; synchronous=FULL makes every acknowledged commit survive power
                // loss; case_sensitive_like gives LIKE PostgreSQL's semantics (SQLite's
                // default ignores ASCII case, which would make path prefixes fuzzy).
                // wal_autocheckpoint: the committing connection checkpoints when the WAL
                // passes this many pages; at the default 1,000 a large history's index
                // pages were copied back almost every few commits, and GET throughput on
                // 5 M entries was 1.5× lower (docs/PERFORMANCE.md). 10,000 pages keep the
                // WAL near 40 MB.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = {};
                     PRAGMA foreign_keys = ON;
                     PRAGMA case_sensitive_like = ON;
                     PRAGMA wal_autocheckpoint = 10000;",
                    self.timeout.as_millis(),
                    self.sqlite_synchronous.pragma(),
                ))
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                // The append-only triggers ask it whether a DELETE is the retention purge;
                // connections that do not define it (an operator's sqlite3) are refused.
                randomize_purging_utils::register_nondeterministic_impl(
                    &conn,
                    super::retention::purging,
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(_) => {
                let url = self.url.expose_postgres().unwrap_or_default();
                let url = with_network_timeouts(url, self.timeout);
                // Before libpq first sets up TLS: the first initialisation decides whether
                // OpenSSL registers its exit handler, and this one does not. That handler
                // tears down OpenSSL's global state while other threads (pool, writer,
                // HTTP workers) may still be freeing their TLS state or closing a
                // connection, which crashed processes on exit ("double free or
                // corruption", SIGSEGV) about once in a hundred runs under load.
                openssl_sys::init();
                let mut conn = PgConnection::establish(&url)?;
                let millis = self.timeout.as_millis().max(1);
                if self.bounded_lock_waits {
                    conn.batch_execute(&format!("SET lock_timeout = {millis}"))
                        .map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                if self.bounded_statements {
                    conn.batch_execute(&format!("SET statement_timeout = {millis}"))
                        .map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                Ok(DbConnection::Postgres(conn))
            }
        }
    }
}

/// libpq waits forever for a host that stopped answering: at connect, unless
/// `connect_timeout` is set, and on an open connection, where a query sent into a network
/// partition would block the writer (and every request queued behind it) until the
/// kernel gives up retransmitting, about 15 minutes later. `tcp_user_timeout` closes such
/// a connection once sent data (or, after `keepalives_idle` of silence while awaiting an
/// answer, a keepalive probe) stays unacknowledged that long, so requests get 503 and the
/// next statement reconnects. A slow query on a live host is unaffected: its kernel
/// acknowledges both. All three use `DATABASE_TIMEOUT`, but at least 2 s (libpq's
/// `connect_timeout` minimum; shorter would close healthy connections on a stalled VM).
/// Parameters already in the URL win.
fn with_network_timeouts(url: &str, timeout: Duration) -> String {
    let timeout = timeout.max(Duration::from_secs(2));
    let mut url = url.to_owned();
    let mut add = |name: &str, value: u128| {
        if !url.contains(&format!("{name}=")) {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{name}={value}");
        }
    };
    add("connect_timeout", u128::from(timeout.as_secs()));
    add("keepalives_idle", u128::from(timeout.as_secs()));
    add("tcp_user_timeout", timeout.as_millis());
    url
}

/// A pooled read connection and what the pool needs to know about it.
pub(crate) struct Pooled {
    pub(crate) conn: DbConnection,
    /// Connections opened before a read began may have died idle (a PostgreSQL restart).
    pub(crate) opened: std::time::Instant,
    /// It reported a lost connection: the pool closes it instead of keeping it.
    pub(crate) lost: bool,
}

/// Opens connections by URL scheme (diesel's derived `establish` would try each backend
/// and hide the PostgreSQL error behind "invalid connection url").
#[derive(Debug)]
pub(crate) struct Manager(ConnectOptions);

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Pooled, ConnectionError> {
        Ok(Pooled {
            conn: self.0.connect()?,
            opened: std::time::Instant::now(),
            lost: false,
        })
    }

    /// Only for `Pool::get` callers that opt in; the read path does not test on
    /// checkout (a round trip per read) but retries once it finds a connection dead.
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), ConnectionError> {
        pooled
            .conn
            .batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.lost || diesel::r2d2::R2D2Connection::is_broken(&mut pooled.conn)
    }
}

pub(crate) type Pool = r2d2::Pool<Manager>;

pub(crate) fn pool(config: &DatabaseConfig) -> Pool {
    r2d2::Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(0))
        .connection_timeout(config.timeout)
        // Not a `SELECT 1` round trip before every read: `Database::read` finds dead
        // connections by using them, discards them and retries on another.
        .test_on_check_out(false)
        // The server must start while the database is down (readiness says 503), so no
        // connection is opened here; r2d2 logs failures through `log`, bridged to tracing.
        .build_unchecked(Manager(ConnectOptions::reading(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DatabaseUrl, SqliteSynchronous, StoreError};

    /// SPEC §14: a read that outlasts DATABASE_TIMEOUT is cancelled and answers 503
    /// (as a lock wait does), on a connection that stays usable; the writer's are not
    /// cut short. Needs the test PostgreSQL (fails, never skips, without it).
    #[test]
    fn pool_reads_on_postgres_are_bounded_by_statement_timeout() {
        let url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let config = DatabaseConfig {
            url: DatabaseUrl::parse(&url).unwrap_or_else(|e| panic!("{e}")),
            pool_size: 1,
            timeout: Duration::from_millis(200),
            sqlite_synchronous: SqliteSynchronous::Full,
        };
        let sleep = |options: ConnectOptions, seconds: f64| {
            let mut conn = options.connect().unwrap_or_else(|e| panic!("{url}: {e}"));
            let slept = conn
                .batch_execute(&format!("SELECT pg_sleep({seconds})"))
                .map_err(StoreError::from);
            let still_usable = conn.batch_execute("SELECT 1").is_ok();
            (slept, still_usable)
        };
        let (read, usable) = sleep(ConnectOptions::reading(&config), 2.0);
        assert!(matches!(read, Err(StoreError::Locked(_))), "{read:?}");
        assert!(usable);
        let (write, _) = sleep(ConnectOptions::serving(&config), 0.4);
        assert!(write.is_ok(), "{write:?}");
    }

    #[test]
    fn network_timeouts_are_added_once() {
        let t = Duration::from_secs(3);
        assert_eq!(
            with_network_timeouts("postgres://h/db", t),
            "postgres://h/db?connect_timeout=3&keepalives_idle=3&tcp_user_timeout=3000"
        );
        assert_eq!(
            with_network_timeouts("postgres://h/db?options=x", Duration::from_millis(100)),
            "postgres://h/db?options=x&connect_timeout=2&keepalives_idle=2&tcp_user_timeout=2000"
        );
        assert_eq!(
            with_network_timeouts("postgres://h/db?connect_timeout=9&tcp_user_timeout=0", t),
            "postgres://h/db?connect_timeout=9&tcp_user_timeout=0&keepalives_idle=3"
        );
    }
}
