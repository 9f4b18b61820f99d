//! The ascending feed on PostgreSQL with several replicas (SPEC §10): a collector that
//! follows `next` sees every entry exactly once, although two servers commit their
//! batches concurrently into one table.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::bearer::token;
use crate::helpers::{Backend, TEST_SECRET, TestApp, TestDb, jwt_args, server_config, spawn_on};
use crate::paging::next_link;

const WRITERS: usize = 12;
const POSTS_PER_WRITER: usize = 60;

fn replica(db: TestDb) -> TestApp {
    let mut args = jwt_args("HS256");
    args.jwt_secret = Some(TEST_SECRET.into());
    let mut config = server_config(&db);
    config.verifier = args.verifier().unwrap().map(Arc::new);
    spawn_on(db, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_feed_a_collector_every_entry_once() {
    let db = TestDb::new(Backend::Postgres);
    db.migrate();
    let url = db.url.clone();
    let replicas = Arc::new([replica(db), replica(TestDb::existing(url))]);

    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let replicas = replicas.clone();
        writers.spawn(async move {
            for n in 0..POSTS_PER_WRITER {
                let app = &replicas[(writer + n) % 2];
                let response = app
                    .post_json(&json!({"word": format!("w{writer}x{n}")}))
                    .await;
                assert_eq!(response.status(), 201);
            }
        });
    }

    // The collector polls while the writers write, alternating replicas, and goes on
    // until it has seen every POST (bounded, so a miss fails instead of hanging).
    let auth = token(json!({}));
    let expected = WRITERS * POSTS_PER_WRITER;
    let mut next = "/api/histories?order=asc&method=POST&page_size=50".to_owned();
    let mut seen: Vec<i64> = Vec::new();
    let mut polls = 0;
    while seen.len() < expected {
        polls += 1;
        assert!(
            polls < 5_000,
            "the feed stopped short: {} of {expected}",
            seen.len()
        );
        let response = replicas[polls % 2].get_histories(&next, Some(&auth)).await;
        assert_eq!(response.status(), 200, "{next}");
        next = next_link(&response).expect("the feed always links onwards");
        let rows: Vec<Value> = response.json().await.unwrap();
        seen.extend(rows.iter().map(|r| r["id"].as_i64().unwrap()));
        if rows.is_empty() && writers.is_empty() {
            break;
        }
        while let Some(done) = writers.try_join_next() {
            done.unwrap();
        }
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }

    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no entry twice");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let committed: Vec<i64> = replicas[0]
        .db
        .histories()
        .into_iter()
        .filter(|e| e.method == "POST")
        .map(|e| e.id)
        .collect();
    assert_eq!(committed.len(), expected);
    assert_eq!(seen, committed, "every committed entry, none skipped");
}
