//! Reading at any size (SPEC §10): cursor walks, the page-mode window, totals withheld
//! for large matches, the ascending feed, and index-backed plans for every filter.

use std::collections::HashSet;

use diesel::connection::SimpleConnection;
use randomize::db::DbConnection;
use randomize::db::histories::{self, Filter};
use randomize::db::page::{Order, Start, Window};
use serde_json::{Value, json};

use crate::bearer::token;
use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, assert_problem, spawn_app, spawn_app_with_jwt};
use crate::randomizes::header;

both_backends!(
    record_walk_sees_every_record_once_while_records_are_written,
    history_walk_follows_filters_and_sees_every_match_once,
    forged_and_mismatched_cursors_are_422,
    page_mode_ends_at_ten_thousand_matches,
    large_matches_withhold_the_totals_but_lead_on,
    ascending_feed_always_links_onwards,
    every_history_filter_is_planned_on_its_index,
    original_substring_is_planned_on_the_trigram_index,
    path_pages_are_the_same_whether_the_prefix_is_dense_or_sparse,
    resource_pages_merge_both_indexes_in_every_mode,
);

/// A `path` page finds the same entries whichever way it is read (on SQLite the newest
/// entries are walked by id first, then the index asked): a prefix dense among the
/// newest entries, prefixes whose only matches are older than the walk (records' own
/// paths, look-alikes and paths of no record among them), and a cursor step.
async fn path_pages_are_the_same_whether_the_prefix_is_dense_or_sparse(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let auth = token(json!({}));
    let mut conn = app.db.connect();
    let series = |n: i64| series(&conn, n);
    // Oldest: 3 entries of a rare path and 3 reads of record 5; then 6,000 others,
    // every third one under /api/randomizes/7 (…/7, …/70, …/700: many paths, one
    // prefix), half of those its record's own path, half not (no resource_id, as a
    // router's 404 has none), with look-alikes that are not their record's path
    // (/api/randomizes/0700… of record 700…) and records outside the prefix.
    let sql = format!(
        "INSERT INTO histories (request_id, method, path, status, duration_ms, created) \
         SELECT 'rare-' || i, 'GET', '/api/rare/' || i, 200, 0.1, '2026-01-01 00:00:00' FROM ({}) s; \
         INSERT INTO histories (request_id, method, path, status, duration_ms, created, resource_id) \
         SELECT 'five-' || i, 'GET', '/api/randomizes/5', 200, 0.1, '2026-01-01 00:00:00', 5 FROM ({}) s; \
         INSERT INTO histories (request_id, method, path, status, duration_ms, created, resource_id) \
         SELECT 'dense-' || i, 'GET', \
                CASE WHEN i % 6 = 0 THEN '/api/randomizes/' || (70000 + i) \
                     WHEN i % 6 = 3 THEN '/api/randomizes/7' || i \
                     WHEN i % 6 = 1 THEN '/api/randomizes/0' || (70000 + i) \
                     WHEN i % 6 = 4 THEN '/api/randomizes/' || (80000 + i) \
                     ELSE '/api/other' END, \
                200, 0.1, '2026-01-01 00:00:01', \
                CASE WHEN i % 6 IN (0, 1) THEN 70000 + i WHEN i % 6 = 4 THEN 80000 + i END \
         FROM ({}) s;",
        series(3),
        series(3),
        series(6_000)
    );
    conn.batch_execute(&sql).unwrap();
    let entries = app.db.histories();
    let expected = |prefix: &str, before: i64| -> Vec<i64> {
        let mut ids: Vec<i64> = entries
            .iter()
            .filter(|e| e.path.starts_with(prefix) && e.id < before)
            .map(|e| e.id)
            .collect();
        ids.reverse();
        ids.truncate(5);
        ids
    };

    let dense = app
        .get_histories(
            "/api/histories?path=/api/randomizes/7&page_size=5",
            Some(&auth),
        )
        .await;
    let next = next_link(&dense).expect("more match");
    let dense = ids(&dense.json::<Vec<Value>>().await.unwrap());
    assert_eq!(dense, expected("/api/randomizes/7", i64::MAX));
    let step = app.get_histories(&next, Some(&auth)).await;
    let step = ids(&step.json::<Vec<Value>>().await.unwrap());
    assert_eq!(step, expected("/api/randomizes/7", dense[4]));

    for (prefix, matches) in [
        ("/api/rare/", 3),
        ("/api/randomizes/5", 3),
        ("/api/randomizes/0", 5),
        ("/api/randomizes/", 5),
        ("/api/randomizes/70006", 1),
        ("/api/randomizes/8", 5),
    ] {
        let page = app
            .get_histories(
                &format!("/api/histories?path={prefix}&page_size=5"),
                Some(&auth),
            )
            .await;
        let page = ids(&page.json::<Vec<Value>>().await.unwrap());
        assert_eq!(page, expected(prefix, i64::MAX), "{prefix}");
        assert_eq!(page.len(), matches, "{prefix}");
    }

    if backend == Backend::Sqlite {
        let filter = Filter {
            path_prefix: Some("/api/randomizes/7".into()),
            ..Filter::default()
        };
        for start in [Start::Offset(0), Start::After(5_000)] {
            let window = Window {
                order: Order::NewestFirst,
                start,
                size: 5,
            };
            let walk = histories::walk_plan(&mut conn, &filter, &window)
                .unwrap()
                .expect("a path page walks first on SQLite")
                .join("\n");
            assert!(walk.contains("INTEGER PRIMARY KEY"), "{walk}");
            assert!(!walk.contains("histories_path_id_idx"), "{walk}");
        }
    }
}

