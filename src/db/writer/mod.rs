//! The group-commit writer: one thread per process owns one connection and performs
//! every write (records and audit entries).
//!
//! Requests queue [`Job`]s; the thread takes everything queued (up to `MAX_BATCH`),
//! stores it in one transaction and commits once, then answers each job. With
//! `synchronous=FULL` one fsync therefore acknowledges a whole batch, which is where
//! durable throughput comes from; and since it is the only writer, SQLite never reports
//! "database is locked" between our own requests.
//!
//! - `job`: what can be asked of the writer, as data, and what it answers;
//! - `session`: the writer's connection and what is known about it;
//! - `reads`: what a batch's reads (lookups, list pages) found, read before its rows;
//! - `commit`: how one batch is stored and committed;
//! - `replay`: what happens when a batch fails.

mod commit;
mod job;
mod reads;
mod replay;
mod session;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc::{self, error::TryRecvError};

pub(crate) use job::{Done, Job};
pub(crate) use reads::page_is_bounded;

use super::batch::ENTRY_WIDTH;
use super::connection::ConnectOptions;
use super::error::StoreError;
use super::ledger::Ledger;
use super::status::WriterStatus;
use crate::chain::Kind;
use job::Queued;
use session::{Arrival, Session};

/// Large enough to amortise an fsync over many requests, small enough that one batch's
/// transaction stays short and SQLite's multi-row INSERTs stay below its bind-parameter
/// limit (checked below).
const MAX_BATCH: usize = 512;
/// Queue bound: beyond it, requests wait to enqueue (backpressure), never dropped.
const QUEUE_CAPACITY: usize = 8192;
/// `SQLITE_MAX_VARIABLE_NUMBER` of the bundled SQLite.
const SQLITE_MAX_BINDS: usize = 32_766;
const _: () = assert!(MAX_BATCH * ENTRY_WIDTH <= SQLITE_MAX_BINDS);

pub(crate) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Queued>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    status: Arc<WriterStatus>,
}

impl Writer {
    pub(crate) fn start(options: ConnectOptions, ledger: Ledger) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let status = Arc::new(WriterStatus::default());
        let session = Session::new(options, Arc::clone(&status), ledger);
        let thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || serve(receiver, session))
            .map_err(|e| tracing::error!(error = %e, "cannot start the writer thread"))
            .ok();
        Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(thread),
            status,
        }
    }

    /// What the writer has done, and whether the database takes writes.
    pub(crate) fn status(&self) -> &Arc<WriterStatus> {
        &self.status
    }

    /// Runs `job` in the writer's next batch and returns once that batch is committed
    /// (or has failed).
    pub(crate) async fn run(&self, job: Job) -> Result<Done, StoreError> {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::Internal("writer lock poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the service is shutting down".into()))?;
        let (queued, answer) = Queued::new(job);
        sender
            .send(queued)
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the writer dropped a job".into()))?
    }

    /// Jobs currently waiting for the writer (for metrics).
    pub(crate) fn queued(&self) -> usize {
        self.sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.max_capacity() - s.capacity()))
            .unwrap_or(0)
    }

    /// Closes the queue, lets the thread commit everything already queued, and waits
    /// for it. Blocking: call from a blocking context.
    pub(crate) fn shutdown(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }
}

/// The writer thread: batch after batch until the queue is closed and drained.
fn serve(mut receiver: mpsc::Receiver<Queued>, mut session: Session) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    let status = session.status();
    while let Some(arrival) = next_batch(&mut receiver, &mut batch) {
        let size = batch.len();
        let started = Instant::now();
        let stored = catch_unwind(AssertUnwindSafe(|| {
            if let Err(error) = commit::store(&mut session, &mut batch, arrival) {
                replay::recover(&mut session, &mut batch, error);
            }
        }));
        status.batch(size, started.elapsed());
        if stored.is_err() {
            // Unknown connection state after a panic: start over with a fresh one. The
            // jobs' reply channels are dropped, so their requests answer 500.
            tracing::error!(batch = size, "writer batch panicked; reconnecting");
            session.close();
            batch.clear();
        }
    }
    // The chain's last entries get a signed checkpoint before the process goes.
    if session.ledger().current().is_none() {
        tracing::debug!("writer stopped: queue closed and drained, no chain to checkpoint");
        return;
    }
    let (last, _) = Queued::new(Job::Checkpoint(Kind::Shutdown));
    batch.push(last);
    let stored = catch_unwind(AssertUnwindSafe(|| {
        if let Err(error) = commit::store(&mut session, &mut batch, Arrival::AfterIdle) {
            replay::recover(&mut session, &mut batch, error);
        }
    }));
    if stored.is_err() {
        tracing::error!("the shutdown checkpoint panicked");
    }
    tracing::debug!("writer stopped: queue closed and drained");
}

/// Fills `batch` with what is queued, waiting for a first job if there is none. `None`
/// once the queue is closed and empty.
fn next_batch(receiver: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) -> Option<Arrival> {
    let arrival = match receiver.try_recv() {
        Ok(queued) => {
            batch.push(queued);
            Arrival::Busy
        }
        Err(TryRecvError::Empty) => {
            batch.push(receiver.blocking_recv()?);
            Arrival::AfterIdle
        }
        Err(TryRecvError::Disconnected) => return None,
    };
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(queued) => batch.push(queued),
            Err(_) => break,
        }
    }
    Some(arrival)
}

#[cfg(test)]
mod tests;
