//! `RATE_LIMIT` (SPEC §14): 429 with `Retry-After` and the RateLimit headers beyond a
//! client's share; refusals are summarised, one audit entry per client and window.

use randomize::rate_limit::RateLimit;
use randomize::startup::Application;

use crate::both_backends;
use crate::helpers::{Backend, TestDb, assert_problem, init_test_logging, server_config};

both_backends!(a_flood_is_refused_and_summarised_not_recorded_request_by_request);

async fn a_flood_is_refused_and_summarised_not_recorded_request_by_request(backend: Backend) {
    init_test_logging();
    let db = TestDb::new(backend);
    db.migrate();
    let mut config = server_config(&db);
    config.rate_limit = RateLimit::parse("5/m").unwrap();
    let app = Application::build(config).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let stopper = app.stopper();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let mut served = 0;
    let mut refused = 0;
    for _ in 0..200 {
        let response = client
            .get(format!("{base}/api/randomizes"))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => served += 1,
            429 => {
                if refused == 0 {
                    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
                    let wait: u64 = header("retry-after").parse().unwrap();
                    assert!((1..=12).contains(&wait), "{wait}");
                    assert_eq!(header("ratelimit-policy"), "\"per-client\";q=10;w=120");
                    assert_eq!(header("ratelimit"), format!("\"per-client\";r=0;t={wait}"));
                    assert_problem(response, 429).await;
                }
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(served, 10, "the burst: twice the rate");
    assert_eq!(refused, 190);
    let probe = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(probe.status(), 200, "probes are never limited");

    // The window under way is summarised when the server stops, as at each minute.
    stopper.stop().await;
    server.await.unwrap().unwrap();
    let entries = db.histories();
    let summaries: Vec<_> = entries.iter().filter(|e| e.status == 429).collect();
    assert_eq!(
        summaries.len(),
        1,
        "one entry for the client's window, not one per request"
    );
    let summary = summaries[0];
    let query = summary.query.as_deref().unwrap_or_default();
    assert!(
        query.starts_with("(rate limited) refused=190 window="),
        "{query}"
    );
    assert_eq!(summary.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (summary.method.as_str(), summary.path.as_str()),
        ("GET", "/api/randomizes")
    );
    assert_eq!(
        entries.len(),
        11,
        "the served requests and the summary, nothing else"
    );
}
