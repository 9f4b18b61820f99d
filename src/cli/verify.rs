//! `randomize audit verify` and `randomize audit keygen` (SPEC §12).
//!
//! Verify reads the entries from the database (each chain in seq order, on the
//! `(chain, seq)` index) or from an NDJSON export (in id order: within a chain, ids
//! grow with seq), and the checkpoints from the database or from a file of log lines.
//! It prints every problem, then one summary line, and fails unless all verifies.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use crate::chain::verify::{Report, Stored, Verification};
use crate::chain::{Checkpoint, PublicKey, SigningKey};
use crate::db::histories::Entry;
use crate::db::{ConnectOptions, DatabaseArgs, DatabaseConfig, DbConnection, chain};

/// Entries read per query while walking the database.
const STEP: i64 = 10_000;

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    /// Verify this NDJSON export (`Accept: application/x-ndjson`, `randomize audit
    /// export`) instead of the database.
    #[arg(long)]
    pub(crate) export: Option<PathBuf>,
    /// Check against the checkpoints in this file of log lines (the service's log, or
    /// any file holding its `audit checkpoint` lines) instead of the database's.
    #[arg(long)]
    pub(crate) checkpoints: Option<PathBuf>,
    /// PEM file of the Ed25519 public key that signed the checkpoints. Without it,
    /// signatures are not checked (and the summary says so).
    #[arg(long)]
    pub(crate) public_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Write the private key here (created, owner-only; never overwritten). Without it
    /// the private key is printed before the public one.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
}

pub(super) fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let key = args
        .public_key
        .as_deref()
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            PublicKey::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--public-key {}: {e}", path.display()))
        })
        .transpose()?;
    let mut conn = match (&args.export, &args.checkpoints) {
        (Some(_), Some(_)) => None,
        _ => Some(connect(&args.database)?),
    };
    let checkpoints = match (&args.checkpoints, conn.as_mut()) {
        (Some(path), _) => checkpoints_from_log(path)?,
        (None, Some(conn)) => chain::all_checkpoints(conn)
            .context("cannot read the checkpoints")?
            .iter()
            .filter_map(chain::StoredCheckpoint::checkpoint)
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut verification = Verification::new(checkpoints, key.as_ref());
    match (&args.export, conn.as_mut()) {
        (Some(path), _) => feed_export(&mut verification, path)?,
        (None, Some(conn)) => feed_database(&mut verification, conn)?,
        (None, None) => {}
    }
    let report = verification.finish();
    print(&report, started)?;
    if !report.passed() {
        bail!("the audit history did not verify");
    }
    Ok(())
}

fn connect(database: &DatabaseArgs) -> anyhow::Result<DbConnection> {
    let config = DatabaseConfig::from_args(database)?;
    ConnectOptions::from(&config)
        .connect()
        .with_context(|| format!("cannot open the {} database", config.url.backend()))
}

fn print(report: &Report, started: Instant) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for problem in &report.problems {
        writeln!(out, "{problem}")?;
    }
    if report.problem_count > report.problems.len() {
        writeln!(
            out,
            "… and {} more problems",
            report.problem_count - report.problems.len()
        )?;
    }
    writeln!(
        out,
        "{} (in {:.1} s)",
        report.summary(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

fn checkpoints_from_log(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut checkpoints = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if let Some(checkpoint) = Checkpoint::from_log_line(&line) {
            checkpoints.push(checkpoint);
        }
    }
    Ok(checkpoints)
}

fn feed_database(verification: &mut Verification, conn: &mut DbConnection) -> anyhow::Result<()> {
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let rows = chain::next_links(conn, after, STEP).context("cannot read the history")?;
        let Some(last) = rows.last() else { break };
        after = (last.chain.unwrap_or(i64::MAX), last.seq.unwrap_or(i64::MAX));
        rows.iter()
            .for_each(|entry| verification.feed(&stored(entry)));
    }
    let mut after = 0;
    loop {
        let rows = chain::next_unchained(conn, after, STEP).context("cannot read the history")?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        rows.iter()
            .for_each(|entry| verification.feed(&stored(entry)));
    }
    Ok(())
}

fn stored(entry: &Entry) -> Stored<'_> {
    Stored {
        id: entry.id,
        chain: entry.chain,
        seq: entry.seq,
        hash: entry.hash.as_deref(),
        fields: entry.fields(),
    }
}

impl Exported {
    /// The entry as stored: the time parsed, the hash back to bytes (a malformed one is
    /// none, which verification reports).
    fn into_entry(self, created: chrono::NaiveDateTime) -> Entry {
        Entry {
            id: self.id,
            request_id: self.request_id,
            method: self.method,
            path: self.path,
            query: self.query,
            status: self.status,
            duration_ms: self.duration_ms,
            client_ip: self.client_ip,
            user_agent: self.user_agent,
            subject: self.subject,
            created,
            resource_id: self.resource_id,
            token_id: self.token_id,
            trace_id: self.trace_id,
            chain: self.chain,
            seq: self.seq,
            hash: self
                .hash
                .as_deref()
                .and_then(crate::chain::encoding::parse_hash)
                .map(|h| h.to_vec()),
        }
    }
}

/// One line of an NDJSON export, as `EntryView` writes it.
#[derive(Debug, Deserialize)]
struct Exported {
    id: i64,
    request_id: String,
    method: String,
    path: String,
    query: Option<String>,
    status: i32,
    duration_ms: f64,
    client_ip: Option<String>,
    user_agent: Option<String>,
    subject: Option<String>,
    created: String,
    resource_id: Option<i64>,
    token_id: Option<String>,
    trace_id: Option<String>,
    chain: Option<i64>,
    seq: Option<i64>,
    hash: Option<String>,
}

fn feed_export(verification: &mut Verification, path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), number + 1);
        let entry: Exported = serde_json::from_str(&line).with_context(|| {
            format!("{}: not an NDJSON export entry (verify reads NDJSON; CSV neutralises formula cells, so it does not round-trip)", at())
        })?;
        let created = chrono::DateTime::parse_from_rfc3339(&entry.created)
            .with_context(|| format!("{}: created is not RFC 3339", at()))?
            .naive_utc();
        verification.feed(&stored(&entry.into_entry(created)));
    }
    Ok(())
}

pub(super) fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = SigningKey::generate();
    let mut out = std::io::stdout().lock();
    match &args.output {
        Some(path) => {
            write_private(path, &key.to_pem())?;
            eprintln!(
                "wrote the private key to {} (AUDIT_SIGNING_KEY_FILE); the public key follows, for `randomize audit verify --public-key`",
                path.display()
            );
        }
        None => out.write_all(key.to_pem().as_bytes())?,
    }
    out.write_all(key.public().to_pem().as_bytes())?;
    Ok(())
}

fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