/// A `resource_id` filter reads two indexes (entries at their record's own path by
/// that path, every other entry of the record by `resource_id`) and merges them: a
/// cursor walk each way and every page of page mode hold exactly the record's entries,
/// in order, whichever index holds each, and the total counts them all.
async fn resource_pages_merge_both_indexes_in_every_mode(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let auth = token(json!({}));
    let mut conn = app.db.connect();
    // Record 42's entries, interleaved with look-alikes that are not its own: its reads
    // (its path), its creation (`/api/randomizes`), a read by another spelling of its
    // id, a request refused before routing (its path, no record), record 420's reads.
    let sql = format!(
        "INSERT INTO histories (request_id, method, path, status, duration_ms, created, resource_id) \
         SELECT 'r-' || i, 'GET', \
                CASE i % 5 WHEN 0 THEN '/api/randomizes/42' WHEN 1 THEN '/api/randomizes' \
                           WHEN 2 THEN '/api/randomizes/042' WHEN 3 THEN '/api/randomizes/42' \
                           ELSE '/api/randomizes/420' END, \
                200, 0.1, '2026-01-01 00:00:00', \
                CASE WHEN i % 5 = 3 THEN NULL WHEN i % 5 = 4 THEN 420 ELSE 42 END \
         FROM ({}) s;",
        series(&conn, 200)
    );
    conn.batch_execute(&sql).unwrap();
    // Record 42's entries as the table holds them, oldest first.
    let of_record = || -> Vec<i64> {
        app.db
            .histories()
            .iter()
            .filter(|e| e.resource_id == Some(42))
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(of_record().len(), 120);

    // Newest first; then the ascending feed while record 42 is read (a 404 at its own
    // path) after each of its first pages: the feed sees those too, each once.
    for order in ["", "&order=asc"] {
        let feed = !order.is_empty();
        let mut seen = Vec::new();
        let mut next = Some(format!("/api/histories?resource_id=42&page_size=7{order}"));
        while let Some(target) = next {
            let response = app.get_histories(&target, Some(&auth)).await;
            assert_eq!(response.status(), 200, "{target}");
            next = next_link(&response);
            let rows = response.json::<Vec<Value>>().await.unwrap();
            if rows.is_empty() {
                break;
            }
            seen.extend(ids(&rows));
            if feed && seen.len() < 100 {
                assert_eq!(app.get("/api/randomizes/42").await.status(), 404);
            }
        }
        let mut want = of_record();
        if feed {
            assert!(want.len() > 130, "{}", want.len());
        } else {
            want.reverse();
        }
        assert_eq!(seen, want, "cursor walk{order}");
    }
    let mut expected = of_record();
    expected.reverse();

    let mut paged = Vec::new();
    for page in 1..=expected.len().div_ceil(7) {
        let response = app
            .get_histories(
                &format!("/api/histories?resource_id=42&page_size=7&page={page}"),
                Some(&auth),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            pagination(&response)["total"],
            expected.len(),
            "page {page}"
        );
        paged.extend(ids(&response.json::<Vec<Value>>().await.unwrap()));
    }
    assert_eq!(paged, expected, "page mode");
}

/// The `next` link's target (path and query), if the response has one.
pub fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = header(response, "link")?;
    link.split(", ").find_map(|part| {
        let (url, rel) = part.split_once("; ")?;
        (rel == "rel=\"next\"").then(|| url.trim_matches(['<', '>']).to_owned())
    })
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

async fn record_walk_sees_every_record_once_while_records_are_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut existing = Vec::new();
    for n in 0..23 {
        existing.push(
            app.create(&format!("word{n}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/randomizes?page_size=4".to_owned());
    let mut pages = 0;
    while let Some(target) = next {
        let response = app.get(&target).await;
        assert_eq!(response.status(), 200, "{target}");
        next = next_link(&response);
        seen.extend(ids(&response.json::<Vec<Value>>().await.unwrap()));
        // Writes between pages land before the walk's position: never seen, never shifting it.
        app.create(&format!("meanwhile{pages}")).await;
        pages += 1;
        assert!(pages < 20, "the walk does not end");
    }
    existing.reverse();
    assert_eq!(seen, existing, "every record once, newest first");
    assert_eq!(pages, 6);
}

async fn history_walk_follows_filters_and_sees_every_match_once(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    for n in 0..9 {
        app.create(&format!("w{n}")).await;
        app.get(&format!("/api/randomizes/{}", 1000 + n)).await;
    }
    let auth = token(json!({}));
    let mut seen = Vec::new();
    let mut next = Some("/api/histories?status=404&page_size=2".to_owned());
    while let Some(target) = next {
        let response = app.get_histories(&target, Some(&auth)).await;
        assert_eq!(response.status(), 200, "{target}");
        next = next_link(&response);
        if let Some(target) = &next {
            assert!(
                target.contains("status=404") && target.contains("cursor="),
                "{target}"
            );
        }
        let rows: Vec<Value> = response.json().await.unwrap();
        assert!(rows.iter().all(|r| r["status"] == 404));
        seen.extend(ids(&rows));
        app.get("/api/randomizes/9999").await;
    }
    let expected: Vec<i64> = app
        .db
        .histories()
        .iter()
        .filter(|e| e.status == 404 && e.path != "/api/randomizes/9999")
        .map(|e| e.id)
        .rev()
        .collect();
    assert_eq!(
        seen, expected,
        "every 404 before the walk, once, newest first"
    );
    assert_eq!(seen.len(), 9);
}

async fn forged_and_mismatched_cursors_are_422(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    for word in ["alpha", "bravo", "charlie"] {
        app.create(word).await;
    }
    let first = app.get("/api/randomizes?page_size=1").await;
    let next = next_link(&first).unwrap();
    let cursor = next
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("cursor="))
        .unwrap()
        .to_owned();
    assert_eq!(app.get(&next).await.status(), 200, "the issued link works");

    let mut edited = cursor.clone().into_bytes();
    edited[5] = if edited[5] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    for query in [
        format!("cursor={edited}&page_size=1"),
        "cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&page_size=1".to_owned(),
        "cursor=not-a-cursor".to_owned(),
        format!("cursor={cursor}&original=alp"),
    ] {
        let problem = assert_problem(app.get(&format!("/api/randomizes?{query}")).await, 422).await;
        assert!(problem["errors"]["cursor"].is_array(), "{query}: {problem}");
    }
    // A page size of its own is fine: the cursor is a position, not a page.
    assert_eq!(
        app.get(&format!("/api/randomizes?cursor={cursor}&page_size=5"))
            .await
            .status(),
        200
    );
    let both = assert_problem(
        app.get(&format!("/api/randomizes?cursor={cursor}&page=2"))
            .await,
        422,
    )
    .await;
    assert!(
        both["errors"]["cursor"][0]
            .as_str()
            .unwrap()
            .contains("page"),
        "{both}"
    );
    // Issued for the record list: not a position in the history.
    let auth = token(json!({}));
    let elsewhere = app
        .get_histories(&format!("/api/histories?cursor={cursor}"), Some(&auth))
        .await;
    assert!(assert_problem(elsewhere, 422).await["errors"]["cursor"].is_array());
}

async fn page_mode_ends_at_ten_thousand_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create("alpha").await;
    assert_eq!(
        app.get("/api/randomizes?page=100&page_size=100")
            .await
            .status(),
        200
    );
    for query in ["page=101&page_size=100", "page=10001"] {
        let problem = assert_problem(app.get(&format!("/api/randomizes?{query}")).await, 422).await;
        assert!(problem["errors"]["page"].is_array(), "{query}: {problem}");
        if query.contains("page_size") {
            assert!(
                problem["detail"].as_str().unwrap().contains("cursor"),
                "{problem}"
            );
        }
    }
}

/// `SELECT i` for i in 1..=n, in the backend's SQL.
fn series(conn: &DbConnection, n: i64) -> String {
    match conn {
        DbConnection::Sqlite(_) => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n"
        ),
        DbConnection::Postgres(_) => format!("SELECT i FROM generate_series(1, {n}) AS s(i)"),
    }
}

