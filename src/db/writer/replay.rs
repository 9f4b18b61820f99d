//! What happens when a batch fails.

use super::commit::committed;
use super::job::{Outcome, Queued, fail_all};
use super::session::{Plan, Session};
use crate::db::error::StoreError;

/// Sorts a failed batch by the cause of `error`:
/// - the database refuses writes (full, read-only): every job gets the error;
/// - the connection is gone: every job answers 503, and the next batch reconnects;
/// - a lock held elsewhere outlasted `DATABASE_TIMEOUT`, or the batch was a single job:
///   its jobs get the error (a replay would wait again, or fail the same way);
/// - otherwise a job is at fault: each job is replayed in a transaction of its own, so
///   only the faulty one fails.
pub(super) fn recover(session: &mut Session, batch: &mut Vec<Queued>, error: StoreError) {
    let status = session.status();
    if let StoreError::Unwritable(_) = error {
        // Every job would fail the same way; `status` reports it, once per interval. A
        // fresh connection next time: a read-only server may have been failed over.
        session.close();
        fail_all(batch, &error, &status);
    } else if session.is_lost(&error) {
        tracing::warn!(%error, batch = batch.len(), "writer lost the database; reconnecting next batch");
        session.close();
        let error = match error {
            StoreError::Unavailable(_) => error,
            other => StoreError::Unavailable(other.to_string()),
        };
        fail_all(batch, &error, &status);
    } else if matches!(&error, StoreError::Query(e) if e.to_string().contains("histories_chain_seq_idx"))
    {
        // A seq this chain already holds: an earlier commit landed that this writer did
        // not hear of (a lost reply). Learn the tip, then replay.
        tracing::warn!(%error, "audit chain tip was stale; reading it back and replaying");
        session.resync();
        for queued in batch.drain(..) {
            let outcome = alone(session, &queued);
            queued.answer(outcome, &status);
        }
    } else if matches!(error, StoreError::Locked(_)) || batch.len() == 1 {
        fail_all(batch, &error, &status);
    } else {
        if matches!(error, StoreError::KeyTaken) {
            // A retried Idempotency-Key: expected, and answered by the replay.
            tracing::debug!(
                batch = batch.len(),
                "a batch met a stored idempotency key; replaying its jobs one by one"
            );
        } else {
            tracing::warn!(%error, batch = batch.len(), "batch failed; replaying its jobs one by one");
        }
        for queued in batch.drain(..) {
            let outcome = alone(session, &queued);
            queued.answer(outcome, &status);
        }
    }
}

/// One job in a transaction of its own.
fn alone(session: &mut Session, queued: &Queued) -> Outcome {
    let (conn, ledger) = session.ready(Plan::Transaction)?;
    committed(conn, std::slice::from_ref(queued), ledger)?
        .pop()
        .unwrap_or_else(|| Err(StoreError::Internal("a replayed job has no outcome".into())))
}
