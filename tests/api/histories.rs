//! The audit history API (SPEC §2, §5): reading, filtering and paging entries.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::bearer::{claims, hs, token};
use crate::both_backends;
use crate::helpers::{Backend, TEST_SECRET, assert_problem, spawn_app_with_jwt};

both_backends!(
    valid_token_reads_entries_with_subject_recorded,
    filters_narrow_the_history,
    invalid_filters_are_422,
    histories_are_paged_newest_first,
    one_entry_by_id,
    no_token_text_reaches_the_database,
);

async fn valid_token_reads_entries_with_subject_recorded(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    app.create("alpha").await;
    assert_eq!(
        app.get_histories("/api/histories", Some("bad.token.here"))
            .await
            .status(),
        401
    );
    let no_scope = token(json!({"sub": "intruder", "scope": "other"}));
    assert_eq!(
        app.get_histories("/api/histories", Some(&no_scope))
            .await
            .status(),
        403
    );

    let response = app
        .get_histories("/api/histories", Some(&token(json!({}))))
        .await;

    assert_eq!(response.status(), 200);
    let entries: Vec<Value> = response.json().await.unwrap();
    // Newest first: the 403, the 401, the create (this read is recorded after its answer).
    let summary: Vec<(Value, Value, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["method"].clone(),
                e["status"].clone(),
                e["subject"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("GET"), json!(403), json!("intruder")),
            (json!("GET"), json!(401), json!(null)),
            (json!("POST"), json!(201), json!(null))
        ]
    );
    let fields: Vec<&str> = entries[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut fields = fields;
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "chain",
            "client_ip",
            "created",
            "duration_ms",
            "hash",
            "id",
            "method",
            "path",
            "query",
            "request_id",
            "resource_id",
            "seq",
            "status",
            "subject",
            "token_id",
            "trace_id",
            "user_agent"
        ]
    );
    let rows = app.db.histories();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[3].subject.as_deref(),
        Some("auditor"),
        "the read itself is recorded with its subject"
    );
    assert_eq!(rows[3].path, "/api/histories");
}

async fn filters_narrow_the_history(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let before = chrono::Utc::now();
    app.create("alpha").await;
    app.get("/api/randomizes/4242").await;
    // Record 42 by a path that is not its own: found by `resource_id` through the
    // record index, by `path` like any other path.
    app.get("/api/randomizes/0042").await;
    app.get("/api/randomizes?page=1").await;
    app.client
        .put(app.url("/api/randomizes/1"))
        .json(&json!({"word": "beta"}))
        .send()
        .await
        .unwrap();
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    let auth = token(json!({}));
    let count = |query: String| {
        let app = &app;
        let auth = auth.clone();
        async move {
            let response = app
                .get_histories(
                    &format!("/api/histories?page_size=100&{query}"),
                    Some(&auth),
                )
                .await;
            assert_eq!(response.status(), 200, "{query}");
            let entries: Vec<Value> = response.json().await.unwrap();
            entries
                .iter()
                .filter(|e| e["path"] != "/api/histories")
                .count()
        }
    };
    let enc = |s: &str| serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_owned();

    assert_eq!(count("method=get".into()).await, 3);
    assert_eq!(count("method=PUT".into()).await, 1);
    assert_eq!(count("status=404".into()).await, 2);
    assert_eq!(count("path=/api/randomizes/".into()).await, 3);
    assert_eq!(count("path=/api/randomizes".into()).await, 5);
    // Prefixes of records' own paths and of a look-alike; the record filter finds its
    // entry at a path that is not the record's.
    assert_eq!(count("path=/api/randomizes/4242".into()).await, 1);
    assert_eq!(count("path=/api/randomizes/42".into()).await, 1);
    assert_eq!(count("path=/api/randomizes/4".into()).await, 1);
    assert_eq!(count("path=/api/randomizes/00".into()).await, 1);
    assert_eq!(count("path=/api/randomizes/1".into()).await, 1);
    assert_eq!(count("resource_id=42".into()).await, 1);
    assert_eq!(
        count("path=/API".into()).await,
        0,
        "prefixes are case-sensitive"
    );
    assert_eq!(count("path=/api/random_".into()).await, 0, "`_` is literal");
    assert_eq!(count("path=%25".into()).await, 0, "`%` is literal");
    assert_eq!(
        count(format!("since={}", enc(&before.to_rfc3339()))).await,
        5
    );
    assert_eq!(
        count(format!("until={}", enc(&before.to_rfc3339()))).await,
        0
    );
    assert_eq!(
        count(format!(
            "since={}&until={}",
            enc(&before.to_rfc3339()),
            enc(&after.to_rfc3339())
        ))
        .await,
        5
    );
    assert_eq!(
        count(format!("since={}", enc(&after.to_rfc3339()))).await,
        0
    );
    assert_eq!(
        count("method=GET&status=200&path=/api/randomizes".into()).await,
        1
    );
}

