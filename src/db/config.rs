//! The database's own settings (SPEC §7): `DATABASE_URL` and how connections behave.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::ExposeSecret;

use super::url::DatabaseUrl;
use crate::settings::{ConfigError, parse_duration, read_secret};

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (`sqlite:///abs/path` or `sqlite://relative/path`), a bare path, or
    /// `postgres://user:pass@host/db`. The SQLite file's folder is created when missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://instance/randomize.sqlite3"
    )]
    pub database_url: String,
    /// File holding `DATABASE_URL` (takes precedence; for mounted secrets).
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Connections in the read pool, per process.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=512))]
    pub database_pool_size: u32,
    /// Longest wait for a connection, a lock held elsewhere (SQLite file, PostgreSQL
    /// table or row) or a PostgreSQL host that stopped answering before answering 503
    /// (`3s`, `500ms`; a bare number is seconds).
    #[arg(long, env = "DATABASE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub database_timeout: Duration,
    /// SQLite `synchronous` pragma, any case. FULL (default) fsyncs every commit so an
    /// acknowledged request survives power loss; NORMAL may lose the last commits on
    /// power loss.
    #[arg(
        long,
        env = "SQLITE_SYNCHRONOUS",
        default_value = "full",
        ignore_case = true
    )]
    pub sqlite_synchronous: SqliteSynchronous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronous {
    Off,
    Normal,
    Full,
    Extra,
}

impl SqliteSynchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

/// The database settings, typed and checked.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub pool_size: u32,
    pub timeout: Duration,
    pub sqlite_synchronous: SqliteSynchronous,
}

impl DatabaseConfig {
    pub fn from_args(args: &DatabaseArgs) -> Result<Self, ConfigError> {
        let url = read_secret(
            "DATABASE_URL",
            Some(&args.database_url),
            args.database_url_file.as_deref(),
        )?
        .ok_or_else(|| ConfigError::new("DATABASE_URL", "must be set"))?;
        if args.database_timeout.is_zero() {
            return Err(ConfigError::new(
                "DATABASE_TIMEOUT",
                "must be greater than zero",
            ));
        }
        Ok(Self {
            url: DatabaseUrl::parse(url.expose_secret())?,
            pool_size: args.database_pool_size,
            timeout: args.database_timeout,
            sqlite_synchronous: args.sqlite_synchronous,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        database: DatabaseArgs,
    }

    #[test]
    fn sqlite_synchronous_is_read_in_any_case() {
        for spelling in ["FULL", "full", "Full"] {
            let parsed = Wrapper::try_parse_from(["test", "--sqlite-synchronous", spelling]);
            assert_eq!(
                parsed.map(|w| w.database.sqlite_synchronous).ok(),
                Some(SqliteSynchronous::Full),
                "{spelling}"
            );
        }
        assert!(Wrapper::try_parse_from(["test", "--sqlite-synchronous", "fast"]).is_err());
    }
}
