//! A fixed-bucket histogram of plain atomics: the writer records into it after every
//! batch without a lock or an allocation, and `/metrics` reads it at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Doubling upper bounds from `first`; the last bucket is unbounded.
#[derive(Debug)]
pub(crate) struct Histogram {
    first: f64,
    /// Per bucket (not cumulative), `BOUNDS` bounded ones and the overflow.
    counts: [AtomicU64; BOUNDS + 1],
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

/// Enough doublings for both uses: 1 … 512 jobs, 0.25 ms … 4 s.
const BOUNDS: usize = 15;

/// What a scrape reads: `(upper bound, count in that bucket)`, the sum and the count.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) buckets: Vec<(f64, u64)>,
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl Histogram {
    pub(crate) const fn doubling_from(first: f64) -> Self {
        Self {
            first,
            counts: [const { AtomicU64::new(0) }; BOUNDS + 1],
            sum: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, value: f64) {
        let mut bound = self.first;
        let mut bucket = 0;
        while bucket < BOUNDS && value > bound {
            bound *= 2.0;
            bucket += 1;
        }
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // Only the writer thread observes, so this read-modify-write never races.
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed)) + value;
        self.sum.store(sum.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut bound = self.first;
        let buckets: Vec<(f64, u64)> = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                let upper = if i == BOUNDS { f64::INFINITY } else { bound };
                bound *= 2.0;
                (upper, count.load(Ordering::Relaxed))
            })
            .collect();
        Snapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_lands_in_the_first_bucket_that_holds_it() {
        let jobs = Histogram::doubling_from(1.0);
        for value in [1.0, 2.0, 3.0, 512.0, 513.0, 1e9] {
            jobs.observe(value);
        }
        let snapshot = jobs.snapshot();
        let count_at = |bound: f64| {
            snapshot
                .buckets
                .iter()
                .find(|(upper, _)| *upper == bound)
                .map(|(_, n)| *n)
        };
        assert_eq!(count_at(1.0), Some(1));
        assert_eq!(count_at(2.0), Some(1));
        assert_eq!(count_at(4.0), Some(1));
        assert_eq!(count_at(512.0), Some(1));
        assert_eq!(count_at(1_024.0), Some(1));
        assert_eq!(count_at(16_384.0), Some(0));
        assert_eq!(count_at(f64::INFINITY), Some(1));
        assert_eq!(snapshot.buckets.len(), BOUNDS + 1);
        assert_eq!(snapshot.count, 6);
        assert_eq!(snapshot.sum, 1.0 + 2.0 + 3.0 + 512.0 + 513.0 + 1e9);
    }
}
