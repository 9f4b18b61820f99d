//! A database that cannot take writes (SPEC §11): SQLite on a filesystem that fills up
//! under load, PostgreSQL made read-only. Every API request answers 503 with
//! `Retry-After`, readiness names the cause, the log says it once per interval, and
//! writes resume with no restart when the condition ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::RunQueryDsl;
use serde_json::Value;

use super::load::*;
use crate::helpers::{Backend, TestDb, assert_problem, server_config, spawn_on};
use crate::process::{LIMIT, Process};

/// A tmpfs of its own, so the test can fill a disk without touching the machine's.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(
            matches!(mounted, Ok(status) if status.success()),
            "this test mounts a {size} tmpfs to fill it up: it needs root and `mount` \
             (CI runs as root); got {mounted:?}"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file, then frees `headroom` bytes of it.
    fn fill_leaving(&self, headroom: u64) -> PathBuf {
        let ballast = self.path().join("ballast");
        let mut file = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0xA5u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        let written = file.metadata().unwrap().len();
        file.set_len(written.saturating_sub(headroom)).unwrap();
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn status_of(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_full_disk_answers_503_says_so_once_per_interval_and_heals() {
    // Room, once the ballast is gone, for the WAL to grow to its checkpoint size.
    let disk = SmallDisk::mount("64m");
    let db = TestDb::existing(format!(
        "sqlite://{}",
        disk.path().join("db.sqlite3").display()
    ));
    db.migrate();
    let ballast = disk.fill_leaving(6 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::serve(&db.url, &dir);
    let port = server.port().await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut load = Load::start(port, "full");
    // Each commit appends a few pages to the WAL: the headroom takes a few hundred.
    load.wait_until("writes acknowledged", LIMIT, |p| p.acknowledged >= 100)
        .await;
    load.wait_until("503s once the disk is full", LIMIT, |p| {
        p.unavailable >= 200
    })
    .await;

    let (status, ready) = status_of(&client, &format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{ready}");
    let detail = ready["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("cannot take writes") && detail.contains("disk is full"),
        "{detail}"
    );
    // Reads too: each must commit its audit entry before it answers.
    let read = client
        .get(format!("{base}/api/randomizes/1"))
        .send()
        .await
        .unwrap();
    assert!(is_retryable_problem(&read));
    let problem = assert_problem(read, 503).await;
    assert!(problem["detail"].as_str().unwrap().contains("disk is full"));

    std::fs::remove_file(&ballast).unwrap();
    let acknowledged = load.progress().acknowledged;
    let healed = tokio::time::timeout(LIMIT, async {
        while status_of(&client, &format!("{base}/readyz")).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        load.progress
            .wait_for(|p| p.acknowledged >= acknowledged + 100)
            .await
            .is_ok()
    })
    .await;
    assert_eq!(
        healed,
        Ok(true),
        "ready and writing again once space is back"
    );

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("db_writer_failures_total{cause=\"disk_full\"}")),
        "{metrics}"
    );

    let outcome = load.finish().await;
    assert_eq!(outcome.unexpected, vec![], "only 201s and 503 problems");
    server.signal("TERM");
    let (status, output) = server.exit().await;
    assert_eq!(status.code(), Some(0));
    let errors: Vec<&String> = output
        .iter()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    // The first refusal, then one line per 10 s at most: never one per request.
    assert!(
        !errors.is_empty() && errors.len() <= 4,
        "{} error lines for {} refused requests: {errors:?}",
        errors.len(),
        outcome.unavailable.len()
    );
    assert!(output.iter().any(|l| l.contains("writes resumed")));

    super::assert_sqlite_intact(&db);
    assert_acknowledged_writes_present(&db, &dir, &outcome).await;
}

/// A login role of the test's own, so making it read-only touches no other test.
struct Role {
    name: String,
}

impl Role {
    fn create() -> Self {
        let name = format!("ro_{}", uuid::Uuid::now_v7().simple());
        admin(&format!("CREATE ROLE {name} LOGIN SUPERUSER"));
        Self { name }
    }

    fn read_only(&self, on: bool) {
        let value = if on { "on" } else { "off" };
        admin(&format!(
            "ALTER ROLE {} SET default_transaction_read_only = {value}",
            self.name
        ));
    }

    /// Ends the role's sessions, so the server reconnects and sees the new setting.
    fn disconnect(&self) {
        admin(&format!(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = '{}'",
            self.name
        ));
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.disconnect();
        admin(&format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

fn admin(sql: &str) {
    let mut conn = TestDb::existing(crate::helpers::postgres_base_url()).connect();
    diesel::sql_query(sql).execute(&mut conn).unwrap();
}

#[tokio::test]
async fn a_read_only_postgres_answers_503_and_heals_without_restart() {
    let mut db = TestDb::new(Backend::Postgres);
    db.migrate();
    let role = Role::create();
    db.url = db.url.replacen(
        "postgres://postgres@",
        &format!("postgres://{}@", role.name),
        1,
    );
    assert!(db.url.contains(&role.name), "{}", db.url);
    let config = server_config(&db);
    let app = spawn_on(db, config);
    let client = reqwest::Client::new();
    assert_eq!(app.create("before").await["original"], "before");

    role.read_only(true);
    role.disconnect();
    let refused = tokio::time::timeout(LIMIT, async {
        loop {
            let response = app.post_json(&serde_json::json!({"word": "during"})).await;
            if response.status() == 503 && is_retryable_problem(&response) {
                let problem: Value = response.json().await.unwrap();
                if problem["detail"].as_str().unwrap().contains("read-only") {
                    return problem;
                }
            }
        }
    })
    .await
    .expect("a read-only database answers 503 naming the cause");
    assert_eq!(refused["status"], 503);
    let (status, ready) = status_of(&client, &app.url("/readyz")).await;
    assert_eq!(status, 503);
    assert!(
        ready["detail"].as_str().unwrap().contains("read-only"),
        "{ready}"
    );
    let read = app.get("/api/randomizes").await;
    assert!(is_retryable_problem(&read));
    assert_eq!(read.status(), 503);

    // No restart, no disconnect: the writer opens a fresh session after a refusal.
    role.read_only(false);
    let (status, ready) = status_of(&client, &app.url("/readyz")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(app.create("after").await["original"], "after");

    let listed: Vec<Value> = app.get("/api/randomizes").await.json().await.unwrap();
    let words: Vec<&str> = listed
        .iter()
        .filter_map(|r| r["original"].as_str())
        .collect();
    assert_eq!(words, ["after", "before"], "nothing refused was stored");
    drop(app);
}
