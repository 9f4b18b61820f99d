//! The server's configuration: every setting is an environment variable and a CLI flag
//! (SPEC §7), gathered here from the modules that own them (`db`, `auth`, `telemetry`)
//! plus the HTTP server's own.
//!
//! The doc comment on each field is the documentation of its variable (it is also what
//! `randomize <command> --help` prints); `.env.example` mirrors it with safe values.
//! Secrets may come from `NAME_FILE` instead (a mounted Kubernetes or Vault secret), are
//! held as `SecretString` so `Debug` redacts them, and never appear in an error message.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use crate::auth::{JwtArgs, SharedVerifier};
use crate::chain::{SigningArgs, SigningKey};
use crate::db::{DatabaseArgs, DatabaseConfig};
use crate::jumble::DEFAULT_MAX_GRAPHEMES;
use crate::rate_limit::RateLimit;
use crate::settings::{ConfigError, parse_duration};
use crate::telemetry::TelemetryArgs;

const DEFAULT_MAX_BODY_BYTES: u32 = 16 * 1024;

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
    /// Longest time a request's headers and body may take to arrive; then 408 and the
    /// connection is closed.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_interval)]
    pub request_timeout: Duration,
    /// Requests per client IP on /api/ (`200/s`, `600/m`; bursts of twice that);
    /// beyond it 429. Empty: no limit.
    #[arg(long, env = "RATE_LIMIT", default_value = "")]
    pub rate_limit: String,
    /// Comma-separated CIDRs (or addresses) of proxies whose `Forwarded` /
    /// `X-Forwarded-For` headers are believed. Empty: the peer address is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Longest accepted word, in grapheme clusters after NFC normalisation.
    #[arg(long, env = "MAX_WORD_GRAPHEMES", default_value_t = DEFAULT_MAX_GRAPHEMES as u32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_word_graphemes: u32,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES,
          value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_body_bytes: u32,
    /// Comma-separated origins allowed by CORS (`https://app.example.com`). Empty: no CORS.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "")]
    pub cors_allowed_origins: String,
    /// Keep audit entries this long (`90d`, `720h`), purging older ones in the
    /// background and recording each purge in the history. Empty: keep forever.
    #[arg(long, env = "AUDIT_RETENTION", default_value = "")]
    pub audit_retention: String,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// How long a write's response is kept for retries with its `Idempotency-Key`.
    #[arg(long, env = "IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_interval)]
    pub idempotency_ttl: Duration,
    /// Longest time between signed checkpoints of the audit chain while it grows.
    #[arg(long, env = "CHECKPOINT_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub checkpoint_interval: Duration,
}

fn parse_interval(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        every if every < Duration::from_secs(1) => Err("must be at least 1s".into()),
        every => Ok(every),
    }
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
    pub request_timeout: Duration,
    pub rate_limit: Option<RateLimit>,
    /// How often each client's refusals become one summary entry (a minute).
    pub rate_limit_summary_every: Duration,
    pub cors_allowed_origins: Vec<String>,
    pub verifier: SharedVerifier,
    /// `None`: keep every audit entry.
    pub audit_retention: Option<Duration>,
    /// `None`: checkpoints are recorded unsigned.
    pub audit_signing_key: Option<Arc<SigningKey>>,
    pub checkpoint_interval: Duration,
    pub idempotency_ttl: Duration,
}

impl ServerConfig {
    /// A server on a free loopback port with the default limits, no CORS and no JWT key
    /// (for tests and embedding).
    pub fn local(database: DatabaseConfig) -> Self {
        Self {
            database,
            bind: "127.0.0.1:0".into(),
            workers: 2,
            shutdown_timeout: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            max_word_graphemes: DEFAULT_MAX_GRAPHEMES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES as usize,
            request_timeout: Duration::from_secs(10),
            rate_limit: None,
            rate_limit_summary_every: Duration::from_secs(60),
            cors_allowed_origins: Vec::new(),
            verifier: None,
            audit_retention: None,
            audit_signing_key: None,
            checkpoint_interval: Duration::from_secs(60),
            idempotency_ttl: Duration::from_secs(86_400),
        }
    }

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
            request_timeout: args.request_timeout,
            rate_limit: RateLimit::parse(&args.rate_limit)
                .map_err(|reason| ConfigError::new("RATE_LIMIT", reason))?,
            rate_limit_summary_every: Duration::from_secs(60),
            cors_allowed_origins: parse_origins(&args.cors_allowed_origins)?,
            verifier: args.jwt.verifier()?.map(std::sync::Arc::new),
            audit_retention: parse_retention(&args.audit_retention)
                .map_err(|reason| ConfigError::new("AUDIT_RETENTION", reason))?,
            audit_signing_key: args.signing.key()?,
            checkpoint_interval: args.checkpoint_interval,
            idempotency_ttl: args.idempotency_ttl,
        })
    }
}

fn parse_retention(raw: &str) -> Result<Option<Duration>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    match parse_duration(raw)? {
        keep if keep < Duration::from_secs(1) => Err("must be at least 1s (or empty)".into()),
        keep => Ok(Some(keep)),
    }
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
    fn cidrs_and_addresses() {
        let nets = parse_cidrs("10.0.0.0/8, 127.0.0.1,::1").unwrap_or_default();
        assert_eq!(nets.len(), 3);
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert_eq!(parse_cidrs(""), Ok(vec![]));
    }

    #[test]
    fn retention_is_off_unless_given() {
        assert_eq!(parse_retention(""), Ok(None));
        assert_eq!(
            parse_retention("90d"),
            Ok(Some(Duration::from_secs(90 * 86_400)))
        );
        assert!(parse_retention("0s").is_err());
        assert!(parse_retention("soon").is_err());
    }

    #[test]
    fn origins() {
        assert!(parse_origins("https://a.example, http://localhost:3000").is_ok());
        let err = parse_origins("a.example").err().map(|e| e.var);
        assert_eq!(err, Some("CORS_ALLOWED_ORIGINS"));
    }
}
