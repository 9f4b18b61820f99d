use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tokio::sync::oneshot;

use super::commit;
use super::job::{Done, Job, Outcome, Queued};
use super::session::{Arrival, Session};
use crate::db::histories::NewEntry;
use crate::db::page::{Order, Start, Window};
use crate::db::randomizes::{Held, NewRecord, Precondition};
use crate::db::{
    ConnectOptions, DatabaseUrl, DbConnection, SqliteSynchronous, migrations, now, schema,
};

fn options(url: &str) -> ConnectOptions {
    ConnectOptions {
        url: DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("{e}")),
        timeout: Duration::from_secs(2),
        sqlite_synchronous: SqliteSynchronous::Full,
        bounded_lock_waits: true,
        bounded_statements: false,
    }
}

fn sqlite(dir: &tempfile::TempDir) -> (ConnectOptions, DbConnection) {
    let options = options(&dir.path().join("w.sqlite3").display().to_string());
    migrations::run_pending(&options, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let conn = options.connect().unwrap_or_else(|e| panic!("{e}"));
    (options, conn)
}

fn entry(request_id: &str) -> NewEntry {
    NewEntry {
        request_id: request_id.into(),
        method: "POST".into(),
        path: "/api/randomizes".into(),
        query: None,
        status: 201,
        duration_ms: 0.5,
        client_ip: None,
        user_agent: None,
        subject: None,
        created: now(),
        resource_id: None,
        token_id: None,
        trace_id: None,
    }
}

fn create(word: &str, jumble: &str) -> Job {
    Job::Create {
        record: NewRecord::new(word.into(), jumble.into(), now()),
        entry: entry(&format!("create-{word}-{jumble}")),
        key: None,
    }
}

/// Stores `jobs` as one batch and returns what each job was answered.
fn store(options: ConnectOptions, jobs: Vec<Job>, arrival: Arrival) -> Vec<Outcome> {
    let (mut batch, answers): (Vec<Queued>, Vec<oneshot::Receiver<Outcome>>) =
        jobs.into_iter().map(Queued::new).unzip();
    let mut session = Session::new(options, Default::default(), Default::default());
    if let Err(error) = commit::store(&mut session, &mut batch, arrival) {
        super::replay::recover(&mut session, &mut batch, error);
    }
    assert!(batch.is_empty(), "every job was answered");
    answers
        .into_iter()
        .map(|mut answer| answer.try_recv().unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn audited(conn: &mut DbConnection) -> Vec<String> {
    schema::histories::table
        .select(schema::histories::request_id)
        .order(schema::histories::request_id)
        .load(conn)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Record 1, at `version`; an operator's trigger makes every update of it fail with an
/// SQL error.
fn refuse_updates_of_record_one(conn: &mut DbConnection, version: i32) {
    conn.batch_execute(&format!(
        "INSERT INTO randomizes (original, original_folded, jumbled, version, created, updated)
             VALUES ('old', 'old', 'dlo', {version}, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         CREATE TRIGGER refuse BEFORE UPDATE ON randomizes WHEN OLD.id = 1
             BEGIN SELECT RAISE(ABORT, 'refused'); END;"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn one_batch_answers_every_create_with_its_own_record_even_identical_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (options, mut conn) = sqlite(&dir);
    let words = [
        ("alpha", "lapha"),
        ("bravo", "vorab"),
        ("alpha", "lapha"),
        ("alpha", "hapla"),
    ];
    let mut jobs: Vec<Job> = words.iter().map(|(w, j)| create(w, j)).collect();
    jobs.push(Job::Append {
        entry: entry("read"),
    });

    let outcomes = store(options, jobs, Arrival::AfterIdle);

    let mut ids = Vec::new();
    for (outcome, (word, jumble)) in outcomes.iter().zip(words) {
        match outcome {
            Ok(Done::Created(record)) => {
                assert_eq!(
                    (record.original.as_str(), record.jumbled.as_str()),
                    (word, jumble)
                );
                ids.push(record.id);
            }
            other => panic!("expected a created record, got {other:?}"),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "every request got its own row");
    assert!(matches!(outcomes[4], Ok(Done::Appended)));
    assert_eq!(audited(&mut conn).len(), 5);
}

#[test]
fn a_failing_job_fails_alone_and_writes_no_audit_entry() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (options, mut conn) = sqlite(&dir);
    refuse_updates_of_record_one(&mut conn, 1);
    let change = || NewRecord::new("new".into(), "wen".into(), now());
    let jobs = vec![
        create("kept", "ptek"),
        Job::Update {
            id: 1,
            precondition: Precondition::None,
            change: change(),
            entry: entry("broken"),
            key: None,
        },
        Job::Delete {
            id: 99,
            precondition: Precondition::None,
            entry: entry("missing"),
            key: None,
        },
        Job::Update {
            id: 1,
            precondition: Precondition::VersionIn(vec![7]),
            change: change(),
            entry: entry("stale"),
            key: None,
        },
        Job::Append {
            entry: entry("fine"),
        },
    ];

    let outcomes = store(options, jobs, Arrival::AfterIdle);

    assert!(matches!(&outcomes[0], Ok(Done::Created(r)) if r.original == "kept"));
    assert!(matches!(outcomes[1], Err(crate::db::StoreError::Query(_))));
    assert!(matches!(outcomes[2], Err(crate::db::StoreError::NotFound)));
    assert!(matches!(
        outcomes[3],
        Err(crate::db::StoreError::PreconditionFailed)
    ));
    assert!(matches!(outcomes[4], Ok(Done::Appended)));
    assert_eq!(audited(&mut conn), ["create-kept-ptek", "fine"]);
}

/// Reads in a batch that also holds a failing job: the batch is replayed job by job,
/// and each lookup still answers what it found, its entry recording the status that
/// decides (200, 304 for a version the client holds, 404), exactly once; each list
/// gets its own window's page.
#[test]
fn reads_answer_with_their_status_even_when_their_batch_is_replayed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (options, mut conn) = sqlite(&dir);
    refuse_updates_of_record_one(&mut conn, 3);
    let find = |id, held, name: &str| Job::Find {
        id,
        held,
        entry: entry(name),
    };
    let list = |start, name: &str| Job::List {
        window: Window {
            order: Order::NewestFirst,
            start,
            size: 20,
        },
        // A list's entry keeps the status its handler gave it.
        entry: NewEntry {
            status: 200,
            ..entry(name)
        },
    };
    let jobs = vec![
        find(1, Held::Nothing, "a-current"),
        find(1, Held::Versions(vec![2, 3]), "b-unchanged"),
        Job::Update {
            id: 1,
            precondition: Precondition::None,
            change: NewRecord::new("new".into(), "wen".into(), now()),
            entry: entry("c-broken"),
            key: None,
        },
        find(99, Held::Any, "d-missing"),
        find(1, Held::Versions(vec![2]), "e-stale-copy"),
        list(Start::Offset(0), "f-list"),
        list(Start::After(1), "g-list-after"),
        list(Start::Offset(0), "h-list-again"),
    ];

    let outcomes = store(options, jobs, Arrival::AfterIdle);

    let original = |outcome: &Outcome| match outcome {
        Ok(Done::Found(found)) => found.as_ref().map(|r| r.original.clone()),
        other => panic!("expected a lookup's answer, got {other:?}"),
    };
    assert_eq!(original(&outcomes[0]).as_deref(), Some("old"));
    assert_eq!(original(&outcomes[1]).as_deref(), Some("old"));
    assert!(matches!(outcomes[2], Err(crate::db::StoreError::Query(_))));
    assert_eq!(original(&outcomes[3]), None);
    assert_eq!(original(&outcomes[4]).as_deref(), Some("old"));
    let listed = |outcome: &Outcome| match outcome {
        Ok(Done::Listed(page)) => page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        other => panic!("expected a page, got {other:?}"),
    };
    assert_eq!(listed(&outcomes[5]), [1]);
    assert_eq!(listed(&outcomes[6]), Vec::<i64>::new());
    assert_eq!(listed(&outcomes[7]), [1]);
    let statuses: Vec<(String, i32)> = schema::histories::table
        .select((schema::histories::request_id, schema::histories::status))
        .order(schema::histories::request_id)
        .load(&mut conn)
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        ("a-current", 200),
        ("b-unchanged", 304),
        ("d-missing", 404),
        ("e-stale-copy", 200),
        ("f-list", 200),
        ("g-list-after", 200),
        ("h-list-again", 200),
    ];
    assert_eq!(
        statuses,
        expected.map(|(id, status)| (id.to_owned(), status))
    );
}

#[test]
fn an_unreachable_database_fails_the_batch_as_unavailable() {
    let options = options("postgres://nobody@127.0.0.1:1/none");

    let outcomes = store(options, vec![create("lost", "stol")], Arrival::Busy);

    assert!(matches!(
        outcomes[0],
        Err(crate::db::StoreError::Unavailable(_))
    ));
}

/// Every chain in `conn`, verified against its stored checkpoints.
fn verified(conn: &mut DbConnection) -> crate::chain::verify::Report {
    let checkpoints = crate::db::chain::all_checkpoints(conn)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter_map(crate::db::chain::StoredCheckpoint::checkpoint)
        .collect::<Vec<_>>();
    let mut verification = crate::chain::verify::Verification::new(checkpoints, None);
    let entries = crate::db::chain::next_links(conn, (i64::MIN, i64::MIN), 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    for e in &entries {
        verification.feed(&crate::chain::verify::Stored {
            id: e.id,
            chain: e.chain,
            seq: e.seq,
            hash: e.hash.as_deref(),
            fields: e.fields(),
        });
    }
    verification.finish()
}

#[test]
fn a_retention_step_cuts_each_chain_at_a_checkpoint_verification_starts_from() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (options, mut conn) = sqlite(&dir);
    let appends = (0..10)
        .map(|n| Job::Append {
            entry: entry(&format!("e{n}")),
        })
        .collect();
    store(options.clone(), appends, Arrival::AfterIdle);
    let before = verified(&mut conn);
    assert!(before.passed(), "{:?}", before.problems);

    let outcomes = store(
        options,
        vec![Job::Purge {
            cut: now() + chrono::Duration::days(1),
            from: None,
            limit: 4,
        }],
        Arrival::AfterIdle,
    );
    let Some(Ok(Done::Purged(removed))) = outcomes.into_iter().next() else {
        panic!("the purge step did not answer Purged");
    };
    assert_eq!(removed.entries, 4);
    let [cut] = removed.cuts.as_slice() else {
        panic!("one chain was shortened: {:?}", removed.cuts);
    };
    assert_eq!((cut.seq, cut.kind), (4, crate::chain::Kind::Cut));

    // What remains starts at seq 5 and verifies from the cut; without it, it would not.
    let after = verified(&mut conn);
    assert!(after.passed(), "{:?}", after.problems);
    assert_eq!(after.entries, 6);
    let remaining: Vec<Option<i64>> = schema::histories::table
        .select(schema::histories::seq)
        .order(schema::histories::id)
        .load(&mut conn)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(remaining.first(), Some(&Some(5)));
}

#[test]
fn a_keyed_create_stores_its_response_and_expiry_removes_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (options, mut conn) = sqlite(&dir);
    let claim = crate::db::idempotency::KeyClaim {
        key: "k-1".into(),
        fingerprint: vec![7; 32],
    };
    let outcomes = store(
        options.clone(),
        vec![Job::Create {
            record: NewRecord::new("keyed".into(), "deyek".into(), now()),
            entry: entry("keyed"),
            key: Some(claim),
        }],
        Arrival::AfterIdle,
    );
    let Some(Ok(Done::Created(record))) = outcomes.into_iter().next() else {
        panic!("the keyed create did not answer Created");
    };
    let stored = crate::db::idempotency::find(&mut conn, "k-1")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no key stored"));
    assert_eq!((stored.status, stored.record()), (201, Some(record)));

    let expire = |before| Job::ExpireKeys { before, limit: 10 };
    let kept = store(
        options.clone(),
        vec![expire(stored.created)],
        Arrival::AfterIdle,
    );
    assert!(
        matches!(kept.as_slice(), [Ok(Done::Expired(0))]),
        "not older than the cut"
    );
    let later = stored.created + chrono::Duration::milliseconds(1);
    let gone = store(options, vec![expire(later)], Arrival::AfterIdle);
    assert!(matches!(gone.as_slice(), [Ok(Done::Expired(1))]));
    assert!(
        crate::db::idempotency::find(&mut conn, "k-1")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
}
