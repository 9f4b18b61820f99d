//! The JWT guard of the audit history (SPEC §6): every way a token is refused.

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
);

pub(crate) fn claims(extra: Value) -> Value {
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

pub(crate) fn hs(algorithm: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

pub(crate) fn token(extra: Value) -> String {
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
