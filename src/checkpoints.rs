//! The periodic checkpoint (SPEC §12): every `CHECKPOINT_INTERVAL` the writer signs its
//! chain's tip, if the chain grew since the last one. Retention cuts and shutdown take
//! theirs in the writer itself.

use std::time::Duration;

use crate::chain::Kind;
use crate::db::{Database, Job};

pub(crate) async fn run(db: Database, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate, and there is nothing to sign yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = db.writer().run(Job::Checkpoint(Kind::Interval)).await {
            // The writer's status reports a database that refuses writes; this is only
            // the checkpoint that waits for the next tick.
            tracing::debug!(%error, "audit checkpoint not taken");
        }
    }
}
