//! The records API (SPEC §2): create, read, replace, delete, and their conditions.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app};

both_backends!(
    create_answers_201_with_location_etag_and_record,
    seeded_create_is_reproducible,
    get_answers_record_with_etag_and_304_when_unchanged,
    unknown_or_malformed_id_is_404,
    put_rejumbles_keeps_created_and_changes_etag,
    put_honours_if_match,
    put_and_delete_unknown_id_are_404,
    delete_answers_204_then_404,
    delete_with_stale_if_match_is_412,
    one_create_at_a_time_takes_consecutive_ids,
    concurrent_lookups_each_record_the_status_they_answer,
);

/// Lookups are read in the writer's batches: many at once (found, unchanged, missing,
/// for one record or several) share batches, and each answer's entry, found by its
/// request id, records the status that answer has and the record it read.
async fn concurrent_lookups_each_record_the_status_they_answer(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let mut tags = Vec::new();
    for word in ["one", "two", "three"] {
        let response = app.post_json(&json!({ "word": word })).await;
        let tag = header(&response, "etag").unwrap();
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        tags.push((id, tag));
    }
    let mut asking = tokio::task::JoinSet::new();
    for n in 0..48 {
        let (id, tag) = tags[n % tags.len()].clone();
        let app = app.clone();
        asking.spawn(async move {
            let (path, held) = match n % 4 {
                0 => (format!("/api/randomizes/{id}"), None),
                1 => (format!("/api/randomizes/{id}"), Some(tag)),
                2 => (format!("/api/randomizes/{}", id + 1000), None),
                _ => (
                    format!("/api/randomizes/{id}"),
                    Some(format!("\"{id}-99\"")),
                ),
            };
            let mut request = app.client.get(app.url(&path));
            if let Some(held) = held {
                request = request.header("if-none-match", held);
            }
            let response = request.send().await.unwrap();
            let expected: u16 = [200, 304, 404, 200][n % 4];
            assert_eq!(response.status(), expected, "{path}");
            let request_id = header(&response, "x-request-id").unwrap();
            (request_id, expected, path)
        });
    }
    let answered = asking.join_all().await;

    let entries = app.db.histories();
    for (request_id, status, path) in answered {
        let found: Vec<_> = entries
            .iter()
            .filter(|e| e.request_id == request_id)
            .collect();
        assert_eq!(found.len(), 1, "one entry for {request_id}");
        assert_eq!(i32::from(status), found[0].status, "{path}");
        assert_eq!(Some(&found[0].path), Some(&path));
        let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(found[0].resource_id, Some(id), "{path}");
    }
}

/// Ids drawn ahead for busy batches (PostgreSQL) must not leave gaps behind a trickle of
/// requests: each one-at-a-time create takes the next id.
async fn one_create_at_a_time_takes_consecutive_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for word in ["alpha", "bravo", "charlie", "delta"] {
        ids.push(app.create(word).await["id"].as_i64().unwrap());
    }
    let expected: Vec<i64> = (ids[0]..ids[0] + 4).collect();
    assert_eq!(ids, expected);
}

pub(crate) fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn sorted_chars(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v
}

fn is_rfc3339_millis_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 24 && s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

async fn create_answers_201_with_location_etag_and_record(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.post_json(&json!({"word": "randomize"})).await;

    assert_eq!(response.status(), 201);
    let location = header(&response, "location");
    let etag = header(&response, "etag");
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_i64().unwrap();
    assert_eq!(location, Some(format!("/api/randomizes/{id}")));
    assert_eq!(etag, Some(format!("\"{id}-1\"")));
    assert_eq!(body["original"], "randomize");
    let jumbled = body["jumbled"].as_str().unwrap();
    assert_ne!(jumbled, "randomize");
    assert_eq!(sorted_chars(jumbled), sorted_chars("randomize"));
    assert!(is_rfc3339_millis_utc(&body["created"]), "{body}");
    assert_eq!(body["created"], body["updated"]);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "exactly the SPEC fields: {body}");
    assert_eq!(app.db.count_randomizes(), 1);
}

