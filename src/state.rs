//! What every handler and the request middleware share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;

use crate::api::CursorKey;
use crate::auth::SharedVerifier;
use crate::config::ServerConfig;
use crate::db::Database;
use crate::metrics::Metrics;

pub(crate) struct AppState {
    pub(crate) db: Database,
    pub(crate) draining: Draining,
    pub(crate) metrics: Metrics,
    /// `None`: no key configured, every histories request is refused.
    pub(crate) verifier: SharedVerifier,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) max_word_graphemes: usize,
    pub(crate) max_body_bytes: usize,
    /// How long a request's body may take to arrive (`REQUEST_TIMEOUT`).
    pub(crate) request_timeout: std::time::Duration,
    /// `RATE_LIMIT`, when set.
    pub(crate) limiter: Option<Arc<crate::rate_limit::Limiter>>,
    /// Read from the database on first use (`api::cursor::key`).
    pub(crate) cursor_key: tokio::sync::OnceCell<CursorKey>,
    /// `Idempotency-Key`s this process is answering now (409 for a second one).
    pub(crate) in_flight: crate::api::idempotency::InFlight,
}

impl AppState {
    pub(crate) fn new(
        config: &ServerConfig,
        db: Database,
        draining: Draining,
        limiter: Option<Arc<crate::rate_limit::Limiter>>,
    ) -> Self {
        Self {
            limiter,
            metrics: Metrics::new(Arc::clone(db.writer().status())),
            db,
            draining,
            verifier: config.verifier.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            max_word_graphemes: config.max_word_graphemes,
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            cursor_key: tokio::sync::OnceCell::new(),
            in_flight: Default::default(),
        }
    }
}

/// Set once shutdown begins, so readiness fails while in-flight requests finish.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draining(Arc<AtomicBool>);

impl Draining {
    pub(crate) fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
