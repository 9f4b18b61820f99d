//! Audit entries (SPEC §5): what is written about a request, and the ticket that makes
//! sure it is written exactly once.
//!
//! The request middleware opens an `AuditTicket` for every `/api/` request. A handler
//! that writes passes the ticket's entry along with its write (`AuditTicket::write`), so
//! the record and its audit entry commit in the same transaction; otherwise the
//! middleware appends the entry after the handler, before the response leaves.

use std::cell::{Cell, RefCell};
use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::StatusCode;
use actix_web::http::header::USER_AGENT;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use ipnet::IpNet;

use crate::client_ip;
use crate::db::histories::NewEntry;
use crate::db::{self, Done, Job, StoreError, Writer};
use crate::digest;
use crate::error::ApiError;

pub(crate) const MAX_PATH: usize = 2048;
const MAX_QUERY: usize = 2048;
const MAX_USER_AGENT: usize = 512;
const MAX_TOKEN_ID: usize = 128;
const TRACEPARENT: &str = "traceparent";
/// What a replayed response's entry has in `query` (docs/LIFECYCLE.md).
pub(crate) const REPLAY_MARK: &str = "(idempotent replay)";

/// Only the JSON API is audited; docs, health and metrics are not.
pub(crate) fn is_audited(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

#[derive(Clone)]
pub(crate) struct AuditTicket(Rc<Ticket>);

struct Ticket {
    /// The entry as far as the request itself tells; status, duration and time are
    /// filled in when it is written.
    draft: RefCell<NewEntry>,
    started: Instant,
    written: Cell<bool>,
}

impl AuditTicket {
    /// Opens the ticket and makes it available to handlers.
    pub(crate) fn open(
        req: &ServiceRequest,
        request_id: &str,
        started: Instant,
        trusted: &[IpNet],
    ) -> Self {
        let query = req.query_string();
        let draft = NewEntry {
            request_id: request_id.to_owned(),
            method: req.method().as_str().to_owned(),
            path: sanitize(req.path(), MAX_PATH),
            query: (!query.is_empty()).then(|| sanitize(&redact_credentials(query), MAX_QUERY)),
            status: 0,
            duration_ms: 0.0,
            client_ip: client_ip::resolve(req.peer_addr(), req.headers(), trusted)
                .map(|ip| ip.to_string()),
            user_agent: req
                .headers()
                .get(USER_AGENT)
                .map(|v| sanitize(&String::from_utf8_lossy(v.as_bytes()), MAX_USER_AGENT)),
            subject: None,
            created: db::now(),
            resource_id: None,
            token_id: None,
            trace_id: req
                .headers()
                .get(TRACEPARENT)
                .and_then(|v| trace_id(v.as_bytes())),
        };
        let ticket = Self(Rc::new(Ticket {
            draft: RefCell::new(draft),
            started,
            written: Cell::new(false),
        }));
        req.extensions_mut().insert(ticket.clone());
        ticket
    }

    /// The verified caller (a JWT `sub`), once authentication has established it.
    pub(crate) fn set_subject(&self, subject: &str) {
        self.0.draft.borrow_mut().subject = Some(sanitize(subject, MAX_USER_AGENT));
    }

    /// The record the request reads, changes or deletes.
    pub(crate) fn set_resource(&self, record_id: i64) {
        self.0.draft.borrow_mut().resource_id = Some(record_id);
    }

    /// The response is a stored one replayed for an `Idempotency-Key` (SPEC §13). Said
    /// in `query`, with a space, which no request target can hold: a client cannot forge
    /// it with a query string of its own.
    pub(crate) fn mark_replay(&self) {
        let mut draft = self.0.draft.borrow_mut();
        draft.query = Some(match draft.query.take() {
            Some(query) => format!("{REPLAY_MARK} {query}"),
            None => REPLAY_MARK.to_owned(),
        });
    }

    /// The credential presented: the verified token's `jti`, else the SHA-256 of the
    /// raw token (so a stolen or forged token can be traced without storing it).
    pub(crate) fn set_token(&self, raw: &str, jti: Option<&str>) {
        let id = match jti {
            Some(jti) => sanitize(jti, MAX_TOKEN_ID),
            None => digest::sha256_hex(raw.as_bytes()),
        };
        self.0.draft.borrow_mut().token_id = Some(id);
    }

    /// The entry as it stands now, answered with `status`.
    fn entry(&self, status: StatusCode) -> NewEntry {
        let mut entry = self.0.draft.borrow().clone();
        entry.status = i32::from(status.as_u16());
        // Microsecond resolution is plenty, and keeps the stored value readable.
        entry.duration_ms = (self.0.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        entry.created = db::now();
        entry
    }

    /// Runs a handler's write with this request's entry (recorded with `status`, the
    /// status the handler answers when the write succeeds), so both commit atomically.
    pub(crate) async fn write(
        &self,
        writer: &Writer,
        status: StatusCode,
        job: impl FnOnce(NewEntry) -> Job,
    ) -> Result<Done, StoreError> {
        let done = writer.run(job(self.entry(status))).await?;
        self.0.written.set(true);
        Ok(done)
    }

    /// Appends the entry on its own, unless a handler's write already carried it.
    pub(crate) async fn append(
        &self,
        writer: &Writer,
        status: StatusCode,
    ) -> Result<(), StoreError> {
        if self.0.written.get() {
            return Ok(());
        }
        let entry = self.entry(status);
        writer.run(Job::Append { entry }).await?;
        self.0.written.set(true);
        Ok(())
    }
}

impl FromRequest for AuditTicket {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<AuditTicket>()
                .cloned()
                .ok_or_else(|| {
                    ApiError::Internal(
                        "no audit ticket: is the request middleware installed?".into(),
                    )
                }),
        )
    }
}

