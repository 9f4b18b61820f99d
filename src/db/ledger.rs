//! The writer's side of its hash chain (SPEC §12): the committed tip, the tip a batch
//! in flight will leave, the signing key, and, on PostgreSQL, the record ids drawn
//! ahead and the newest `created` known committed.
//!
//! A batch links its entries from the committed tip; the new tip counts only once the
//! batch committed (`commit`), and is dropped if it did not (`abandon`). A connection
//! that was lost may have taken a commit with it, so a new connection asks the database
//! for the tip again (`resync`).

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

use super::chain;
use super::connection::DbConnection;
use super::error::StoreError;
use super::values::now;
use crate::chain::{SigningKey, Tip};

/// Record ids drawn ahead at most: what one batch may create, twice.
const MAX_POOLED_IDS: usize = 1024;

#[derive(Debug, Default)]
pub struct Ledger {
    tip: Option<Tip>,
    pending: Option<(Tip, Option<NaiveDateTime>)>,
    /// The seq of this chain's newest committed checkpoint, and of one in flight.
    checkpointed: i64,
    checkpointing: Option<i64>,
    key: Option<Arc<SigningKey>>,
    /// PostgreSQL record ids drawn from the sequence, oldest first.
    ids: Vec<i64>,
    /// Whether the batch in hand came while the writer was busy: only then are ids drawn
    /// ahead for the next one.
    draw_ahead: bool,
    /// The newest `created` of the history this writer knows to be committed.
    floor: Option<NaiveDateTime>,
}

impl Ledger {
    pub fn new(key: Option<Arc<SigningKey>>) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// The committed tip, registering the chain on first use.
    pub(crate) fn tip(&mut self, conn: &mut DbConnection) -> Result<Tip, StoreError> {
        match self.tip {
            Some(tip) => Ok(tip),
            None => {
                let tip = chain::open(conn, now())?;
                tracing::info!(chain = tip.chain, "audit chain started");
                self.checkpointed = 0;
                Ok(*self.tip.insert(tip))
            }
        }
    }

    /// The committed tip, if the chain exists yet.
    pub(crate) fn current(&self) -> Option<Tip> {
        self.tip
    }

    /// What the batch in flight leaves when it commits.
    pub(crate) fn stage(&mut self, tip: Tip, newest: Option<NaiveDateTime>) {
        self.pending = Some((tip, newest));
    }

    /// The batch in flight committed.
    pub(crate) fn commit(&mut self) {
        if let Some((tip, newest)) = self.pending.take() {
            self.tip = Some(tip);
            self.floor = self.floor.max(newest);
        }
        if let Some(seq) = self.checkpointing.take() {
            self.checkpointed = self.checkpointed.max(seq);
        }
    }

    /// The batch in flight did not commit.
    pub(crate) fn abandon(&mut self) {
        self.pending = None;
        self.checkpointing = None;
    }

    /// After a new connection: the tip as committed, and no ids drawn on the old one
    /// assumed (they stay valid, but may be old).
    pub(crate) fn resync(&mut self, conn: &mut DbConnection) -> Result<(), StoreError> {
        self.pending = None;
        self.checkpointing = None;
        self.ids.clear();
        if let Some(tip) = self.tip {
            self.tip = Some(chain::settled_tip(conn, tip.chain)?);
        }
        Ok(())
    }

    pub(crate) fn key(&self) -> Option<&SigningKey> {
        self.key.as_deref()
    }

    /// The committed tip, if it moved since the last checkpoint; the checkpoint of it
    /// counts once the batch commits.
    pub(crate) fn due_checkpoint(&mut self) -> Option<Tip> {
        let tip = self.tip.filter(|tip| tip.seq > self.checkpointed)?;
        self.checkpointing = Some(tip.seq);
        Some(tip)
    }

    pub(crate) fn floor(&self) -> Option<NaiveDateTime> {
        self.floor
    }

    pub(crate) fn raise_floor(&mut self, floor: Option<NaiveDateTime>) {
        self.floor = self.floor.max(floor);
    }

    /// A batch arrived. After an idle wait, ids drawn before it are forgotten (record
    /// ids should follow creation order across replicas) and none are drawn ahead: a
    /// trickle of requests draws exactly the ids it uses, so it leaves no gaps.
    pub(crate) fn arrived(&mut self, busy: bool) {
        self.draw_ahead = busy;
        if !busy {
            self.ids.clear();
        }
    }

    /// `count` record ids for this batch (drawing them if the pool is short), and how
    /// many to draw ahead for the next one.
    pub(crate) fn ids_for(
        &mut self,
        conn: &mut PgConnection,
        count: usize,
    ) -> Result<(Vec<i64>, i32), StoreError> {
        if self.ids.len() < count {
            let missing = (count - self.ids.len()) as i32;
            let drawn: Vec<Drawn> = diesel::sql_query(
                "SELECT nextval('randomizes_id_seq'::regclass) AS id FROM generate_series(1, $1)",
            )
            .bind::<Integer, _>(missing)
            .load(conn)?;
            self.ids.extend(drawn.into_iter().map(|d| d.id));
        }
        let ids = self.ids[..count].to_vec();
        // Under load, draw ahead twice what this batch used, so a steady load never
        // waits for ids.
        // A lone create (even one that found the writer busy) draws none: ids drawn ahead
        // are dropped after an idle wait, and a trickle must leave no gaps.
        let ahead = if self.draw_ahead && count >= 2 {
            (2 * count).min(MAX_POOLED_IDS)
        } else {
            0
        };
        let refill = ahead.saturating_sub(self.ids.len() - count) as i32;
        Ok((ids, refill))
    }

    /// The ids of `ids_for` were stored; `drawn` came back for the next batches.
    pub(crate) fn used_ids(&mut self, count: usize, drawn: Vec<i64>) {
        self.ids.drain(..count.min(self.ids.len()));
        self.ids.extend(drawn);
    }

    /// Ids drawn by a statement that stored nothing, kept for the next attempt.
    pub(crate) fn more_ids(&mut self, drawn: Vec<i64>) {
        self.ids.extend(drawn);
    }
}

#[derive(QueryableByName)]
struct Drawn {
    #[diesel(sql_type = BigInt)]
    id: i64,
}