async fn invalid_filters_are_422(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let auth = token(json!({}));
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("status=abc", "status"),
        ("status=99", "status"),
        ("method=G%20T", "method"),
        ("page=0", "page"),
        ("page_size=101", "page_size"),
    ] {
        let problem = assert_problem(
            app.get_histories(&format!("/api/histories?{query}"), Some(&auth))
                .await,
            422,
        )
        .await;
        assert!(problem["errors"][field].is_array(), "{query}: {problem}");
    }
}

async fn histories_are_paged_newest_first(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    for n in 0..5 {
        app.client
            .get(app.url("/api/randomizes"))
            .header("x-request-id", format!("page-{n}"))
            .send()
            .await
            .unwrap();
    }
    let auth = token(json!({}));

    let response = app
        .get_histories("/api/histories?page=2&page_size=2", Some(&auth))
        .await;

    let pagination: Value = serde_json::from_str(
        response
            .headers()
            .get("x-pagination")
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        pagination,
        json!({"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 2, "previous_page": 1, "next_page": 3})
    );
    assert!(
        response
            .headers()
            .get("link")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("rel=\"prev\"")
    );
    let ids: Vec<Value> = response
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|e| e["request_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("page-2"), json!("page-1")]);
}

async fn one_entry_by_id(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    app.client
        .get(app.url("/api/randomizes?page=1"))
        .header("x-request-id", "one")
        .header("user-agent", "ua/1")
        .send()
        .await
        .unwrap();
    let auth = token(json!({}));

    let response = app.get_histories("/api/histories/1", Some(&auth)).await;

    assert_eq!(response.status(), 200);
    let entry: Value = response.json().await.unwrap();
    assert_eq!(entry["id"], 1);
    assert_eq!(entry["request_id"], "one");
    assert_eq!(entry["query"], "page=1");
    assert_eq!(entry["user_agent"], "ua/1");
    assert_eq!(entry["client_ip"], "127.0.0.1");
    assert!(entry["created"].as_str().unwrap().ends_with('Z'));
    assert_problem(
        app.get_histories("/api/histories/999", Some(&auth)).await,
        404,
    )
    .await;
    assert_problem(app.get_histories("/api/histories/1", None).await, 401).await;
    assert_problem(
        app.client
            .delete(app.url("/api/histories/1"))
            .send()
            .await
            .unwrap(),
        405,
    )
    .await;
}

async fn no_token_text_reaches_the_database(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let valid = token(json!({}));
    let forged = hs(
        Algorithm::HS256,
        b"another-secret-another-secret-0123",
        &claims(json!({})),
    );
    let no_scope = token(json!({"scope": "x"}));
    for t in [&valid, &forged, &no_scope] {
        app.get_histories("/api/histories?page=1", Some(t)).await;
    }

    let rows = app.db.histories();
    assert_eq!(rows.len(), 3);
    let stored = format!("{rows:?}");
    for t in [&valid, &forged, &no_scope] {
        for part in t.split('.') {
            assert!(!stored.contains(part), "token material stored: {part}");
        }
    }
    assert!(!stored.to_ascii_lowercase().contains("bearer"));
    assert!(!stored.contains(TEST_SECRET));
}
