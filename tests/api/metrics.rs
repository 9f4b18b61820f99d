//! `/metrics` (SPEC §2): Prometheus text labelled by route template, pool and writer
//! gauges, and never audited.

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(metrics_count_requests_by_route_template);

async fn metrics_count_requests_by_route_template(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.create("alpha").await;
    let second = app.create("beta").await;
    for record in [&first, &second] {
        let path = format!("/api/randomizes/{}", record["id"]);
        assert_eq!(app.get(&path).await.status(), 200);
    }
    assert_eq!(app.get("/api/randomizes/999999").await.status(), 404);
    assert_eq!(app.get("/no/such/route/42").await.status(), 404);

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();

    for line in [
        r#"http_requests_total{method="POST",route="/api/randomizes",status="201"} 2"#,
        r#"http_requests_total{method="GET",route="/api/randomizes/{id}",status="200"} 2"#,
        r#"http_requests_total{method="GET",route="/api/randomizes/{id}",status="404"} 1"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_count{method="GET",route="/api/randomizes/{id}",status="200"} 2"#,
        r#"http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/randomizes/{id}",status="200"} 2"#,
        "db_pool_max_connections 4",
        "db_writer_queue_jobs 0",
        // Five requests under /api/ (the unmatched path is outside it), none purged.
        "audit_entries_appended_total 5",
        "audit_entries_purged_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(text.contains("db_pool_connections "), "{text}");
    assert!(text.contains("db_pool_idle_connections "), "{text}");
    assert!(text.contains(r#"randomize_build_info{version=""#), "{text}");
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    assert!(gauge("db_size_bytes") > 0.0);
    // Every one of the five audited requests was a job of some batch (the service's own
    // upkeep, such as the key expiry, adds its own); each batch has one duration, and
    // the bucket lines of both histograms are cumulative.
    let batches = gauge("db_writer_batch_jobs_count");
    assert!(batches >= 1.0, "{text}");
    assert!(gauge("db_writer_batch_jobs_sum") >= 5.0, "{text}");
    assert_eq!(gauge("db_writer_batch_duration_seconds_count"), batches);
    assert!(
        gauge("db_writer_batch_duration_seconds_sum") > 0.0,
        "{text}"
    );
    for name in ["db_writer_batch_jobs", "db_writer_batch_duration_seconds"] {
        let buckets: Vec<f64> = text
            .lines()
            .filter_map(|l| {
                l.strip_prefix(&format!("{name}_bucket{{"))?
                    .rsplit(' ')
                    .next()
            })
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(buckets.len(), 16, "{name}:\n{text}");
        assert!(
            buckets.is_sorted(),
            "{name} buckets not cumulative:\n{text}"
        );
        assert_eq!(buckets.last(), Some(&batches), "{name}:\n{text}");
    }
    let age = gauge("audit_oldest_entry_age_seconds");
    assert!((0.0..60.0).contains(&age), "{age}");
    // Raw paths (ids, unknown URLs) never become label values.
    assert!(
        !text.contains("/api/randomizes/999999") && !text.contains("/no/such"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));

    let second_scrape = app.get("/metrics").await.text().await.unwrap();
    assert!(second_scrape.contains(r#"route="/metrics",status="200"} 1"#));
    assert!(
        app.db.histories().iter().all(|h| h.path != "/metrics"),
        "/metrics is not audited"
    );
}
