//! Recomputing chains and checking them against checkpoints (`randomize audit verify`).
//!
//! Entries are fed one at a time, each chain's in `seq` order (chains may interleave, as
//! they do in an export, which is in id order); memory is one small state per chain plus
//! the checkpoints. What is reported:
//! - the first entry of a chain whose hash does not match its fields and predecessor (a
//!   field changed, or an entry inserted or removed before it), then every further one;
//! - gaps in `seq` (entries removed), and a chain that starts after `seq` 1 with no
//!   trusted checkpoint at the seq before it (its head removed without a retention cut);
//! - every trusted checkpoint that no entry matches: its entries are missing (the newest
//!   entries deleted, a whole chain dropped) or were rewritten;
//! - checkpoints that do not verify with the public key, when one is given;
//! - entries without a chain that are newer than the first chained one.

use std::collections::{BTreeMap, HashMap};

use super::checkpoint::{Checkpoint, Kind};
use super::encoding::{EntryFields, GENESIS, Hash, entry_hash, hex};
use super::keys::PublicKey;

/// Problems kept word for word; past this many only the count grows.
const MAX_LISTED: usize = 1_000;

/// One stored entry as read back.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub id: i64,
    pub chain: Option<i64>,
    pub seq: Option<i64>,
    pub hash: Option<&'a [u8]>,
    pub fields: EntryFields<'a>,
}

#[derive(Debug)]
struct ChainState {
    last_seq: i64,
    last_id: i64,
    prev: Hash,
    entries: u64,
    broken: bool,
}

#[derive(Debug)]
struct Expected {
    checkpoint: Checkpoint,
    matched: bool,
}

/// The verification in progress.
#[derive(Debug)]
pub struct Verification {
    chains: HashMap<i64, ChainState>,
    /// Trusted checkpoints by chain and seq.
    expected: HashMap<i64, BTreeMap<i64, Vec<Expected>>>,
    /// Per chain, the newest trusted retention cut.
    cuts: HashMap<i64, i64>,
    problems: Vec<String>,
    problem_count: usize,
    entries: u64,
    checkpoints: usize,
    signatures_checked: bool,
    unchained: u64,
    newest_unchained: Option<i64>,
    oldest_chained: Option<i64>,
}

/// What a finished verification found.
#[derive(Debug)]
pub struct Report {
    /// The problems, in the order found (at most [`MAX_LISTED`]).
    pub problems: Vec<String>,
    pub problem_count: usize,
    pub entries: u64,
    pub chains: usize,
    pub checkpoints: usize,
    pub unchained: u64,
    pub signatures_checked: bool,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.problem_count == 0
    }

    /// The one line that ends the output.
    pub fn summary(&self) -> String {
        let signatures = if self.signatures_checked {
            "signatures checked"
        } else {
            "signatures NOT checked (no public key given)"
        };
        let legacy = if self.unchained > 0 {
            format!(
                ", {} entries from before chaining (not covered)",
                self.unchained
            )
        } else {
            String::new()
        };
        let verdict = if self.passed() {
            "OK".to_owned()
        } else {
            format!("FAILED: {} problem(s)", self.problem_count)
        };
        format!(
            "{verdict}: {} entries in {} chain(s), {} checkpoint(s), {signatures}{legacy}",
            self.entries, self.chains, self.checkpoints
        )
    }
}

