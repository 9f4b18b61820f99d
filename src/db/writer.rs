//! The group-commit writer: one thread per process owns one connection and performs
//! every write (records and audit entries).
//!
//! Requests queue jobs; the thread takes everything queued (up to `MAX_BATCH`), runs it
//! in one transaction and commits once, then answers each job. With `synchronous=FULL`
//! one fsync therefore acknowledges a whole batch, which is where durable throughput
//! comes from; and since it is the only writer, SQLite never reports "database is locked"
//! between our own requests.
//!
//! A job that fails with an SQL error must not take the others down: the batch is rolled
//! back and its jobs are replayed one transaction each, so only the faulty job fails.
//! Jobs are `Fn` so they can be replayed; their inputs (the jumbled word, the audit
//! entry) are computed before queueing, so a replay writes exactly the same thing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::thread::JoinHandle;

use diesel::connection::SimpleConnection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::connection::{ConnectOptions, DbConnection};
use super::histories::{self, NewHistory};

/// Large enough to amortise an fsync over many requests, small enough that one batch's
/// transaction stays short.
const MAX_BATCH: usize = 512;
/// Queue bound: beyond it, requests wait to enqueue (backpressure), never dropped.
const QUEUE_CAPACITY: usize = 8192;

pub struct Writer {
    sender: Mutex<Option<mpsc::Sender<Box<dyn Task>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(options: ConnectOptions) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(receiver, options))
            .map_err(|e| tracing::error!(error = %e, "cannot start the writer thread"))
            .ok();
        Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(thread),
        }
    }

    /// Runs `work` and then inserts `audit` (if any) in the writer's next transaction,
    /// and returns once that transaction is committed. The audit entry is written only
    /// if `work` succeeded, atomically with it.
    pub async fn execute<T, F>(&self, audit: Option<NewHistory>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::Task("writer lock poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the service is shutting down".into()))?;
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            work,
            audit,
            outcome: None,
            reply,
        });
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Task("the writer dropped a job".into()))?
    }

    /// Commits an audit entry on its own.
    pub async fn record(&self, audit: NewHistory) -> Result<(), StoreError> {
        self.execute(Some(audit), |_| Ok(())).await
    }

    /// Jobs currently waiting for the writer (for metrics).
    pub fn queued(&self) -> usize {
        self.sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.max_capacity() - s.capacity()))
            .unwrap_or(0)
    }

    /// Closes the queue, lets the thread commit everything already queued, and waits
    /// for it. Blocking: call from a blocking context.
    pub fn shutdown(&self) {
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

/// A queued unit of work, type-erased so one queue carries every result type.
trait Task: Send {
    /// Runs the work (and its audit insert) on the open transaction. Returns false when
    /// an SQL error poisoned the transaction.
    fn apply(&mut self, conn: &mut DbConnection) -> bool;
    /// Answers the waiting request. `committed` is the fate of the transaction.
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
    /// Answers with `error` without having run.
    fn fail(self: Box<Self>, error: &StoreError);
}

struct Job<T, F> {
    work: F,
    audit: Option<NewHistory>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Task for Job<T, F>
where
    T: Send,
    F: Fn(&mut DbConnection) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, conn: &mut DbConnection) -> bool {
        let outcome = (self.work)(conn).and_then(|value| {
            if let Some(entry) = &self.audit {
                histories::insert(conn, entry)?;
            }
            Ok(value)
        });
        let healthy = !matches!(&outcome, Err(e) if e.aborts_transaction());
        self.outcome = Some(outcome);
        healthy
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (self.outcome, committed) {
            (Some(Ok(_)), Err(error)) => Err(replicate(error)),
            (Some(outcome), _) => outcome,
            // The transaction could not even begin (the database went away mid-replay).
            (None, Err(error)) => Err(replicate(error)),
            (None, Ok(())) => Err(StoreError::Task("job finished without running".into())),
        };
        // The requester may have gone (client disconnected); the write stands either way.
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(replicate(error)));
    }
}