async fn seeded_create_is_reproducible(backend: Backend) {
    let app = spawn_app(backend).await;

    let first = app
        .post_json(&json!({"word": "randomize", "seed": 1}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let second = app
        .post_json(&json!({"word": "randomize", "seed": 1}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let max_seed = app
        .post_json(&json!({"word": "randomize", "seed": u64::MAX}))
        .await;
    // JSON Schema's `integer` includes 1.0; the document promises an integer.
    let float_seed = app
        .post_json(&json!({"word": "randomize", "seed": 1.0}))
        .await
        .json::<Value>()
        .await
        .unwrap();

    // The same golden vector the unit tests pin: seeded output is a public contract.
    assert_eq!(first["jumbled"], "raediznom");
    assert_eq!(second["jumbled"], "raediznom");
    assert_eq!(float_seed["jumbled"], "raediznom");
    assert_eq!(max_seed.status(), 201);
    assert_eq!(
        max_seed.json::<Value>().await.unwrap()["jumbled"],
        "nomdirzae"
    );
}

async fn get_answers_record_with_etag_and_304_when_unchanged(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create("string").await;
    let path = format!("/api/randomizes/{}", created["id"]);

    let response = app.get(&path).await;
    assert_eq!(response.status(), 200);
    let etag = header(&response, "etag").unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), created);

    let cached = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(header(&cached, "etag"), Some(etag.clone()));
    assert!(cached.bytes().await.unwrap().is_empty());

    let weak = app
        .client
        .get(app.url(&path))
        .header("if-none-match", format!("W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304);
    let other = app
        .client
        .get(app.url(&path))
        .header("if-none-match", "\"999-1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

async fn unknown_or_malformed_id_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/api/randomizes/424242",
        "/api/randomizes/abc",
        "/api/randomizes/-1",
        "/api/randomizes/99999999999999999999999",
    ] {
        let body = assert_problem(app.get(path).await, 404).await;
        assert_eq!(body["title"], "Not Found", "{path}");
    }
}

async fn put_rejumbles_keeps_created_and_changes_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create("alpha").await;
    let path = format!("/api/randomizes/{}", created["id"]);

    let response = app
        .client
        .put(app.url(&path))
        .json(&json!({"word": "randomize", "seed": 1}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "etag"),
        Some(format!("\"{}-2\"", created["id"]))
    );
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["original"], "randomize");
    assert_eq!(updated["jumbled"], "raediznom");
    assert_eq!(updated["created"], created["created"]);
    assert!(updated["updated"].as_str() >= created["updated"].as_str());
    assert_eq!(app.get(&path).await.json::<Value>().await.unwrap(), updated);
}

async fn put_honours_if_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create("alpha").await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/randomizes/{id}");
    let put = |if_match: Option<String>| {
        let mut request = app
            .client
            .put(app.url(&path))
            .json(&json!({"word": "bravo"}));
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send()
    };

    assert_eq!(
        put(Some(format!("\"{id}-1\""))).await.unwrap().status(),
        200
    );
    // Version 1 is now stale.
    let stale = put(Some(format!("\"{id}-1\""))).await.unwrap();
    let body = assert_problem(stale, 412).await;
    assert_eq!(body["title"], "Precondition Failed");
    assert_eq!(
        put(Some(format!("W/\"{id}-2\""))).await.unwrap().status(),
        412,
        "weak tags never match If-Match"
    );
    assert_eq!(put(Some("*".into())).await.unwrap().status(), 200);
    // A condition that cannot be read names no version: never taken as true.
    for garbage in ["", "null", "1-2", "\"unterminated", "0"] {
        let unreadable = put(Some(garbage.into())).await.unwrap();
        let body = assert_problem(unreadable, 412).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("not an entity tag"),
            "{garbage:?}: {body}"
        );
    }
    assert_eq!(
        put(None).await.unwrap().status(),
        200,
        "a missing If-Match is allowed"
    );
    let current = app.get(&path).await;
    assert_eq!(header(&current, "etag"), Some(format!("\"{id}-4\"")));
}

async fn put_and_delete_unknown_id_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let put = app
        .client
        .put(app.url("/api/randomizes/9999"))
        .json(&json!({"word": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(put, 404).await;
    let delete = app
        .client
        .delete(app.url("/api/randomizes/9999"))
        .send()
        .await
        .unwrap();
    assert_problem(delete, 404).await;
}

async fn delete_answers_204_then_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create("alpha").await;
    let path = format!("/api/randomizes/{}", created["id"]);

    let response = app.client.delete(app.url(&path)).send().await.unwrap();

    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_problem(app.get(&path).await, 404).await;
    assert_problem(app.client.delete(app.url(&path)).send().await.unwrap(), 404).await;
    assert_eq!(app.db.count_randomizes(), 0);
    // Ids are never reused, even for the newest record.
    let next = app.create("bravo").await;
    assert!(next["id"].as_i64() > created["id"].as_i64());
}

async fn delete_with_stale_if_match_is_412(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create("alpha").await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/randomizes/{id}");

    let stale = app
        .client
        .delete(app.url(&path))
        .header("if-match", format!("\"{id}-7\""))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412).await;
    assert_eq!(app.db.count_randomizes(), 1);
    let fresh = app
        .client
        .delete(app.url(&path))
        .header("if-match", format!("\"{id}-1\""))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 204);
}
