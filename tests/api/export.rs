//! The streamed export (SPEC §11): NDJSON and CSV hold exactly what the JSON list
//! holds for the same filters, hostile field content survives quoting, formulas are
//! defused, and `randomize audit export` writes the same from the database.

use serde_json::{Value, json};

use crate::bearer::token;
use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_problem, spawn_app_with_jwt};

both_backends!(
    exports_hold_what_the_json_list_holds,
    an_export_refuses_paging,
    the_cli_export_writes_every_entry
);

/// User agents a spreadsheet or a naive CSV reader would trip on.
const HOSTILE: [&str; 5] = [
    "=cmd|' /C calc'!A0",
    "a,b \"quoted\", c",
    "+SUM(1,2)",
    "@import",
    "-1,\"",
];

async fn hostile_history(app: &TestApp) {
    for agent in HOSTILE {
        let created = app
            .client
            .post(app.url("/api/randomizes"))
            .header("user-agent", agent)
            .json(&json!({"word": "export"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        // A 422 with a query string of commas and quotes.
        let refused = app
            .client
            .get(app.url("/api/randomizes?x=1,%22y%22"))
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422);
    }
}

async fn export(app: &TestApp, query: &str, accept: &str, auth: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/histories{query}")))
        .header("accept", accept)
        .bearer_auth(auth)
        .send()
        .await
        .unwrap()
}

/// RFC 4180 records: quoted cells may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "every record ends in CRLF"
    );
    rows
}

/// A JSON value as the CSV shows it: text defused when it could start a formula.
fn as_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            format!("'{text}")
        }
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

async fn exports_hold_what_the_json_list_holds(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    hostile_history(&app).await;
    let auth = token(json!({}));

    for filter in ["path=/api/randomizes", "status=422", "method=POST"] {
        let listed: Vec<Value> = app
            .get_histories(
                &format!("/api/histories?{filter}&order=asc&page_size=100"),
                Some(&auth),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(!listed.is_empty(), "{filter}");

        let ndjson = export(&app, &format!("?{filter}"), "application/x-ndjson", &auth).await;
        assert_eq!(ndjson.status(), 200);
        assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
        let text = ndjson.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines, listed, "NDJSON for {filter}");

        let csv = export(&app, &format!("?{filter}"), "text/csv", &auth).await;
        assert_eq!(csv.status(), 200);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let rows = parse_csv(&csv.text().await.unwrap());
        let header = &rows[0];
        let keys: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
        assert_eq!(header.len(), keys.len());
        assert_eq!(rows.len() - 1, listed.len(), "CSV for {filter}");
        for (row, entry) in rows[1..].iter().zip(&listed) {
            for (column, cell) in header.iter().zip(row) {
                assert_eq!(cell, &as_cell(&entry[column]), "{column} of {entry}");
            }
        }
    }
    let agents: Vec<String> = app
        .db
        .histories()
        .into_iter()
        .filter_map(|e| e.user_agent)
        .collect();
    for agent in HOSTILE {
        assert!(agents.iter().any(|a| a == agent), "{agent} stored as sent");
    }
    // Each export is one entry of its own (three filters, two formats).
    let exports = app
        .db
        .histories()
        .into_iter()
        .filter(|e| e.path == "/api/histories" && e.status == 200)
        .count();
    assert_eq!(exports, 3 + 6);
}

async fn an_export_refuses_paging(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    let auth = token(json!({}));
    for query in ["?page=2", "?page_size=5", "?cursor=abc"] {
        let refused = export(&app, query, "application/x-ndjson", &auth).await;
        let problem = assert_problem(refused, 422).await;
        let name = &query[1..query.find('=').unwrap()];
        assert!(problem["errors"][name].is_array(), "{problem}");
    }
    let unauthorised = app
        .client
        .get(app.url("/api/histories"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_problem(unauthorised, 401).await;
}

async fn the_cli_export_writes_every_entry(backend: Backend) {
    let app = spawn_app_with_jwt(backend, |_| {}).await;
    hostile_history(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.ndjson");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_randomize"))
        .args(["audit", "export", "--format", "ndjson", "--output"])
        .arg(&file)
        .env("DATABASE_URL", &app.db.url)
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stored = app.db.histories();
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("exported {} entries", stored.len())),
        "{output:?}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exported: Vec<i64> = lines.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    let mut ids: Vec<i64> = stored.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    assert_eq!(exported, ids, "every entry, oldest first");
    let agents: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["user_agent"].as_str())
        .collect();
    assert!(agents.contains(&HOSTILE[1]));
}
