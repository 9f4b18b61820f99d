//! Retention (SPEC §11): old entries go in the background while requests carry on,
//! nothing newer than the cut goes, every run leaves a `PURGE` entry, one process purges
//! at a time, and a SQLite file under steady retention stops growing.

use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use randomize::db::DbConnection;
use serde_json::{Value, json};

use crate::bearer::token;
use crate::both_backends;
use crate::helpers::{Backend, TEST_SECRET, TestDb, jwt_args, server_config, spawn_on};
use crate::process::LIMIT;

both_backends!(
    retention_purges_in_the_background_and_says_so,
    one_process_purges_at_a_time
);

/// `count` entries tagged `tag`, created `age` ago, written straight into the table.
fn seed_entries(conn: &mut DbConnection, tag: &str, count: i64, age: &str) {
    let (series, created) = match conn {
        DbConnection::Sqlite(_) => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
                 SELECT i FROM n"
            ),
            format!("strftime('%Y-%m-%d %H:%M:%f', 'now', '-{age}')"),
        ),
        DbConnection::Postgres(_) => (
            format!("SELECT i FROM generate_series(1, {count}) AS s(i)"),
            format!("(now() AT TIME ZONE 'UTC') - interval '{age}'"),
        ),
    };
    conn.batch_execute(&format!(
        "INSERT INTO histories (request_id, method, path, status, duration_ms, created) \
         SELECT '{tag}-' || i, 'GET', '/api/randomizes', 200, 0.1, {created} FROM ({series}) s"
    ))
    .unwrap();
}

async fn retention_purges_in_the_background_and_says_so(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate();
    {
        let mut conn = db.connect();
        seed_entries(&mut conn, "old", 2500, "2 days");
        seed_entries(&mut conn, "recent", 20, "10 minutes");
    }
    let mut config = server_config(&db);
    let mut args = jwt_args("HS256");
    args.jwt_secret = Some(TEST_SECRET.into());
    config.verifier = args.verifier().unwrap().map(std::sync::Arc::new);
    config.audit_retention = Some(Duration::from_secs(3600));
    let app = spawn_on(db, config);
    let auth = token(json!({}));

    // Requests carry on while the purge runs, and until its entry appears.
    let purge = tokio::time::timeout(LIMIT, async {
        loop {
            let created = app.post_json(&json!({"word": "during"})).await;
            assert_eq!(created.status(), 201);
            let found: Vec<Value> = app
                .get_histories("/api/histories?method=PURGE", Some(&auth))
                .await
                .json()
                .await
                .unwrap();
            if let Some(entry) = found.into_iter().next() {
                return entry;
            }
        }
    })
    .await
    .expect("a PURGE entry within the limit");

    assert_eq!(purge["path"], "/api/histories");
    assert_eq!(purge["status"], 200);
    let query = purge["query"].as_str().unwrap();
    assert!(query.starts_with("before="), "{query}");
    assert!(query.contains("&removed=2500&"), "{query}");
    assert!(query.ends_with("&rule=AUDIT_RETENTION%3D1h"), "{query}");

    let left = app.db.histories();
    assert!(left.iter().all(|e| !e.request_id.starts_with("old-")));
    let recent = left
        .iter()
        .filter(|e| e.request_id.starts_with("recent-"))
        .count();
    assert_eq!(recent, 20, "nothing newer than the cut is removed");
    assert!(left.iter().any(|e| e.method == "POST"));

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "audit_entries_purged_total 2500"),
        "{metrics}"
    );
}

fn purge_cli(db: &TestDb, older_than: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_randomize"))
        .args(["audit", "purge", "--older-than", older_than])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap()
}

async fn one_process_purges_at_a_time(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate();
    let mut conn = db.connect();
    seed_entries(&mut conn, "old", 1200, "2 days");
    if backend == Backend::Postgres {
        // As another replica's purge would: the lease of this schema's history.
        conn.batch_execute(
            "SELECT pg_advisory_lock(hashtext('randomize audit purge ' || current_schema()))",
        )
        .unwrap();
        let busy = purge_cli(&db, "1d");
        assert!(!busy.status.success());
        assert!(String::from_utf8_lossy(&busy.stderr).contains("another process is purging"));
        assert_eq!(db.histories().len(), 1200, "nothing removed meanwhile");
        conn.batch_execute(
            "SELECT pg_advisory_unlock(hashtext('randomize audit purge ' || current_schema()))",
        )
        .unwrap();
    }
    let done = purge_cli(&db, "1d");
    assert!(done.status.success(), "{done:?}");
    assert!(String::from_utf8_lossy(&done.stdout).starts_with("removed 1200 entries"));
    let left = db.histories();
    assert_eq!(left.len(), 1, "only the PURGE entry: {left:?}");
    assert_eq!(left[0].method, "PURGE");
    assert!(
        left[0]
            .query
            .as_deref()
            .unwrap()
            .contains("rule=randomize+audit+purge+--older-than+1day")
    );
}

#[derive(diesel::QueryableByName)]
struct Pages {
    #[diesel(sql_type = BigInt)]
    pages: i64,
}

fn pages(conn: &mut DbConnection) -> i64 {
    diesel::sql_query("SELECT page_count AS pages FROM pragma_page_count()")
        .get_result::<Pages>(conn)
        .unwrap()
        .pages
}

/// Freed pages are reused: a file that holds the same amount again does not grow.
#[tokio::test]
async fn a_sqlite_file_under_steady_retention_stops_growing() {
    let db = TestDb::new(Backend::Sqlite);
    db.migrate();
    let mut conn = db.connect();
    seed_entries(&mut conn, "first", 20_000, "2 days");
    let mut sizes = vec![pages(&mut conn)];
    for round in 0..4 {
        let purged = purge_cli(&db, "1d");
        assert!(purged.status.success(), "{purged:?}");
        seed_entries(&mut conn, &format!("round{round}"), 20_000, "2 days");
        sizes.push(pages(&mut conn));
    }
    // Refilled B-trees split a little differently the first rounds (1036, 1064, 1086,
    // 1087, 1087 pages here); then the file holds steady. A file whose freed pages
    // were not reused would gain ~100% per round.
    let first = sizes[0];
    assert!(
        sizes.iter().all(|&p| p <= first + first / 10),
        "pages per round: {sizes:?}"
    );
    assert!(
        sizes[4] <= sizes[3] + first / 100,
        "pages per round: {sizes:?}"
    );
}
