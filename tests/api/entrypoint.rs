//! `entrypoint.sh` (SPEC §9) run for real around the built binary: it waits for the
//! database (bounded), migrates, then `exec`s the server — which therefore runs under
//! the script's own PID and gets SIGTERM itself.

use std::path::Path;

use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;
use tokio::process::Command;

use crate::helpers::{Backend, MIGRATIONS, TestDb, test_key};
use crate::process::Process;

/// `sh entrypoint.sh ARGS…` with the built binary first on PATH.
fn entrypoint(database_url: &str, dir: &Path) -> Command {
    let binary = Path::new(env!("CARGO_BIN_EXE_randomize"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("sh");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("entrypoint.sh"))
        .current_dir(dir)
        .env("PATH", path)
        .env("DATABASE_URL", database_url)
        .env("BIND", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        // A deployment has a key; without one the server (rightly) warns.
        .env("JWT_SECRET", "test-only-secret-0123456789abcdef0123456789")
        .env(
            "AUDIT_SIGNING_KEY_FILE",
            test_key("audit-signing-private.pem"),
        );
    command
}

async fn ready(port: u16) -> u16 {
    reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn applied_migrations(db: &TestDb) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut db.connect())
        .unwrap()
        .n
}

fn assert_no_errors(output: &[String]) {
    for line in output {
        let lower = line.to_ascii_lowercase();
        assert!(
            !lower.contains("\"level\":\"error\"")
                && !lower.contains("\"level\":\"warn\"")
                && !lower.contains("panicked"),
            "unexpected line: {line}\nin:\n{}",
            output.join("\n")
        );
    }
}

/// Migrates, serves under the script's PID, answers /readyz, exits 0 on SIGTERM.
async fn serves_after_migrating(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::spawn(entrypoint(&db.url, dir.path()));
    server.wait_for("migration(s) applied").await;
    let port = server.port().await;

    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.pid)).unwrap();
    assert_eq!(comm.trim(), "randomize", "exec replaced the shell");
    assert_eq!(ready(port).await, 200);
    assert_eq!(applied_migrations(&db), MIGRATIONS.len() as i64);

    server.signal("TERM");
    let (status, output) = server.exit().await;
    assert_eq!(status.code(), Some(0), "{}", output.join("\n"));
    assert_no_errors(&output);
}

#[tokio::test]
async fn serves_after_migrating_on_sqlite() {
    serves_after_migrating(Backend::Sqlite).await;
}

#[tokio::test]
async fn serves_after_migrating_on_postgres() {
    serves_after_migrating(Backend::Postgres).await;
}

#[tokio::test]
async fn unreachable_database_fails_after_bounded_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = entrypoint("postgres://postgres@127.0.0.1:1/nowhere", dir.path());
    command
        .env("DB_WAIT_ATTEMPTS", "2")
        .env("DB_WAIT_MAX_DELAY", "1");
    let (status, output) = Process::spawn(command).exit().await;
    assert_eq!(status.code(), Some(69), "{}", output.join("\n"));
    let text = output.join("\n");
    assert!(
        text.contains("database not reachable (attempt 1 of 2), retrying in 1s"),
        "{text}"
    );
    assert!(
        text.contains("database not reachable after 2 attempts, giving up"),
        "{text}"
    );
    assert!(
        text.contains("Connection refused"),
        "the cause is shown: {text}"
    );
    assert!(!text.contains("migration(s) applied") && !text.contains("listening"));
}

#[tokio::test]
async fn other_commands_run_instead_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = entrypoint("postgres://postgres@127.0.0.1:1/never-used", dir.path());
    command.args(["randomize", "token", "--subject", "ops"]);
    let (status, output) = Process::spawn(command).exit().await;
    assert_eq!(status.code(), Some(0), "{}", output.join("\n"));
    assert_eq!(output.len(), 1, "only the token: {output:?}");
    assert_eq!(output[0].split('.').count(), 3, "a JWT: {output:?}");
}

/// Three replicas starting together on one fresh database: the advisory lock lets one
/// migrate; all three serve; nobody logs an error.
#[tokio::test]
async fn three_replicas_start_together_on_postgres() {
    let db = TestDb::new(Backend::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Process> = (0..3)
        .map(|_| Process::spawn(entrypoint(&db.url, dir.path())))
        .collect();
    let mut applied_by_each = Vec::new();
    for replica in &mut replicas {
        let summary = replica.wait_for("migration(s) applied").await;
        applied_by_each.push(summary.split_whitespace().next().unwrap().to_owned());
        let port = replica.port().await;
        assert_eq!(ready(port).await, 200);
    }
    applied_by_each.sort();
    assert_eq!(
        applied_by_each,
        ["0", "0", &MIGRATIONS.len().to_string()],
        "exactly one replica migrated"
    );
    assert_eq!(applied_migrations(&db), MIGRATIONS.len() as i64);

    for replica in &replicas {
        replica.signal("TERM");
    }
    for replica in replicas {
        let (status, output) = replica.exit().await;
        assert_eq!(status.code(), Some(0), "{}", output.join("\n"));
        assert_no_errors(&output);
    }
}
