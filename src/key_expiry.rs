//! Idempotency keys live `IDEMPOTENCY_TTL` (SPEC §13): a background job removes older
//! ones in small steps through the writer, like retention does for the history.

use std::time::Duration;

use crate::db::{Database, Done, Job, now};

/// Keys removed per step: a short transaction in the writer's queue.
const STEP: i64 = 1_000;

/// How often to look: often enough that a key outlives its TTL by at most a
/// twenty-fourth of it, at least every hour.
fn every(ttl: Duration) -> Duration {
    (ttl / 24).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

pub(crate) async fn run(db: Database, ttl: Duration) {
    let keep = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let mut ticks = tokio::time::interval(every(ttl));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let before = now()
            .checked_sub_signed(keep)
            .unwrap_or(chrono::NaiveDateTime::MIN);
        loop {
            match db
                .writer()
                .run(Job::ExpireKeys {
                    before,
                    limit: STEP,
                })
                .await
            {
                Ok(Done::Expired(removed)) if removed as i64 == STEP => continue,
                Ok(Done::Expired(removed)) => {
                    if removed > 0 {
                        tracing::debug!(removed, "idempotency keys expired");
                    }
                    break;
                }
                Ok(other) => {
                    tracing::error!(?other, "the writer answered key expiry oddly");
                    break;
                }
                // The writer's status reports a database that refuses writes.
                Err(error) => {
                    tracing::debug!(%error, "idempotency keys not expired this time");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_a_twenty_fourth_of_the_ttl_apart_within_bounds() {
        assert_eq!(
            every(Duration::from_secs(86_400)),
            Duration::from_secs(3600)
        );
        assert_eq!(every(Duration::from_secs(48)), Duration::from_secs(2));
        assert_eq!(every(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(
            every(Duration::from_secs(30 * 86_400)),
            Duration::from_secs(3600)
        );
    }
}
