//! The `randomize` binary itself: configuration errors (SPEC §7), SQLite pragmas, and the
//! probes the container uses.

use std::process::Command;

use diesel::prelude::*;

use crate::helpers::{Backend, TestDb};

/// The binary, run from an empty folder so no developer `.env` leaks in.
pub fn randomize(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_randomize"));
    command.current_dir(dir.path()).env("LOG_LEVEL", "warn");
    command
}

/// Runs the binary against `db`, asserts success, returns its stdout.
pub fn run(dir: &tempfile::TempDir, db: &TestDb, args: &[&str]) -> String {
    let output = randomize(dir)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bad_configuration_stops_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("DATABASE_POOL_SIZE", "abc"),
        ("DATABASE_TIMEOUT", "soon"),
        ("DATABASE_URL", "mysql://user:hunter2@db/app"),
        ("LOG_LEVEL", "info,[[["),
        ("LOG_FORMAT", "xml"),
        ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ("MAX_WORD_GRAPHEMES", "0"),
        ("CORS_ALLOWED_ORIGINS", "example.com"),
        ("SQLITE_SYNCHRONOUS", "sometimes"),
    ];
    for (var, value) in cases {
        let output = randomize(&dir)
            .args(["serve"])
            .env(var, value)
            .env("BIND", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{var}={value} must stop start-up");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(var),
            "{var}: first line {first:?} must name it"
        );
        assert!(
            !stderr.contains("hunter2"),
            "secrets never printed: {stderr}"
        );
    }
    let missing = randomize(&dir)
        .args(["serve"])
        .env("DATABASE_URL_FILE", dir.path().join("absent"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .starts_with("randomize: DATABASE_URL: cannot read DATABASE_URL_FILE")
    );
}

/// SPEC §7: enumerated values are case-insensitive (`FULL` is how SQLite spells it).
#[test]
fn enumerated_settings_are_read_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Sqlite);
    for (var, value) in [
        ("SQLITE_SYNCHRONOUS", "FULL"),
        ("SQLITE_SYNCHRONOUS", "Normal"),
        ("LOG_FORMAT", "JSON"),
        ("JWT_ALGORITHM", "hs256"),
    ] {
        let output = randomize(&dir)
            .args(["migrate"])
            .env("DATABASE_URL", &db.url)
            .env(var, value)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{var}={value}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn sqlite_connections_use_wal_full_sync_and_a_busy_timeout() {
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let db = TestDb::new(Backend::Sqlite);
    let mut conn = db.connect();
    let mut pragma = |name: &str, column: &str| {
        diesel::sql_query(format!(
            "SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"
        ))
        .get_result::<Setting>(&mut conn)
        .unwrap()
        .value
    };
    assert_eq!(pragma("journal_mode", "journal_mode"), "wal");
    assert_eq!(pragma("synchronous", "synchronous"), "2", "FULL");
    assert_eq!(pragma("busy_timeout", "timeout"), "3000");
    assert_eq!(pragma("foreign_keys", "foreign_keys"), "1");
}

/// `randomize healthcheck` (the image's HEALTHCHECK): 0 when /healthz answers 200,
/// non-zero with the reason when nothing listens.
#[tokio::test]
async fn healthcheck_probes_the_local_server() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = app.address.trim_start_matches("http://").to_owned();
    let healthy = tokio::task::spawn_blocking({
        let mut command = randomize(&dir);
        command.args(["healthcheck", "--bind", &bind]);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&healthy.stdout).trim(), "healthy");

    // Port 1 on loopback: nothing listens there.
    let down = randomize(&dir)
        .args(["healthcheck", "--bind", "0.0.0.0:1"])
        .output()
        .unwrap();
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("cannot connect to 127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

/// `randomize ping-db` (entrypoint.sh's wait): names the backend, or says why not.
#[test]
fn ping_db_reports_reachability() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Postgres);
    assert_eq!(
        run(&dir, &db, &["ping-db"]).trim(),
        "postgres database answers"
    );
    let down = randomize(&dir)
        .args(["ping-db"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("postgres database does not answer"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("postgres://"),
        "no URL (and so no password) in the error"
    );
}
