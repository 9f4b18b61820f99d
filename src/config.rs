//! Configuration: every setting is an environment variable and a CLI flag (SPEC §7).
//!
//! The doc comment on each field below is the documentation of its variable (it is also
//! what `randomize <command> --help` prints); `.env.example` mirrors it with safe values.
//! Secrets may come from `NAME_FILE` instead (a mounted Kubernetes or Vault secret), are
//! held as `SecretString` so `Debug` redacts them, and never appear in an error message.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use secrecy::SecretString;

use crate::auth::{JwtArgs, SharedVerifier};
use crate::db::DatabaseUrl;
use crate::jumble::DEFAULT_MAX_GRAPHEMES;

/// A bad setting: names the variable and why, never the value of a secret.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log filter: a level (`info`) or tracing directives (`randomize=debug,actix_web=info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// `json` (one object per line, for production) or `pretty` (for humans).
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

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
    /// SQLite `synchronous` pragma. FULL (default) fsyncs every commit so an acknowledged
    /// request survives power loss; NORMAL may lose the last commits on power loss.
    #[arg(long, env = "SQLITE_SYNCHRONOUS", default_value = "full")]
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
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "0.0.0.0:5000")]
    pub bind: String,
    /// HTTP worker threads (default: one per CPU).
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Longest wait for in-flight requests after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Comma-separated CIDRs (or addresses) of proxies whose `Forwarded` /
    /// `X-Forwarded-For` headers are believed. Empty: the peer address is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Longest accepted word, in grapheme clusters after NFC normalisation.
    #[arg(long, env = "MAX_WORD_GRAPHEMES", default_value_t = DEFAULT_MAX_GRAPHEMES as u32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_word_graphemes: u32,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_body_bytes: u32,
    /// Comma-separated origins allowed by CORS (`https://app.example.com`). Empty: no CORS.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "")]
    pub cors_allowed_origins: String,
}

/// Settings the running server needs, typed and checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database: DatabaseConfig,
    pub bind: String,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub max_word_graphemes: usize,
    pub max_body_bytes: usize,
    pub cors_allowed_origins: Vec<String>,
    pub verifier: SharedVerifier,
}

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
            url: DatabaseUrl::parse(secrecy::ExposeSecret::expose_secret(&url))?,
            pool_size: args.database_pool_size,
            timeout: args.database_timeout,
            sqlite_synchronous: args.sqlite_synchronous,
        })
    }
}

impl ServerConfig {
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let workers = match args.workers {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        Ok(Self {
            database: DatabaseConfig::from_args(&args.database)?,
            bind: args.bind.clone(),
            workers,
            shutdown_timeout: args.shutdown_timeout,
            trusted_proxies: parse_cidrs(&args.trusted_proxies)
                .map_err(|reason| ConfigError::new("TRUSTED_PROXIES", reason))?,
            max_word_graphemes: args.max_word_graphemes as usize,
            max_body_bytes: args.max_body_bytes as usize,
            cors_allowed_origins: parse_origins(&args.cors_allowed_origins)?,
            verifier: args.jwt.verifier()?.map(std::sync::Arc::new),
        })
    }
}

/// A secret from its variable or, taking precedence, from the file its `_FILE` variant
/// names. Trailing newlines (as editors and `kubectl create secret` leave them) are dropped.
pub fn read_secret(
    var: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                var,
                format!("cannot read {var}_FILE {}: {e}", path.display()),
            )
        })?;
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(ConfigError::new(
                var,
                format!("{var}_FILE {} is empty", path.display()),
            ));
        }
        return Ok(Some(SecretString::from(trimmed.to_owned())));
    }
    Ok(value
        .filter(|v| !v.is_empty())
        .map(|v| SecretString::from(v.to_owned())))
}

/// Accepts `[humantime](https://docs.rs/humantime)` durations (`3s`, `250ms`, `1h`) and a
/// bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| format!("expected a duration like 3s or 500ms: {e}"))
}

fn parse_cidrs(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR (10.0.0.0/8) or an IP address"))
        })
        .collect()
}

fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|origin| {
            let valid = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/')
                    && origin.is_ascii());
            if valid {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an origin like https://app.example.com (or *)"),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn cidrs_and_addresses() {
        let nets = parse_cidrs("10.0.0.0/8, 127.0.0.1,::1").unwrap_or_default();
        assert_eq!(nets.len(), 3);
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert_eq!(parse_cidrs(""), Ok(vec![]));
    }

    #[test]
    fn origins() {
        assert!(parse_origins("https://a.example, http://localhost:3000").is_ok());
        let err = parse_origins("a.example").err().map(|e| e.var);
        assert_eq!(err, Some("CORS_ALLOWED_ORIGINS"));
    }

    #[test]
    fn secret_file_wins_and_is_trimmed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("url");
        std::fs::write(&path, "postgres://u:p@h/db\n")?;
        let secret = read_secret("DATABASE_URL", Some("ignored"), Some(&path))?;
        let exposed = secret.map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned());
        assert_eq!(exposed.as_deref(), Some("postgres://u:p@h/db"));
        let missing = read_secret("DATABASE_URL", None, Some(&dir.path().join("nope")));
        assert!(missing.is_err_and(|e| e.var == "DATABASE_URL"));
        Ok(())
    }
}
