//! The request pipeline every request passes through, outermost first:
//! request id → handler → problem+json for any error → audit entry (API only, committed
//! before the response leaves) → one log line.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use tracing::Instrument;

use crate::audit::{self, AuditTicket};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::request_id;
use crate::state::AppState;

pub(crate) async fn pipeline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id::from_headers(req.headers());
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()).into());
    };
    let ticket = audit::is_audited(req.path())
        .then(|| AuditTicket::open(&req, &id, started, &state.trusted_proxies));
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id);

    let response = request_id::scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();
    let mut response = as_problem(response, &id, state.max_body_bytes);

    if let Some(ticket) = ticket
        && let Err(error) = ticket.append(state.db.writer(), response.status()).await
    {
        // No entry, no acknowledgement: the client must not take this answer as done.
        let failure = ApiError::from(error).to_response(Some(&id));
        let (request, _) = response.into_parts();
        response = ServiceResponse::new(request, failure);
    }

    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(request_id::HEADER), value);
    }
    let request = response.request();
    let route = request.match_pattern();
    span.in_scope(|| {
        tracing::info!(
            target: "randomize::http",
            method = %method,
            route = route.as_deref().unwrap_or("-"),
            path = request.path(),
            status = response.status().as_u16(),
            duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            request_id = %id,
            "request"
        );
    });
    state
        .metrics
        .observe(&method, route, response.status(), started.elapsed());
    Ok(response)
}

/// Errors actix raises itself (oversized payloads, unknown routes) come out as
/// plain text; rewrite any error response that is not yet problem+json.
fn as_problem(
    response: ServiceResponse<BoxBody>,
    id: &str,
    body_limit: usize,
) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let detail = response
        .response()
        .error()
        .map(ToString::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let problem = ApiError::from_foreign(status, detail, body_limit).to_response(Some(id));
    let (request, _) = response.into_parts();
    ServiceResponse::new(request, problem)
}
