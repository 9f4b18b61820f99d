//! CORS (SPEC §7): off unless `CORS_ALLOWED_ORIGINS` names origins.

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app, spawn_app_with};

both_backends!(cors_answers_listed_origins_only);

async fn cors_answers_listed_origins_only(backend: Backend) {
    let preflight = |app: &crate::helpers::TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/randomizes"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allow_origin = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let closed = spawn_app(backend).await;
    let response = closed
        .client
        .get(closed.url("/api/randomizes"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "same-origin style requests still work"
    );
    assert_eq!(allow_origin(&response), None);

    let open = spawn_app_with(backend, |c| {
        c.cors_allowed_origins = vec!["https://app.example".into()]
    })
    .await;
    let allowed = preflight(&open, "https://app.example").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allow_origin(&allowed).as_deref(),
        Some("https://app.example")
    );
    let other = preflight(&open, "https://evil.example").await.unwrap();
    assert_eq!(allow_origin(&other), None);
    // A refusal is the contract's answer too (SPEC §14): problem+json, a request id.
    let refused = assert_problem(other, 400).await;
    assert!(
        refused["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{refused}"
    );
    // Both preflights are in the history, as every /api/ request is.
    let preflights: Vec<i32> = open
        .db
        .histories()
        .iter()
        .filter(|e| e.method == "OPTIONS")
        .map(|e| e.status)
        .collect();
    assert_eq!(preflights.len(), 2, "{preflights:?}");
    assert!(
        preflights[0] < 300 && preflights[1] == 400,
        "{preflights:?}"
    );
    let keyed = open
        .client
        .request(reqwest::Method::OPTIONS, open.url("/api/randomizes"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(
        keyed.status().is_success(),
        "a browser may send Idempotency-Key"
    );
    let get = open
        .client
        .get(open.url("/api/randomizes"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&get).as_deref(), Some("https://app.example"));
    let exposed = get
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        exposed.contains("x-pagination") && exposed.contains("etag"),
        "{exposed}"
    );
}
