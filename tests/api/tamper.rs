//! Tamper evidence (SPEC §12) end to end: the real binary serves and signs checkpoints,
//! an attacker with database access edits the history, and `randomize audit verify`
//! must name what changed; the database itself refuses edits while its guards stand.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use randomize::chain::{Checkpoint, Kind, PublicKey};
use randomize::db::DbConnection;
use serde_json::json;

use crate::bearer::token;
use crate::both_backends;
use crate::cli::randomize;
use crate::helpers::{Backend, TEST_SECRET, TestDb, test_key};
use crate::process::Process;

both_backends!(
    verify_passes_on_the_database_its_export_and_its_log_across_restarts,
    each_kind_of_tampering_is_detected_and_named,
    the_database_refuses_to_change_or_delete_entries
);

fn signing_env() -> Vec<(&'static str, String)> {
    vec![
        ("JWT_SECRET", TEST_SECRET.to_owned()),
        (
            "AUDIT_SIGNING_KEY_FILE",
            test_key("audit-signing-private.pem").display().to_string(),
        ),
    ]
}

/// Runs `randomize serve` on `db`, sends a few requests of every kind, stops it with
/// SIGTERM and returns its log (the shutdown checkpoint is in it).
async fn serve_a_while(db: &TestDb, dir: &tempfile::TempDir, posts: usize) -> Vec<String> {
    let env = signing_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Process::serve_with(&db.url, dir, &env);
    let base = format!("http://127.0.0.1:{}", server.port().await);
    let client = reqwest::Client::new();
    for n in 0..posts {
        let created = client
            .post(format!("{base}/api/randomizes"))
            .json(&json!({"word": format!("word{n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let missing = client
        .get(format!("{base}/api/randomizes/999999"))
        .send()
        .await;
    assert_eq!(missing.unwrap().status(), 404);
    let read = client
        .get(format!("{base}/api/histories?page_size=5"))
        .bearer_auth(token(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    server.signal("TERM");
    let (status, lines) = server.exit().await;
    assert!(status.success(), "{}", lines.join("\n"));
    lines
}

/// `randomize audit verify` with `args`; its success and its stdout.
fn verify(dir: &tempfile::TempDir, db: &TestDb, args: &[&str]) -> (bool, String) {
    let output = randomize(dir)
        .args(["audit", "verify"])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("OK: ") || last.starts_with("FAILED: "),
        "the output ends with one summary line:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.success(),
        last.starts_with("OK: "),
        "{stdout}"
    );
    (output.status.success(), stdout)
}

fn public_key() -> String {
    test_key("audit-signing-public.pem").display().to_string()
}

#[derive(diesel::QueryableByName, Debug)]
struct ChainRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    chain: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// Every chained entry, by chain and seq.
fn links(conn: &mut DbConnection) -> Vec<ChainRow> {
    diesel::sql_query(
        "SELECT id, chain, seq FROM histories WHERE chain IS NOT NULL ORDER BY chain, seq",
    )
    .load(conn)
    .unwrap()
}

async fn verify_passes_on_the_database_its_export_and_its_log_across_restarts(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let key = public_key();
    let mut log = serve_a_while(&db, &dir, 6).await;
    // A restart starts a new chain (one per process); both verify.
    log.extend(serve_a_while(&db, &dir, 4).await);

    let (ok, out) = verify(&dir, &db, &["--public-key", &key]);
    assert!(ok, "{out}");
    assert!(
        out.contains("in 2 chain(s), 2 checkpoint(s), signatures checked"),
        "{out}"
    );
    let rows = links(&mut db.connect());
    for chain in [rows[0].chain, rows[rows.len() - 1].chain] {
        let seqs: Vec<i64> = rows
            .iter()
            .filter(|r| r.chain == chain)
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "no gaps");
    }

    // The export carries chain, seq and hash, and verifies on its own.
    let export = dir.path().join("history.ndjson");
    let exported = randomize(&dir)
        .args(["audit", "export", "--output"])
        .arg(&export)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(exported.status.success());
    let export = export.display().to_string();
    let (ok, out) = verify(&dir, &db, &["--export", &export, "--public-key", &key]);
    assert!(ok, "{out}");

    // The log's checkpoint lines are a copy outside the database.
    let lines: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("audit checkpoint"))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one shutdown checkpoint per run:\n{}",
        log.join("\n")
    );
    let copy = dir.path().join("checkpoints.log");
    std::fs::write(&copy, log.join("\n")).unwrap();
    let copy = copy.display().to_string();
    let (ok, out) = verify(&dir, &db, &["--checkpoints", &copy, "--public-key", &key]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&dir, &db, &["--export", &export, "--checkpoints", &copy]);
    assert!(ok && out.contains("signatures NOT checked"), "{out}");

    // A key that did not sign them rejects every checkpoint.
    let other = dir.path().join("other.pem");
    let generated = randomize(&dir)
        .args(["audit", "keygen", "--output"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(generated.status.success());
    let other_public = dir.path().join("other.pub.pem");
    std::fs::write(&other_public, &generated.stdout).unwrap();
    let (ok, out) = verify(
        &dir,
        &db,
        &["--public-key", &other_public.display().to_string()],
    );
    assert!(!ok);
    assert_eq!(
        out.matches("its signature does not verify with key")
            .count(),
        2,
        "{out}"
    );
}

/// Removes the guards, as an attacker who owns the tables can.
fn drop_guards(conn: &mut DbConnection) {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "DROP TRIGGER histories_no_update; DROP TRIGGER histories_no_delete;
             DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;"
        }
        DbConnection::Postgres(_) => {
            "DROP TRIGGER histories_append_only ON histories;
             DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints;"
        }
    };
    conn.batch_execute(sql).unwrap();
}

async fn each_kind_of_tampering_is_detected_and_named(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let key = public_key();
    serve_a_while(&db, &dir, 8).await;
    let mut conn = db.connect();
    drop_guards(&mut conn);
    let rows = links(&mut conn);
    let chain = rows[0].chain;
    let newest = rows.last().unwrap().seq;
    let at = |seq: i64| rows.iter().find(|r| r.seq == seq).unwrap().id;
    let verify_fails = |expected: &str| {
        let (ok, out) = verify(&dir, &db, &["--public-key", &key]);
        assert!(
            !ok && out.contains(expected),
            "expected {expected:?} in:\n{out}"
        );
    };
    let exec = |conn: &mut DbConnection, sql: String| conn.batch_execute(&sql).unwrap();

    // A changed field.
    exec(
        &mut conn,
        format!(
            "CREATE TABLE saved AS SELECT * FROM histories WHERE id = {}",
            at(3)
        ),
    );
    exec(
        &mut conn,
        format!("UPDATE histories SET status = 299 WHERE id = {}", at(3)),
    );
    verify_fails(&format!(
        "first broken entry: chain {chain} seq 3 (entry id {})",
        at(3)
    ));
    exec(
        &mut conn,
        format!(
            "UPDATE histories SET status = (SELECT status FROM saved) WHERE id = {}",
            at(3)
        ),
    );
    exec(&mut conn, "DROP TABLE saved".into());
    assert!(verify(&dir, &db, &["--public-key", &key]).0, "restored");

    // A removed middle entry.
    exec(
        &mut conn,
        format!(
            "CREATE TABLE saved AS SELECT * FROM histories WHERE id = {}",
            at(4)
        ),
    );
    exec(
        &mut conn,
        format!("DELETE FROM histories WHERE id = {}", at(4)),
    );
    verify_fails(&format!(
        "chain {chain}: entries seq 4..4 are missing (between entry ids {} and {})",
        at(3),
        at(5)
    ));
    exec(
        &mut conn,
        "INSERT INTO histories SELECT * FROM saved; DROP TABLE saved".into(),
    );
    assert!(verify(&dir, &db, &["--public-key", &key]).0, "restored");

    // An inserted entry: later ones renumbered to make room (in two steps, so the
    // unique (chain, seq) index never sees a duplicate), a forged one at seq 5.
    exec(
        &mut conn,
        format!("UPDATE histories SET seq = -(seq + 1) WHERE chain = {chain} AND seq >= 5"),
    );
    exec(
        &mut conn,
        format!("UPDATE histories SET seq = -seq WHERE chain = {chain} AND seq < 0"),
    );
    exec(
        &mut conn,
        format!(
            "INSERT INTO histories (request_id, method, path, status, duration_ms, created, chain, seq, hash) \
             SELECT 'forged', 'DELETE', '/api/randomizes/1', 204, 0.1, created, chain, 5, hash \
             FROM histories WHERE id = {}",
            at(4)
        ),
    );
    let forged: i64 = {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query("SELECT id FROM histories WHERE request_id = 'forged'")
            .get_result::<Id>(&mut conn)
            .unwrap()
            .id
    };
    verify_fails(&format!(
        "first broken entry: chain {chain} seq 5 (entry id {forged})"
    ));
    exec(
        &mut conn,
        format!("DELETE FROM histories WHERE id = {forged}"),
    );
    exec(
        &mut conn,
        format!("UPDATE histories SET seq = -(seq - 1) WHERE chain = {chain} AND seq >= 6"),
    );
    exec(
        &mut conn,
        format!("UPDATE histories SET seq = -seq WHERE chain = {chain} AND seq < 0"),
    );
    assert!(verify(&dir, &db, &["--public-key", &key]).0, "restored");

    // The newest entries removed: only the signed shutdown checkpoint knows them.
    exec(
        &mut conn,
        format!(
            "DELETE FROM histories WHERE chain = {chain} AND seq > {}",
            newest - 3
        ),
    );
    verify_fails(&format!("checkpoint chain {chain} seq {newest} (shutdown"));
    verify_fails(&format!("entries seq {}..{newest} are missing", newest - 2));
}

async fn the_database_refuses_to_change_or_delete_entries(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate();
    let mut conn = db.connect();
    conn.batch_execute(
        "INSERT INTO histories (request_id, method, path, status, duration_ms, created) \
         VALUES ('r', 'GET', '/api/randomizes', 200, 0.1, '2026-01-01 00:00:00');
         INSERT INTO audit_checkpoints (chain, seq, hash, created, kind) \
         VALUES (1, 1, 'h', '2026-01-01 00:00:00', 'interval')",
    )
    .unwrap();
    let mut refused = vec![
        "UPDATE histories SET status = 500",
        "DELETE FROM histories",
        "UPDATE audit_checkpoints SET seq = 2",
        "DELETE FROM audit_checkpoints",
    ];
    if backend == Backend::Postgres {
        refused.extend(["TRUNCATE histories", "TRUNCATE audit_checkpoints"]);
    }
    for sql in refused {
        let error = conn.batch_execute(sql).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    if backend == Backend::Sqlite {
        // A connection that is not the service's (an operator's sqlite3) cannot delete
        // either: only the service defines the function the guard asks.
        use diesel::Connection;
        let path = db.url.trim_start_matches("sqlite://");
        let mut foreign = diesel::SqliteConnection::establish(path).unwrap();
        let error = foreign.batch_execute("DELETE FROM histories").unwrap_err();
        assert!(error.to_string().contains("randomize_purging"), "{error}");
    }
    let count: i64 = {
        use diesel::prelude::*;
        randomize::db::schema::histories::table
            .count()
            .get_result(&mut conn)
            .unwrap()
    };
    assert_eq!(count, 1, "nothing was changed or removed");
}

/// Two replicas on one PostgreSQL, each POSTed to concurrently: each keeps a chain of
/// its own, without gaps, that verifies against its signed shutdown checkpoint. (The
/// replicas also race for the feed lock, so batches whose `created` floor another
/// replica moved are linked again under the lock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_on_one_postgres_each_keep_a_valid_chain_under_load() {
    const CLIENTS: usize = 16;
    const POSTS: usize = 40;
    let db = TestDb::new(Backend::Postgres);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let env = signing_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut replicas = [
        Process::serve_with(&db.url, &dir, &env),
        Process::serve_with(&db.url, &dir, &env),
    ];
    let mut bases = Vec::new();
    for replica in &mut replicas {
        bases.push(format!("http://127.0.0.1:{}", replica.port().await));
    }
    let bases = std::sync::Arc::new(bases);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let bases = bases.clone();
        clients.spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..POSTS {
                let response = http
                    .post(format!("{}/api/randomizes", bases[(client + n) % 2]))
                    .json(&json!({"word": format!("c{client}n{n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    for replica in &replicas {
        replica.signal("TERM");
    }
    for replica in replicas {
        let (status, lines) = replica.exit().await;
        assert!(status.success(), "{}", lines.join("\n"));
    }

    let (ok, out) = verify(&dir, &db, &["--public-key", &public_key()]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "OK: {} entries in 2 chain(s), 2 checkpoint(s)",
            CLIENTS * POSTS
        )),
        "{out}"
    );
    let rows = links(&mut db.connect());
    let mut by_chain: std::collections::BTreeMap<i64, Vec<&ChainRow>> = Default::default();
    rows.iter()
        .for_each(|r| by_chain.entry(r.chain).or_default().push(r));
    for (chain, rows) in by_chain {
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "chain {chain}"
        );
        assert!(
            rows.windows(2).all(|w| w[0].id < w[1].id),
            "chain {chain}: seq order is id (commit) order"
        );
    }
}

/// The interval checkpoint: taken while the chain grows, logged as one line, listed at
/// `/api/histories/checkpoints` and timed on `/metrics`.
#[tokio::test]
async fn interval_checkpoints_are_logged_listed_and_measured() {
    let db = TestDb::new(Backend::Sqlite);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let mut env = signing_env();
    env.push(("CHECKPOINT_INTERVAL", "1s".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Process::serve_with(&db.url, &dir, &env);
    let base = format!("http://127.0.0.1:{}", server.port().await);
    let http = reqwest::Client::new();
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let before = metrics.text().await.unwrap();
    assert!(
        !before.contains("audit_last_checkpoint_timestamp_seconds"),
        "no checkpoint yet, so no time (0 would read as 1970)"
    );
    for n in 0..3 {
        let created = http
            .post(format!("{base}/api/randomizes"))
            .json(&json!({"word": format!("tick{n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let line = server.wait_for("audit checkpoint").await;
    let logged = Checkpoint::from_log_line(&line).unwrap_or_else(|| panic!("{line}"));
    assert_eq!(logged.kind, Kind::Interval);
    let key = std::fs::read_to_string(test_key("audit-signing-public.pem")).unwrap();
    assert!(logged.signed_by(&PublicKey::from_pem(&key).unwrap()));
    let object: serde_json::Value = serde_json::from_str(&logged.to_json()).unwrap();

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let at: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("audit_last_checkpoint_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint time in:\n{text}"));
    assert!(at > 1_700_000_000);

    let listed = http
        .get(format!("{base}/api/histories/checkpoints?page_size=5"))
        .bearer_auth(token(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let listed: serde_json::Value = listed.json().await.unwrap();
    let newest = &listed.as_array().unwrap()[0];
    assert_eq!(
        (
            &newest["chain"],
            &newest["seq"],
            &newest["hash"],
            &newest["kind"]
        ),
        (
            &object["chain"],
            &object["seq"],
            &object["hash"],
            &json!("interval")
        ),
        "the listed checkpoint is the logged one"
    );
    let unauthorized = http
        .get(format!("{base}/api/histories/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    server.signal("TERM");
    let (status, _) = server.exit().await;
    assert!(status.success());
}
