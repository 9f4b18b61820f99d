//! What requests ask of the writer, as plain data it can run, and run again when a
//! failed batch is replayed: every input (the jumbled word, the audit entry) is computed
//! before queueing, so a replay writes exactly the same.

use chrono::NaiveDateTime;
use tokio::sync::oneshot;

use super::reads::Reads;
use crate::chain::{Checkpoint, Kind};
use crate::db::chain;
use crate::db::connection::DbConnection;
use crate::db::error::StoreError;
use crate::db::heartbeat;
use crate::db::histories::NewEntry;
use crate::db::idempotency::{self, KeyClaim};
use crate::db::ledger::Ledger;
use crate::db::page::{Page, Window};
use crate::db::randomizes::{self, Held, NewRecord, Precondition, Record};
use crate::db::retention::{self, Removed};
use crate::db::status::WriterStatus;
use crate::db::values::now;

/// One request's write. Each carries the request's audit entry, which commits with it
/// atomically, or not at all when the write does not happen.
#[derive(Debug)]
pub(crate) enum Job {
    /// A new record. With `key`, its response is stored under it (SPEC §13).
    Create {
        record: NewRecord,
        entry: NewEntry,
        key: Option<KeyClaim>,
    },
    /// A new word for record `id`, when `precondition` holds.
    Update {
        id: i64,
        precondition: Precondition,
        change: NewRecord,
        entry: NewEntry,
        key: Option<KeyClaim>,
    },
    /// Record `id` removed, when `precondition` holds.
    Delete {
        id: i64,
        precondition: Precondition,
        entry: NewEntry,
        key: Option<KeyClaim>,
    },
    /// Removes up to `limit` idempotency keys stored before `before`.
    ExpireKeys { before: NaiveDateTime, limit: i64 },
    /// Only the audit entry: every request that changed nothing.
    Append { entry: NewEntry },
    /// Reads record `id` and records the entry of the request that asked, with the
    /// status what was found decides (`Held::judge`). Every lookup of a batch is one
    /// statement, and each costs the request one hand-off, as a write does.
    Find {
        id: i64,
        held: Held,
        entry: NewEntry,
    },
    /// Reads one page of the unfiltered record list, and records the entry (200). Only
    /// for windows whose cost does not grow with the table (`reads::page_is_bounded`): a
    /// read here holds up every write. Equal windows in one batch are read once.
    List { window: Window, entry: NewEntry },
    /// One step of a purge: up to `limit` of the oldest entries created before
    /// `cut`, at or after `from`. Its run appends one `PURGE` entry of its own at the end (`retention`).
    Purge {
        cut: NaiveDateTime,
        from: Option<NaiveDateTime>,
        limit: i64,
    },
    /// A write that records nothing, to learn whether the database takes writes again
    /// (readiness, while writes are refused).
    Probe,
    /// A signed checkpoint of the writer's chain, if it grew since the last one.
    Checkpoint(Kind),
}

/// What a job did, once its batch committed.
#[derive(Debug)]
pub(crate) enum Done {
    Created(Record),
    Updated(Record),
    /// What a lookup found.
    Found(Option<Record>),
    /// The page a list read.
    Listed(Page<Record>),
    Deleted,
    Appended,
    Probed,
    Purged(Removed),
    /// The checkpoint stored, or none when the chain had not grown.
    Checkpointed(Option<Checkpoint>),
    /// How many idempotency keys expired.
    Expired(usize),
}

pub(super) type Outcome = Result<Done, StoreError>;

impl Done {
    /// The record a create or an update stored.
    pub(crate) fn into_record(self) -> Result<Record, StoreError> {
        match self {
            Self::Created(record) | Self::Updated(record) => Ok(record),
            other => Err(StoreError::Internal(format!(
                "the writer answered {other:?} where a record was expected"
            ))),
        }
    }
}

impl Job {
    pub(super) fn entry(&self) -> Option<&NewEntry> {
        match self {
            Self::Create { entry, .. }
            | Self::Update { entry, .. }
            | Self::Delete { entry, .. }
            | Self::Append { entry }
            | Self::Find { entry, .. }
            | Self::List { entry, .. } => Some(entry),
            Self::Probe | Self::Purge { .. } | Self::Checkpoint(_) | Self::ExpireKeys { .. } => {
                None
            }
        }
    }

