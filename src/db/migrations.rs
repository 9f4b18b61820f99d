//! Embedded migrations, one folder per backend (SPEC §8).
//!
//! On PostgreSQL every run holds a session-level advisory lock on its own dedicated
//! connection, so replicas starting together apply each migration once: the loser waits
//! (bounded), then re-reads the pending list, which by then is empty.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::sql_types::{Bool, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::connection::{ConnectOptions, DbConnection};

pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Arbitrary, but fixed forever: every release must contend for the same lock.
const ADVISORY_LOCK_KEY: i64 = 0x7261_6e64_6f6d; // "random"

/// Runs `$body` with `$h` bound to the concrete connection and `$src()` yielding its
/// migrations (a fresh value per call: `EmbeddedMigrations` is neither Copy nor Clone).
macro_rules! with_harness {
    ($conn:expr, |$h:ident, $src:ident| $body:expr) => {
        match $conn {
            DbConnection::Postgres($h) => {
                let $src = || POSTGRES;
                $body
            }
            DbConnection::Sqlite($h) => {
                let $src = || SQLITE;
                $body
            }
        }
    };
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}

/// Applies pending migrations; returns the names applied, oldest first.
pub fn run_pending(
    options: &ConnectOptions,
    lock_timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    locked(options, lock_timeout, |conn| {
        with_harness!(conn, |h, src| {
            let pending: Vec<String> = h
                .pending_migrations(src())
                .map_err(anyhow::Error::from_boxed)?
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            h.run_pending_migrations(src())
                .map_err(anyhow::Error::from_boxed)?;
            Ok(pending)
        })
    })
}

/// Reverts the newest applied migration; `None` when nothing was applied.
pub fn revert_last(
    options: &ConnectOptions,
    lock_timeout: Duration,
) -> anyhow::Result<Option<String>> {
    locked(options, lock_timeout, |conn| {
        with_harness!(conn, |h, src| {
            let applied = h.applied_migrations().map_err(anyhow::Error::from_boxed)?;
            if applied.is_empty() {
                return Ok(None);
            }
            let version = h
                .revert_last_migration(src())
                .map_err(anyhow::Error::from_boxed)?;
            let name = src_name(&src(), &version.to_string());
            Ok(Some(name))
        })
    })
}

pub fn status(options: &ConnectOptions) -> anyhow::Result<Status> {
    let mut conn = options
        .connect()
        .context("cannot connect to the database")?;
    with_harness!(&mut conn, |h, src| {
        let pending: Vec<String> = h
            .pending_migrations(src())
            .map_err(anyhow::Error::from_boxed)?
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let mut applied: Vec<String> = h
            .applied_migrations()
            .map_err(anyhow::Error::from_boxed)?
            .iter()
            .map(|v| src_name(&src(), &v.to_string()))
            .collect();
        applied.sort();
        Ok(Status { applied, pending })
    })
}

/// True when the schema this binary expects is fully applied. Only reads: diesel's
/// harness would first `CREATE TABLE IF NOT EXISTS` its bookkeeping table, which
/// PostgreSQL refuses, table or not, to a role without CREATE on the schema — the
/// service role of docs/AUDIT.md, whose pods would then never become ready.
pub fn is_current(conn: &mut DbConnection) -> anyhow::Result<bool> {
    let table_exists = match conn {
        DbConnection::Postgres(_) => {
            "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS present"
        }
        DbConnection::Sqlite(_) => {
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations') AS present"
        }
    };
    let present = diesel::sql_query(table_exists)
        .get_result::<Present>(conn)
        .context("cannot look for the migrations table")?
        .present;
    if !present {
        return Ok(false);
    }
    let applied: HashSet<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)
            .context("cannot read the applied migrations")?
            .into_iter()
            .map(|a| a.version)
            .collect();
    let expected = match conn {
        DbConnection::Postgres(_) => embedded_versions::<diesel::pg::Pg>(&POSTGRES)?,
        DbConnection::Sqlite(_) => embedded_versions::<diesel::sqlite::Sqlite>(&SQLITE)?,
    };
    Ok(expected.iter().all(|v| applied.contains(v)))
}

#[derive(QueryableByName)]
struct Present {
    #[diesel(sql_type = Bool)]
    present: bool,
}

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = Text)]
    version: String,
}

fn embedded_versions<DB: diesel::backend::Backend>(
    src: &EmbeddedMigrations,
) -> anyhow::Result<Vec<String>>
where
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    use diesel::migration::MigrationSource;
    Ok(MigrationSource::<DB>::migrations(src)
        .map_err(anyhow::Error::from_boxed)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// The folder name (`2026-11-22-000001_create_randomizes`) of an embedded version.
fn src_name(src: &EmbeddedMigrations, version: &str) -> String {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::sqlite::Sqlite>::migrations(src)
        .ok()
        .and_then(|all| {
            all.iter().map(|m| m.name().to_string()).find(|name| {
                name.split('_')
                    .next()
                    .map(|v| v.replace('-', ""))
                    .as_deref()
                    == Some(version)
            })
        })
        .unwrap_or_else(|| version.to_owned())
}

fn locked<T>(
    options: &ConnectOptions,
    lock_timeout: Duration,
    run: impl FnOnce(&mut DbConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut conn = options
        .connect()
        .context("cannot connect to the database")?;
    if let DbConnection::Postgres(pg) = &mut conn {
        acquire_advisory_lock(pg, lock_timeout)?;
        let result = run(&mut conn);
        if let DbConnection::Postgres(pg) = &mut conn {
            // Closing the session would release it too; unlocking keeps it explicit.
            let _ = diesel::select(diesel::dsl::sql::<Bool>(&format!(
                "pg_advisory_unlock({ADVISORY_LOCK_KEY})"
            )))
            .get_result::<bool>(pg);
        }
        return result;
    }
    run(&mut conn)
}

fn acquire_advisory_lock(pg: &mut PgConnection, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let taken = diesel::select(diesel::dsl::sql::<Bool>(&format!(
            "pg_try_advisory_lock({ADVISORY_LOCK_KEY})"
        )))
        .get_result::<bool>(pg)
        .context("cannot take the migration lock")?;
        if taken {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            bail!(
                "another process has held the migration lock (pg advisory lock {ADVISORY_LOCK_KEY}) \
                 for over {timeout:?}; is a migration stuck? (MIGRATION_LOCK_TIMEOUT)"
            );
        }
        tracing::info!(
            wait_ms = pause.as_millis() as u64,
            "migration lock busy; waiting"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
