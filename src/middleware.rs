//! The request pipeline every request passes through, outermost first:
//! request id → refusal of ambiguous requests → CORS → handler → problem+json for any
//! error → audit entry (API only, committed before the response leaves) → one log line.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use actix_web::http::{ConnectionType, Method};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use tracing::Instrument;

use crate::audit::{self, AuditTicket};
use crate::body_deadline::{self, TimedOut};
use crate::client_ip;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::request_id;
use crate::state::AppState;

/// How much of a path one log line keeps: the audit keeps more, the log must not grow
/// by what any client chooses to send.
const MAX_LOGGED_PATH: usize = 256;
/// Longest request target (path and query) served: 414 beyond.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) served: 431 beyond.
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub(crate) async fn pipeline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id::from_headers(req.headers());
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()).into());
    };
    let audited = audit::is_audited(req.path());
    if audited && let Some(error) = rate_limited(&req, &state) {
        // No entry and no log line of its own: the limiter's summary records it.
        let mut response = req.into_response(error.to_response(Some(&id)));
        set_request_id(&mut response, &id);
        let route = response.request().match_pattern();
        state.metrics.observe(
            response.request().method(),
            route,
            response.status(),
            started.elapsed(),
        );
        return Ok(response);
    }
    let ticket = audited.then(|| AuditTicket::open(&req, &id, started, &state.trusted_proxies));
    let method = req.method().clone();
    if method == Method::HEAD {
        // HEAD is GET without the body (RFC 9110 §9.3.2) wherever GET is served: routed
        // as GET; the HTTP layer still knows it was HEAD and sends the head only.
        req.head_mut().method = Method::GET;
    }
    let span = tracing::info_span!("request", request_id = %id);
    let timed_out = TimedOut::default();
    let deadline = tokio::time::Instant::from_std(started) + state.request_timeout;
    let payload = req.take_payload();
    req.set_payload(body_deadline::bounded(payload, deadline, timed_out.clone()));

    let response = match refusal(req.uri(), req.headers()) {
        Some(error) => req.into_response(error.to_response(Some(&id))),
        None => request_id::scope(id.clone(), next.call(req))
            .instrument(span.clone())
            .await?
            .map_into_boxed_body(),
    };
    let mut response = if timed_out.happened() {
        let (request, _) = response.into_parts();
        let mut timeout = ApiError::RequestTimeout(state.request_timeout).to_response(Some(&id));
        // The rest of the body may still be on its way: this connection is done.
        timeout
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        ServiceResponse::new(request, timeout)
    } else {
        as_problem(response, &id, state.max_body_bytes)
    };
    if is_docs(response.request().path()) {
        add_docs_headers(response.headers_mut());
    }

    if let Some(ticket) = ticket
        && let Err(error) = ticket.append(state.db.writer(), response.status()).await
    {
        // No entry, no acknowledgement: the client must not take this answer as done.
        let failure = ApiError::from(error).to_response(Some(&id));
        let (request, _) = response.into_parts();
        response = ServiceResponse::new(request, failure);
    }

    set_request_id(&mut response, &id);
    let request = response.request();
    let route = request.match_pattern();
    span.in_scope(|| {
        tracing::info!(
            target: "randomize::http",
            method = %method,
            route = route.as_deref().unwrap_or("-"),
            path = %audit::sanitize(request.path(), MAX_LOGGED_PATH),
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

fn set_request_id(response: &mut ServiceResponse<BoxBody>, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(request_id::HEADER), value);
    }
}

/// `RATE_LIMIT`: the refusal for a client over its share, if it is.
fn rate_limited(req: &ServiceRequest, state: &AppState) -> Option<ApiError> {
    let limiter = state.limiter.as_ref()?;
    let client = client_ip::resolve(req.peer_addr(), req.headers(), &state.trusted_proxies)?;
    let refused = limiter
        .check(client, req.method().as_str(), req.path())
        .err()?;
    Some(ApiError::RateLimited {
        retry_after_secs: refused.retry_after.as_secs_f64().ceil().max(1.0) as u64,
        policy: refused.policy,
    })
}

/// Requests whose meaning is ambiguous are refused before any handler reads them
/// (SPEC §14): which of two credentials counts, or a body in an encoding this server
/// does not decode (taking it as plain bytes would store what the client did not mean).
fn refusal(uri: &actix_web::http::Uri, headers: &HeaderMap) -> Option<ApiError> {
    // Below the HTTP layer's own limits (which answer bare, unaudited): here the answer
    // is the contract's and the history says it happened.
    if uri.path_and_query().map_or(0, |pq| pq.as_str().len()) > MAX_URI_BYTES {
        return Some(ApiError::Client {
            status: actix_web::http::StatusCode::URI_TOO_LONG,
            detail: format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        });
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::Client {
            status: actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail: format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        });
    }
    if headers.get_all(AUTHORIZATION).nth(1).is_some() {
        return Some(ApiError::BadRequest(
            "send one Authorization header, not several".into(),
        ));
    }
    let encodings = headers.get_all(CONTENT_ENCODING).collect::<Vec<_>>();
    let identity = encodings.iter().all(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .all(|coding| coding.trim().eq_ignore_ascii_case("identity"))
        })
    });
    (!identity).then(|| {
        ApiError::UnsupportedMediaType(
            "Content-Encoding must be identity: send the body uncompressed".into(),
        )
    })
}

fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// The Swagger UI page loads only its own (vendored) assets and talks only to this
/// origin; nothing may frame it (clickjacking a page that holds a token).
fn add_docs_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
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
