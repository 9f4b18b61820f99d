//! `Idempotency-Key` (SPEC §13): a retried write gets the first response and changes
//! nothing, on both backends, under concurrency, across a crash and across replicas.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, assert_problem, spawn_app};
use crate::process::Process;

both_backends!(
    post_put_and_delete_replay_their_first_response,
    the_same_key_with_another_request_is_422,
    concurrent_requests_with_one_key_create_one_record,
    a_rejected_request_stores_nothing,
    a_malformed_key_is_422,
    a_crash_between_acceptance_and_answer_still_yields_one_record_per_key,
);

const REPLAYED: &str = "idempotent-replayed";

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// What a client compares between two answers.
async fn answer(response: reqwest::Response) -> (u16, Option<String>, Option<String>, String) {
    let status = response.status().as_u16();
    let location = header(&response, "location");
    let etag = header(&response, "etag");
    (status, location, etag, response.text().await.unwrap())
}

async fn post_put_and_delete_replay_their_first_response(backend: Backend) {
    let app = spawn_app(backend).await;
    let post = || {
        send(
            &app,
            reqwest::Method::POST,
            "/api/randomizes",
            "k-post",
            Some(json!({"word": "retry"})),
        )
    };
    let first = post().await;
    assert_eq!(header(&first, REPLAYED), None);
    let first = answer(first).await;
    assert_eq!(first.0, 201);
    let again = post().await;
    assert_eq!(header(&again, REPLAYED).as_deref(), Some("true"));
    assert_eq!(
        answer(again).await,
        first,
        "status, Location, ETag and body"
    );
    assert_eq!(app.db.count_randomizes(), 1, "the retry created nothing");

    let id = serde_json::from_str::<Value>(&first.3).unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/randomizes/{id}");
    let put = || {
        send(
            &app,
            reqwest::Method::PUT,
            &path,
            "k-put",
            Some(json!({"word": "again"})),
        )
    };
    let updated = answer(put().await).await;
    assert_eq!(updated.0, 200);
    let replayed = put().await;
    assert_eq!(header(&replayed, REPLAYED).as_deref(), Some("true"));
    assert_eq!(answer(replayed).await, updated);
    let current = app.get(&path).await;
    assert_eq!(
        header(&current, "etag"),
        updated.2,
        "the retry did not update again"
    );

    let delete = || send(&app, reqwest::Method::DELETE, &path, "k-delete", None);
    assert_eq!(delete().await.status(), 204);
    let replayed = delete().await;
    assert_eq!(
        (
            replayed.status().as_u16(),
            header(&replayed, REPLAYED).as_deref()
        ),
        (204, Some("true"))
    );

    // Replays are audited like any request, and say so.
    let rows = app.db.histories();
    let replays: Vec<_> = rows
        .iter()
        .filter(|e| e.query.as_deref() == Some("(idempotent replay)"))
        .map(|e| (e.method.as_str(), e.status, e.resource_id))
        .collect();
    assert_eq!(
        replays,
        [
            ("POST", 201, Some(id)),
            ("PUT", 200, Some(id)),
            ("DELETE", 204, Some(id))
        ]
    );
    assert_eq!(rows.len(), 7, "three writes, three replays, the GET");
}

async fn the_same_key_with_another_request_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = send(
        &app,
        reqwest::Method::POST,
        "/api/randomizes",
        "k",
        Some(json!({"word": "one"})),
    )
    .await;
    assert_eq!(first.status(), 201);
    let other = send(
        &app,
        reqwest::Method::POST,
        "/api/randomizes",
        "k",
        Some(json!({"word": "two"})),
    )
    .await;
    let problem = assert_problem(other, 422).await;
    assert!(
        problem["errors"]["Idempotency-Key"][0]
            .as_str()
            .unwrap()
            .contains("different request")
    );
    let elsewhere = send(
        &app,
        reqwest::Method::PUT,
        "/api/randomizes/1",
        "k",
        Some(json!({"word": "one"})),
    )
    .await;
    assert_problem(elsewhere, 422).await;
    assert_eq!(app.db.count_randomizes(), 1);
}

async fn concurrent_requests_with_one_key_create_one_record(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = app.clone();
        requests.spawn(async move {
            let response = send(
                &app,
                reqwest::Method::POST,
                "/api/randomizes",
                "burst",
                Some(json!({"word": "once"})),
            )
            .await;
            let replayed = header(&response, REPLAYED).is_some();
            let status = response.status().as_u16();
            (status, replayed, response.text().await.unwrap())
        });
    }
    let mut fresh = 0;
    let mut bodies = Vec::new();
    while let Some(done) = requests.join_next().await {
        let (status, replayed, body) = done.unwrap();
        match (status, replayed) {
            (201, false) => {
                fresh += 1;
                bodies.push(body);
            }
            (201, true) => bodies.push(body),
            (409, false) => {
                let problem: Value = serde_json::from_str(&body).unwrap();
                assert!(
                    problem["detail"]
                        .as_str()
                        .unwrap()
                        .contains("still in progress")
                );
            }
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    assert_eq!(fresh, 1, "one request ran");
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every 201 is the same response"
    );
    assert_eq!(app.db.count_randomizes(), 1);
}

