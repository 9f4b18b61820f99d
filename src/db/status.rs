//! What the writer has done and whether the database takes writes: counters for
//! `/metrics`, and the condition `/readyz` reports while every write is refused.
//!
//! A full or read-only database fails every request until an operator acts, so the
//! log must not say it once per request (SPEC §11): the first refusal is logged, then
//! one line per `REPORT_EVERY` with the count since the last line, and one line when
//! writes resume.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{StoreError, Unwritable};
use super::histogram::{Histogram, Snapshot};
use crate::chain::Checkpoint;

const REPORT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct WriterStatus {
    appended: AtomicU64,
    purged: AtomicU64,
    /// By `StoreError::label`.
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Fast path for `wrote`, which runs after every committed job.
    refusing: AtomicBool,
    refusal: Mutex<Option<Refusal>>,
    /// Unix seconds of the newest checkpoint this process took; 0 before the first.
    last_checkpoint: AtomicI64,
    batches: Batches,
}

/// How large and how long the writer's batches are: what a request's latency is made
/// of, since every API request waits for the batch that commits its entry.
#[derive(Debug)]
struct Batches {
    jobs: Histogram,
    seconds: Histogram,
}

impl Default for Batches {
    fn default() -> Self {
        Self {
            jobs: Histogram::doubling_from(1.0),
            // 0.25 ms … 4 s, the request latency histogram's range.
            seconds: Histogram::doubling_from(0.000_25),
        }
    }
}

#[derive(Debug)]
struct Refusal {
    cause: Unwritable,
    since: Instant,
    refused: u64,
    reported_at: Instant,
    unreported: u64,
}

/// The database refuses writes: why, since when, how many requests it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub cause: Unwritable,
    pub for_: Duration,
    pub requests: u64,
}

impl WriterStatus {
    pub(crate) fn appended(&self, entries: u64) {
        self.appended.fetch_add(entries, Ordering::Relaxed);
    }

    /// One batch of `jobs` was stored (or failed) in `took`.
    pub(crate) fn batch(&self, jobs: usize, took: Duration) {
        self.batches.jobs.observe(jobs as f64);
        self.batches.seconds.observe(took.as_secs_f64());
    }

    /// Jobs per batch, and seconds per batch.
    pub(crate) fn batches(&self) -> (Snapshot, Snapshot) {
        (
            self.batches.jobs.snapshot(),
            self.batches.seconds.snapshot(),
        )
    }

    pub(crate) fn purged(&self, entries: u64) {
        self.purged.fetch_add(entries, Ordering::Relaxed);
    }

    /// `checkpoint` committed: it goes to the log as one JSON line, the copy that lives
    /// outside the database (`randomize audit verify --checkpoints`).
    pub(crate) fn checkpointed(&self, checkpoint: &Checkpoint) {
        tracing::info!(
            target: "randomize::audit::checkpoint",
            checkpoint = %checkpoint.to_json(),
            "audit checkpoint"
        );
        self.last_checkpoint
            .fetch_max(checkpoint.created.and_utc().timestamp(), Ordering::Relaxed);
    }

    /// When this process last took a checkpoint (Unix seconds).
    pub fn last_checkpoint(&self) -> Option<i64> {
        Some(self.last_checkpoint.load(Ordering::Relaxed)).filter(|&at| at > 0)
    }

    /// A job failed with `error` (not a client's mistake such as an unknown id).
    pub(crate) fn failed(&self, error: &StoreError) {
        if let Ok(mut failures) = self.failures.lock() {
            *failures.entry(error.label()).or_default() += 1;
        }
        if let StoreError::Unwritable(cause) = error {
            self.refused(*cause);
        }
    }

    fn refused(&self, cause: Unwritable) {
        let Ok(mut refusal) = self.refusal.lock() else {
            return;
        };
        let now = Instant::now();
        let current = refusal.get_or_insert_with(|| {
            tracing::error!(
                cause = cause.label(),
                "the database cannot take writes ({cause}): answering 503 until a write succeeds"
            );
            self.refusing.store(true, Ordering::Release);
            Refusal {
                cause,
                since: now,
                refused: 0,
                reported_at: now,
                unreported: 0,
            }
        });
        current.cause = cause;
        current.refused += 1;
        current.unreported += 1;
        if now.duration_since(current.reported_at) >= REPORT_EVERY {
            tracing::error!(
                cause = cause.label(),
                refused = current.unreported,
                seconds = now.duration_since(current.reported_at).as_secs(),
                total_refused = current.refused,
                "the database still cannot take writes ({cause})"
            );
            current.reported_at = now;
            current.unreported = 0;
        }
    }

    /// A write committed: the database takes writes (again).
    pub(crate) fn wrote(&self) {
        if !self.refusing.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut refusal) = self.refusal.lock() else {
            return;
        };
        if let Some(ended) = refusal.take() {
            self.refusing.store(false, Ordering::Release);
            tracing::warn!(
                cause = ended.cause.label(),
                seconds = ended.since.elapsed().as_secs(),
                refused = ended.refused,
                "writes resumed"
            );
        }
    }

    /// `Some` while the database refuses writes.
    pub fn refused_now(&self) -> Option<Refused> {
        if !self.refusing.load(Ordering::Acquire) {
            return None;
        }
        let refusal = self.refusal.lock().ok()?;
        refusal.as_ref().map(|r| Refused {
            cause: r.cause,
            for_: r.since.elapsed(),
            requests: r.refused,
        })
    }

    pub fn appended_total(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    pub fn purged_total(&self) -> u64 {
        self.purged.load(Ordering::Relaxed)
    }

    /// Failed jobs by cause label.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        self.failures
            .lock()
            .map(|f| f.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lasts_until_a_write_succeeds() {
        let status = WriterStatus::default();
        assert_eq!(status.refused_now(), None);
        for _ in 0..3 {
            status.failed(&StoreError::Unwritable(Unwritable::Full));
        }
        status.failed(&StoreError::Locked("busy".into()));

        let refused = status.refused_now().map(|r| (r.cause, r.requests));
        assert_eq!(refused, Some((Unwritable::Full, 3)));
        assert_eq!(status.failures(), vec![("disk_full", 3), ("locked", 1)]);

        status.wrote();
        assert_eq!(status.refused_now(), None);
    }
}
