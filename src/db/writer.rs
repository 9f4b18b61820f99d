//! The group-commit writer: one thread per process owns one connection and performs
//! every write (records and audit entries).
//!
//! Requests queue jobs; the thread takes everything queued (up to `MAX_BATCH`), runs it
//! in one transaction and commits once, then answers each job. With `synchronous=FULL`
//! one fsync therefore acknowledges a whole batch, which is where durable throughput
//! comes from; and since it is the only writer, SQLite never reports "database is locked"
//! between our own requests. The batch's new records and audit entries are written by
//! one statement per table on SQLite and one statement in all on PostgreSQL
//! (`batch::insert`), so a batch costs the same few round trips however many requests it
//! carries; on a busy PostgreSQL connection, one.
//!
//! A job that fails with an SQL error must not take the others down: the batch is rolled
//! back and its jobs are replayed one transaction each, so only the faulty job fails.
//! Custom jobs are `Fn` so they can be replayed; every job's inputs (the jumbled word,
//! the audit entry) are computed before queueing, so a replay writes exactly the same.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::thread::JoinHandle;

use diesel::connection::SimpleConnection;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::connection::{ConnectOptions, DbConnection};
use super::histories::NewHistory;
use super::randomizes::{Jumbled, Randomize};
use super::{DatabaseUrl, StoreError, batch};

/// Large enough to amortise an fsync over many requests, small enough that one batch's
/// transaction stays short and SQLite's multi-row INSERTs stay far below its
/// bind-parameter limit (512 × 10 audit columns; SQLite allows 32,766).
const MAX_BATCH: usize = 512;
/// Queue bound: beyond it, requests wait to enqueue (backpressure), never dropped.
const QUEUE_CAPACITY: usize = 8192;

pub struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
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

    /// Inserts a record and its audit entry, atomically, in the writer's next transaction.
    pub async fn create(&self, new: Jumbled, audit: NewHistory) -> Result<Randomize, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Create {
            new,
            audit,
            record: None,
            reply,
        })
        .await?;
        receive(answer).await
    }

    /// Commits an audit entry on its own.
    pub async fn record(&self, audit: NewHistory) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Record { audit, reply }).await?;
        receive(answer).await
    }

    /// Runs `work` and then inserts `audit` in the writer's next transaction, and returns
    /// once that transaction is committed. The audit entry is written only if `work`
    /// succeeded, atomically with it.
    pub async fn execute<T, F>(&self, audit: NewHistory, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Custom(Box::new(Custom {
            work,
            audit,
            outcome: None,
            reply,
        })))
        .await?;
        receive(answer).await
    }

    async fn submit(&self, job: Job) -> Result<(), StoreError> {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::Task("writer lock poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the service is shutting down".into()))?;
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))
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

