//! The audit trail (SPEC §5): every API request, committed before the response.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinSet;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app, spawn_app_with};

both_backends!(
    every_api_request_is_recorded_with_its_fields,
    probes_and_unknown_non_api_paths_are_not_recorded,
    write_and_its_audit_entry_are_committed_before_the_response,
    concurrent_mixed_requests_are_each_recorded_exactly_once,
    sixty_four_concurrent_writers_all_succeed,
    forwarded_headers_count_only_from_trusted_proxies,
);

async fn every_api_request_is_recorded_with_its_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let send = |method: reqwest::Method, path: &str, id: &str| {
        app.client
            .request(method, app.url(path))
            .header("x-request-id", id)
            .header("user-agent", "audit-test/1.0")
            .json(&json!({"word": "abc"}))
            .send()
    };

    assert_eq!(
        send(reqwest::Method::POST, "/api/randomizes", "r-create")
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        send(
            reqwest::Method::GET,
            "/api/randomizes?page=1&original=a",
            "r-list"
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        send(reqwest::Method::GET, "/api/randomizes/999", "r-missing")
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        send(reqwest::Method::PATCH, "/api/randomizes", "r-method")
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        send(reqwest::Method::GET, "/api/elsewhere", "r-unknown")
            .await
            .unwrap()
            .status(),
        404
    );

    let rows = app.db.histories();
    let summary: Vec<(&str, &str, &str, Option<&str>, i32)> = rows
        .iter()
        .map(|r| {
            (
                r.request_id.as_str(),
                r.method.as_str(),
                r.path.as_str(),
                r.query.as_deref(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("r-create", "POST", "/api/randomizes", None, 201),
            (
                "r-list",
                "GET",
                "/api/randomizes",
                Some("page=1&original=a"),
                200
            ),
            ("r-missing", "GET", "/api/randomizes/999", None, 404),
            ("r-method", "PATCH", "/api/randomizes", None, 405),
            ("r-unknown", "GET", "/api/elsewhere", None, 404),
        ]
    );
    for row in &rows {
        assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(row.user_agent.as_deref(), Some("audit-test/1.0"));
        assert_eq!(row.subject, None);
        assert!(row.duration_ms >= 0.0 && row.duration_ms < 60_000.0);
    }
}

async fn probes_and_unknown_non_api_paths_are_not_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz", "/not-api", "/apix"] {
        app.get(path).await;
    }
    assert!(app.db.histories().is_empty());
}

async fn write_and_its_audit_entry_are_committed_before_the_response(backend: Backend) {
    let app = spawn_app(backend).await;
    for n in 0..5 {
        let id = format!("durable-{n}");
        let response = app
            .client
            .post(app.url("/api/randomizes"))
            .header("x-request-id", &id)
            .json(&json!({"word": "durable"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        // Read straight from the database, on a connection of our own, as soon as
        // the answer arrives: the record and its entry must both be there.
        assert_eq!(app.db.count_randomizes(), n + 1);
        let rows = app.db.histories();
        assert_eq!(rows.iter().filter(|r| r.request_id == id).count(), 1);
    }
}

async fn concurrent_mixed_requests_are_each_recorded_exactly_once(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let mut tasks = JoinSet::new();
    for n in 0..200 {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let id = format!("mixed-{n}");
            let request = match n % 4 {
                0 => app
                    .client
                    .post(app.url("/api/randomizes"))
                    .json(&json!({"word": format!("word{n}")})),
                1 => app
                    .client
                    .post(app.url("/api/randomizes"))
                    .json(&json!({"word": ""})),
                2 => app.client.get(app.url("/api/randomizes?page_size=5")),
                _ => app.client.get(app.url("/api/randomizes/987654")),
            };
            let status = request
                .header("x-request-id", &id)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            (id, status)
        });
    }
    let mut answered = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, status) = joined.unwrap();
        answered.insert(id, status);
    }

    let rows = app.db.histories();
    assert_eq!(rows.len(), 200);
    let mut seen: HashMap<&str, i32> = HashMap::new();
    for row in &rows {
        assert!(
            seen.insert(row.request_id.as_str(), row.status).is_none(),
            "{} twice",
            row.request_id
        );
    }
    for (id, status) in &answered {
        assert_eq!(
            seen.get(id.as_str()).copied(),
            Some(i32::from(*status)),
            "{id}"
        );
    }
    let expected: HashMap<u16, usize> = HashMap::from([(201, 50), (422, 50), (200, 50), (404, 50)]);
    let mut counted: HashMap<u16, usize> = HashMap::new();
    answered
        .values()
        .for_each(|s| *counted.entry(*s).or_default() += 1);
    assert_eq!(counted, expected);
    assert_eq!(app.db.count_randomizes(), 50);
}

async fn sixty_four_concurrent_writers_all_succeed(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let mut tasks = JoinSet::new();
    for n in 0..64 {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            // Every fourth request repeats one word and seed: identical rows in a batch.
            let word = if n % 4 == 0 {
                "same".to_owned()
            } else {
                format!("writer{n}")
            };
            let response = app.post_json(&json!({"word": word, "seed": 7})).await;
            (
                word,
                response.status().as_u16(),
                response.text().await.unwrap(),
            )
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (word, status, body) = joined.unwrap();
        assert_eq!(status, 201, "{body}");
        let record: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            record["original"],
            word.as_str(),
            "each request gets its own record"
        );
        assert!(
            ids.insert(record["id"].as_i64().unwrap()),
            "ids are distinct"
        );
    }
    assert_eq!(app.db.count_randomizes(), 64);
    assert_eq!(app.db.histories().len(), 64);
}

async fn forwarded_headers_count_only_from_trusted_proxies(backend: Backend) {
    let untrusted = spawn_app(backend).await;
    untrusted
        .client
        .get(untrusted.url("/api/randomizes"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(
        untrusted.db.histories()[0].client_ip.as_deref(),
        Some("127.0.0.1")
    );

    let trusted = spawn_app_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]
    })
    .await;
    trusted
        .client
        .get(trusted.url("/api/randomizes"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .send()
        .await
        .unwrap();
    trusted
        .client
        .get(trusted.url("/api/randomizes"))
        .header("forwarded", "for=\"[2001:db8::7]:1234\"")
        .send()
        .await
        .unwrap();
    let ips: Vec<Option<String>> = trusted
        .db
        .histories()
        .into_iter()
        .map(|r| r.client_ip)
        .collect();
    assert_eq!(
        ips,
        vec![Some("203.0.113.7".into()), Some("2001:db8::7".into())]
    );
}
