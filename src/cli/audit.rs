//! `randomize audit …`: the history's life from the command line, straight on the
//! database (no server needed): `export` streams it to a file or stdout, `purge`
//! removes what is older than a duration and records that it did; `verify` and
//! `keygen` (in `verify`) check and sign its tamper evidence.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::api::export::{self, Format, Selection};
use crate::chain::SigningArgs;
use crate::db::histories::Filter;
use crate::db::page::Order;
use crate::db::{Database, DatabaseArgs, DatabaseConfig};
use crate::retention::{self, Outcome};
use crate::settings::parse_duration;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub(crate) command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Write every entry (oldest first) as NDJSON or CSV, as `Accept:` does on
    /// GET /api/histories; a progress bar on a terminal.
    Export(ExportArgs),
    /// Remove entries older than a duration now, in small steps, and append a PURGE
    /// entry saying so.
    Purge(PurgeArgs),
    /// Recompute every hash chain from the database or an NDJSON export and check it
    /// against the signed checkpoints; exit 0 only when everything verifies.
    Verify(super::verify::VerifyArgs),
    /// Print a new Ed25519 key pair for AUDIT_SIGNING_KEY (private key to --output,
    /// public key to standard output).
    Keygen(super::verify::KeygenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    /// Entries created at or after this instant (RFC 3339).
    #[arg(long, value_parser = parse_instant)]
    pub(crate) since: Option<chrono::NaiveDateTime>,
    /// Entries created before this instant (RFC 3339).
    #[arg(long, value_parser = parse_instant)]
    pub(crate) until: Option<chrono::NaiveDateTime>,
    #[arg(long, value_enum, default_value = "ndjson")]
    pub(crate) format: Format,
    /// Where to write (default: standard output).
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    #[command(flatten)]
    pub(crate) signing: SigningArgs,
    /// Remove entries created longer ago than this (`90d`, `12h`).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) older_than: Duration,
}

fn parse_instant(raw: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|at| at.naive_utc())
        .map_err(|e| format!("expected an RFC 3339 instant such as 2026-01-31T12:00:00Z: {e}"))
}

pub(super) fn run(args: AuditArgs) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        match args.command {
            AuditCommand::Export(args) => {
                let db = Database::open(&DatabaseConfig::from_args(&args.database)?, None);
                let exported = export_to(&db, &args).await;
                db.shutdown().await;
                exported
            }
            AuditCommand::Purge(args) => {
                let key = args.signing.key()?;
                if key.is_none() {
                    eprintln!(
                        "warning: no AUDIT_SIGNING_KEY: the cut checkpoints of this purge are unsigned, \
                         and `randomize audit verify --public-key` will reject them"
                    );
                }
                let db = Database::open(&DatabaseConfig::from_args(&args.database)?, key);
                let rule = format!(
                    "randomize audit purge --older-than {}",
                    humantime::format_duration(args.older_than)
                );
                let purged = retention::purge(&db, args.older_than, &rule).await;
                db.shutdown().await;
                match purged.context("cannot purge")? {
                    Outcome::Purged { cut, removed } => {
                        println!(
                            "removed {removed} entries created before {}",
                            cut.and_utc().to_rfc3339()
                        );
                        Ok(())
                    }
                    Outcome::Busy => {
                        anyhow::bail!("another process is purging now; try again when it is done")
                    }
                }
            }
            AuditCommand::Verify(args) => super::verify::verify(&args),
            AuditCommand::Keygen(args) => super::verify::keygen(&args),
        }
    })
}

async fn export_to(db: &Database, args: &ExportArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let through = export::newest_id(db)
        .await
        .context("cannot read the history")?;
    let filter = Filter {
        since: args.since,
        until: args.until,
        ..Filter::default()
    };
    let progress = progress_bar(through.unwrap_or(0));
    let mut chunks = std::pin::pin!(export::walk(
        db.clone(),
        Selection {
            filter,
            order: Order::OldestFirst,
        },
        args.format,
        through,
    ));
    let mut exported = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.context("export stopped: the history could not be read")?;
        out.write_all(&chunk.bytes)
            .context("cannot write the export")?;
        exported += chunk.entries;
        if let Some(id) = chunk.last_id {
            progress.set_position(u64::try_from(id).unwrap_or(0));
        }
        progress.set_message(format!("{exported} entries"));
    }
    out.flush().context("cannot write the export")?;
    progress.finish_and_clear();
    eprintln!("exported {exported} entries");
    Ok(())
}

/// A bar over the id range on a terminal (ids are dense enough to show progress);
/// nothing at all when stderr is piped or redirected.
fn progress_bar(through: i64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(through).unwrap_or(0)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar
}
