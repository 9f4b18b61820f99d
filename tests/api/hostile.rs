//! Hostile and clumsy clients (SPEC §14): every answer is the contract's, ambiguity is
//! refused, credentials never reach the history, slow bodies are cut off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app, spawn_app_with, spawn_app_with_jwt};

both_backends!(
    control_characters_in_a_filter_are_refused_by_name,
    a_repeated_parameter_is_refused,
    credentials_in_the_query_never_reach_the_history,
    head_is_served_wherever_get_is,
    ambiguous_bodies_and_headers_are_refused_and_store_nothing,
    a_problem_lists_at_most_twenty_field_errors,
    a_stalled_body_is_answered_408_and_its_connection_closed,
    oversized_targets_and_headers_are_contract_answers,
    a_junk_flood_costs_bounded_storage_per_request,
);

async fn control_characters_in_a_filter_are_refused_by_name(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    app.create("abc").await;
    // PostgreSQL cannot take a NUL in a text parameter (it answered 500); SQLite cut the
    // pattern there and matched every row.
    for (path, name) in [
        ("/api/randomizes?original=%00", "original"),
        ("/api/randomizes?original=ab%00c", "original"),
        ("/api/randomizes?original=%1B%5B31m", "original"),
    ] {
        let problem = assert_problem(app.get(path).await, 422).await;
        assert_eq!(
            problem["errors"][name][0], "must not contain control characters",
            "{path}: {problem}"
        );
    }
    let token = crate::bearer::token(serde_json::json!({}));
    let histories = app
        .get_histories("/api/histories?path=%00", Some(&token))
        .await;
    let problem = assert_problem(histories, 422).await;
    assert!(problem["errors"]["path"].is_array(), "{problem}");
}

async fn a_repeated_parameter_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let problem = assert_problem(app.get("/api/randomizes?page=1&page=2").await, 422).await;
    assert_eq!(
        problem["errors"]["page"][0],
        "is given more than once; give it once"
    );
}

async fn credentials_in_the_query_never_reach_the_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2lnbmF0dXJlLW9mLXRoZS12aWN0aW0";
    for query in [
        format!("access_token={secret}"),
        format!("page=1&api_key={secret}"),
        format!("Authorization=Bearer%20{secret}"),
    ] {
        let response = app.get(&format!("/api/histories?{query}")).await;
        assert_eq!(response.status(), 401, "{query}");
    }
    let entries = app.db.histories();
    assert_eq!(entries.len(), 3);
    for entry in &entries {
        let stored = format!("{entry:?}");
        assert!(!stored.contains("c2lnbmF0dXJl"), "{stored}");
        assert!(
            entry
                .query
                .as_deref()
                .is_some_and(|q| q.contains("=[redacted]")),
            "{stored}"
        );
    }
    assert_eq!(
        entries[1].query.as_deref(),
        Some("page=1&api_key=[redacted]")
    );
}

async fn head_is_served_wherever_get_is(backend: Backend) {
    let app = spawn_app(backend).await;
    let record = app.create("head").await;
    for path in [
        "/api/randomizes".to_owned(),
        format!("/api/randomizes/{}", record["id"]),
        "/healthz".to_owned(),
        "/openapi.json".to_owned(),
        "/docs/".to_owned(),
    ] {
        let length = |r: &reqwest::Response| r.headers().get("content-length").cloned();
        let get = app.get(&path).await;
        let head = app.client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert!(length(&get).is_some());
        assert_eq!(length(&head), length(&get), "HEAD {path}: GET's length");
        assert!(head.headers().contains_key("x-request-id"));
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    let heads: Vec<_> = app
        .db
        .histories()
        .into_iter()
        .filter(|e| e.method == "HEAD")
        .map(|e| (e.path, e.status))
        .collect();
    assert_eq!(
        heads,
        [
            ("/api/randomizes".to_owned(), 200),
            (format!("/api/randomizes/{}", record["id"]), 200)
        ]
    );
}

async fn ambiguous_bodies_and_headers_are_refused_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let post = |body: &'static str| {
        app.client
            .post(app.url("/api/randomizes"))
            .header("content-type", "application/json")
            .body(body)
    };
    let twice = assert_problem(
        post(r#"{"word":"abc","word":"xyz"}"#).send().await.unwrap(),
        422,
    )
    .await;
    assert!(twice["errors"]["body"].is_array(), "{twice}");
    assert_problem(
        post(r#"{"word":"abc","w\u006frd":"xyz"}"#)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    let encoded = post(r#"{"word":"abc"}"#)
        .header("content-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_problem(encoded, 415).await;
    let identity = post(r#"{"word":"fine"}"#)
        .header("content-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(identity.status(), 201);
    let two_credentials = app
        .client
        .get(app.url("/api/histories"))
        .header("authorization", "Bearer a.b.c")
        .header("authorization", "Bearer d.e.f")
        .send()
        .await
        .unwrap();
    assert_problem(two_credentials, 400).await;
    assert_eq!(
        app.db.count_randomizes(),
        1,
        "only the unambiguous POST stored"
    );
    let statuses: Vec<i32> = app.db.histories().iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [422, 422, 415, 201, 400],
        "each refusal is audited"
    );
}

async fn a_problem_lists_at_most_twenty_field_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let query: Vec<String> = (0..1000).map(|n| format!("u{n}=1")).collect();
    let response = app
        .get(&format!("/api/randomizes?{}", query.join("&")))
        .await;
    let problem = assert_problem(response, 422).await;
    let errors = problem["errors"].as_object().map(|e| e.len());
    assert_eq!(errors, Some(20), "{problem}");
    assert_eq!(
        problem["detail"],
        "the request has 1000 invalid fields; `errors` lists the first 20"
    );
    assert!(problem.to_string().len() < 8 * 1024);
}

/// A client sends its headers and part of its body, then stalls: with a short
/// REQUEST_TIMEOUT each of many such connections is answered 408 (problem+json) and
/// closed, and everybody else is served meanwhile.
async fn a_stalled_body_is_answered_408_and_its_connection_closed(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.request_timeout = Duration::from_millis(600)).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let stalled: Vec<_> = (0..16)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&address).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                stream
                    .write_all(
                        b"POST /api/randomizes HTTP/1.1\r\nhost: x\r\n\
                          content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"wo",
                    )
                    .unwrap();
                // Reading to the end proves the server closed the connection.
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    app.create("meanwhile").await;
    for client in stalled {
        let answer = client.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("\"request_id\""), "{answer}");
    }
    assert_eq!(app.db.count_randomizes(), 1);
    let timeouts = app
        .db
        .histories()
        .iter()
        .filter(|e| e.status == 408)
        .count();
    assert_eq!(timeouts, 16, "each stalled request is audited");
}

