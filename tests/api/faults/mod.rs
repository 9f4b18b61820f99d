//! Fault tests (issue: durable and calm under failure). They assert outcomes, never
//! speeds (beyond the bounds the issue sets: a 503 within `DATABASE_TIMEOUT`, recovery
//! within 5 s): what was acknowledged survives, and nobody is told "done" wrongly.

mod full;
mod load;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::sql_types::Text;

use crate::both_backends;
use crate::helpers::{Backend, TestDb};
use crate::process::{LIMIT, Process};
use crate::throwaway_pg::ThrowawayPostgres;

use load::*;

both_backends!(a_lock_held_elsewhere_answers_503_then_writes_resume);

#[tokio::test]
async fn sigkill_under_load_on_sqlite_loses_nothing_acknowledged() {
    let db = TestDb::new(Backend::Sqlite);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let (status, _, outcome) = signal_under_load(&db, &dir, "KILL").await;
    assert_eq!(status.code(), None, "killed by the signal");

    assert_sqlite_intact(&db);

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

/// SQLite's own check of the file finds nothing wrong.
pub(super) fn assert_sqlite_intact(db: &TestDb) {
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
}

/// Small, so the reads that wait for a pooled connection give up quickly.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
/// What "within DATABASE_TIMEOUT" allows for scheduling on a loaded test machine.
const SLACK: Duration = Duration::from_secs(1);
/// The bound on recovering by itself once PostgreSQL is back.
const RECOVERY: Duration = Duration::from_secs(5);

#[tokio::test]
async fn postgres_stopped_under_load_answers_503_then_recovers_by_itself() {
    let cluster = ThrowawayPostgres::start();
    let db = TestDb::existing(cluster.url());
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::serve_with(&db.url, &dir, &[("DATABASE_TIMEOUT", "2s")]);
    let port = server.port().await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut load = Load::start(port, "pg");
    load.wait_until("writes acknowledged", LIMIT, |p| {
        p.acknowledged >= ACKS_BEFORE_FAULT
    })
    .await;

    cluster.crash();
    load.wait_until("503s while PostgreSQL is down", LIMIT, |p| {
        p.unavailable >= 100
    })
    .await;
    // Reads wait for a pooled connection rather than for the writer: bounded too.
    for path in ["/readyz", "/api/randomizes/1", "/api/randomizes"] {
        let started = Instant::now();
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 503, "{path}");
        assert!(is_retryable_problem(&response), "{path}");
        assert!(
            elapsed <= DATABASE_TIMEOUT + SLACK,
            "{path} took {elapsed:?}"
        );
    }

    cluster.resume();
    let acknowledged = load.progress().acknowledged;
    tokio::time::timeout(RECOVERY, async {
        let ready = loop {
            match client.get(format!("{base}/readyz")).send().await {
                Ok(response) if response.status() == 200 => break true,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => break false,
            }
        };
        assert!(ready, "the server went away while recovering");
        load.progress
            .wait_for(|p| p.acknowledged >= acknowledged + 100)
            .await
            .unwrap();
    })
    .await
    .expect("ready and writing again within 5 s of PostgreSQL being back");

    let outcome = load.finish().await;
    assert_eq!(outcome.unexpected, vec![], "only 201s and 503 problems");
    assert!(
        outcome.failed.is_empty(),
        "no connection failed: {:?}",
        outcome.failed
    );
    let slowest = outcome
        .unavailable
        .iter()
        .max()
        .copied()
        .unwrap_or_default();
    assert!(
        slowest <= DATABASE_TIMEOUT + SLACK,
        "a 503 took {slowest:?}"
    );

    server.signal("TERM");
    let (status, output) = server.exit().await;
    assert_eq!(status.code(), Some(0));
    let panics: Vec<&String> = output.iter().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "{panics:?}");
    assert_acknowledged_writes_present(&db, &dir, &outcome).await;
}

/// A PostgreSQL restart (or failover, or an idle-connection reaper) kills connections
/// the service holds idle: the pool's read connections and the writer's. Neither may
/// cost a client a failed request once the server answers again: reads retry on another
/// connection, and the writer reconnects when `BEGIN` fails (nothing sent, nothing
/// written).
#[tokio::test]
async fn connections_killed_while_idle_cost_no_failed_request() {
    crate::helpers::init_test_logging();
    let mut db = TestDb::new(Backend::Postgres);
    let name = format!("idle_{}", uuid::Uuid::now_v7().simple());
    db.url = format!("{}&application_name={name}", db.url);
    db.migrate();
    let config = crate::helpers::server_config(&db);
    let app = crate::helpers::spawn_on(db, config);
    let id = app.create("idle").await["id"].as_i64().expect("id");
    // Several list reads at once, so the pool holds more than one connection (a
    // lookup by id is read on the writer's).
    let path = format!("/api/randomizes/{id}");
    let list = "/api/randomizes?page=1";
    let reads = tokio::join!(app.get(list), app.get(list), app.get(list), app.get(list));
    for response in [reads.0, reads.1, reads.2, reads.3] {
        assert_eq!(response.status(), 200);
    }

    let mut admin = TestDb::existing(crate::helpers::postgres_base_url()).connect();
    #[derive(diesel::QueryableByName)]
    struct Killed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        killed: i64,
    }
    // The two-argument form waits until each backend has exited.
    let killed: Killed = diesel::sql_query(
        "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS killed \
         FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind::<Text, _>(&name)
    .get_result(&mut admin)
    .expect("terminate the service's connections");
    assert!(killed.killed >= 2, "writer and readers: {}", killed.killed);

    for path in [list, &path, list, &path, list, list] {
        let response = app.get(path).await;
        let status = response.status();
        assert_eq!(status, 200, "{}", response.text().await.unwrap_or_default());
    }
    app.create("after").await;
    let audited = app.db.histories();
    assert_eq!(audited.len(), 1 + 4 + 6 + 1, "every request has its entry");
    assert!(audited.iter().all(|h| h.status < 300), "{audited:?}");
}

/// A lock held outside the service (another process writing the SQLite file; an
/// operator's `LOCK TABLE` or long DDL on PostgreSQL) costs a write a 503 after
/// `DATABASE_TIMEOUT`, not a request that hangs as long as the lock is held; and once
/// it is released, writes succeed again on the same server.
async fn a_lock_held_elsewhere_answers_503_then_writes_resume(backend: Backend) {
    use diesel::connection::SimpleConnection;
    let db = TestDb::new(backend);
    db.migrate();
    let mut config = crate::helpers::server_config(&db);
    config.database.timeout = Duration::from_secs(1);
    let app = crate::helpers::spawn_on(db, config);
    app.create("before").await;

    let mut holder = app.db.connect();
    holder
        .batch_execute(match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN; LOCK TABLE histories IN EXCLUSIVE MODE",
        })
        .expect("take the write lock");
    // Bounded only so that a regression fails instead of hanging the suite.
    let blocked = tokio::time::timeout(
        Duration::from_secs(60),
        app.post_json(&serde_json::json!({"word": "blocked"})),
    )
    .await
    .expect("an answer while the lock is held, not a hang");
    assert_eq!(blocked.status(), 503);
    assert!(is_retryable_problem(&blocked));

    holder.batch_execute("ROLLBACK").expect("release the lock");
    app.create("after").await;
    assert_eq!(app.db.count_randomizes(), 2, "the 503 stored nothing");
}
