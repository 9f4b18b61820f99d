use chrono::NaiveDateTime;

use super::*;
use crate::chain::SigningKey;
use crate::chain::Tip;
use crate::chain::link::Link;

/// An entry's owned fields, so a test can change one.
#[derive(Clone)]
struct Row {
    id: i64,
    chain: i64,
    seq: i64,
    hash: Vec<u8>,
    path: String,
    created: NaiveDateTime,
}

impl Row {
    fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            request_id: "r",
            method: "GET",
            path: &self.path,
            query: None,
            status: 200,
            duration_ms: 0.5,
            client_ip: None,
            user_agent: None,
            subject: None,
            created: self.created,
            resource_id: None,
            token_id: None,
            trace_id: None,
        }
    }

    fn stored(&self) -> Stored<'_> {
        Stored {
            id: self.id,
            chain: Some(self.chain),
            seq: Some(self.seq),
            hash: Some(&self.hash),
            fields: self.fields(),
        }
    }
}

fn at(ms: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_millis(1_764_633_600_000 + ms)
        .map(|t| t.naive_utc())
        .unwrap_or_default()
}

/// `count` linked entries of `chain`, ids from `first_id`.
fn chain_of(chain: i64, count: i64, first_id: i64) -> Vec<Row> {
    let mut tip = Tip::start(chain);
    (1..=count)
        .map(|seq| {
            let mut row = Row {
                id: first_id + seq - 1,
                chain,
                seq,
                hash: Vec::new(),
                path: format!("/api/randomizes/{seq}"),
                created: at(seq),
            };
            let links: Vec<Link> = tip.link([row.fields()]);
            tip = Tip::after(&links[0]);
            row.hash = links[0].hash.to_vec();
            row
        })
        .collect()
}

fn checkpoint(rows: &[Row], seq: i64, kind: Kind, key: Option<&SigningKey>) -> Checkpoint {
    let row = &rows[(seq - 1) as usize];
    let hash: Hash = row.hash.as_slice().try_into().unwrap_or_default();
    Checkpoint::new(row.chain, seq, hash, at(1000), kind, key)
}

fn run(rows: &[Row], checkpoints: Vec<Checkpoint>, key: Option<&PublicKey>) -> Report {
    let mut verification = Verification::new(checkpoints, key);
    rows.iter().for_each(|row| verification.feed(&row.stored()));
    verification.finish()
}

fn problems(report: &Report) -> String {
    report.problems.join("\n")
}

#[test]
fn untouched_chains_verify_interleaved() {
    let key = SigningKey::generate();
    let a = chain_of(1, 5, 1);
    let b = chain_of(2, 3, 100);
    let mut rows: Vec<Row> = a.iter().chain(&b).cloned().collect();
    rows.sort_by_key(|r| (r.seq, r.chain));
    let checkpoints = vec![
        checkpoint(&a, 5, Kind::Shutdown, Some(&key)),
        checkpoint(&b, 2, Kind::Interval, Some(&key)),
    ];
    let report = run(&rows, checkpoints, Some(&key.public()));
    assert!(report.passed(), "{}", problems(&report));
    assert_eq!(
        (report.entries, report.chains, report.checkpoints),
        (8, 2, 2)
    );
    assert!(report.summary().starts_with("OK: 8 entries in 2 chain(s)"));
}

#[test]
fn a_changed_field_names_that_entry_only() {
    let mut rows = chain_of(1, 6, 1);
    rows[2].path = "/api/randomizes/999".into();
    let report = run(&rows, vec![], None);
    assert_eq!(report.problem_count, 1, "{}", problems(&report));
    assert!(problems(&report).contains("first broken entry: chain 1 seq 3 (entry id 3)"));
    assert!(report.summary().contains("signatures NOT checked"));
}

#[test]
fn a_removed_middle_entry_is_a_gap() {
    let mut rows = chain_of(1, 6, 1);
    rows.remove(3);
    let report = run(&rows, vec![], None);
    assert!(
        problems(&report)
            .contains("chain 1: entries seq 4..4 are missing (between entry ids 3 and 5)"),
        "{}",
        problems(&report)
    );
}

#[test]
fn an_inserted_entry_breaks_the_next_link() {
    let rows = chain_of(1, 4, 1);
    // The attacker renumbers 3.. and links a forged entry at seq 3 onto seq 2.
    let mut forged = Row {
        id: 50,
        chain: 1,
        seq: 3,
        hash: Vec::new(),
        path: "/api/forged".into(),
        created: at(3),
    };
    let prev: Hash = rows[1].hash.as_slice().try_into().unwrap_or_default();
    forged.hash = crate::chain::encoding::entry_hash(1, 3, &prev, &forged.fields()).to_vec();
    let mut tampered = vec![rows[0].clone(), rows[1].clone(), forged];
    for row in &rows[2..] {
        tampered.push(Row {
            seq: row.seq + 1,
            ..row.clone()
        });
    }
    let report = run(&tampered, vec![], None);
    assert!(
        problems(&report).contains("first broken entry: chain 1 seq 4 (entry id 3)"),
        "{}",
        problems(&report)
    );
}