impl Verification {
    /// Starts a verification against `checkpoints`. With `key`, only checkpoints it
    /// signed are trusted and every other is a problem; without, all are trusted.
    pub fn new(checkpoints: impl IntoIterator<Item = Checkpoint>, key: Option<&PublicKey>) -> Self {
        let mut verification = Self {
            chains: HashMap::new(),
            expected: HashMap::new(),
            cuts: HashMap::new(),
            problems: Vec::new(),
            problem_count: 0,
            entries: 0,
            checkpoints: 0,
            signatures_checked: key.is_some(),
            unchained: 0,
            newest_unchained: None,
            oldest_chained: None,
        };
        for checkpoint in checkpoints {
            verification.checkpoints += 1;
            if let Some(key) = key
                && !checkpoint.signed_by(key)
            {
                let why = if checkpoint.signature.is_some() {
                    format!(
                        "its signature does not verify with key {}",
                        key.fingerprint()
                    )
                } else {
                    "it is unsigned".to_owned()
                };
                verification.problem(format!(
                    "rejected checkpoint: {}: {why}",
                    describe(&checkpoint)
                ));
                continue;
            }
            if checkpoint.kind == Kind::Cut {
                let cut = verification.cuts.entry(checkpoint.chain).or_insert(0);
                *cut = (*cut).max(checkpoint.seq);
            }
            verification
                .expected
                .entry(checkpoint.chain)
                .or_default()
                .entry(checkpoint.seq)
                .or_default()
                .push(Expected {
                    checkpoint,
                    matched: false,
                });
        }
        verification
    }

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(text);
        }
    }

    /// Checks the next entry.
    pub fn feed(&mut self, entry: &Stored<'_>) {
        self.entries += 1;
        let (Some(chain), Some(seq)) = (entry.chain, entry.seq) else {
            self.unchained += 1;
            self.newest_unchained = self.newest_unchained.max(Some(entry.id));
            return;
        };
        self.oldest_chained = Some(self.oldest_chained.map_or(entry.id, |o| o.min(entry.id)));
        let stored: Option<Hash> = entry.hash.and_then(|h| h.try_into().ok());
        let Some(stored) = stored else {
            self.problem(format!(
                "chain {chain} seq {seq} (entry id {}): no valid hash stored",
                entry.id
            ));
            return;
        };
        // Where this entry should link from, if that is known.
        let prev: Option<Hash> = match self.chains.get(&chain) {
            Some(state) if seq == state.last_seq + 1 => Some(state.prev),
            Some(state) if seq <= state.last_seq => {
                let text = format!(
                    "chain {chain} seq {seq} (entry id {}): out of order after seq {} (entry id {}): an entry inserted or renumbered",
                    entry.id, state.last_seq, state.last_id
                );
                self.problem(text);
                return;
            }
            Some(state) => {
                let text = format!(
                    "chain {chain}: entries seq {}..{} are missing (between entry ids {} and {})",
                    state.last_seq + 1,
                    seq - 1,
                    state.last_id,
                    entry.id
                );
                self.problem(text);
                None
            }
            None if seq == 1 => Some(GENESIS),
            None => match self.trusted_hash(chain, seq - 1) {
                Some(hash) => Some(hash),
                None => {
                    self.problem(format!(
                        "chain {chain}: begins at seq {seq} (entry id {}) with no checkpoint at seq {} to start from: its first {} entries are missing",
                        entry.id,
                        seq - 1,
                        seq - 1
                    ));
                    None
                }
            },
        };
        let mut link_ok = true;
        if let Some(prev) = prev {
            let computed = entry_hash(chain, seq, &prev, &entry.fields);
            if computed != stored {
                link_ok = false;
                let first = !self.chains.get(&chain).is_some_and(|s| s.broken);
                let text = format!(
                    "{}chain {chain} seq {seq} (entry id {}): the hash does not match its fields and predecessor: a field was changed, or an entry inserted or removed before it",
                    if first {
                        "first broken entry: "
                    } else {
                        "broken entry: "
                    },
                    entry.id
                );
                self.problem(text);
            }
        }
        self.match_checkpoints(chain, seq, &stored, entry.id, link_ok);
        let state = self.chains.entry(chain).or_insert(ChainState {
            last_seq: 0,
            last_id: 0,
            prev: GENESIS,
            entries: 0,
            broken: false,
        });
        state.broken |= !link_ok;
        state.last_seq = seq;
        state.last_id = entry.id;
        // Continue from what is stored, so one changed entry is reported once.
        state.prev = stored;
        state.entries += 1;
    }

    fn trusted_hash(&self, chain: i64, seq: i64) -> Option<Hash> {
        self.expected
            .get(&chain)?
            .get(&seq)?
            .first()
            .map(|e| e.checkpoint.hash)
    }

    fn match_checkpoints(&mut self, chain: i64, seq: i64, stored: &Hash, id: i64, link_ok: bool) {
        let mut mismatched = Vec::new();
        if let Some(at) = self.expected.get_mut(&chain).and_then(|c| c.get_mut(&seq)) {
            for expected in at {
                expected.matched = true;
                if &expected.checkpoint.hash != stored || !link_ok {
                    mismatched.push(describe(&expected.checkpoint));
                }
            }
        }
        for checkpoint in mismatched {
            self.problem(format!(
                "{checkpoint}: does not match entry id {id}: the chain up to it was rewritten"
            ));
        }
    }

    /// Ends the verification: every checkpoint no entry matched is a problem.
    pub fn finish(mut self) -> Report {
        let mut missing = Vec::new();
        for (chain, by_seq) in &self.expected {
            let cut = self.cuts.get(chain).copied().unwrap_or(0);
            let present = self.chains.get(chain).map_or(0, |s| s.last_seq);
            for expected in by_seq.values().flatten() {
                let checkpoint = &expected.checkpoint;
                if expected.matched || checkpoint.seq <= cut || checkpoint.seq == 0 {
                    continue;
                }
                let why = if checkpoint.seq > present {
                    format!(
                        "entries seq {}..{} are missing (the newest entries deleted{})",
                        present.max(cut) + 1,
                        checkpoint.seq,
                        if present == 0 {
                            ", or the whole chain"
                        } else {
                            ""
                        }
                    )
                } else {
                    format!("no entry at seq {}", checkpoint.seq)
                };
                missing.push((checkpoint.chain, checkpoint.seq, describe(checkpoint), why));
            }
        }
        missing.sort();
        for (_, _, checkpoint, why) in missing {
            self.problem(format!("{checkpoint}: {why}"));
        }
        if let (Some(newest), Some(oldest)) = (self.newest_unchained, self.oldest_chained)
            && newest > oldest
        {
            self.problem(format!(
                "entries without a chain after chaining began (the newest: entry id {newest}): inserted outside the service"
            ));
        }
        Report {
            problems: self.problems,
            problem_count: self.problem_count,
            entries: self.entries,
            chains: self.chains.len(),
            checkpoints: self.checkpoints,
            unchained: self.unchained,
            signatures_checked: self.signatures_checked,
        }
    }
}

fn describe(checkpoint: &Checkpoint) -> String {
    format!(
        "checkpoint chain {} seq {} ({}, {}, hash {})",
        checkpoint.chain,
        checkpoint.seq,
        checkpoint.kind.as_str(),
        checkpoint
            .created
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        &hex(&checkpoint.hash)[..16]
    )
}

#[cfg(test)]
mod tests;
