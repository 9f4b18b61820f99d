//! The forensic fields of an audit entry (SPEC §5) and the filters on them: which record
//! a request concerned, which credential acted, which trace it belonged to.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::bearer::{claims, hs, token};
use crate::both_backends;
use crate::helpers::{Backend, TEST_SECRET, spawn_app_with_jwt};

both_backends!(
    every_record_request_names_its_record,
    the_credential_is_named_never_stored,
    a_valid_traceparent_is_recorded,
    subject_resource_and_request_filters_find_their_entries,
);

async fn every_record_request_names_its_record(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let id = app.create("alpha").await["id"].as_i64().unwrap();
    let other = app.create("bravo").await["id"].as_i64().unwrap();
    let record = format!("/api/randomizes/{id}");
    app.get(&record).await;
    app.client
        .put(app.url(&record))
        .json(&json!({"word": "gamma"}))
        .send()
        .await
        .unwrap();
    app.client.delete(app.url(&record)).send().await.unwrap();
    app.get(&record).await; // 404 now: still about that record
    app.get("/api/randomizes/abc").await;
    app.get("/api/randomizes").await;

    let named: Vec<(String, i32, Option<i64>)> = app
        .db
        .histories()
        .into_iter()
        .map(|e| (e.method, e.status, e.resource_id))
        .collect();
    assert_eq!(
        named,
        vec![
            ("POST".into(), 201, Some(id)),
            ("POST".into(), 201, Some(other)),
            ("GET".into(), 200, Some(id)),
            ("PUT".into(), 200, Some(id)),
            ("DELETE".into(), 204, Some(id)),
            ("GET".into(), 404, Some(id)),
            ("GET".into(), 404, None),
            ("GET".into(), 200, None),
        ]
    );
}

fn sha256_hex(raw: &str) -> String {
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn the_credential_is_named_never_stored(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let with_jti = hs(
        jsonwebtoken::Algorithm::HS256,
        TEST_SECRET.as_bytes(),
        &claims(json!({"jti": "tok-7"})),
    );
    let without = token(json!({}));
    let forged = hs(
        jsonwebtoken::Algorithm::HS256,
        b"another-secret-0123456789abcdefgh",
        &claims(json!({"jti": "tok-7"})),
    );
    for t in [&with_jti, &without, &forged] {
        app.get_histories("/api/histories", Some(t)).await;
    }
    app.get_histories("/api/histories", None).await;

    let recorded: Vec<(i32, Option<String>)> = app
        .db
        .histories()
        .into_iter()
        .map(|e| (e.status, e.token_id))
        .collect();
    assert_eq!(
        recorded,
        vec![
            (200, Some("tok-7".into())),
            (200, Some(sha256_hex(&without))),
            // A forged token's claims are not believed: its digest names it.
            (401, Some(sha256_hex(&forged))),
            (401, None),
        ]
    );
}

async fn a_valid_traceparent_is_recorded(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for header in [
        format!("00-{trace}-00f067aa0ba902b7-01"),
        format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
        "garbage".to_owned(),
    ] {
        app.client
            .get(app.url("/api/randomizes"))
            .header("traceparent", header)
            .send()
            .await
            .unwrap();
    }
    let traces: Vec<Option<String>> = app.db.histories().into_iter().map(|e| e.trace_id).collect();
    assert_eq!(traces, vec![Some(trace.to_owned()), None, None]);
}

async fn subject_resource_and_request_filters_find_their_entries(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let id = app.create("alpha").await["id"].as_i64().unwrap();
    app.create("bravo").await;
    app.client
        .get(app.url(&format!("/api/randomizes/{id}")))
        .header("x-request-id", "look-for-me")
        .send()
        .await
        .unwrap();
    let other = hs(
        jsonwebtoken::Algorithm::HS256,
        TEST_SECRET.as_bytes(),
        &claims(json!({"sub": "someone-else"})),
    );
    app.get_histories("/api/histories", Some(&other)).await;
    let auth = token(json!({}));
    let select = |query: String| {
        let app = &app;
        let auth = auth.clone();
        async move {
            let response = app
                .get_histories(&format!("/api/histories?{query}"), Some(&auth))
                .await;
            assert_eq!(response.status(), 200, "{query}");
            let rows: Vec<Value> = response.json().await.unwrap();
            rows.iter()
                .map(|r| {
                    (
                        r["method"].as_str().unwrap().to_owned(),
                        r["path"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let record = format!("/api/randomizes/{id}");
    assert_eq!(
        select(format!("resource_id={id}")).await,
        vec![
            ("GET".to_owned(), record.clone()),
            ("POST".to_owned(), "/api/randomizes".to_owned())
        ]
    );
    assert_eq!(
        select("request_id=look-for-me".into()).await,
        vec![("GET".to_owned(), record)]
    );
    assert_eq!(
        select("subject=someone-else".into()).await,
        vec![("GET".to_owned(), "/api/histories".to_owned())]
    );
    assert_eq!(select("resource_id=999".into()).await, vec![]);
    for (query, field) in [
        ("resource_id=0", "resource_id"),
        ("resource_id=x", "resource_id"),
        ("subject=", "subject"),
    ] {
        let response = app
            .get_histories(&format!("/api/histories?{query}"), Some(&auth))
            .await;
        assert_eq!(response.status(), 422, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["errors"][field].is_array(), "{query}: {problem}");
    }
}
