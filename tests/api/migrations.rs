//! Migrations through the binary (SPEC §8): apply, status, revert, replicas racing, and
//! `schema.rs` against what the migrations create.

use std::process::Output;

use diesel::prelude::*;
use randomize::db::histories::NewEntry;
use randomize::db::randomizes::NewRecord;

use crate::both_backends;
use crate::cli::{randomize, run};
use crate::helpers::{Backend, MIGRATIONS, TestDb};

both_backends!(
    migrate_status_and_revert_round_trip,
    schema_rs_matches_the_migrations
);

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
    use randomize::db::schema::{
        audit_chains, audit_checkpoints, histories, randomizes, randomizes_count,
    };
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
        resource_id: None,
        token_id: Some("t".into()),
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
    };
    // The writer's hand-written batch INSERTs: their column lists must match too.
    let new = NewRecord::new("Bb".into(), "bB".into(), at);
    // The entry describes the creation: it gets the new record's id.
    let audit = randomize::db::batch::Audit {
        entry: &entry,
        of_record: Some(0),
        status: None,
    };
    let mut ledger = randomize::db::Ledger::default();
    let created =
        randomize::db::batch::insert(&mut conn, &[&new], &[audit], &[], &mut ledger, false)
            .unwrap();
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
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<Vec<u8>>,
    );
    let row: HistoryColumns = histories::table
        .select(histories::all_columns)
        .first(&mut conn)
        .unwrap();
    assert_eq!((row.5, row.6, row.10), (200, 1.5, at));
    assert_eq!(
        row.11,
        Some(created[0].id),
        "resource_id is the created record's"
    );
    assert_eq!((row.12.as_deref(), row.13.is_some()), (Some("t"), true));
    let (chain_id, started): (i64, chrono::NaiveDateTime) = audit_chains::table
        .select(audit_chains::all_columns)
        .first(&mut conn)
        .unwrap();
    assert!(started <= randomize::db::now());
    assert_eq!(
        (row.14, row.15, row.16.map(|h| h.len())),
        (Some(chain_id), Some(1), Some(32)),
        "the batch INSERT links the entry: chain, seq, a SHA-256"
    );
    diesel::insert_into(audit_checkpoints::table)
        .values((
            audit_checkpoints::chain.eq(chain_id),
            audit_checkpoints::seq.eq(1),
            audit_checkpoints::hash.eq(vec![0u8; 32]),
            audit_checkpoints::created.eq(at),
            audit_checkpoints::kind.eq("interval"),
            audit_checkpoints::signature.eq(Some(vec![1u8; 64])),
        ))
        .execute(&mut conn)
        .unwrap();
    let checkpoint: (
        i64,
        i64,
        i64,
        Vec<u8>,
        chrono::NaiveDateTime,
        String,
        Option<Vec<u8>>,
    ) = audit_checkpoints::table
        .select(audit_checkpoints::all_columns)
        .first(&mut conn)
        .unwrap();
    assert_eq!((checkpoint.2, checkpoint.4), (1, at));
    let secret: Vec<u8> = randomize::db::schema::service_secrets::table
        .select(randomize::db::schema::service_secrets::secret)
        .first(&mut conn)
        .unwrap();
    assert!(secret.len() >= 16, "the migration generated a cursor key");

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
