//! A load of concurrent POSTs that records what each client was told, for the fault
//! tests, and the checks run on what it saw.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::helpers::TestDb;
use crate::process::{LIMIT, Process};

pub(super) const WORKERS: usize = 16;
pub(super) const ACKS_BEFORE_FAULT: usize = 300;

/// What the clients saw.
#[derive(Default)]
pub(super) struct Outcome {
    /// Answered 201: record id and word, by request id.
    pub(super) acknowledged: HashMap<String, (i64, String)>,
    /// Answered 503 as a problem with `Retry-After`: how long each took.
    pub(super) unavailable: Vec<Duration>,
    /// Answered anything else: request id and status.
    pub(super) unexpected: Vec<(String, u16)>,
    /// Failed on the client side (reset, refused, closed) — the server went away.
    pub(super) failed: HashSet<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    pub(super) acknowledged: usize,
    pub(super) unavailable: usize,
}

/// `WORKERS` clients POSTing distinct words until told to stop or the server goes away.
pub(super) struct Load {
    pub(super) outcome: Arc<Mutex<Outcome>>,
    pub(super) progress: watch::Receiver<Progress>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub(super) fn start(port: u16, tag: &'static str) -> Self {
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let (progress_tx, progress) = watch::channel(Progress::default());
        let progress_tx = Arc::new(progress_tx);
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::new();
        let workers = (0..WORKERS)
            .map(|worker| {
                let (outcome, progress_tx, stop, client) = (
                    outcome.clone(),
                    progress_tx.clone(),
                    stop.clone(),
                    client.clone(),
                );
                tokio::spawn(async move {
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let request_id = format!("{tag}-{worker}-{n}");
                        let word = format!("w{worker}x{n}");
                        let started = Instant::now();
                        let sent = client
                            .post(format!("http://127.0.0.1:{port}/api/randomizes"))
                            .header("x-request-id", &request_id)
                            .json(&serde_json::json!({ "word": word }))
                            .send()
                            .await;
                        let answer = match sent {
                            Ok(response) => Some(Answer::read(response).await),
                            Err(_) => None,
                        };
                        let mut outcome = outcome.lock().unwrap();
                        match answer {
                            Some(Answer::Created(id)) => {
                                outcome.acknowledged.insert(request_id, (id, word));
                                progress_tx.send_modify(|p| p.acknowledged += 1);
                            }
                            Some(Answer::Unavailable) => {
                                outcome.unavailable.push(started.elapsed());
                                progress_tx.send_modify(|p| p.unavailable += 1);
                            }
                            Some(Answer::Other(status)) => {
                                outcome.unexpected.push((request_id, status));
                            }
                            None => {
                                outcome.failed.insert(request_id);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            outcome,
            progress,
            stop,
            workers,
        }
    }

    pub(super) fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    pub(super) async fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Progress) -> bool,
    ) {
        let reached = matches!(
            tokio::time::timeout(limit, self.progress.wait_for(|p| done(p))).await,
            Ok(Ok(_))
        );
        assert!(
            reached,
            "{what}: not within {limit:?} ({:?})",
            self.progress()
        );
    }

    /// Stops the clients (if the server has not already) and returns what they saw.
    pub(super) async fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        // The workers are done: take the outcome out rather than hold the lock across awaits.
        std::mem::take(&mut *self.outcome.lock().unwrap())
    }
}

/// How an answered POST is classified.
pub(super) enum Answer {
    Created(i64),
    /// A 503 problem that tells the client when to retry.
    Unavailable,
    Other(u16),
}

impl Answer {
    pub(super) async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        match status {
            201 => match response.json::<serde_json::Value>().await {
                Ok(record) => Self::Created(record["id"].as_i64().unwrap()),
                Err(_) => Self::Other(status),
            },
            503 if is_retryable_problem(&response) => Self::Unavailable,
            _ => Self::Other(status),
        }
    }
}

pub(super) fn is_retryable_problem(response: &reqwest::Response) -> bool {
    let headers = response.headers();
    headers.contains_key("retry-after")
        && headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == b"application/problem+json")
}

/// Every acknowledged record is readable with its word, and has its audit entry.
pub(super) async fn assert_acknowledged_writes_present(
    db: &TestDb,
    dir: &tempfile::TempDir,
    outcome: &Outcome,
) {
    let mut server = Process::serve(&db.url, dir);
    let port = server.port().await;
    let client = reqwest::Client::new();
    for (id, word) in outcome.acknowledged.values() {
        let record: serde_json::Value = client
            .get(format!("http://127.0.0.1:{port}/api/randomizes/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(record["original"], word.as_str(), "record {id}");
    }
    let audited: HashSet<String> = db
        .histories()
        .into_iter()
        .filter(|h| h.status == 201)
        .map(|h| h.request_id)
        .collect();
    for request_id in outcome.acknowledged.keys() {
        assert!(
            audited.contains(request_id),
            "no audit entry for acknowledged {request_id}"
        );
    }
    server.signal("TERM");
    assert_eq!(server.exit().await.0.code(), Some(0));
}

/// Starts the server on `db`, puts it under load until 300 writes are acknowledged,
/// sends `signal`, and returns its exit status, its output and what the clients saw.
pub(super) async fn signal_under_load(
    db: &TestDb,
    dir: &tempfile::TempDir,
    signal: &str,
) -> (std::process::ExitStatus, Vec<String>, Outcome) {
    let mut server = Process::serve(&db.url, dir);
    let port = server.port().await;
    let mut load = Load::start(port, "load");
    load.wait_until("writes acknowledged", LIMIT, |p| {
        p.acknowledged >= ACKS_BEFORE_FAULT
    })
    .await;

    server.signal(signal);
    let (status, output) = server.exit().await;
    let outcome = load.finish().await;
    assert!(outcome.acknowledged.len() >= ACKS_BEFORE_FAULT);
    assert_eq!(outcome.unexpected, vec![], "only 201s, or no answer");
    assert!(
        outcome.unavailable.is_empty(),
        "the database never went away"
    );
    (status, output, outcome)
}
