//! Probes for Kubernetes: liveness (the process answers) and readiness (the database
//! answers and takes writes, the schema is current, and we are not shutting down).
//! Not audited.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::problems::ProblemResponse;
use crate::db::{Job, StoreError, migrations};
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get, path = "/healthz", tag = "health", operation_id = "get_health",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))),
)]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(
    get, path = "/readyz", tag = "health", operation_id = "get_readiness",
    summary = "Readiness: the database answers and takes writes, migrations are applied, not shutting down",
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"status": "ready", "database": "sqlite"})),
        ProblemResponse<503>,
    ),
)]
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::NotReady("shutting down".into()));
    }
    if let Some(refused) = state.db.writer().status().refused_now() {
        // Kubernetes sends no traffic while this fails, so only this probe can find out
        // that writes work again: it tries one.
        if state.db.writer().run(Job::Probe).await.is_err() {
            return Err(ApiError::NotReady(
                format!(
                    "the database cannot take writes: {} (for {} s; {} writes refused)",
                    refused.cause,
                    refused.for_.as_secs(),
                    refused.requests
                )
                .into(),
            ));
        }
    }
    let current = state
        .db
        .read(|conn| {
            migrations::is_current(conn).map_err(|e| StoreError::Unavailable(format!("{e:#}")))
        })
        .await
        .map_err(|e| match e {
            // The probe's answer stays vague (anyone may call it); the operator needs the
            // cause, e.g. a role that may not read the migrations table.
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "not ready: cannot read the schema version");
                ApiError::NotReady("the database does not answer".into())
            }
            other => ApiError::from(other),
        })?;
    if !current {
        return Err(ApiError::NotReady(
            "migrations are pending; run `randomize migrate`".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": state.db.backend()})))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::{App, test, web};

    use super::*;
    use crate::config::ServerConfig;
    use crate::db::{Database, DatabaseConfig, DatabaseUrl, SqliteSynchronous};
    use crate::state::Draining;

    #[actix_web::test]
    async fn readiness_fails_while_draining_even_before_touching_the_database() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = DatabaseUrl::parse(&dir.path().join("db.sqlite3").display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let config = ServerConfig::local(DatabaseConfig {
            url,
            pool_size: 1,
            timeout: Duration::from_secs(1),
            sqlite_synchronous: SqliteSynchronous::Full,
        });
        let draining = Draining::default();
        draining.start();
        let db = Database::open(&config.database, None);
        let state = web::Data::new(AppState::new(&config, db, draining, None));
        let app = test::init_service(
            App::new()
                .app_data(state.clone())
                .route("/readyz", web::get().to(ready)),
        )
        .await;

        let response =
            test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;

        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        state.db.shutdown().await;
    }
}