/// Rows written straight into the tables (bulk SQL, as the scale benchmark seeds).
fn seed(db: &TestDb, records: i64, entries: i64) {
    let mut conn = db.connect();
    let series = |n: i64| series(&conn, n);
    let sql = format!(
        "INSERT INTO randomizes (original, original_folded, jumbled, version, created, updated) \
         SELECT 'seed' || i, 'seed' || i, 'dees' || i, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM ({}) s; \
         INSERT INTO histories (request_id, method, path, status, duration_ms, created) \
         SELECT 'seed-' || i, 'GET', '/api/randomizes', 200, 0.1, '2026-01-01 00:00:00' FROM ({}) s;",
        series(records),
        series(entries)
    );
    conn.batch_execute(&sql).unwrap();
}

fn pagination(response: &reqwest::Response) -> Value {
    serde_json::from_str(&header(response, "x-pagination").unwrap()).unwrap()
}

async fn large_matches_withhold_the_totals_but_lead_on(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    seed(&app.db, 10_001, 10_001);
    let auth = token(json!({}));

    let history = app
        .get_histories("/api/histories?page=3", Some(&auth))
        .await;
    assert_eq!(history.status(), 200);
    assert_eq!(
        pagination(&history),
        json!({"first_page": 1, "page": 3, "previous_page": 2, "next_page": 4})
    );
    let link = header(&history, "link").unwrap();
    assert!(
        link.contains("rel=\"next\"") && !link.contains("rel=\"last\""),
        "{link}"
    );

    let few = app
        .get_histories("/api/histories?method=POST", Some(&auth))
        .await;
    assert_eq!(pagination(&few)["total"], 0, "a small match is counted");

    // The unfiltered record list counts from its counter, however large.
    let records = app.get("/api/randomizes?page=2&page_size=100").await;
    assert_eq!(
        pagination(&records),
        json!({"total": 10_001, "total_pages": 101, "first_page": 1, "last_page": 101,
               "page": 2, "previous_page": 1, "next_page": 3})
    );
    let filtered = app.get("/api/randomizes?original=seed&page_size=100").await;
    assert!(pagination(&filtered).get("total").is_none());
    assert_eq!(filtered.json::<Vec<Value>>().await.unwrap().len(), 100);
    let rare = app.get("/api/randomizes?original=seed10001").await;
    assert_eq!(pagination(&rare)["total"], 1);
}

