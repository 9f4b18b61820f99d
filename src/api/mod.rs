//! HTTP routes. One file per resource; shared request parsing beside them.

mod bearer;
pub(crate) mod checkpoints;
mod csv;
mod cursor;
mod entry;
mod etag;
pub(crate) mod export;
pub(crate) mod health;
pub(crate) mod histories;
pub(crate) mod idempotency;
mod input;
pub(crate) mod metrics;
mod pagination;
mod problems;
mod query;
pub(crate) mod randomizes;
mod timestamp;

use actix_web::{HttpRequest, HttpResponse, web};

pub(crate) use cursor::CursorKey;

use crate::error::ApiError;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/randomizes")
            .route(web::get().to(randomizes::list))
            .route(web::post().to(randomizes::create))
            .default_service(not_allowed("GET, HEAD, POST")),
    )
    .service(
        web::resource("/api/randomizes/{id}")
            .route(web::get().to(randomizes::get))
            .route(web::put().to(randomizes::update))
            .route(web::delete().to(randomizes::delete))
            .default_service(not_allowed("GET, HEAD, PUT, DELETE")),
    )
    .service(
        web::resource("/api/histories")
            .route(web::get().to(histories::list))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/api/histories/checkpoints")
            .route(web::get().to(checkpoints::list))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/api/histories/{id}")
            .route(web::get().to(histories::get))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/healthz")
            .route(web::get().to(health::live))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::ready))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics::get))
            .default_service(not_allowed("GET, HEAD")),
    );
}

/// A 405 that names the methods the resource does accept (`Allow`, RFC 9110 §15.5.6).
pub(crate) fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) })
}

/// Nothing matched: a path served only to GET (the OpenAPI document and the Swagger UI,
/// whose routes answer GET alone) gets 405, anything else 404.
pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    if path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/") {
        return Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" });
    }
    Err(ApiError::NotFound)
}
