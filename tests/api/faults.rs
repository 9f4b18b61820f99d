//! Fault tests (issue: durable and calm under failure). They assert outcomes, never
//! speeds: what was acknowledged survives, and nobody is told "done" wrongly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use tokio::sync::watch;

use crate::helpers::{Backend, TestDb};
use crate::process::{LIMIT, Process};

const WORKERS: usize = 16;
const ACKS_BEFORE_SIGNAL: usize = 300;

/// What the load generator saw: acknowledged records by request id, and the request
/// ids whose request failed on the client side (reset, refused, closed).
#[derive(Default)]
struct Outcome {
    acknowledged: HashMap<String, (i64, String)>,
    failed: HashSet<String>,
}

/// `WORKERS` clients POSTing distinct words until the server goes away. `acks` counts
/// acknowledgements so the test can act once the load is really running.
async fn load(
    port: u16,
    tag: &'static str,
) -> (
    Arc<Mutex<Outcome>>,
    watch::Receiver<usize>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let (acks_tx, acks) = watch::channel(0usize);
    let acks_tx = Arc::new(acks_tx);
    let client = reqwest::Client::new();
    let workers = (0..WORKERS)
        .map(|worker| {
            let (outcome, acks_tx, client) = (outcome.clone(), acks_tx.clone(), client.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let request_id = format!("{tag}-{worker}-{n}");
                    let word = format!("w{worker}x{n}");
                    let sent = client
                        .post(format!("http://127.0.0.1:{port}/api/randomizes"))
                        .header("x-request-id", &request_id)
                        .json(&serde_json::json!({ "word": word }))
                        .send()
                        .await;
                    let body = match sent {
                        Ok(response) if response.status() == 201 => {
                            response.json::<serde_json::Value>().await.ok()
                        }
                        Ok(response) => panic!("{request_id}: unexpected {}", response.status()),
                        Err(_) => None,
                    };
                    let mut outcome = outcome.lock().unwrap();
                    match body {
                        Some(record) => {
                            let id = record["id"].as_i64().unwrap();
                            outcome.acknowledged.insert(request_id, (id, word));
                            acks_tx.send_modify(|n| *n += 1);
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
    (outcome, acks, workers)
}

async fn wait_for_acks(acks: &mut watch::Receiver<usize>, at_least: usize) {
    tokio::time::timeout(LIMIT, acks.wait_for(|n| *n >= at_least))
        .await
        .expect("load is acknowledged in time")
        .unwrap();
}

/// Every acknowledged record is readable with its word, and has its audit entry.
async fn assert_acknowledged_writes_present(
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
async fn signal_under_load(
    db: &TestDb,
    dir: &tempfile::TempDir,
    signal: &str,
) -> (std::process::ExitStatus, Vec<String>, Outcome) {
    let mut server = Process::serve(&db.url, dir);
    let port = server.port().await;
    let (outcome, mut acks, workers) = load(port, "load").await;
    wait_for_acks(&mut acks, ACKS_BEFORE_SIGNAL).await;

    server.signal(signal);
    for worker in workers {
        worker.await.unwrap();
    }
    let (status, output) = server.exit().await;
    // The workers are done: take the outcome out rather than hold the lock across awaits.
    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    assert!(outcome.acknowledged.len() >= ACKS_BEFORE_SIGNAL);
    (status, output, outcome)
}

#[tokio::test]
async fn sigkill_under_load_on_sqlite_loses_nothing_acknowledged() {
    let db = TestDb::new(Backend::Sqlite);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let (status, _, outcome) = signal_under_load(&db, &dir, "KILL").await;
    assert_eq!(status.code(), None, "killed by the signal");

    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut db.connect())
        .unwrap();
    assert_eq!(check.len(), 1);
    assert_eq!(check[0].integrity_check, "ok");

    assert_acknowledged_writes_present(&db, &dir, &outcome).await;
}

#[tokio::test]
async fn sigterm_under_load_resets_no_accepted_request() {
    let db = TestDb::new(Backend::Sqlite);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let (status, output, outcome) = signal_under_load(&db, &dir, "TERM").await;
    assert_eq!(status.code(), Some(0), "exit 0 within the shutdown timeout");

    // The server logs one line per request it answered. A request it answered whose
    // client saw a failure would be an accepted request cut off: there must be none.
    let answered: HashSet<String> = output
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .filter_map(|line| line["request_id"].as_str().map(str::to_owned))
        .collect();
    let cut_off: Vec<&String> = outcome
        .failed
        .iter()
        .filter(|id| answered.contains(*id))
        .collect();
    assert!(
        cut_off.is_empty(),
        "answered but the client saw a failure: {cut_off:?}"
    );
    for request_id in outcome.acknowledged.keys() {
        assert!(
            answered.contains(request_id),
            "{request_id} acknowledged but not logged"
        );
    }
    assert_acknowledged_writes_present(&db, &dir, &outcome).await;
}