/// The trace id of a valid W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`; later
/// versions may append fields), lower-case hex; `None` for anything else, including
/// the all-zero ids the recommendation declares invalid.
fn trace_id(header: &[u8]) -> Option<String> {
    let mut fields = header.split(|&b| b == b'-');
    let (version, trace, parent, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let hex = |field: &[u8], len: usize| {
        field.len() == len && field.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |field: &[u8]| field.iter().any(|&b| b != b'0');
    let valid = hex(version, 2)
        && version != b"ff"
        && (version != b"00" || fields.next().is_none())
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2);
    valid.then(|| String::from_utf8_lossy(trace).into_owned())
}

/// Stored strings cannot forge lines in a log or a report: control characters (CR, LF,
/// ESC, …) become `\u{..}` escapes, and length is bounded.
/// The query with the value of every parameter whose name carries a credential
/// (`access_token=…`, `api_key=…`, `auth…=…`) replaced by `[redacted]`: refused or not,
/// a token must never become readable by everyone holding `histories:read` (SPEC §14).
pub(crate) fn redact_credentials(query: &str) -> std::borrow::Cow<'_, str> {
    if !query.split('&').any(carries_credential) {
        return query.into();
    }
    let parts: Vec<String> = query
        .split('&')
        .map(|part| match part.split_once('=') {
            Some((name, _)) if carries_credential(part) => format!("{name}=[redacted]"),
            _ => part.to_owned(),
        })
        .collect();
    parts.join("&").into()
}

/// Whether the `name=value` part's decoded name is a credential's.
fn carries_credential(part: &str) -> bool {
    let raw_name = part.split_once('=').map_or(part, |(name, _)| name);
    let name = serde_urlencoded::from_str::<Vec<(String, String)>>(raw_name)
        .ok()
        .and_then(|pairs| pairs.into_iter().next())
        .map_or_else(|| raw_name.to_ascii_lowercase(), |(n, _)| n.to_lowercase());
    const EXACT: [&str; 8] = [
        "access_token",
        "token",
        "jwt",
        "api_key",
        "apikey",
        "password",
        "secret",
        "key",
    ];
    EXACT.contains(&name.as_str())
        || name.starts_with("auth")
        || ["token", "secret", "password", "passwd"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

pub(crate) fn sanitize(raw: &str, max_chars: usize) -> String {
    let mut clean = String::with_capacity(raw.len().min(max_chars));
    for (count, c) in raw.chars().enumerate() {
        if count == max_chars {
            clean.push('…');
            break;
        }
        if c.is_control() {
            clean.push_str(&c.escape_unicode().to_string());
        } else {
            clean.push(c);
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_controls_and_truncates() {
        assert_eq!(sanitize("a\r\nb", 10), "a\\u{d}\\u{a}b");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("naïve", 10), "naïve");
    }

    #[test]
    fn credentials_in_the_query_are_redacted_by_name() {
        assert_eq!(
            redact_credentials("page=2&original=abc"),
            "page=2&original=abc"
        );
        assert_eq!(
            redact_credentials("access_token=eyJ.x.y&page=2"),
            "access_token=[redacted]&page=2"
        );
        for name in [
            "token",
            "JWT",
            "api_key",
            "apikey",
            "password",
            "secret",
            "key",
            "Authorization",
            "auth",
            "refresh_token",
            "client_secret",
            "%61ccess_token",
        ] {
            assert_eq!(
                redact_credentials(&format!("{name}=s3cr3t")),
                format!("{name}=[redacted]"),
                "{name}"
            );
        }
        assert_eq!(redact_credentials("keys=1&monkey=2"), "keys=1&monkey=2");
        // A bare name has no value to hide.
        assert_eq!(redact_credentials("token"), "token");
    }

    #[test]
    fn trace_id_comes_only_from_a_valid_traceparent() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let valid = format!("00-{trace}-00f067aa0ba902b7-01");
        assert_eq!(trace_id(valid.as_bytes()).as_deref(), Some(trace));
        let future = format!("01-{trace}-00f067aa0ba902b7-01-extra");
        assert_eq!(trace_id(future.as_bytes()).as_deref(), Some(trace));
        for invalid in [
            format!("00-{trace}-00f067aa0ba902b7-01-extra"),
            format!("ff-{trace}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{trace}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", trace.to_uppercase()),
            format!("00-{trace}-00f067aa0ba902b7"),
            "00-\r\n".to_owned(),
        ] {
            assert_eq!(trace_id(invalid.as_bytes()), None, "{invalid}");
        }
    }

    #[test]
    fn only_api_paths_are_audited() {
        assert!(is_audited("/api/randomizes"));
        assert!(is_audited("/api/unknown"));
        assert!(!is_audited("/apidocs"));
        assert!(!is_audited("/healthz"));
    }
}