/// One error, many waiting requests: each gets its own copy.
fn replicate(error: &StoreError) -> StoreError {
    match error {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::PreconditionFailed => StoreError::PreconditionFailed,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Query(e) => StoreError::Task(e.to_string()),
        StoreError::Task(m) => StoreError::Task(m.clone()),
    }
}

fn run(mut receiver: mpsc::Receiver<Box<dyn Task>>, options: ConnectOptions) {
    let mut conn: Option<DbConnection> = None;
    let mut batch: Vec<Box<dyn Task>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            process(&mut conn, &options, &mut batch)
        }));
        if outcome.is_err() {
            // Unknown connection state after a panic: start over with a fresh one. The
            // jobs' reply channels were dropped, so their requests answer 500.
            tracing::error!(batch = size, "writer batch panicked; reconnecting");
            conn = None;
            batch.clear();
        }
    }
    tracing::debug!("writer stopped: queue closed and drained");
}

fn process(
    slot: &mut Option<DbConnection>,
    options: &ConnectOptions,
    batch: &mut Vec<Box<dyn Task>>,
) {
    if slot.is_none() {
        match options.connect() {
            Ok(conn) => *slot = Some(conn),
            Err(error) => {
                tracing::warn!(%error, "writer cannot connect to the database");
                let error = StoreError::Unavailable(error.to_string());
                batch.drain(..).for_each(|job| job.fail(&error));
                return;
            }
        }
    }
    let Some(conn) = slot.as_mut() else { return };

    match run_together(conn, batch) {
        Ok(()) => batch.drain(..).for_each(|job| job.finish(Ok(()))),
        Err(error) if matches!(error, StoreError::Unavailable(_)) => {
            tracing::warn!(%error, batch = batch.len(), "writer lost the database; reconnecting next batch");
            *slot = None;
            batch.drain(..).for_each(|job| job.fail(&error));
        }
        Err(error) => {
            tracing::warn!(%error, batch = batch.len(), "batch failed; replaying its jobs one by one");
            for mut job in batch.drain(..) {
                let committed = run_alone(conn, job.as_mut());
                job.finish(committed.as_ref().map(|_| ()));
            }
        }
    }
}

/// The fast path: every job in one transaction, one commit.
fn run_together(conn: &mut DbConnection, batch: &mut [Box<dyn Task>]) -> Result<(), StoreError> {
    begin(conn)?;
    if batch.iter_mut().all(|job| job.apply(conn)) {
        match conn.batch_execute("COMMIT") {
            Ok(()) => return Ok(()),
            Err(error) => {
                rollback(conn);
                return Err(error.into());
            }
        }
    }
    rollback(conn);
    // Distinguish a lost connection (fail everyone fast) from one bad job (replay).
    match conn.batch_execute("SELECT 1") {
        Ok(()) => Err(StoreError::Task("a job in the batch failed".into())),
        Err(error) => Err(StoreError::Unavailable(error.to_string())),
    }
}

fn run_alone(conn: &mut DbConnection, job: &mut dyn Task) -> Result<(), StoreError> {
    begin(conn)?;
    if job.apply(conn) {
        match conn.batch_execute("COMMIT") {
            Ok(()) => Ok(()),
            Err(error) => {
                rollback(conn);
                Err(error.into())
            }
        }
    } else {
        rollback(conn);
        // The job holds its own error; nothing was committed, which is all `finish` needs.
        Ok(())
    }
}

fn begin(conn: &mut DbConnection) -> Result<(), StoreError> {
    // IMMEDIATE takes SQLite's write lock up front, so the transaction cannot fail
    // half-way on lock upgrade if another process writes the file.
    let statement = match conn {
        DbConnection::Sqlite(_) => "BEGIN IMMEDIATE",
        DbConnection::Postgres(_) => "BEGIN",
    };
    Ok(conn.batch_execute(statement)?)
}

fn rollback(conn: &mut DbConnection) {
    if let Err(error) = conn.batch_execute("ROLLBACK") {
        tracing::warn!(%error, "rollback failed");
    }
}
