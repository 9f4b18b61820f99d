//! `/metrics` for Prometheus. Not audited.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

#[utoipa::path(
    get, path = "/metrics", tag = "health", operation_id = "get_metrics",
    summary = "Prometheus metrics: requests and latency by route template, pool and writer-queue gauges",
    description = "OpenMetrics text. Request series are labelled by `method`, `route` (the route \
        template, e.g. `/api/randomizes/{id}`; `unmatched` for unknown paths) and `status`.",
    responses((status = 200, description = "The current metrics", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")),
)]
pub(crate) async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render(&state.db)
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}
