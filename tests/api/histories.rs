//! The audit history API and its JWT guard (SPEC §2, §5, §6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use randomize::auth::unix_now;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, TEST_SECRET, TestApp, assert_problem, spawn_app_with, spawn_app_with_jwt, test_key,
};

both_backends!(
    no_header_is_401_without_an_error_code,
    malformed_headers_are_401_invalid_token,
    garbage_token_is_401,
    wrong_signature_is_401,
    expired_token_is_401,
    expired_within_leeway_is_accepted,
    missing_exp_is_401,
    future_nbf_is_401,
    alg_none_in_any_casing_is_401,
    other_hmac_algorithms_are_401,
    rs256_and_es256_tokens_are_refused_by_an_hs256_server,
    hs256_token_made_with_the_public_key_is_refused_by_an_rs256_server,
    wrong_issuer_is_401,
    wrong_or_unexpected_audience_is_401,
    missing_or_look_alike_scope_is_403,
    no_key_configured_refuses_every_token,
    valid_token_reads_entries_with_subject_recorded,
    filters_narrow_the_history,
    invalid_filters_are_422,
    histories_are_paged_newest_first,
    one_entry_by_id,
    no_token_text_reaches_the_database,
);

fn claims(extra: Value) -> Value {
    let mut base = json!({"sub": "auditor", "scope": "histories:read", "exp": unix_now() + 600});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn hs(algorithm: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn token(extra: Value) -> String {
    hs(Algorithm::HS256, TEST_SECRET.as_bytes(), &claims(extra))
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(test_key(name)).unwrap()
}

fn challenge(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn assert_invalid_token(app: &TestApp, token: &str) -> Value {
    let response = app.get_histories("/api/histories", Some(token)).await;
    assert_eq!(
        challenge(&response).as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_problem(response, 401).await
}

async fn no_header_is_401_without_an_error_code(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let response = app.get_histories("/api/histories", None).await;
    assert_eq!(challenge(&response).as_deref(), Some("Bearer"));
    assert_problem(response, 401).await;
}

async fn malformed_headers_are_401_invalid_token(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let good = token(json!({}));
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer    ",
        "Token abc",
        good.as_str(),
    ] {
        let response = app
            .client
            .get(app.url("/api/histories"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(
            challenge(&response).as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{header}"
        );
        assert_problem(response, 401).await;
    }
}

async fn garbage_token_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    for garbage in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "🙂.🙂.🙂"] {
        assert_invalid_token(&app, garbage).await;
    }
}

async fn wrong_signature_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let forged = hs(
        Algorithm::HS256,
        b"another-secret-another-secret-0123",
        &claims(json!({})),
    );
    let problem = assert_invalid_token(&app, &forged).await;
    assert_eq!(problem["detail"], "the token signature does not verify");
}

async fn expired_token_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let problem = assert_invalid_token(&app, &token(json!({"exp": unix_now() - 120}))).await;
    assert_eq!(problem["detail"], "the token has expired");
}

async fn expired_within_leeway_is_accepted(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let response = app
        .get_histories(
            "/api/histories",
            Some(&token(json!({"exp": unix_now() - 10}))),
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn missing_exp_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    assert_invalid_token(&app, &token(json!({"exp": null}))).await;
}

async fn future_nbf_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let problem = assert_invalid_token(&app, &token(json!({"nbf": unix_now() + 300}))).await;
    assert_eq!(problem["detail"], "the token is not valid yet (nbf)");
}

async fn alg_none_in_any_casing_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        for unsigned in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_invalid_token(&app, &unsigned).await;
        }
    }
}

async fn other_hmac_algorithms_are_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    for algorithm in [Algorithm::HS384, Algorithm::HS512] {
        let other = hs(algorithm, TEST_SECRET.as_bytes(), &claims(json!({})));
        let problem = assert_invalid_token(&app, &other).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("algorithm"),
            "{problem}"
        );
    }
}

async fn rs256_and_es256_tokens_are_refused_by_an_hs256_server(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let rs = EncodingKey::from_rsa_pem(&pem("rs256-private.pem")).unwrap();
    let es = EncodingKey::from_ec_pem(&pem("es256-private.pem")).unwrap();
    for (algorithm, key) in [(Algorithm::RS256, rs), (Algorithm::ES256, es)] {
        let signed =
            jsonwebtoken::encode(&Header::new(algorithm), &claims(json!({})), &key).unwrap();
        assert_invalid_token(&app, &signed).await;
    }
}

