//! Probes for Kubernetes: liveness (the process answers) and readiness (the database
//! answers, the schema is current, and we are not shutting down). Not audited.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::db::{StoreError, migrations};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::NotReady("shutting down"));
    }
    let current = state
        .db
        .read(|conn| {
            migrations::is_current(conn).map_err(|e| StoreError::Unavailable(format!("{e:#}")))
        })
        .await
        .map_err(|e| match e {
            StoreError::Unavailable(_) => ApiError::NotReady("the database does not answer"),
            other => ApiError::from(other),
        })?;
    if !current {
        return Err(ApiError::NotReady(
            "migrations are pending; run `randomize migrate`",
        ));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": state.db.backend()})))
}
