//! The `randomize` binary itself: migrations (SPEC §8) and configuration errors (§7).

use std::process::{Command, Output};

use diesel::prelude::*;
use randomize::db::histories::NewEntry;
use randomize::db::randomizes::NewRecord;

use crate::both_backends;
use crate::helpers::{Backend, MIGRATIONS, TestDb};

both_backends!(
    migrate_status_and_revert_round_trip,
    schema_rs_matches_the_migrations
);

/// The binary, run from an empty folder so no developer `.env` leaks in.
pub fn randomize(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_randomize"));
    command.current_dir(dir.path()).env("LOG_LEVEL", "warn");
    command
}

fn run(dir: &tempfile::TempDir, db: &TestDb, args: &[&str]) -> String {
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

async fn migrate_status_and_revert_round_trip(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();

    let total = MIGRATIONS.len();
    assert!(
        run(&dir, &db, &["migrate", "--status"])
            .ends_with(&format!("0 applied, {total} pending\n"))
    );
    let applied = run(&dir, &db, &["migrate"]);
    for name in MIGRATIONS {
        assert!(applied.contains(&format!("applied  {name}\n")), "{applied}");
    }
    assert!(run(&dir, &db, &["migrate"]).contains("0 migration(s) applied"));
    let status = run(&dir, &db, &["migrate", "--status"]);
    assert!(
        status.ends_with(&format!("{total} applied, 0 pending\n")),
        "{status}"
    );

    // Every down.sql works: revert everything, newest first, then apply it all again.
    for (left, name) in MIGRATIONS.iter().enumerate().rev() {
        assert_eq!(
            run(&dir, &db, &["migrate", "--revert"]),
            format!("reverted {name}\n")
        );
        assert!(
            run(&dir, &db, &["migrate", "--status"])
                .ends_with(&format!("{left} applied, {} pending\n", total - left))
        );
    }
    assert_eq!(
        run(&dir, &db, &["migrate", "--revert"]),
        "nothing to revert\n"
    );
    assert!(run(&dir, &db, &["migrate"]).contains(&format!("{total} migration(s) applied")));
}

async fn schema_rs_matches_the_migrations(backend: Backend) {
    use randomize::db::schema::{histories, randomizes, randomizes_count};
    let db = TestDb::new(backend);
    db.migrate();
    let mut conn = db.connect();
    let at = randomize::db::now();

    diesel::insert_into(randomizes::table)
        .values((
            randomizes::original.eq("a"),
            randomizes::original_folded.eq("a"),
            randomizes::jumbled.eq("a"),
            randomizes::created.eq(at),
            randomizes::updated.eq(at),
        ))
        .execute(&mut conn)
        .unwrap();
    let entry = NewEntry {
        request_id: "r".into(),
        method: "GET".into(),
        path: "/api".into(),
        query: Some("q".into()),
        status: 200,
        duration_ms: 1.5,
        client_ip: Some("::1".into()),
        user_agent: Some("ua".into()),
        subject: Some("s".into()),
        created: at,
    };
    // The writer's hand-written batch INSERTs: their column lists must match too.
    let new = NewRecord::new("Bb".into(), "bB".into(), at);
    let created = randomize::db::batch::insert(&mut conn, &[&new], &[&entry]).unwrap();
    assert_eq!(
        (created[0].original.as_str(), created[0].version),
        ("Bb", 1)
    );

    // Reading every column through schema.rs fails if a name or type disagrees.
    let record: (
        i64,
        String,
        String,
        String,
        i32,
        chrono::NaiveDateTime,
        chrono::NaiveDateTime,
    ) = randomizes::table
        .select(randomizes::all_columns)
        .order(randomizes::id)
        .first(&mut conn)
        .unwrap();
    assert_eq!(
        (record.4, record.5),
        (1, at),
        "version defaults to 1; timestamps round-trip"
    );
    type HistoryColumns = (
        i64,
        String,
        String,
        String,
        Option<String>,
        i32,
        f64,
        Option<String>,
        Option<String>,
        Option<String>,
        chrono::NaiveDateTime,
    );
    let row: HistoryColumns = histories::table
        .select(histories::all_columns)
        .first(&mut conn)
        .unwrap();
    assert_eq!((row.5, row.6, row.10), (200, 1.5, at));

    let counted: (i32, i64) = randomizes_count::table
        .select(randomizes_count::all_columns)
        .first(&mut conn)
        .unwrap();
    assert_eq!(counted, (1, 2), "the trigger counted both inserts");
}

#[test]
fn concurrent_migrations_on_postgres_apply_each_migration_once() {
    let db = TestDb::new(Backend::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            randomize(&dir)
                .args(["migrate"])
                .env("DATABASE_URL", &db.url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();

    let mut applied_lines = 0;
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        applied_lines += stdout
            .lines()
            .filter(|l| l.starts_with("applied  "))
            .count();
    }
    assert_eq!(
        applied_lines,
        MIGRATIONS.len(),
        "each migration applied by exactly one process"
    );
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.connect();
    let count: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(count.n, MIGRATIONS.len() as i64);
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
