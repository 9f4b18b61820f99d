//! `RATE_LIMIT` (SPEC §14): per client IP, on the audited API only. A refused request is
//! answered 429 at once and is not recorded on its own: each client's refusals become
//! one audit entry per summary window, so a flood cannot bury the history or fill the
//! disk, and the history still says that it happened and how much.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::audit;
use crate::db::histories::NewEntry;
use crate::db::{self, Database, Job};

/// What a summary entry has in `query`: with a space, which no request target can
/// hold, so no client can forge one (as `audit::REPLAY_MARK`).
pub(crate) const SUMMARY_MARK: &str = "(rate limited)";

/// `RATE_LIMIT` parsed: `n` requests per second or minute, bursts of twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub per: Duration,
}

impl RateLimit {
    /// `200/s`, `600/m`; empty is no limit.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let (count, unit) = raw
            .split_once('/')
            .ok_or_else(|| format!("`{raw}`: expected <requests>/s or <requests>/m"))?;
        let requests = count
            .trim()
            .parse::<NonZeroU32>()
            .map_err(|_| format!("`{count}`: expected a whole number of requests, at least 1"))?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            other => return Err(format!("`{other}`: the unit is s or m")),
        };
        Ok(Some(Self { requests, per }))
    }

    fn burst(self) -> NonZeroU32 {
        self.requests
            .saturating_mul(NonZeroU32::MIN.saturating_add(1))
    }

    fn quota(self) -> Quota {
        let quota = if self.per == Duration::from_secs(1) {
            Quota::per_second(self.requests)
        } else {
            Quota::per_minute(self.requests)
        };
        quota.allow_burst(self.burst())
    }

    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): the burst over the
    /// time it takes to earn it back.
    fn policy(self) -> String {
        format!(
            "\"per-client\";q={};w={}",
            self.burst(),
            2 * self.per.as_secs()
        )
    }
}

/// A refusal: wait this long before the next request is let through.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) retry_after: Duration,
    pub(crate) policy: String,
}

/// One client's refusals since the last summary.
struct Tally {
    count: u64,
    method: String,
    path: String,
}

/// The refusals of the summary window under way.
struct Window {
    started: chrono::DateTime<Utc>,
    tallies: HashMap<IpAddr, Tally>,
}

pub(crate) struct Limiter {
    limit: RateLimit,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    refused: Mutex<Window>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            limiter: DefaultKeyedRateLimiter::keyed(limit.quota()),
            clock: DefaultClock::default(),
            refused: Mutex::new(Window {
                started: Utc::now(),
                tallies: HashMap::new(),
            }),
        }
    }

    /// Lets the request through, or counts its refusal and says when to come back.
    pub(crate) fn check(&self, client: IpAddr, method: &str, path: &str) -> Result<(), Refused> {
        let Err(not_until) = self.limiter.check_key(&client) else {
            return Ok(());
        };
        if let Ok(mut refused) = self.refused.lock() {
            refused
                .tallies
                .entry(client)
                .or_insert_with(|| Tally {
                    count: 0,
                    method: method.to_owned(),
                    path: audit::sanitize(path, audit::MAX_PATH),
                })
                .count += 1;
        }
        Err(Refused {
            retry_after: not_until.wait_time_from(self.clock.now()),
            policy: self.limit.policy(),
        })
    }

    /// The summary entries of the window that ends now, one per refused client; and the
    /// limiter forgets clients whose allowance has fully come back (bounded memory).
    fn summaries(&self) -> Vec<NewEntry> {
        let now = Utc::now();
        let (window_start, tallies) = match self.refused.lock() {
            Ok(mut refused) => (
                std::mem::replace(&mut refused.started, now),
                std::mem::take(&mut refused.tallies),
            ),
            Err(_) => (now, HashMap::new()),
        };
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let window = format!(
            "{}/{}",
            window_start.to_rfc3339_opts(SecondsFormat::Secs, true),
            now.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        tallies
            .into_iter()
            .map(|(client, tally)| {
                tracing::warn!(
                    client_ip = %client,
                    refused = tally.count,
                    window = %window,
                    "rate limit: requests refused"
                );
                NewEntry {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    method: tally.method,
                    path: tally.path,
                    query: Some(format!(
                        "{SUMMARY_MARK} refused={} window={window}",
                        tally.count
                    )),
                    status: 429,
                    duration_ms: 0.0,
                    client_ip: Some(client.to_string()),
                    user_agent: None,
                    subject: None,
                    created: db::now(),
                    resource_id: None,
                    token_id: None,
                    trace_id: None,
                }
            })
            .collect()
    }

    /// Writes the window's summaries. A failed write keeps nothing back for later: the
    /// counts are lost with the log line that says so (a flood during an outage).
    pub(crate) async fn flush(&self, db: &Database) {
        for entry in self.summaries() {
            if let Err(error) = db.writer().run(Job::Append { entry }).await {
                tracing::warn!(%error, "rate limit: cannot record the refusals' summary");
            }
        }
    }
}

/// Every `every`, the refusals of the window just ended become their summary entries.
pub(crate) async fn run(limiter: std::sync::Arc<Limiter>, db: Database, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        limiter.flush(&db).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_reads_requests_per_second_or_minute() {
        let limit = |n: u32, secs: u64| {
            Some(RateLimit {
                requests: NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
                per: Duration::from_secs(secs),
            })
        };
        assert_eq!(RateLimit::parse(""), Ok(None));
        assert_eq!(RateLimit::parse("200/s"), Ok(limit(200, 1)));
        assert_eq!(RateLimit::parse(" 600 / m "), Ok(limit(600, 60)));
        for bad in ["200", "0/s", "-1/s", "1.5/s", "10/h", "/s", "x/s"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        let policy = RateLimit::parse("200/s")
            .ok()
            .flatten()
            .map(RateLimit::policy);
        assert_eq!(policy.as_deref(), Some("\"per-client\";q=400;w=2"));
    }

    #[test]
    fn a_client_gets_its_burst_then_refusals_that_are_tallied_once() {
        let limiter = Limiter::new(RateLimit {
            requests: NonZeroU32::MIN.saturating_add(4),
            per: Duration::from_secs(60),
        });
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let allowed = (0..25)
            .filter(|_| limiter.check(a, "GET", "/api/x").is_ok())
            .count();
        assert_eq!(allowed, 10, "a burst of twice the rate");
        assert!(
            limiter.check(b, "POST", "/api/y").is_ok(),
            "clients are limited apart"
        );
        let refused = limiter.check(a, "GET", "/api/x");
        assert!(refused.is_err_and(|r| r.retry_after > Duration::ZERO));
        let summaries = limiter.summaries();
        assert_eq!(summaries.len(), 1);
        let query = summaries[0].query.clone().unwrap_or_default();
        assert!(
            query.starts_with("(rate limited) refused=16 window="),
            "{query}"
        );
        assert_eq!(summaries[0].status, 429);
        assert!(limiter.summaries().is_empty(), "each refusal counted once");
    }
}