async fn oversized_targets_and_headers_are_contract_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = format!("/api/randomizes?original={}", "a".repeat(9000));
    assert_problem(app.get(&long).await, 414).await;
    let big = app
        .client
        .get(app.url("/api/randomizes"))
        .header("x-padding", "p".repeat(17 * 1024))
        .send()
        .await
        .unwrap();
    assert_problem(big, 431).await;
    let statuses: Vec<i32> = app.db.histories().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [414, 431], "both are in the history");
}

/// 3 KB path + 3 KB query + 1 KB user agent of junk, 404s: what each one stores is
/// bounded, whatever the client sends (SPEC §14).
async fn a_junk_flood_costs_bounded_storage_per_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let junk = format!(
        "/api/{}?{}",
        "p".repeat(3000),
        "q=".to_owned() + &"x".repeat(3000)
    );
    for _ in 0..50 {
        let response = app
            .client
            .get(app.url(&junk))
            .header("user-agent", "u".repeat(1024))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    let entries = app.db.histories();
    assert_eq!(entries.len(), 50);
    for entry in entries {
        assert!(entry.path.chars().count() <= 2049, "{}", entry.path.len());
        assert!(entry.query.as_deref().map_or(0, |q| q.chars().count()) <= 2049);
        assert!(entry.user_agent.as_deref().map_or(0, |u| u.chars().count()) <= 513);
    }
}

/// The real binary's log: a token in the query and a junk flood leave no token, a
/// bounded line per request, and no ERROR line however malformed the request.
#[tokio::test]
async fn the_log_holds_no_token_and_a_bounded_line_per_junk_request() {
    let db = crate::helpers::TestDb::new(Backend::Sqlite);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let mut server = crate::process::Process::serve(&db.url, &dir);
    let port = server.port().await;
    let client = reqwest::Client::new();
    let secret = "c2VjcmV0LXRva2VuLW9mLXRoZS12aWN0aW0";
    let base = format!("http://127.0.0.1:{port}");
    let refused = client
        .get(format!(
            "{base}/api/histories?access_token=eyJ.{secret}.sig"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let junk = format!("{base}/api/{}?q={}", "p".repeat(3000), "x".repeat(3000));
    for _ in 0..20 {
        let response = client
            .get(&junk)
            .header("user-agent", "u".repeat(1024))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    // A request actix refuses before the app: more headers than it parses.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = String::from("GET /api/randomizes HTTP/1.1\r\nhost: x\r\n");
    for n in 0..120 {
        head.push_str(&format!("x-h{n}: v\r\n"));
    }
    head.push_str("\r\n");
    raw.write_all(head.as_bytes()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    server.signal("TERM");
    let (status, lines) = server.exit().await;
    assert!(status.success());
    let requests: Vec<&String> = lines.iter().filter(|l| l.contains("\"request\"")).collect();
    assert_eq!(requests.len(), 21, "one line per request the app answered");
    for line in &lines {
        assert!(!line.contains(secret), "a token reached the log: {line}");
        assert!(
            !line.contains("\"ERROR\""),
            "a client wrote an ERROR line: {line}"
        );
    }
    for line in requests {
        assert!(line.len() < 1024, "{} bytes: {line}", line.len());
    }
}
