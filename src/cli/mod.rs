//! The `randomize` command line: `serve`, `migrate`, `token`, `openapi`, `audit`
//! (`audit.rs`), and the two probes the container needs without a shell toolbox:
//! `ping-db` and `healthcheck`.

mod audit;
mod verify;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::auth::{self, HISTORIES_READ, JwtArgs};
use crate::config::{ServeArgs, ServerConfig};
use crate::db::{ConnectOptions, DatabaseArgs, DatabaseConfig, DatabaseUrl, migrations};
use crate::settings::parse_duration;
use crate::startup::Application;
use crate::telemetry::{self, TelemetryArgs};

#[derive(Debug, Parser)]
#[command(
    name = "randomize",
    version,
    about = "Word-randomizer REST service with an audit history"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (run `migrate` first).
    Serve(Box<ServeArgs>),
    /// Apply pending migrations (or list them, or revert the newest).
    Migrate(MigrateArgs),
    /// Print a signed JWT for an operator (or the Swagger UI "Authorize" button).
    Token(TokenArgs),
    /// Print the OpenAPI 3.1 document.
    Openapi,
    /// Export or purge the audit history, straight on the database.
    Audit(audit::AuditArgs),
    /// Connect to the database once and run `SELECT 1` (entrypoint.sh waits with it).
    PingDb(PingDbArgs),
    /// GET /healthz on the local server; exit 0 when it answers 200 (the image's HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct PingDbArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Connection to try instead (as `migrate` uses it).
    #[command(flatten)]
    pub migration: MigrationUrlArgs,
}

#[derive(Debug, Args)]
pub struct MigrationUrlArgs {
    /// Connection used for migrations only: a role that owns the tables while the
    /// service runs as one that does not (docs/AUDIT.md), or a path past a transaction
    /// pooler such as PgBouncer, where session advisory locks do not work (or
    /// MIGRATION_DATABASE_URL_FILE). Default: DATABASE_URL.
    #[arg(long, env = "MIGRATION_DATABASE_URL", hide_env_values = true)]
    pub migration_database_url: Option<String>,
    #[arg(long, env = "MIGRATION_DATABASE_URL_FILE")]
    pub migration_database_url_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's listen address; an unspecified IP (0.0.0.0, ::) is probed on loopback.
    #[arg(long, env = "BIND", default_value = "0.0.0.0:5000")]
    pub bind: std::net::SocketAddr,
    /// Give up after this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Who the token is for (its `sub`; recorded as `subject` in the audit history).
    #[arg(long)]
    pub subject: String,
    /// Space-separated scopes.
    #[arg(long, default_value = HISTORIES_READ)]
    pub scope: String,
    /// Lifetime (`15m`, `1h`, `7d`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub migration: MigrationUrlArgs,
    /// How long to wait for another replica's migration lock before failing.
    #[arg(long, env = "MIGRATION_LOCK_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// List applied and pending migrations; change nothing.
    #[arg(long, conflicts_with = "revert")]
    pub status: bool,
    /// Revert the newest applied migration.
    #[arg(long)]
    pub revert: bool,
}

/// Runs the parsed command. `serve` blocks until the server has shut down.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Migrate(args) => migrate(args),
        Command::Token(args) => token(&args),
        Command::Openapi => {
            println!("{}", crate::openapi::document().to_pretty_json()?);
            Ok(())
        }
        Command::Audit(args) => audit::run(args),
        Command::PingDb(args) => ping_db(&args),
        Command::Healthcheck(args) => crate::probe::healthz(args.bind, args.timeout),
    }
}

fn ping_db(args: &PingDbArgs) -> anyhow::Result<()> {
    let config = migration_config(&args.database, &args.migration)?;
    let backend = config.url.backend();
    crate::db::ping(&ConnectOptions::from(&config))
        .with_context(|| format!("{backend} database does not answer"))?;
    println!("{backend} database answers");
    Ok(())
}

/// DATABASE_URL, or MIGRATION_DATABASE_URL(_FILE) when set.
fn migration_config(
    database: &DatabaseArgs,
    migration: &MigrationUrlArgs,
) -> anyhow::Result<DatabaseConfig> {
    let mut config = DatabaseConfig::from_args(database)?;
    let url = crate::settings::read_secret(
        "MIGRATION_DATABASE_URL",
        migration.migration_database_url.as_deref(),
        migration.migration_database_url_file.as_deref(),
    )?;
    if let Some(url) = url.filter(|u| !secrecy::ExposeSecret::expose_secret(u).is_empty()) {
        config.url = DatabaseUrl::parse(secrecy::ExposeSecret::expose_secret(&url))
            .map_err(|e| anyhow::anyhow!("MIGRATION_{e}"))?;
    }
    Ok(config)
}

fn token(args: &TokenArgs) -> anyhow::Result<()> {
    if args.subject.trim().is_empty() {
        anyhow::bail!("--subject must not be empty");
    }
    if args.ttl.is_zero() {
        anyhow::bail!("--ttl must be greater than zero");
    }
    let signer = args.jwt.signer()?;
    // With the verification key configured too, prove the pair matches before an
    // operator hands out a token the server would refuse.
    if let Some(verifier) = args.jwt.verifier()? {
        auth::check_pair(&signer, &verifier).map_err(|e| {
            anyhow::anyhow!("JWT_PRIVATE_KEY does not match the verification key: {e}")
        })?;
    }
    println!(
        "{}",
        signer.sign(args.subject.trim(), &args.scope, args.ttl, auth::unix_now())?
    );
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(&args.telemetry)?;
    let config = ServerConfig::from_args(&args)?;
    actix_web::rt::System::new()
        .block_on(async move { Application::build(config)?.run_until_stopped().await })
}

fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    telemetry::init(&args.telemetry)?;
    let config = migration_config(&args.database, &args.migration)?;
    let options = ConnectOptions::from(&config);
    if args.status {
        let status = migrations::status(&options).context("cannot read migration status")?;
        for name in &status.applied {
            println!("applied  {name}");
        }
        for name in &status.pending {
            println!("pending  {name}");
        }
        println!(
            "{} applied, {} pending",
            status.applied.len(),
            status.pending.len()
        );
    } else if args.revert {
        match migrations::revert_last(&options, args.lock_timeout).context("cannot revert")? {
            Some(name) => println!("reverted {name}"),
            None => println!("nothing to revert"),
        }
    } else {
        let applied =
            migrations::run_pending(&options, args.lock_timeout).context("cannot migrate")?;
        for name in &applied {
            println!("applied  {name}");
        }
        println!("{} migration(s) applied; schema is current", applied.len());
    }
    Ok(())
}