async fn ascending_feed_always_links_onwards(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let auth = token(json!({}));
    let feed = "/api/histories?order=asc&method=POST&page_size=2";
    let empty = app.get_histories(feed, Some(&auth)).await;
    let mut next = next_link(&empty).expect("an empty feed links to its start");
    assert!(empty.json::<Vec<Value>>().await.unwrap().is_empty());

    let mut seen = Vec::new();
    for round in 0..3 {
        for n in 0..3 {
            app.create(&format!("r{round}n{n}")).await;
        }
        // Drain what is there, then keep the link to poll from.
        loop {
            let response = app.get_histories(&next, Some(&auth)).await;
            assert_eq!(response.status(), 200, "{next}");
            next = next_link(&response).expect("an ascending page always links onwards");
            let rows: Vec<Value> = response.json().await.unwrap();
            if rows.is_empty() {
                break;
            }
            seen.extend(ids(&rows));
        }
    }
    let posts: Vec<i64> = app
        .db
        .histories()
        .iter()
        .filter(|e| e.method == "POST")
        .map(|e| e.id)
        .collect();
    assert_eq!(seen, posts, "oldest first, each once");
    assert_eq!(seen.len(), 9);
}

/// The page statement for one filter, as the backend plans it; PostgreSQL is told to
/// avoid sequential scans, so a missing index shows as one instead of hiding behind the
/// planner's preference for tiny tables.
fn plan(conn: &mut DbConnection, filter: &Filter, order: Order) -> String {
    avoid_sequential_scans(conn);
    let window = Window {
        order,
        start: Start::After(1_000),
        size: 10,
    };
    histories::plan(conn, filter, &window).unwrap().join("\n")
}

/// PostgreSQL prefers a sequential scan of a tiny table whatever its indexes; told to
/// avoid them, it shows one only where no index serves the query.
fn avoid_sequential_scans(conn: &mut DbConnection) {
    if matches!(conn, DbConnection::Postgres(_)) {
        conn.batch_execute("SET enable_seqscan = off").unwrap();
    }
}

