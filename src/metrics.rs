//! Prometheus metrics (SPEC §2 `/metrics`, §11): requests and latency by method, route
//! template and status; the database pool, writer queue, database size and the age of
//! the oldest audit entry, sampled at scrape time; and the writer's counters (entries
//! appended and purged, failures by cause), read from its status.
//!
//! Labels come only from bounded sets — the route *template* (`/api/randomizes/{id}`,
//! never the raw path), a fixed list of methods and the status code — so no client can
//! grow the number of series.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::db::{Database, WriterStatus};

/// The exposition format `render` produces.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Requests that matched no route share one label value.
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    writer_queue: Gauge,
    db_size: Gauge,
    oldest_entry_age: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// What `/metrics` reads from the database at scrape time; `None` when it could not.
#[derive(Debug, Default)]
pub(crate) struct Sampled {
    pub(crate) size_bytes: Option<i64>,
    pub(crate) oldest_entry_age: Option<Duration>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s: our handlers answer in well under a millisecond to a few ms.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Metrics {
    pub(crate) fn new(writer: Arc<WriterStatus>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let (pool_connections, pool_idle, pool_max, writer_queue) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request received to response ready, by method, route template and status",
            duration.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Read-pool connections open (idle + in use)",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Read-pool connections idle",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Read-pool size limit (DATABASE_POOL_SIZE)",
            pool_max.clone(),
        );
        registry.register(
            "db_writer_queue_jobs",
            "Writes waiting for the group-commit writer",
            writer_queue.clone(),
        );
        let db_size = Gauge::default();
        registry.register(
            "db_size_bytes",
            "Size of the database (SQLite: its pages, without the WAL; PostgreSQL: pg_database_size)",
            db_size.clone(),
        );
        let oldest_entry_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "audit_oldest_entry_age_seconds",
            "Age of the oldest audit entry held (what AUDIT_RETENTION bounds); 0 when none",
            oldest_entry_age.clone(),
        );
        registry.register_collector(Box::new(WriterCounters(writer)));
        registry.register(
            "randomize_build",
            "The running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            requests,
            duration,
            pool_connections,
            pool_idle,
            pool_max,
            writer_queue,
            db_size,
            oldest_entry_age,
        }
    }

    /// Counts one answered request. `route` is the matched template, if any.
    pub(crate) fn observe(
        &self,
        method: &Method,
        route: Option<String>,
        status: StatusCode,
        took: Duration,
    ) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.unwrap_or_else(|| UNMATCHED.to_owned()),
            status: status.as_u16(),
        };
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text, with the gauges sampled now.
    pub(crate) fn render(
        &self,
        db: &Database,
        sampled: Sampled,
    ) -> Result<String, std::fmt::Error> {
        if let Some(bytes) = sampled.size_bytes {
            self.db_size.set(bytes);
        }
        if let Some(age) = sampled.oldest_entry_age {
            self.oldest_entry_age.set(age.as_secs_f64());
        }
        let pool = db.pool_state();
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_idle.set(i64::from(pool.idle_connections));
        self.pool_max.set(i64::from(db.pool_max_size()));
        self.writer_queue
            .set(i64::try_from(db.writer().queued()).unwrap_or(i64::MAX));
        let mut text = String::with_capacity(8 * 1024);
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

/// The writer's own counts, read at scrape time: the writer keeps plain atomics and
/// knows nothing of Prometheus.
#[derive(Debug)]
struct WriterCounters(Arc<WriterStatus>);

impl Collector for WriterCounters {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "audit_entries_appended",
                "Audit entries the writer committed",
                self.0.appended_total(),
            ),
            (
                "audit_entries_purged",
                "Audit entries removed by retention (AUDIT_RETENTION or `randomize audit purge`)",
                self.0.purged_total(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let failures = self.0.failures();
        let mut family = encoder.encode_descriptor(
            "db_writer_failures",
            "Writes that failed, by cause (disk_full, read_only, io_error, unavailable, locked, query, internal)",
            None,
            MetricType::Counter,
        )?;
        for (cause, count) in failures {
            let labels = CauseLabels { cause };
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        let (jobs, seconds) = self.0.batches();
        for (name, help, snapshot) in [
            (
                "db_writer_batch_jobs",
                "Jobs (writes, reads, audit entries) the writer stored per batch",
                jobs,
            ),
            (
                "db_writer_batch_duration_seconds",
                "Time to store and commit one batch; every API request waits for one or two",
                seconds,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Histogram)?
                .encode_histogram::<NoLabelSet>(
                    snapshot.sum,
                    snapshot.count,
                    &snapshot.buckets,
                    None,
                )?;
        }
        // Absent until this process took one: a 0 would read as "1970", not "never".
        if let Some(at) = self.0.last_checkpoint() {
            let gauge = ConstGauge::new(at);
            gauge.encode(encoder.encode_descriptor(
                "audit_last_checkpoint_timestamp_seconds",
                "When this process last recorded a signed audit checkpoint (Unix time)",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Standard methods by name; anything else (extension methods) as one value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        let custom = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "OTHER");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }
}