    /// The idempotency key whose response this job's outcome is stored under.
    pub(super) fn claim(&self) -> Option<&KeyClaim> {
        match self {
            Self::Create { key, .. } | Self::Update { key, .. } | Self::Delete { key, .. } => {
                key.as_ref()
            }
            _ => None,
        }
    }

    /// The record a create inserts.
    pub(super) fn new_record(&self) -> Option<&NewRecord> {
        match self {
            Self::Create { record, .. } => Some(record),
            _ => None,
        }
    }

    /// Only rows to insert, which the batch writes together with every other job's,
    /// and lookups, read before them: nothing that needs a transaction around it.
    pub(super) fn needs_no_transaction(&self) -> bool {
        matches!(
            self,
            Self::Create { .. } | Self::Append { .. } | Self::Find { .. } | Self::List { .. }
        )
    }

    /// Runs the statements of a job that is not insert-only, on the open transaction
    /// (a read takes what the batch's reads found). Its entry is to be written only if
    /// this succeeds. `None` for insert-only jobs.
    pub(super) fn apply(
        &self,
        conn: &mut DbConnection,
        ledger: &mut Ledger,
        reads: &Reads,
    ) -> Option<Outcome> {
        match self {
            Self::Find { id, .. } => Some(Ok(Done::Found(reads.record(*id)))),
            Self::List { window, .. } => Some(reads.page(window).map(Done::Listed)),
            Self::Update {
                id,
                precondition,
                change,
                ..
            } => Some(randomizes::update(conn, *id, precondition, change).map(Done::Updated)),
            Self::Delete {
                id, precondition, ..
            } => Some(randomizes::delete(conn, *id, precondition).map(|()| Done::Deleted)),
            Self::Probe => Some(heartbeat::beat(conn).map(|()| Done::Probed)),
            Self::Purge { cut, from, limit } => Some(
                retention::remove_step(conn, *cut, *from, *limit, ledger.key()).map(Done::Purged),
            ),
            Self::Checkpoint(kind) => Some(checkpoint(conn, ledger, *kind)),
            Self::ExpireKeys { before, limit } => {
                Some(idempotency::expire(conn, *before, *limit).map(Done::Expired))
            }
            Self::Create { .. } | Self::Append { .. } => None,
        }
    }
}

/// Stores a checkpoint of the ledger's committed tip, signed with its key.
fn checkpoint(conn: &mut DbConnection, ledger: &mut Ledger, kind: Kind) -> Outcome {
    let Some(tip) = ledger.due_checkpoint() else {
        return Ok(Done::Checkpointed(None));
    };
    let checkpoint = Checkpoint::new(tip.chain, tip.seq, tip.hash, now(), kind, ledger.key());
    chain::insert_checkpoint(conn, &checkpoint)?;
    Ok(Done::Checkpointed(Some(checkpoint)))
}

/// A job in the queue, with the channel its request waits on.
pub(super) struct Queued {
    pub(super) job: Job,
    reply: oneshot::Sender<Outcome>,
}

impl Queued {
    pub(super) fn new(job: Job) -> (Self, oneshot::Receiver<Outcome>) {
        let (reply, answer) = oneshot::channel();
        (Self { job, reply }, answer)
    }

    /// Sends the outcome to the request, and counts it in `status`.
    pub(super) fn answer(self, outcome: Outcome, status: &WriterStatus) {
        match &outcome {
            Ok(done) => {
                if self.job.entry().is_some() {
                    status.appended(1);
                }
                match done {
                    Done::Purged(removed) => {
                        status.purged(removed.entries as u64);
                        removed.cuts.iter().for_each(|cut| status.checkpointed(cut));
                    }
                    Done::Checkpointed(Some(checkpoint)) => status.checkpointed(checkpoint),
                    _ => {}
                }
                status.wrote();
            }
            // A retried Idempotency-Key is the client's answer, not a writer failure.
            Err(StoreError::KeyTaken) => {}
            Err(error) if error.aborts_transaction() => status.failed(error),
            Err(_) => {}
        }
        // The requester may have gone (client disconnected); the write stands either way.
        let _ = self.reply.send(outcome);
    }
}

/// Every job in `batch` gets `error`.
pub(super) fn fail_all(batch: &mut Vec<Queued>, error: &StoreError, status: &WriterStatus) {
    batch
        .drain(..)
        .for_each(|queued| queued.answer(Err(error.clone()), status));
}
