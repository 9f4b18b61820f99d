//! What every handler and the request middleware share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;

use crate::auth::SharedVerifier;
use crate::db::Database;
use crate::metrics::Metrics;

pub struct AppState {
    pub db: Database,
    pub draining: Draining,
    pub metrics: Metrics,
    /// `None`: no key configured, every histories request is refused.
    pub verifier: SharedVerifier,
    pub trusted_proxies: Vec<IpNet>,
    pub max_word_graphemes: usize,
    pub max_body_bytes: usize,
}

/// Set once shutdown begins, so readiness fails while in-flight requests finish.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
