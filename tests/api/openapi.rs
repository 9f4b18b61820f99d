//! The OpenAPI document and Swagger UI (SPEC §2, §8).

use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

/// The committed `openapi.json` is the contract under review: any change to it shows in
/// the diff of the change that caused it. Refresh with `make openapi`.
#[test]
fn committed_openapi_json_is_current() {
    let generated = randomize::openapi::document().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if generated != committed {
        let actual =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openapi.actual.json");
        let _ = std::fs::write(&actual, &generated);
        let diff: Vec<String> = generated
            .lines()
            .zip(committed.lines().chain(std::iter::repeat("")))
            .enumerate()
            .filter(|(_, (new, old))| new != old)
            .take(15)
            .map(|(n, (new, old))| {
                format!("line {}:\n  committed: {old}\n  generated: {new}", n + 1)
            })
            .collect();
        panic!(
            "openapi.json is out of date (generated copy: {}). Review, then run `make openapi`.\n{}",
            actual.display(),
            diff.join("\n")
        );
    }
}

#[test]
fn every_operation_is_documented_with_problems_and_ids() {
    let doc: Value =
        serde_json::from_str(&randomize::openapi::document().to_json().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut ids = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            let verb = id.split('_').next().unwrap();
            let allowed: &[&str] = match method.as_str() {
                "get" => &["get", "list"],
                "post" => &["create"],
                "put" => &["update"],
                "delete" => &["delete"],
                _ => &[],
            };
            assert!(
                allowed.contains(&verb),
                "{method} {path}: operation id {id} is not <verb>_<resource>"
            );
            assert!(operation["summary"].is_string(), "{path} {method}");
            ids.push(id.to_owned());
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/Problem",
                        "{path} {method} {status}"
                    );
                }
            }
            let secured = operation.get("security").is_some();
            assert_eq!(
                secured,
                path.starts_with("/api/histories"),
                "bearer only on histories: {path}"
            );
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "create_randomize",
            "delete_randomize",
            "get_health",
            "get_history",
            "get_metrics",
            "get_randomize",
            "get_readiness",
            "list_checkpoints",
            "list_histories",
            "list_randomizes",
            "update_randomize"
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn docs_are_served_from_the_binary_and_not_audited() {
    let app = spawn_app(Backend::Sqlite).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let redirect = no_redirects.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    // SPEC §14: own assets only, no framing, no sniffing, no referrer.
    let header = |name: &str| page.headers()[name].to_str().unwrap().to_owned();
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("http") && !csp.contains('*'), "{csp}");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    let mut assets: Vec<String> = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in html.split(attribute).skip(1) {
            assets.push(piece.split('"').next().unwrap().to_owned());
        }
    }
    assert!(assets.len() >= 4, "{assets:?}");
    assets.push("swagger-initializer.js".into());
    for asset in &assets {
        assert!(
            !asset.starts_with("http:") && !asset.starts_with("https:") && !asset.starts_with("//"),
            "{asset}"
        );
        let url = app.url(&format!("/docs/{}", asset.trim_start_matches("./")));
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = match asset.rsplit('.').next().unwrap() {
            "js" => "javascript",
            "css" => "text/css",
            "png" => "image/png",
            other => panic!("unexpected asset type {other}"),
        };
        assert!(content_type.contains(expected), "{asset}: {content_type}");
        let body = response.text().await.unwrap_or_default();
        if asset.ends_with("initializer.js") {
            assert!(body.contains("/openapi.json"), "the UI loads our document");
            assert!(
                body.contains("\"persistAuthorization\": false")
                    || body.contains("\"persistAuthorization\":false"),
                "the token is not kept in the browser's storage: {body}"
            );
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "no absolute URL in {asset}"
            );
        }
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no absolute URL in the page"
    );

    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status(), 200);
    assert_eq!(spec.json::<Value>().await.unwrap()["openapi"], "3.1.0");
    assert!(
        app.db.histories().is_empty(),
        "docs and the spec are not audited"
    );
}
