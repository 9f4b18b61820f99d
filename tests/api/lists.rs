//! `GET /api/randomizes`: newest first, paging headers, the `original` filter (SPEC §2).

use diesel::RunQueryDsl;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app};
use crate::randomizes::header;

both_backends!(
    list_is_newest_first_with_pagination_headers,
    page_past_the_end_is_an_empty_array,
    unfiltered_total_stays_exact_whoever_writes,
    list_filter_is_case_insensitive_and_wildcards_are_literal,
    list_rejects_bad_paging,
);

async fn list_is_newest_first_with_pagination_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    for word in ["alpha", "bravo", "charlie"] {
        app.create(word).await;
    }

    let first = app.get("/api/randomizes?page_size=2").await;
    assert_eq!(first.status(), 200);
    let pagination: Value = serde_json::from_str(&header(&first, "x-pagination").unwrap()).unwrap();
    assert_eq!(
        pagination,
        json!({"total": 3, "total_pages": 2, "first_page": 1, "last_page": 2, "page": 1, "next_page": 2})
    );
    let link = header(&first, "link").unwrap();
    // `next` carries a cursor even in page mode; first/last are page numbers.
    assert!(
        link.starts_with(
            "</api/randomizes?page=1&page_size=2>; rel=\"first\", </api/randomizes?cursor="
        ),
        "{link}"
    );
    assert!(
        link.contains(
            "&page_size=2>; rel=\"next\", </api/randomizes?page=2&page_size=2>; rel=\"last\""
        ) && !link.contains("rel=\"prev\""),
        "{link}"
    );
    let originals: Vec<Value> = first
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|r| r["original"].clone())
        .collect();
    assert_eq!(originals, vec![json!("charlie"), json!("bravo")]);

    let second = app.get("/api/randomizes?page=2&page_size=2").await;
    let pagination: Value =
        serde_json::from_str(&header(&second, "x-pagination").unwrap()).unwrap();
    assert_eq!(pagination["previous_page"], 1);
    assert!(pagination.get("next_page").is_none());
    let rows = second.json::<Vec<Value>>().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["original"], "alpha");

    let default = app
        .get("/api/randomizes")
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap();
    assert_eq!(default.len(), 3);
}

/// The unfiltered total comes from a trigger-kept counter, not a scan: it must follow
/// batched creates, deletes, and rows written behind the service's back.
async fn unfiltered_total_stays_exact_whoever_writes(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let total = |response: &reqwest::Response| -> i64 {
        let pagination: Value =
            serde_json::from_str(&header(response, "x-pagination").unwrap()).unwrap();
        pagination["total"].as_i64().unwrap()
    };
    let mut creating = tokio::task::JoinSet::new();
    for n in 0..20 {
        let app = app.clone();
        creating.spawn(async move { app.create(&format!("w{n}")).await });
    }
    let created = creating.join_all().await;
    assert_eq!(total(&app.get("/api/randomizes").await), 20);

    for record in &created[..3] {
        let response = app
            .client
            .delete(app.url(&format!("/api/randomizes/{}", record["id"])))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    diesel::sql_query(
        "INSERT INTO randomizes (original, original_folded, jumbled, created, updated) \
         VALUES ('x', 'x', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    .execute(&mut app.db.connect())
    .unwrap();

    assert_eq!(total(&app.get("/api/randomizes").await), 18);
    assert_eq!(app.db.count_randomizes(), 18);
}

async fn page_past_the_end_is_an_empty_array(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create("alpha").await;

    let response = app.get("/api/randomizes?page=7").await;

    assert_eq!(response.status(), 200);
    let pagination: Value =
        serde_json::from_str(&header(&response, "x-pagination").unwrap()).unwrap();
    assert_eq!(
        pagination,
        json!({"total": 1, "total_pages": 1, "first_page": 1, "last_page": 1})
    );
    assert_eq!(
        response.json::<Vec<Value>>().await.unwrap(),
        Vec::<Value>::new()
    );
}

async fn list_filter_is_case_insensitive_and_wildcards_are_literal(backend: Backend) {
    let app = spawn_app(backend).await;
    for word in [
        "Hello",
        "HELLO_world",
        "100%sure",
        "50_50",
        r"back\slash",
        "École",
        "plain",
    ] {
        app.create(word).await;
    }
    let originals = |query: &'static str| {
        let app = &app;
        async move {
            let url = format!(
                "/api/randomizes?{}",
                serde_urlencoded::to_string([("original", query)]).unwrap()
            );
            let rows = app.get(&url).await.json::<Vec<Value>>().await.unwrap();
            let mut names: Vec<String> = rows
                .iter()
                .map(|r| r["original"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };

    assert_eq!(originals("hello").await, ["HELLO_world", "Hello"]);
    assert_eq!(originals("_").await, ["50_50", "HELLO_world"]);
    assert_eq!(originals("%").await, ["100%sure"]);
    assert_eq!(originals("\\").await, [r"back\slash"]);
    assert_eq!(originals("éCOLE").await, ["École"]);
    assert_eq!(originals("nothing").await, Vec::<String>::new());
}

async fn list_rejects_bad_paging(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, field) in [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page=%ZZ", "page"),
    ] {
        let body = assert_problem(app.get(&format!("/api/randomizes?{query}")).await, 422).await;
        assert!(body["errors"][field].is_array(), "{query}: {body}");
    }
    let body = assert_problem(
        app.get(&format!("/api/randomizes?original={}", "x".repeat(257)))
            .await,
        422,
    )
    .await;
    assert!(body["errors"]["original"].is_array());
}

#[tokio::test]
async fn unknown_query_parameters_are_422() {
    let app = spawn_app(Backend::Sqlite).await;
    let problem = assert_problem(app.get("/api/randomizes?pagesize=50").await, 422).await;
    assert!(
        problem["errors"]["pagesize"][0]
            .as_str()
            .unwrap()
            .starts_with("is not a known parameter")
    );
}
