//! `Idempotency-Key` on the record writes (SPEC §13): a retry gets the first response.
//!
//! A keyed request that passed validation is first checked here: a key this process is
//! still answering is 409; a stored key answers with its response (`Idempotent-Replayed:
//! true`) if the request is the same one (method, path, `If-Match`, body), else 422.
//! Otherwise the request runs, and the writer stores its response under the key in the
//! same transaction as the write. A POST does not read the key first: its write fails
//! on the stored key instead, and that answers the same way (a fresh key costs no read;
//! a retry costs its batch a replay, job by job). Another replica's request with the same key that
//! committed first makes that transaction fail on the key's primary key
//! (`StoreError::KeyTaken`), and the stored response is the answer. Requests without the
//! header take none of these steps.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::etag;
use super::randomizes::RecordView;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use crate::audit::AuditTicket;
use crate::db::histories::NewEntry;
use crate::db::idempotency::{self, KeyClaim, StoredKey};
use crate::db::{Done, Job, StoreError};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY: usize = 255;

/// Keys this process is answering now.
#[derive(Debug, Default, Clone)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<String>>>);

/// Held while a keyed request runs; the key is free again when it drops.
#[derive(Debug)]
pub(crate) struct Claimed {
    keys: InFlight,
    key: String,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.keys.0.lock() {
            keys.remove(&self.key);
        }
    }
}

impl InFlight {
    fn claim(&self, key: &str) -> Result<Claimed, ApiError> {
        let mut keys = self
            .0
            .lock()
            .map_err(|_| ApiError::Internal("the idempotency key set is poisoned".into()))?;
        if !keys.insert(key.to_owned()) {
            return Err(ApiError::KeyInFlight);
        }
        Ok(Claimed {
            keys: self.clone(),
            key: key.to_owned(),
        })
    }
}

/// `Idempotency-Key` in the document of POST, PUT and DELETE.
pub(crate) enum KeyHeader {}

impl utoipa::IntoParams for KeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "1 to 255 visible ASCII characters, new for each new request (a UUID). A retry \
                     with the same key, method, path, `If-Match` and body gets the first response \
                     again, with `Idempotent-Replayed: true`, and changes nothing; the same key \
                     with another request is 422; while the first is still in progress, 409. \
                     Kept for `IDEMPOTENCY_TTL` (24 h).",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(MAX_KEY))
                        .pattern(Some("^[!-~]+$")),
                ))
                .build(),
        ]
    }
}

/// How a keyed write ended.
pub(crate) enum Written {
    Done(Done),
    /// Another request with the key committed first: its response.
    Replayed(HttpResponse),
}

/// Runs the request's write with its key (if any), as `AuditTicket::write` does.
pub(crate) async fn write(
    state: &AppState,
    audit: &AuditTicket,
    key: Option<(KeyClaim, Claimed)>,
    status: StatusCode,
    job: impl FnOnce(NewEntry, Option<KeyClaim>) -> Job,
) -> Result<Written, ApiError> {
    let (claim, _claimed) = key.unzip();
    let written = audit
        .write(state.db.writer(), status, |entry| job(entry, claim.clone()))
        .await;
    match (written, &claim) {
        (Ok(done), _) => Ok(Written::Done(done)),
        (Err(StoreError::KeyTaken), Some(claim)) => {
            Ok(Written::Replayed(taken(claim, state, audit).await?))
        }
        (Err(error), _) => Err(error.into()),
    }
}

/// What a keyed request does next.
pub(crate) enum Begin {
    /// Run it; with a key, the writer stores its response (the claim is held until the
    /// response is built).
    Run(Option<(KeyClaim, Claimed)>),
    /// The stored response of the first request with this key.
    Replay(HttpResponse),
}