async fn receive<T>(answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    answer
        .await
        .map_err(|_| StoreError::Task("the writer dropped a job".into()))?
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What requests ask the writer to do. Creates and audit entries are batched into
/// multi-row INSERTs; anything else runs as its own statements in the same transaction.
enum Job {
    Create {
        new: Jumbled,
        audit: NewHistory,
        record: Option<Randomize>,
        reply: Reply<Randomize>,
    },
    Record {
        audit: NewHistory,
        reply: Reply<()>,
    },
    Custom(Box<dyn Task>),
}

impl Job {
    /// The audit entry to insert with the batch, once the job's own work is done.
    fn audit(&self) -> Option<&NewHistory> {
        match self {
            Self::Create { audit, .. } | Self::Record { audit, .. } => Some(audit),
            Self::Custom(task) => task.audit(),
        }
    }

    /// Answers the waiting request. `committed` is the fate of the job's transaction.
    fn finish(self, committed: Result<(), &StoreError>) {
        // The requester may have gone (client disconnected); the write stands either way.
        match self {
            Self::Create { record, reply, .. } => {
                let _ = reply.send(match (committed, record) {
                    (Err(error), _) => Err(replicate(error)),
                    (Ok(()), Some(record)) => Ok(record),
                    (Ok(()), None) => Err(StoreError::Task("committed without a record".into())),
                });
            }
            Self::Record { reply, .. } => {
                let _ = reply.send(committed.map_err(replicate));
            }
            Self::Custom(task) => task.finish(committed),
        }
    }
}

/// A custom job, type-erased so one queue carries every result type.
trait Task: Send {
    /// Runs the work on the open transaction. Returns false when an SQL error poisoned
    /// the transaction.
    fn apply(&mut self, conn: &mut DbConnection) -> bool;
    /// The audit entry, if the work succeeded.
    fn audit(&self) -> Option<&NewHistory>;
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Custom<T, F> {
    work: F,
    audit: NewHistory,
    outcome: Option<Result<T, StoreError>>,
    reply: Reply<T>,
}

impl<T, F> Task for Custom<T, F>
where
    T: Send,
    F: Fn(&mut DbConnection) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, conn: &mut DbConnection) -> bool {
        let outcome = (self.work)(conn);
        let healthy = !matches!(&outcome, Err(e) if e.aborts_transaction());
        self.outcome = Some(outcome);
        healthy
    }

    fn audit(&self) -> Option<&NewHistory> {
        matches!(self.outcome, Some(Ok(_))).then_some(&self.audit)
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (self.outcome, committed) {
            (Some(Ok(_)), Err(error)) => Err(replicate(error)),
            (Some(outcome), _) => outcome,
            // The transaction failed before the work ran (e.g. the database went away).
            (None, Err(error)) => Err(replicate(error)),
            (None, Ok(())) => Err(StoreError::Task("job finished without running".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// One error, many waiting requests: each gets its own copy.
fn replicate(error: &StoreError) -> StoreError {
    match error {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::PreconditionFailed => StoreError::PreconditionFailed,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Locked(m) => StoreError::Locked(m.clone()),
        StoreError::Query(e) => StoreError::Task(e.to_string()),
        StoreError::Task(m) => StoreError::Task(m.clone()),
    }
}

fn run(mut receiver: mpsc::Receiver<Job>, options: ConnectOptions) {
    let mut conn: Option<DbConnection> = None;
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        let idle = match receiver.try_recv() {
            Ok(job) => {
                batch.push(job);
                false
            }
            Err(TryRecvError::Empty) => match receiver.blocking_recv() {
                Some(job) => {
                    batch.push(job);
                    true
                }
                None => break,
            },
            Err(TryRecvError::Disconnected) => break,
        };
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            process(&mut conn, &options, &mut batch, idle)
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

/// Stores the batch and answers its jobs. `idle` says the writer waited for it, so the
/// connection sat unused for a while and may have died meanwhile.
fn process(
    slot: &mut Option<DbConnection>,
    options: &ConnectOptions,
    batch: &mut Vec<Job>,
    idle: bool,
) {
    // On PostgreSQL a batch of creates and audit entries is one statement, which commits
    // on its own: one round trip instead of BEGIN, INSERT, COMMIT. Only on a connection
    // known to be alive (new, or busy since its last commit): a connection that died
    // while idle must fail at BEGIN, before any of the batch reached it, to be retried.
    let one_statement = matches!(options.url, DatabaseUrl::Postgres(_))
        && (slot.is_none() || !idle)
        && batch.iter().all(|job| !matches!(job, Job::Custom(_)));
    let Some(conn) = ready(slot, options, batch, !one_statement) else {
        return;
    };
    let stored = if one_statement {
        write(conn, batch)
    } else {
        committed(conn, batch)
    };
    let error = match stored {
        Ok(()) => {
            batch.drain(..).for_each(|job| job.finish(Ok(())));
            return;
        }
        Err(error) => error,
    };
    // Distinguish a lost connection (fail everyone fast) from one bad job (replay).
    let lost = match &error {
        StoreError::Unavailable(_) => true,
        _ => conn.batch_execute("SELECT 1").is_err(),
    };
    if lost {
        tracing::warn!(%error, batch = batch.len(), "writer lost the database; reconnecting next batch");
        *slot = None;
        let error = StoreError::Unavailable(error.to_string());
        batch.drain(..).for_each(|job| job.finish(Err(&error)));
    } else if matches!(error, StoreError::Locked(_)) || batch.len() == 1 {
        // A lock held elsewhere is no job's fault: replaying one job at a time would wait
        // DATABASE_TIMEOUT for each.
        batch.drain(..).for_each(|job| job.finish(Err(&error)));
    } else {
        tracing::warn!(%error, batch = batch.len(), "batch failed; replaying its jobs one by one");
        for mut job in batch.drain(..) {
            let committed = run_batch(conn, std::slice::from_mut(&mut job));
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
}

/// The writer's connection, with a transaction open if `transaction`, or `None` once
/// every job in the batch has been answered 503.
///
/// A PostgreSQL connection that died while idle (a server restart) fails at `BEGIN`, before
/// anything of the batch reached the server, so the batch starts over once on a fresh
/// connection instead of failing. A failure after `BEGIN` is never retried: a lost
/// `COMMIT` reply may hide a commit that happened.
fn ready<'a>(
    slot: &'a mut Option<DbConnection>,
    options: &ConnectOptions,
    batch: &mut Vec<Job>,
    transaction: bool,
) -> Option<&'a mut DbConnection> {
    let mut attempts = if matches!(slot, Some(DbConnection::Postgres(_))) {
        2
    } else {
        1
    };
    let failure = loop {
        attempts -= 1;
        let conn = match slot {
            Some(conn) => conn,
            None => match options.connect() {
                Ok(conn) => slot.insert(conn),
                Err(error) => break StoreError::Unavailable(error.to_string()),
            },
        };
        if !transaction {
            return slot.as_mut();
        }
        match begin(conn) {
            Ok(()) => return slot.as_mut(),
            // A lock held elsewhere (SQLite's BEGIN IMMEDIATE) already waited
            // DATABASE_TIMEOUT: retrying would double that, and the connection is fine.
            Err(error @ StoreError::Locked(_)) => break error,
            Err(error) => {
                *slot = None;
                if attempts == 0 {
                    break error;
                }
                tracing::info!(%error, "writer connection lost while idle; reconnecting");
            }
        }
    };
    tracing::warn!(error = %failure, "writer cannot begin a transaction");
    let error = match failure {
        StoreError::Locked(_) => failure,
        other => StoreError::Unavailable(other.to_string()),
    };
    batch.drain(..).for_each(|job| job.finish(Err(&error)));
    None
}

/// The batch in one transaction, committed once.
fn run_batch(conn: &mut DbConnection, batch: &mut [Job]) -> Result<(), StoreError> {
    begin(conn)?;
    committed(conn, batch)
}

/// The batch's work and `COMMIT` on a connection where `BEGIN` succeeded.
fn committed(conn: &mut DbConnection, batch: &mut [Job]) -> Result<(), StoreError> {
    let written = write(conn, batch).and_then(|()| Ok(conn.batch_execute("COMMIT")?));
    if written.is_err() {
        rollback(conn);
    }
    written
}

/// Custom work first (it may fail without poisoning the transaction: a stale
/// precondition writes nothing and no audit entry), then every new record and every
/// audit entry (see `batch::insert`).
fn write(conn: &mut DbConnection, batch: &mut [Job]) -> Result<(), StoreError> {
    for job in batch.iter_mut() {
        if let Job::Custom(task) = job
            && !task.apply(conn)
        {
            return Err(StoreError::Task("a job in the batch failed".into()));
        }
    }

    let new: Vec<&Jumbled> = batch
        .iter()
        .filter_map(|job| match job {
            Job::Create { new, .. } => Some(new),
            _ => None,
        })
        .collect();
    let entries: Vec<&NewHistory> = batch.iter().filter_map(Job::audit).collect();
    let mut records = batch::insert(conn, &new, &entries)?.into_iter();
    for job in batch.iter_mut() {
        if let Job::Create { record, .. } = job {
            *record = records.next();
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::prelude::*;

    use super::*;
    use crate::config::SqliteSynchronous;
    use crate::db::{DatabaseUrl, migrations, schema};

    fn sqlite(dir: &tempfile::TempDir) -> (ConnectOptions, DbConnection) {
        let url = DatabaseUrl::parse(&dir.path().join("w.sqlite3").display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let options = ConnectOptions {
            url,
            timeout: Duration::from_secs(2),
            sqlite_synchronous: SqliteSynchronous::Full,
            bounded_lock_waits: true,
        };
        migrations::run_pending(&options, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
        let conn = options.connect().unwrap_or_else(|e| panic!("{e}"));
        (options, conn)
    }

    fn entry(request_id: &str) -> NewHistory {
        NewHistory {
            request_id: request_id.into(),
            method: "POST".into(),
            path: "/api/randomizes".into(),
            query: None,
            status: 201,
            duration_ms: 0.5,
            client_ip: None,
            user_agent: None,
            subject: None,
            created: crate::db::now(),
        }
    }

    fn create(
        word: &str,
        jumble: &str,
        at: chrono::NaiveDateTime,
    ) -> (Job, oneshot::Receiver<Result<Randomize, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let new = Jumbled {
            original: word.into(),
            jumbled: jumble.into(),
            at,
        };
        let job = Job::Create {
            new,
            audit: entry(&format!("create-{word}-{jumble}")),
            record: None,
            reply,
        };
        (job, answer)
    }

    fn custom(
        request_id: &str,
        work: impl Fn(&mut DbConnection) -> Result<(), StoreError> + Send + 'static,
    ) -> (Job, oneshot::Receiver<Result<(), StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let task = Custom {
            work,
            audit: entry(request_id),
            outcome: None,
            reply,
        };
        (Job::Custom(Box::new(task)), answer)
    }

    fn audited(conn: &mut DbConnection) -> Vec<String> {
        schema::histories::table
            .select(schema::histories::request_id)
            .order(schema::histories::request_id)
            .load(conn)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_batch_answers_every_create_with_its_own_record_even_identical_ones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (options, mut conn) = sqlite(&dir);
        let at = crate::db::now();
        let (jobs, answers): (Vec<_>, Vec<_>) = [
            ("alpha", "lapha"),
            ("bravo", "vorab"),
            ("alpha", "lapha"),
            ("alpha", "hapla"),
        ]
        .into_iter()
        .map(|(word, jumble)| create(word, jumble, at))
        .unzip();
        let mut batch = jobs;
        let (record_reply, recorded) = oneshot::channel();
        batch.push(Job::Record {
            audit: entry("read"),
            reply: record_reply,
        });

        process(
            &mut Some(options.connect().unwrap_or_else(|e| panic!("{e}"))),
            &options,
            &mut batch,
            true,
        );

        let records: Vec<Randomize> = answers
            .into_iter()
            .map(|mut a| {
                a.try_recv()
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let words: Vec<(&str, &str)> = records
            .iter()
            .map(|r| (r.original.as_str(), r.jumbled.as_str()))
            .collect();
        assert_eq!(
            words,
            [
                ("alpha", "lapha"),
                ("bravo", "vorab"),
                ("alpha", "lapha"),
                ("alpha", "hapla")
            ]
        );
        let mut ids: Vec<i64> = records.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4, "every request got its own row");
        assert!(matches!(recorded.blocking_recv(), Ok(Ok(()))));
        assert_eq!(audited(&mut conn).len(), 5);
    }

    #[test]
    fn a_failing_job_fails_alone_and_writes_no_audit_entry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (options, mut conn) = sqlite(&dir);
        let (ok, created) = create("kept", "ptek", crate::db::now());
        let (broken, broke) = custom("broken", |conn| {
            Ok(conn.batch_execute("INSERT INTO no_such_table VALUES (1)")?)
        });
        let (missing, not_found) = custom("missing", |_| Err(StoreError::NotFound));
        let (fine, done) = custom("fine", |_| Ok(()));
        let mut batch = vec![ok, broken, missing, fine];

        process(
            &mut Some(options.connect().unwrap_or_else(|e| panic!("{e}"))),
            &options,
            &mut batch,
            true,
        );

        assert!(matches!(created.blocking_recv(), Ok(Ok(r)) if r.original == "kept"));
        assert!(matches!(
            broke.blocking_recv(),
            Ok(Err(StoreError::Query(_)))
        ));
        assert!(matches!(
            not_found.blocking_recv(),
            Ok(Err(StoreError::NotFound))
        ));
        assert!(matches!(done.blocking_recv(), Ok(Ok(()))));
        assert_eq!(audited(&mut conn), ["create-kept-ptek", "fine"]);
    }

    #[test]
    fn an_unreachable_database_fails_the_batch_as_unavailable() {
        let options = ConnectOptions {
            url: DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/none")
                .unwrap_or_else(|e| panic!("{e}")),
            timeout: Duration::from_secs(2),
            sqlite_synchronous: SqliteSynchronous::Full,
            bounded_lock_waits: true,
        };
        let (job, answer) = create("lost", "stol", crate::db::now());

        process(&mut None, &options, &mut vec![job], false);

        assert!(matches!(
            answer.blocking_recv(),
            Ok(Err(StoreError::Unavailable(_)))
        ));
    }
}