async fn every_history_filter_is_planned_on_its_index(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app.db, 10, 200);
    let mut conn = app.db.connect();
    let at = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let cases: Vec<(Filter, &str)> = vec![
        (
            Filter {
                method: Some("GET".into()),
                ..Filter::default()
            },
            "histories_method_id_idx",
        ),
        (
            Filter {
                status: Some(500),
                ..Filter::default()
            },
            "histories_status_id_idx",
        ),
        (
            Filter {
                path_prefix: Some("/api/randomizes/7".into()),
                ..Filter::default()
            },
            "histories_path_id_idx",
        ),
        (
            Filter {
                subject: Some("auditor".into()),
                ..Filter::default()
            },
            "histories_subject_id_idx",
        ),
        // Read in two parts: entries whose path is not their record's, and the others
        // by their record's path.
        (
            Filter {
                resource_id: Some(42),
                ..Filter::default()
            },
            "histories_underived_resource_idx",
        ),
        (
            Filter {
                resource_id: Some(42),
                ..Filter::default()
            },
            "histories_path_id_idx",
        ),
        (
            Filter {
                request_id: Some("r-1".into()),
                ..Filter::default()
            },
            "histories_request_id_idx",
        ),
        (
            Filter {
                since: Some(at),
                ..Filter::default()
            },
            "histories_created_idx",
        ),
        (
            Filter {
                until: Some(at),
                ..Filter::default()
            },
            "histories_created_idx",
        ),
    ];
    for order in [Order::NewestFirst, Order::OldestFirst] {
        for (filter, index) in &cases {
            let plan = plan(&mut conn, filter, order);
            assert!(
                plan.contains(index),
                "{filter:?} {order:?} should use {index}:\n{plan}"
            );
            assert!(
                !plan.contains("SCAN histories") && !plan.contains("Seq Scan on histories"),
                "{filter:?} {order:?} scans the table:\n{plan}"
            );
        }
    }
    // Each part of a `resource_id` page comes in id order: the page reads its own rows,
    // it does not sort the record's entries.
    if backend == Backend::Sqlite {
        let record = Filter {
            resource_id: Some(42),
            ..Filter::default()
        };
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let plan = plan(&mut conn, &record, order);
            assert!(!plan.contains("TEMP B-TREE"), "{order:?}:\n{plan}");
        }
    }
    // No filter: the primary key, read from the page's position onwards.
    let plain = plan(&mut conn, &Filter::default(), Order::NewestFirst);
    assert!(
        !plain.contains("SCAN histories") && !plain.contains("Seq Scan"),
        "{plain}"
    );
}

async fn original_substring_is_planned_on_the_trigram_index(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app.db, 200, 1);
    let mut conn = app.db.connect();
    avoid_sequential_scans(&mut conn);
    let window = Window {
        order: Order::NewestFirst,
        start: Start::Offset(0),
        size: 10,
    };
    let plan = randomize::db::randomizes::plan(&mut conn, Some("qzx"), &window)
        .unwrap()
        .join("\n");
    let index = match backend {
        Backend::Sqlite => "randomizes_trigram",
        Backend::Postgres => "randomizes_original_trgm_idx",
    };
    assert!(plan.contains(index), "{plan}");
    assert!(
        !plan.contains("SCAN randomizes\n")
            && !plan.ends_with("SCAN randomizes")
            && !plan.contains("Seq Scan"),
        "{plan}"
    );
    // And it finds what a scan finds, wildcards literal, case folded.
    drop(conn);
    app.create("Aqzxb").await;
    app.create("a%qzx_b").await;
    app.create("zzz").await;
    let found = |needle: &'static str| {
        let app: &TestApp = &app;
        async move {
            let response = app
                .get(&format!("/api/randomizes?original={}", urlencode(needle)))
                .await;
            let rows: Vec<Value> = response.json().await.unwrap();
            rows.iter()
                .map(|r| r["original"].as_str().unwrap().to_owned())
                .collect::<HashSet<_>>()
        }
    };
    assert_eq!(
        found("QZX").await,
        HashSet::from(["Aqzxb".into(), "a%qzx_b".into()])
    );
    assert_eq!(found("%qzx_").await, HashSet::from(["a%qzx_b".into()]));
    assert_eq!(found("qzx\"").await, HashSet::new(), "quotes are literal");
    assert_eq!(
        found("zz").await,
        HashSet::from(["zzz".into()]),
        "short needles scan"
    );
}

fn urlencode(raw: &str) -> String {
    serde_urlencoded::to_string([("v", raw)]).unwrap()[2..].to_owned()
}