/// The request's `Idempotency-Key`, if it sent one: 1 to 255 visible ASCII characters.
fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let problem = |message: &str| ApiError::field("Idempotency-Key", message);
    if values.next().is_some() {
        return Err(problem("must be sent once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(problem("must be 1 to 255 visible ASCII characters"));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// SHA-256 over what makes two requests the same: method, path, `If-Match` and body,
/// each length-prefixed.
fn fingerprint(req: &HttpRequest, body: &[u8]) -> Vec<u8> {
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .map_or(&[][..], |v| v.as_bytes());
    let mut hash = Sha256::new();
    for part in [
        req.method().as_str().as_bytes(),
        req.path().as_bytes(),
        if_match,
        body,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

/// How `begin` learns of a stored key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Read it first (PUT, DELETE: run again, they would answer otherwise, e.g. 404
    /// after the first delete).
    First,
    /// Only from the write's conflict on the key (POST: a create always gets as far as
    /// storing its key, so a retry fails there and replays; a fresh key costs no read).
    OnConflict,
}

/// Checks a validated request's key before it runs.
pub(crate) async fn begin(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    audit: &AuditTicket,
    lookup: Lookup,
) -> Result<Begin, ApiError> {
    let Some(key) = key_of(req)? else {
        return Ok(Begin::Run(None));
    };
    let claim = KeyClaim {
        fingerprint: fingerprint(req, body),
        key,
    };
    let claimed = state.in_flight.claim(&claim.key)?;
    if lookup == Lookup::OnConflict {
        return Ok(Begin::Run(Some((claim, claimed))));
    }
    match stored(state, &claim.key).await? {
        Some(stored) => Ok(Begin::Replay(replay(&claim, &stored, audit)?)),
        None => Ok(Begin::Run(Some((claim, claimed)))),
    }
}

/// The answer to a keyed write that lost the race to another replica's request with the
/// same key (`StoreError::KeyTaken`): that request's response.
async fn taken(
    claim: &KeyClaim,
    state: &AppState,
    audit: &AuditTicket,
) -> Result<HttpResponse, ApiError> {
    let stored = stored(state, &claim.key)
        .await?
        .ok_or_else(|| ApiError::Internal("a taken idempotency key is not stored".into()))?;
    replay(claim, &stored, audit)
}

async fn stored(state: &AppState, key: &str) -> Result<Option<StoredKey>, ApiError> {
    let key = key.to_owned();
    Ok(state
        .db
        .read(move |conn| idempotency::find(conn, &key))
        .await?)
}

/// The stored response again, if `claim` is the request that stored it.
fn replay(
    claim: &KeyClaim,
    stored: &StoredKey,
    audit: &AuditTicket,
) -> Result<HttpResponse, ApiError> {
    if stored.fingerprint != claim.fingerprint {
        return Err(ApiError::field(
            "Idempotency-Key",
            "was already used for a different request (method, path, If-Match or body); \
             use a new key for a new request",
        ));
    }
    audit.mark_replay();
    if let Some(id) = stored.record_id {
        audit.set_resource(id);
    }
    let status = StatusCode::from_u16(u16::try_from(stored.status).unwrap_or(500))
        .map_err(|_| ApiError::Internal(format!("stored status {}", stored.status)))?;
    let mut response = HttpResponse::build(status);
    response.insert_header((REPLAYED, "true"));
    Ok(match stored.record() {
        Some(record) => {
            if status == StatusCode::CREATED {
                response
                    .insert_header((header::LOCATION, format!("/api/randomizes/{}", record.id)));
            }
            response
                .insert_header((header::ETAG, etag::of(&record)))
                .json(RecordView::from(record))
        }
        None => response.finish(),
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        let with = |value: &str| {
            key_of(
                &TestRequest::default()
                    .insert_header((HEADER, value))
                    .to_http_request(),
            )
        };
        assert_eq!(
            with("order-42/retry").ok().flatten().as_deref(),
            Some("order-42/retry")
        );
        assert!(with(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", &"k".repeat(256), "tab\there"] {
            assert!(with(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            key_of(&TestRequest::default().to_http_request()).ok(),
            Some(None)
        );
    }

    #[test]
    fn the_fingerprint_tells_requests_apart() {
        let post = |path: &str| TestRequest::post().uri(path).to_http_request();
        let a = fingerprint(&post("/api/randomizes"), b"{\"word\":\"a\"}");
        assert_eq!(
            a,
            fingerprint(&post("/api/randomizes"), b"{\"word\":\"a\"}")
        );
        assert_ne!(
            a,
            fingerprint(&post("/api/randomizes"), b"{\"word\":\"b\"}")
        );
        assert_ne!(
            a,
            fingerprint(&post("/api/randomizes/1"), b"{\"word\":\"a\"}")
        );
        let matched = TestRequest::post()
            .uri("/api/randomizes")
            .insert_header((header::IF_MATCH, "\"1-1\""))
            .to_http_request();
        assert_ne!(a, fingerprint(&matched, b"{\"word\":\"a\"}"));
    }
}
