//! The error contract (SPEC §4): every failure is problem+json with a request id, the
//! right status, and never a 500 for bad input.

use std::time::{Duration, Instant};

use randomize::db::DatabaseUrl;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestDb, assert_problem, server_config, spawn_app, spawn_on};

both_backends!(
    malformed_json_is_400,
    wrong_content_type_is_415,
    body_over_the_limit_is_413,
    invalid_words_are_422_with_field_errors,
    a_key_given_twice_is_422_and_stores_nothing,
    unknown_routes_are_404_problems,
    wrong_method_is_405_with_allow,
    request_id_is_echoed_when_sane_and_generated_otherwise,
    database_down_is_503_with_retry_after_and_no_hang,
);

async fn post_raw(
    app: &crate::helpers::TestApp,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url("/api/randomizes")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.send().await.unwrap()
}

async fn a_key_given_twice_is_422_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = br#"{"word": "abc", "word": "xyz"}"#.to_vec();

    let response = post_raw(&app, Some("application/json"), body).await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(problem["errors"]["body"], json!(["must not repeat a key"]));
    assert_eq!(app.db.count_randomizes(), 0);
}

async fn malformed_json_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        &b"{\"word\":"[..],
        b"not json",
        b"{\"word\": \"a\"} trailing",
        b"\xff\xfe{}",
        b"",
    ] {
        let response = post_raw(&app, Some("application/json"), body.to_vec()).await;
        let problem = assert_problem(response, 400).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("malformed JSON"),
            "{problem}"
        );
    }
}

async fn wrong_content_type_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=latin1"),
    ] {
        let response = post_raw(&app, content_type, br#"{"word":"abc"}"#.to_vec()).await;
        assert_problem(response, 415).await;
    }
    let accepted = post_raw(
        &app,
        Some("application/json; charset=UTF-8"),
        br#"{"word":"abc"}"#.to_vec(),
    )
    .await;
    assert_eq!(accepted.status(), 201);
    assert_eq!(app.db.count_randomizes(), 1);
}

async fn body_over_the_limit_is_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let word = "a".repeat(17 * 1024);

    let response = app.post_json(&json!({ "word": word })).await;

    let problem = assert_problem(response, 413).await;
    assert_eq!(problem["title"], "Content Too Large");
    assert!(
        problem["detail"].as_str().unwrap().contains("16384"),
        "{problem}"
    );
    assert_eq!(app.db.count_randomizes(), 0);
}

async fn invalid_words_are_422_with_field_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "word", "is required"),
        (json!({"word": null}), "word", "is required"),
        (json!({"word": ""}), "word", "must not be empty"),
        (
            json!({"word": " padded"}),
            "word",
            "must not start or end with whitespace",
        ),
        (
            json!({"word": "tab\tinside"}),
            "word",
            "must not contain control characters",
        ),
        (
            json!({"word": "a".repeat(257)}),
            "word",
            "must be at most 256 graphemes",
        ),
        (json!({"word": 42}), "word", "must be a string"),
        (
            json!({"word": "ok", "seed": -1}),
            "seed",
            "must be an integer from 0 to 18446744073709551615",
        ),
        (
            json!({"word": "ok", "seed": 1.5}),
            "seed",
            "must be an integer from 0 to 18446744073709551615",
        ),
        (
            json!({"word": "ok", "seed": "7"}),
            "seed",
            "must be an integer from 0 to 18446744073709551615",
        ),
        (
            json!({"word": "ok", "sede": 7}),
            "sede",
            "is not a known field",
        ),
        (json!(["word"]), "body", "must be a JSON object"),
    ];
    for (body, field, message) in cases {
        let problem = assert_problem(app.post_json(&body).await, 422).await;
        assert_eq!(problem["title"], "Unprocessable Content");
        assert_eq!(
            problem["errors"][field],
            json!([message]),
            "{body} → {problem}"
        );
    }
    // Exactly 256 graphemes is fine; 256 combining sequences are far more bytes.
    assert_eq!(
        app.post_json(&json!({"word": "e\u{301}".repeat(256)}))
            .await
            .status(),
        201
    );
    assert_eq!(app.db.count_randomizes(), 1);
}

async fn unknown_routes_are_404_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_problem(app.get("/api/nothing-here").await, 404).await;
    assert_problem(app.get("/nothing-here").await, 404).await;
    assert_problem(app.get("/api/randomizes/1/extra").await, 404).await;
}

async fn wrong_method_is_405_with_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            reqwest::Method::DELETE,
            "/api/randomizes",
            "GET, HEAD, POST",
        ),
        (
            reqwest::Method::PATCH,
            "/api/randomizes/1",
            "GET, HEAD, PUT, DELETE",
        ),
        (reqwest::Method::POST, "/healthz", "GET, HEAD"),
        (reqwest::Method::POST, "/openapi.json", "GET, HEAD"),
        (reqwest::Method::DELETE, "/docs/", "GET, HEAD"),
        (reqwest::Method::PUT, "/docs", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let header = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(header.as_deref(), Some(allow), "{method} {path}");
        assert_problem(response, 405).await;
    }
}

async fn request_id_is_echoed_when_sane_and_generated_otherwise(backend: Backend) {
    let app = spawn_app(backend).await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let sane = app
        .client
        .get(app.url("/api/randomizes"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&sane).as_deref(), Some("trace-42"));

    let long = "x".repeat(129);
    let replaced = app
        .client
        .get(app.url("/api/randomizes"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    let generated = id_of(&replaced).unwrap();
    assert_ne!(generated, long);
    assert!(uuid::Uuid::parse_str(&generated).is_ok());

    let spaced = app
        .client
        .get(app.url("/api/nope"))
        .header("x-request-id", "two words")
        .send()
        .await
        .unwrap();
    assert_ne!(id_of(&spaced).as_deref(), Some("two words"));
    assert_problem(spaced, 404).await;
}

async fn database_down_is_503_with_retry_after_and_no_hang(backend: Backend) {
    // A database that cannot be reached: a PostgreSQL port nobody listens on, or an
    // SQLite file in a folder that cannot be created.
    let db = TestDb::new(backend);
    let mut config = server_config(&db);
    config.database.url = match backend {
        Backend::Postgres => DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/test").unwrap(),
        Backend::Sqlite => DatabaseUrl::parse("sqlite:///proc/no-such-dir/db.sqlite3").unwrap(),
    };
    config.database.timeout = Duration::from_secs(1);
    let app = spawn_on(db, config);

    let started = Instant::now();
    let write = app.post_json(&json!({"word": "abc"})).await;
    let retry_after = write
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let problem = assert_problem(write, 503).await;
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        !problem["detail"].as_str().unwrap().contains("127.0.0.1"),
        "no internals: {problem}"
    );

    assert_problem(app.get("/api/randomizes").await, 503).await;
    assert_problem(app.get("/readyz").await, 503).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by DATABASE_TIMEOUT"
    );
}