async fn hs256_token_made_with_the_public_key_is_refused_by_an_rs256_server(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |a| {
        a.jwt_algorithm = "RS256".into();
        a.jwt_secret = None;
        a.jwt_public_key_file = Some(test_key("rs256-public.pem"));
    })
    .await;
    // The classic confusion attack: the public key, which anyone may hold, as an HMAC key.
    let confused = hs(
        Algorithm::HS256,
        &pem("rs256-public.pem"),
        &claims(json!({})),
    );
    assert_invalid_token(&app, &confused).await;
    let genuine = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(&pem("rs256-private.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.get_histories("/api/histories", Some(&genuine))
            .await
            .status(),
        200
    );
}

async fn wrong_issuer_is_401(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |a| {
        a.jwt_issuer = Some("https://issuer.example".into())
    })
    .await;
    assert_invalid_token(&app, &token(json!({"iss": "https://evil.example"}))).await;
    assert_invalid_token(&app, &token(json!({}))).await;
    let right = token(json!({"iss": "https://issuer.example"}));
    assert_eq!(
        app.get_histories("/api/histories", Some(&right))
            .await
            .status(),
        200
    );
}

async fn wrong_or_unexpected_audience_is_401(backend: Backend) {
    let configured =
        spawn_app_with_jwt(backend, |a| a.jwt_audience = Some("randomize".into())).await;
    assert_invalid_token(&configured, &token(json!({"aud": "billing"}))).await;
    assert_invalid_token(&configured, &token(json!({}))).await;
    let right = token(json!({"aud": "randomize"}));
    assert_eq!(
        configured
            .get_histories("/api/histories", Some(&right))
            .await
            .status(),
        200
    );

    // Deliberate: with no audience configured, a token minted for one is someone else's.
    let unconfigured = spawn_app_with_jwt(backend, |_| {}).await;
    let problem = assert_invalid_token(&unconfigured, &token(json!({"aud": "billing"}))).await;
    assert_eq!(problem["detail"], "the token is meant for another audience");
}

async fn missing_or_look_alike_scope_is_403(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    for scope in [
        json!(null),
        json!(""),
        json!("histories:reader"),
        json!("histories:read:all"),
        json!("HISTORIES:READ"),
        json!("histories"),
    ] {
        let response = app
            .get_histories("/api/histories", Some(&token(json!({"scope": scope}))))
            .await;
        assert_eq!(
            challenge(&response).as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="histories:read""#),
            "{scope}"
        );
        assert_problem(response, 403).await;
    }
    let among_others = token(json!({"scope": "profile histories:read email"}));
    assert_eq!(
        app.get_histories("/api/histories", Some(&among_others))
            .await
            .status(),
        200
    );
}

async fn no_key_configured_refuses_every_token(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.verifier = None).await;
    let problem = assert_invalid_token(&app, &token(json!({}))).await;
    assert_eq!(
        problem["detail"],
        "no key is configured, so no token can be accepted"
    );
    assert_eq!(
        app.get_histories("/api/histories", None).await.status(),
        401
    );
}

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
            "client_ip",
            "created",
            "duration_ms",
            "id",
            "method",
            "path",
            "query",
            "request_id",
            "status",
            "subject",
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

    assert_eq!(count("method=get".into()).await, 2);
    assert_eq!(count("method=PUT".into()).await, 1);
    assert_eq!(count("status=404".into()).await, 1);
    assert_eq!(count("path=/api/randomizes/".into()).await, 2);
    assert_eq!(count("path=/api/randomizes".into()).await, 4);
    assert_eq!(
        count("path=/API".into()).await,
        0,
        "prefixes are case-sensitive"
    );
    assert_eq!(count("path=/api/random_".into()).await, 0, "`_` is literal");
    assert_eq!(count("path=%25".into()).await, 0, "`%` is literal");
    assert_eq!(
        count(format!("since={}", enc(&before.to_rfc3339()))).await,
        4
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
        4
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
