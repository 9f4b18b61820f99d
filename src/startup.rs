//! Building and running the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::api;
use crate::config::ServerConfig;
use crate::db::Database;
use crate::middleware::pipeline;
use crate::state::{AppState, Draining};
use crate::{checkpoints, key_expiry, rate_limit, retention};

pub struct Application {
    server: Server,
    port: u16,
    db: Database,
    draining: Draining,
    /// The retention job, when AUDIT_RETENTION is set.
    retention: Option<tokio::task::JoinHandle<()>>,
    checkpoints: tokio::task::JoinHandle<()>,
    key_expiry: tokio::task::JoinHandle<()>,
    /// The rate limiter's summary job, when RATE_LIMIT is set.
    summaries: Option<(Arc<rate_limit::Limiter>, tokio::task::JoinHandle<()>)>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and prepares the server. Does not
    /// touch the database: the server starts even when it is down (readiness says so).
    pub fn build(config: ServerConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.bind)
            .with_context(|| format!("BIND: cannot listen on {}", config.bind))?;
        let port = listener
            .local_addr()
            .context("BIND: no local address")?
            .port();
        let db = Database::open(&config.database, config.audit_signing_key.clone());
        if config.audit_signing_key.is_none() {
            tracing::warn!(
                "no AUDIT_SIGNING_KEY configured: audit checkpoints are recorded unsigned, so they prove nothing against someone who can write the database"
            );
        }
        let draining = Draining::default();
        if config.verifier.is_none() {
            tracing::warn!(
                "no JWT key configured (JWT_SECRET or JWT_PUBLIC_KEY): every /api/histories request will get 401"
            );
        }
        let limiter = config
            .rate_limit
            .map(|limit| Arc::new(rate_limit::Limiter::new(limit)));
        let state = web::Data::new(AppState::new(
            &config,
            db.clone(),
            draining.clone(),
            limiter.clone(),
        ));
        let document = crate::openapi::document_for(config.max_word_graphemes);
        let origins = config.cors_allowed_origins.clone();
        let body_limit = config.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .configure(api::routes)
                .configure(|cfg| crate::openapi::routes(cfg, document.clone()))
                .default_service(web::to(api::not_found))
                // Inside the pipeline: CORS answers (preflights, refusals) get a request
                // id, problem+json, a log line and, under /api/, an audit entry.
                .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
                .wrap(from_fn(pipeline))
        })
        .workers(config.workers)
        // The headers' deadline; the body's is the pipeline's (`body_deadline`).
        .client_request_timeout(config.request_timeout)
        .shutdown_timeout(config.shutdown_timeout.as_secs().max(1))
        // Signals are ours: readiness must fail before the server stops accepting.
        .disable_signals()
        .listen(listener)
        .context("BIND: cannot serve on the listener")?
        .run();
        tracing::info!(
            port,
            workers = config.workers,
            database = db.backend(),
            "listening"
        );
        let retention = config
            .audit_retention
            .map(|keep| tokio::spawn(retention::run(db.clone(), keep, draining.clone())));
        let checkpoints = tokio::spawn(checkpoints::run(db.clone(), config.checkpoint_interval));
        let summaries = limiter.as_ref().map(|limiter| {
            let every = config.rate_limit_summary_every;
            (
                Arc::clone(limiter),
                tokio::spawn(rate_limit::run(Arc::clone(limiter), db.clone(), every)),
            )
        });
        let key_expiry = tokio::spawn(key_expiry::run(db.clone(), config.idempotency_ttl));
        Ok(Self {
            server,
            port,
            db,
            draining,
            retention,
            checkpoints,
            key_expiry,
            summaries,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully, as SIGTERM does.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            draining: self.draining.clone(),
        }
    }

    /// Serves until SIGTERM / SIGINT (or `Stopper::stop`), then drains in-flight
    /// requests (bounded by `SHUTDOWN_TIMEOUT`) and flushes the writer.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stopper = self.stopper();
        let signals = tokio::spawn(async move {
            if let Some(signal) = wait_for_signal().await {
                tracing::info!(signal, "shutting down: draining in-flight requests");
                stopper.stop().await;
            }
        });
        let served = self.server.await;
        signals.abort();
        if let Some(retention) = self.retention {
            // A step already queued still commits: the writer drains before it stops.
            retention.abort();
        }
        // The writer takes the shutdown checkpoint as it stops.
        self.checkpoints.abort();
        self.key_expiry.abort();
        if let Some((limiter, job)) = self.summaries {
            job.abort();
            // The refusals of the last, unfinished window are recorded too.
            limiter.flush(&self.db).await;
        }
        self.db.shutdown().await;
        tracing::info!("stopped");
        served.context("server error")
    }
}

#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    draining: Draining,
}

impl Stopper {
    pub async fn stop(&self) {
        self.draining.start();
        self.handle.stop(true).await;
    }
}

async fn wait_for_signal() -> Option<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok()?;
    let mut int = signal(SignalKind::interrupt()).ok()?;
    tokio::select! {
        _ = term.recv() => Some("SIGTERM"),
        _ = int.recv() => Some("SIGINT"),
    }
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            "content-type",
            "authorization",
            "if-match",
            "if-none-match",
            "idempotency-key",
            "x-request-id",
        ])
        .expose_headers(["etag", "location", "link", "x-pagination", "x-request-id"])
        // A disallowed origin simply gets no CORS headers; the browser enforces it.
        .block_on_origin_mismatch(false)
        .max_age(Some(Duration::from_secs(3600).as_secs() as usize));
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin().send_wildcard()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}
