//! A chain's tip, and how entries are linked onto it.

use super::encoding::{EntryFields, GENESIS, Hash, entry_hash};

/// The newest committed entry of a chain: what the next entry links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub chain: i64,
    /// 0 before the first entry.
    pub seq: i64,
    pub hash: Hash,
}

/// Where one entry sits in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub chain: i64,
    pub seq: i64,
    pub hash: Hash,
}

impl Tip {
    /// A chain with no entries yet.
    pub fn start(chain: i64) -> Self {
        Self {
            chain,
            seq: 0,
            hash: GENESIS,
        }
    }

    /// Links `entries`, in order, after this tip; the tip they leave is the last link.
    pub fn link<'a>(&self, entries: impl IntoIterator<Item = EntryFields<'a>>) -> Vec<Link> {
        let mut tip = *self;
        entries
            .into_iter()
            .map(|fields| {
                let seq = tip.seq + 1;
                let hash = entry_hash(tip.chain, seq, &tip.hash, &fields);
                tip = Tip {
                    chain: tip.chain,
                    seq,
                    hash,
                };
                Link {
                    chain: tip.chain,
                    seq,
                    hash,
                }
            })
            .collect()
    }

    /// The tip once `link` is committed.
    pub fn after(link: &Link) -> Self {
        Self {
            chain: link.chain,
            seq: link.seq,
            hash: link.hash,
        }
    }
}