#[test]
fn deleted_newest_entries_are_named_by_their_checkpoint() {
    let key = SigningKey::generate();
    let rows = chain_of(1, 10, 1);
    let checkpoints = vec![
        checkpoint(&rows, 4, Kind::Interval, Some(&key)),
        checkpoint(&rows, 10, Kind::Shutdown, Some(&key)),
    ];
    let report = run(&rows[..7], checkpoints, Some(&key.public()));
    assert_eq!(report.problem_count, 1, "{}", problems(&report));
    assert!(
        problems(&report).contains("checkpoint chain 1 seq 10 (shutdown")
            && problems(&report).contains("entries seq 8..10 are missing"),
        "{}",
        problems(&report)
    );
}

#[test]
fn a_dropped_chain_is_named_by_its_checkpoint() {
    let rows = chain_of(7, 3, 1);
    let report = run(&[], vec![checkpoint(&rows, 3, Kind::Interval, None)], None);
    assert!(
        problems(&report).contains("or the whole chain"),
        "{}",
        problems(&report)
    );
}

#[test]
fn a_consistent_rewrite_is_caught_by_the_signed_checkpoint() {
    let key = SigningKey::generate();
    let original = chain_of(1, 5, 1);
    let signed = checkpoint(&original, 5, Kind::Interval, Some(&key));
    // Whoever can write the database can recompute every hash after a change.
    let mut rewritten = chain_of(1, 5, 1);
    rewritten[1].path = "/api/other".into();
    let mut tip = Tip::start(1);
    for row in &mut rewritten {
        let links = tip.link([row.fields()]);
        tip = Tip::after(&links[0]);
        row.hash = links[0].hash.to_vec();
    }
    let report = run(&rewritten, vec![signed], Some(&key.public()));
    assert!(
        problems(&report).contains("does not match entry id 5: the chain up to it was rewritten"),
        "{}",
        problems(&report)
    );
}

#[test]
fn a_checkpoint_signed_with_another_key_is_rejected() {
    let rows = chain_of(1, 3, 1);
    let ours = SigningKey::generate();
    let theirs = SigningKey::generate();
    let report = run(
        &rows,
        vec![
            checkpoint(&rows, 3, Kind::Interval, Some(&theirs)),
            checkpoint(&rows, 2, Kind::Interval, None),
        ],
        Some(&ours.public()),
    );
    assert_eq!(report.problem_count, 2, "{}", problems(&report));
    assert!(problems(&report).contains("its signature does not verify with key"));
    assert!(problems(&report).contains("it is unsigned"));
}

#[test]
fn after_a_cut_verification_starts_at_its_checkpoint() {
    let key = SigningKey::generate();
    let rows = chain_of(1, 10, 1);
    let cut = checkpoint(&rows, 6, Kind::Cut, Some(&key));
    let old = checkpoint(&rows, 3, Kind::Interval, Some(&key));
    let report = run(&rows[6..], vec![old, cut.clone()], Some(&key.public()));
    assert!(report.passed(), "{}", problems(&report));
    // Without the cut the missing head is a problem; an interval checkpoint is no cut.
    let report = run(&rows[6..], vec![], None);
    assert!(
        problems(&report).contains("begins at seq 7"),
        "{}",
        problems(&report)
    );
    let relabelled = Checkpoint {
        kind: Kind::Interval,
        ..cut
    };
    let report = run(&rows[6..], vec![relabelled], Some(&key.public()));
    assert!(
        problems(&report).contains("rejected checkpoint"),
        "{}",
        problems(&report)
    );
}

#[test]
fn unchained_entries_after_chaining_began_are_a_problem() {
    let rows = chain_of(1, 2, 10);
    let legacy = |id| Stored {
        id,
        chain: None,
        seq: None,
        hash: None,
        fields: rows[0].fields(),
    };
    let mut verification = Verification::new(vec![], None);
    verification.feed(&legacy(1));
    rows.iter().for_each(|r| verification.feed(&r.stored()));
    let report = verification.finish();
    assert!(report.passed(), "{}", problems(&report));
    assert!(report.summary().contains("1 entries from before chaining"));

    let mut verification = Verification::new(vec![], None);
    rows.iter().for_each(|r| verification.feed(&r.stored()));
    verification.feed(&legacy(99));
    let report = verification.finish();
    assert!(
        problems(&report).contains("entry id 99"),
        "{}",
        problems(&report)
    );
}
