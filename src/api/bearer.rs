//! `Authorized<…>`: a handler argument that exists only for a verified bearer token
//! carrying the required scope (SPEC §6). It also tells the audit ticket who called,
//! once — and only once — the token has verified.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::audit::AuditTicket;
use crate::auth::{HISTORIES_READ, TokenError};
use crate::error::ApiError;
use crate::state::AppState;

/// A caller holding a valid token with the `histories:read` scope (who it is went to
/// the audit ticket).
#[derive(Debug)]
pub(crate) struct HistoriesReader;

impl FromRequest for HistoriesReader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize(req, HISTORIES_READ).map(|()| Self))
    }
}

fn invalid(detail: impl ToString) -> ApiError {
    ApiError::Unauthorized {
        invalid_token: true,
        detail: detail.to_string(),
    }
}

/// Whether the request carries a verified token with `scope`, and if not, why.
fn authorize(req: &HttpRequest, scope: &'static str) -> Result<(), ApiError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Err(ApiError::Unauthorized {
            invalid_token: false,
            detail: "send a token: Authorization: Bearer <JWT> (mint one with `randomize token`)"
                .into(),
        });
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| invalid("the Authorization header must be `Bearer <JWT>`"))?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    let verified = state
        .verifier
        .as_ref()
        .ok_or(TokenError::NoKey)
        .and_then(|verifier| verifier.verify(token));
    if let Some(ticket) = req.extensions().get::<AuditTicket>() {
        // Only a verified token's `jti` names it: anyone can write one into a forgery.
        ticket.set_token(token, verified.as_ref().ok().and_then(|c| c.jti.as_deref()));
        if let Ok(claims) = &verified {
            ticket.set_subject(&claims.sub);
        }
    }
    let claims = verified.map_err(invalid)?;
    if !claims.has_scope(scope) {
        return Err(ApiError::Forbidden { scope });
    }
    Ok(())
}
