//! What a batch's reads found: every lookup by id in one statement, every distinct
//! list window once, all before the batch's rows are inserted. Reading in the batch
//! costs a read the one hand-off a write costs, and its entry commits with it.

use std::collections::HashMap;

use super::job::{Done, Job, Outcome, Queued};
use crate::db::connection::DbConnection;
use crate::db::error::StoreError;
use crate::db::page::{Page, Start, Window};
use crate::db::randomizes::{self, Record};

#[derive(Default)]
pub(super) struct Reads {
    records: HashMap<i64, Record>,
    pages: Vec<(Window, Page<Record>)>,
}

/// Whether an unfiltered list page costs the same at any table size, so that reading
/// it on the writer's connection cannot hold writes up: the first page, or the page
/// after a cursor (an index walk of `size` rows and a kept counter). Deeper offsets
/// and filters are read on the pool.
pub(crate) fn page_is_bounded(window: &Window) -> bool {
    matches!(window.start, Start::Offset(0) | Start::After(_))
}

impl Reads {
    pub(super) fn read(conn: &mut DbConnection, batch: &[Queued]) -> Result<Self, StoreError> {
        let mut reads = Self::default();
        let mut ids = Vec::new();
        for queued in batch {
            match &queued.job {
                Job::Find { id, .. } => ids.push(*id),
                Job::List { window, .. } if !reads.pages.iter().any(|(w, _)| w == window) => {
                    // Equal windows of one batch are concurrent requests: one reading
                    // answers them all, as of the same moment.
                    let page = randomizes::list(conn, None, window)?;
                    reads.pages.push((*window, page));
                }
                _ => {}
            }
        }
        if !ids.is_empty() {
            ids.sort_unstable();
            ids.dedup();
            let found = randomizes::find_many(conn, &ids)?;
            reads.records = found.into_iter().map(|r| (r.id, r)).collect();
        }
        Ok(reads)
    }

    pub(super) fn record(&self, id: i64) -> Option<Record> {
        self.records.get(&id).cloned()
    }

    pub(super) fn page(&self, window: &Window) -> Result<Page<Record>, StoreError> {
        self.pages
            .iter()
            .find(|(w, _)| w == window)
            .map(|(_, page)| page.clone())
            .ok_or_else(|| StoreError::Internal("a list's page was not read".into()))
    }

    /// The status a read's entry records, once `outcome` is known; `None` for any
    /// other job (its entry holds its status already).
    pub(super) fn status(job: &Job, outcome: Option<&Outcome>) -> Option<i32> {
        match (job, outcome) {
            (Job::Find { held, .. }, Some(Ok(Done::Found(record)))) => {
                Some(i32::from(held.judge(record.as_ref()).status()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::page::Order;

    #[test]
    fn only_pages_whose_cost_ignores_the_table_size_are_read_in_a_batch() {
        let window = |start| Window {
            order: Order::NewestFirst,
            start,
            size: 100,
        };
        assert!(page_is_bounded(&window(Start::Offset(0))));
        assert!(page_is_bounded(&window(Start::After(5_000_000))));
        assert!(!page_is_bounded(&window(Start::Offset(100))));
        assert!(!page_is_bounded(&window(Start::Offset(9_900))));
    }
}
