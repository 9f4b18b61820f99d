//! `/metrics` for Prometheus. Not audited.

use actix_web::{HttpResponse, web};

use crate::db::{footprint, now};
use crate::error::ApiError;
use crate::metrics::{CONTENT_TYPE, Sampled};
use crate::state::AppState;

#[utoipa::path(
    get, path = "/metrics", tag = "health", operation_id = "get_metrics",
    summary = "Prometheus metrics: requests and latency by route template, pool, writer, database size and audit retention",
    description = "OpenMetrics text. Request series are labelled by `method`, `route` (the route \
        template, e.g. `/api/randomizes/{id}`; `unmatched` for unknown paths) and `status`.",
    responses((status = 200, description = "The current metrics", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")),
)]
pub(crate) async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sampled = state
        .db
        .read(|conn| Ok((footprint::size_bytes(conn)?, footprint::oldest_entry(conn)?)))
        .await
        // A scrape still answers when the database does not: its gauges keep their
        // last values, and the writer's failure counters say why.
        .map(|(size, oldest)| Sampled {
            size_bytes: Some(size),
            oldest_entry_age: Some(
                oldest
                    .map(|at| (now() - at).to_std().unwrap_or_default())
                    .unwrap_or_default(),
            ),
        })
        .unwrap_or_default();
    let text = state
        .metrics
        .render(&state.db, sampled)
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}