async fn a_rejected_request_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let invalid = send(
        &app,
        reqwest::Method::POST,
        "/api/randomizes",
        "k-fix",
        Some(json!({"word": " padded "})),
    )
    .await;
    assert_problem(invalid, 422).await;
    // The corrected request with the same key runs: nothing was stored for the first.
    let fixed = send(
        &app,
        reqwest::Method::POST,
        "/api/randomizes",
        "k-fix",
        Some(json!({"word": "padded"})),
    )
    .await;
    assert_eq!(
        (fixed.status().as_u16(), header(&fixed, REPLAYED)),
        (201, None)
    );
    // A write that changed nothing (an unknown id) stores nothing either, and is answered
    // the same way again.
    for _ in 0..2 {
        let missing = send(
            &app,
            reqwest::Method::DELETE,
            "/api/randomizes/999",
            "k-missing",
            None,
        )
        .await;
        assert_eq!(
            (missing.status().as_u16(), header(&missing, REPLAYED)),
            (404, None)
        );
    }
}

async fn a_malformed_key_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    for key in ["has space", &"k".repeat(256)] {
        let response = send(
            &app,
            reqwest::Method::POST,
            "/api/randomizes",
            key,
            Some(json!({"word": "w"})),
        )
        .await;
        let problem = assert_problem(response, 422).await;
        assert!(problem["errors"]["Idempotency-Key"].is_array(), "{key:?}");
    }
    assert_eq!(app.db.count_randomizes(), 0);
}

/// POSTs `word` with `key` to `base`; `None` when the connection broke (the server died).
async fn keyed_post(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    word: &str,
) -> Option<(u16, Value)> {
    let response = http
        .post(format!("{base}/api/randomizes"))
        .header("Idempotency-Key", key)
        .json(&json!({ "word": word }))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

/// Keyed POSTs race a SIGKILL; after a restart every key is retried. Whatever the crash
/// cut off, each key's word exists exactly once: the key commits with its record.
async fn a_crash_between_acceptance_and_answer_still_yields_one_record_per_key(backend: Backend) {
    const KEYS: usize = 60;
    let db = TestDb::new(backend);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::serve(&db.url, &dir);
    let base = format!("http://127.0.0.1:{}", server.port().await);
    let http = reqwest::Client::new();
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..KEYS {
        let (http, base) = (http.clone(), base.clone());
        posts.spawn(async move {
            keyed_post(&http, &base, &format!("crash-{n}"), &format!("word{n}")).await
        });
    }
    // Kill once some answers are out, so the crash lands among requests in flight.
    let mut answered = 0;
    while answered < KEYS / 4 {
        if let Some(Ok(Some(_))) = posts.join_next().await {
            answered += 1;
        }
    }
    server.signal("KILL");
    let _ = server.exit().await;
    while posts.join_next().await.is_some() {}

    let mut server = Process::serve(&db.url, &dir);
    let base = format!("http://127.0.0.1:{}", server.port().await);
    let mut ids = HashMap::new();
    for n in 0..KEYS {
        let (status, body) = keyed_post(&http, &base, &format!("crash-{n}"), &format!("word{n}"))
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["original"], format!("word{n}"));
        ids.insert(n, body["id"].as_i64().unwrap());
    }
    server.signal("TERM");
    let _ = server.exit().await;
    assert_eq!(
        db.count_randomizes(),
        KEYS as i64,
        "exactly one record per key"
    );
    let mut distinct: Vec<i64> = ids.values().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), KEYS);
}

/// Two replicas on one PostgreSQL, the same keys sent to both at once: one record per
/// key, and both answers are its response (the replica that lost the race on the key's
/// primary key replays the winner's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_with_one_key_create_one_record() {
    const KEYS: usize = 20;
    let db = TestDb::new(Backend::Postgres);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = [Process::serve(&db.url, &dir), Process::serve(&db.url, &dir)];
    let mut bases = Vec::new();
    for replica in &mut replicas {
        bases.push(format!("http://127.0.0.1:{}", replica.port().await));
    }
    let http = reqwest::Client::new();
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..KEYS {
        for base in &bases {
            let (http, base) = (http.clone(), base.clone());
            posts.spawn(async move {
                (
                    n,
                    keyed_post(&http, &base, &format!("shared-{n}"), &format!("w{n}")).await,
                )
            });
        }
    }
    let mut answers: HashMap<usize, Vec<(u16, Value)>> = HashMap::new();
    while let Some(done) = posts.join_next().await {
        let (n, answer) = done.unwrap();
        answers.entry(n).or_default().push(answer.unwrap());
    }
    for replica in &replicas {
        replica.signal("TERM");
    }
    for replica in replicas {
        let _ = replica.exit().await;
    }
    assert_eq!(db.count_randomizes(), KEYS as i64, "one record per key");
    for (n, pair) in answers {
        assert_eq!(pair.len(), 2);
        assert!(
            pair.iter().all(|(status, _)| *status == 201),
            "key {n}: {pair:?}"
        );
        assert_eq!(
            pair[0].1, pair[1].1,
            "key {n}: the same response from both replicas"
        );
    }
}
