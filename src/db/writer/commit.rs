//! How one batch is stored: the jobs' own statements first (an update, a delete), then
//! every new record and every audit entry at once (`batch::insert`), then one commit.

use diesel::connection::SimpleConnection;

use super::job::{Done, Outcome, Queued, fail_all};
use super::reads::Reads;
use super::session::{Arrival, Plan, Session};
use crate::db::batch::{self, Audit, Keyed};
use crate::db::connection::DbConnection;
use crate::db::error::StoreError;
use crate::db::idempotency::NewKey;
use crate::db::ledger::Ledger;
use crate::db::values::now;

/// Stores `batch` and answers every job in it, or returns the error that failed it
/// with its jobs still waiting (for `replay::recover`). A batch that could not even
/// begin is answered with that error here.
pub(super) fn store(
    session: &mut Session,
    batch: &mut Vec<Queued>,
    arrival: Arrival,
) -> Result<(), StoreError> {
    let plan = session.plan(arrival, batch.iter().all(|q| q.job.needs_no_transaction()));
    let status = session.status();
    session.ledger().arrived(arrival == Arrival::Busy);
    let (conn, ledger) = match session.ready(plan) {
        Ok(ready) => ready,
        Err(error) => {
            fail_all(batch, &error, &status);
            return Ok(());
        }
    };
    let stored = match plan {
        Plan::OneStatement => write(conn, batch, ledger, false).inspect(|_| ledger.commit()),
        Plan::Transaction => committed(conn, batch, ledger),
    };
    if stored.is_err() {
        ledger.abandon();
    }
    let outcomes = stored?;
    for (queued, outcome) in batch.drain(..).zip(outcomes) {
        queued.answer(outcome, &status);
    }
    Ok(())
}

/// The jobs and `COMMIT`, on a connection where `BEGIN` succeeded; rolled back if any
/// of it fails. The ledger's new tip counts once `COMMIT` succeeded.
pub(super) fn committed(
    conn: &mut DbConnection,
    batch: &[Queued],
    ledger: &mut Ledger,
) -> Result<Vec<Outcome>, StoreError> {
    let written = write(conn, batch, ledger, true).and_then(|outcomes| {
        conn.batch_execute("COMMIT")?;
        ledger.commit();
        Ok(outcomes)
    });
    if written.is_err() {
        ledger.abandon();
    }
    if written.is_err()
        && let Err(error) = conn.batch_execute("ROLLBACK")
        // SQLite rolls back on its own after some errors (SQLITE_FULL among them).
        && !error.to_string().contains("no transaction is active")
    {
        tracing::warn!(%error, "rollback failed");
    }
    written
}

/// The responses the batch's keyed jobs store (SPEC §13): a creation's once its record
/// is stored, an update's or a delete's now. A job that changed nothing (an unknown id,
/// a stale precondition) stores none: a retry is answered the same way afresh.
fn keyed<'a>(batch: &'a [Queued], applied: &[Option<Outcome>]) -> Vec<Keyed<'a>> {
    let mut records = 0;
    let mut keys = Vec::new();
    for (queued, outcome) in batch.iter().zip(applied) {
        let of_record = queued.job.new_record().map(|_| {
            records += 1;
            records - 1
        });
        let Some(claim) = queued.job.claim() else {
            continue;
        };
        match (of_record, outcome) {
            (Some(of_record), None) => keys.push(Keyed::Created { claim, of_record }),
            (_, Some(Ok(Done::Updated(record)))) => {
                keys.push(Keyed::Answered(NewKey::answered(
                    claim,
                    200,
                    Some(record),
                    now(),
                )));
            }
            (_, Some(Ok(Done::Deleted))) => {
                keys.push(Keyed::Answered(NewKey::answered(claim, 204, None, now())));
            }
            _ => {}
        }
    }
    keys
}

/// Each job's outcome once the batch commits, or the error that fails the whole batch.
///
/// A job's own statements may fail without poisoning the transaction (a stale
/// precondition, an unknown id): that job then writes no audit entry (the request
/// middleware appends one with the error's status) and the others go on.
fn write(
    conn: &mut DbConnection,
    batch: &[Queued],
    ledger: &mut Ledger,
    locked: bool,
) -> Result<Vec<Outcome>, StoreError> {
    let reads = Reads::read(conn, batch)?;
    let mut applied: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
    for queued in batch {
        let outcome = queued.job.apply(conn, ledger, &reads);
        if let Some(Err(error)) = &outcome
            && error.aborts_transaction()
        {
            return Err(error.clone());
        }
        applied.push(outcome);
    }
    let records: Vec<_> = batch.iter().filter_map(|q| q.job.new_record()).collect();
    let mut created = 0;
    let entries: Vec<_> = batch
        .iter()
        .zip(&applied)
        .filter(|(_, outcome)| !matches!(outcome, Some(Err(_))))
        .filter_map(|(queued, outcome)| {
            // Records are numbered in batch order, as `records` lists them.
            let of_record = queued.job.new_record().map(|_| {
                created += 1;
                created - 1
            });
            Some(Audit {
                entry: queued.job.entry()?,
                of_record,
                status: Reads::status(&queued.job, outcome.as_ref()),
            })
        })
        .collect();
    let keys = keyed(batch, &applied);
    let mut stored = if records.is_empty() && entries.is_empty() {
        Vec::new().into_iter()
    } else {
        batch::insert(conn, &records, &entries, &keys, ledger, locked)?.into_iter()
    };
    let outcomes = batch
        .iter()
        .zip(applied)
        .map(|(queued, outcome)| match outcome {
            Some(outcome) => outcome,
            None if queued.job.new_record().is_some() => stored
                .next()
                .map(Done::Created)
                .ok_or_else(|| StoreError::Internal("a created record did not come back".into())),
            None => Ok(Done::Appended),
        })
        .collect();
    Ok(outcomes)
}
