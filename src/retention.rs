//! Retention (SPEC §11): audit entries older than `AUDIT_RETENTION` are removed in the
//! background, and every run says so in the history itself.
//!
//! A run holds the purge lease (on PostgreSQL one replica at a time), then asks the
//! writer for one small step after another (`Job::Purge`, at most `STEP` entries each,
//! pausing as long as each step took),
//! so requests queue behind a few milliseconds of deleting, never behind one large
//! DELETE; then it appends one `PURGE` entry naming the cut-off, the count removed and
//! the rule. A run cut short (a crash, a shutdown) leaves the rest to the next run,
//! whose entry counts what it removed itself.

use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, SecondsFormat};

use crate::db::histories::NewEntry;
use crate::db::retention::{Removed, any_before};
use crate::db::{Database, Done, Job, StoreError, now};
use crate::state::Draining;

/// Entries per step. At 1,000 a step took ~55 ms on a 5 M-entry SQLite history (each
/// entry leaves six indexes) and POST p99 at c=64 tripled during a purge; smaller
/// steps keep the wait behind one short.
const STEP: i64 = 250;
/// How often the background job looks for entries past retention, at most.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Removed this many entries created before `cut`, and recorded it.
    Purged { cut: NaiveDateTime, removed: u64 },
    /// Another process holds the lease (another replica is purging).
    Busy,
}

/// One run: removes every entry older than `keep` and appends the `PURGE` entry.
/// `rule` says who asked (`AUDIT_RETENTION=90d`, `randomize audit purge`).
pub(crate) async fn purge(
    db: &Database,
    keep: Duration,
    rule: &str,
) -> Result<Outcome, StoreError> {
    let started = Instant::now();
    let Some(_lease) = db.purge_lease().await? else {
        return Ok(Outcome::Busy);
    };
    let cut = cut_for(keep);
    let mut removed = 0u64;
    let mut from = None;
    loop {
        let began = Instant::now();
        let step = db
            .writer()
            .run(Job::Purge {
                cut,
                from,
                limit: STEP,
            })
            .await?;
        // As long again for requests as the step took: a purge never takes more than
        // half of the writer's time, however much is due.
        tokio::time::sleep(began.elapsed()).await;
        let Done::Purged(Removed {
            entries,
            last_created,
            ..
        }) = step
        else {
            return Err(StoreError::Internal(format!(
                "the writer answered {step:?} to a purge step"
            )));
        };
        removed += entries as u64;
        match last_created {
            Some(at) if entries as i64 == STEP => from = Some(at),
            _ => break,
        }
    }
    let entry = purge_entry(cut, removed, rule, started.elapsed());
    db.writer().run(Job::Append { entry }).await?;
    Ok(Outcome::Purged { cut, removed })
}

/// Purges whenever entries older than `keep` exist, until shutdown begins.
pub(crate) async fn run(db: Database, keep: Duration, draining: Draining) {
    let rule = format!("AUDIT_RETENTION={}", humantime::format_duration(keep));
    let pause = (keep / 4).clamp(Duration::from_secs(1), LONGEST_PAUSE);
    tracing::info!(retention = %humantime::format_duration(keep), "audit retention on");
    while !draining.is_draining() {
        let cut = cut_for(keep);
        let due = db.read(move |conn| any_before(conn, cut)).await;
        if matches!(due, Ok(true)) {
            match purge(&db, keep, &rule).await {
                Ok(Outcome::Purged { cut, removed }) => {
                    tracing::info!(removed, before = %stamp(cut), "audit entries purged");
                }
                Ok(Outcome::Busy) => tracing::debug!("another replica is purging"),
                // A refused write is reported by the writer's status; others here.
                Err(StoreError::Unwritable(_)) => {}
                Err(error) => tracing::warn!(%error, "audit purge failed; retrying later"),
            }
        }
        tokio::time::sleep(pause).await;
    }
}

fn cut_for(keep: Duration) -> NaiveDateTime {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    now().checked_sub_signed(keep).unwrap_or(NaiveDateTime::MIN)
}

fn stamp(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The history's own account of a run: method `PURGE` on `/api/histories`, the
/// cut-off, the count and the rule in `query`.
fn purge_entry(cut: NaiveDateTime, removed: u64, rule: &str, took: Duration) -> NewEntry {
    let query = serde_urlencoded::to_string([
        ("before", stamp(cut)),
        ("removed", removed.to_string()),
        ("rule", rule.to_owned()),
    ])
    .ok();
    NewEntry {
        request_id: uuid::Uuid::now_v7().to_string(),
        method: "PURGE".into(),
        path: "/api/histories".into(),
        query,
        status: 200,
        duration_ms: (took.as_secs_f64() * 1e6).round() / 1e3,
        client_ip: None,
        user_agent: Some(concat!("randomize/", env!("CARGO_PKG_VERSION")).into()),
        subject: None,
        created: now(),
        resource_id: None,
        token_id: None,
        trace_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_entry_names_the_cut_the_count_and_the_rule() {
        let cut = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        let entry = purge_entry(cut, 42, "AUDIT_RETENTION=90days", Duration::from_millis(3));
        assert_eq!(entry.method, "PURGE");
        assert_eq!(entry.path, "/api/histories");
        assert_eq!(
            entry.query.as_deref(),
            Some("before=2023-11-14T22%3A13%3A20.000Z&removed=42&rule=AUDIT_RETENTION%3D90days")
        );
    }
}
