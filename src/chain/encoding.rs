//! The canonical encodings hashed and signed (docs/AUDIT.md, "Canonical encoding").
//!
//! Every value has one encoding, so a third party can recompute a hash from the fields
//! alone:
//! - text: its length in bytes as a 4-byte big-endian unsigned integer, then its UTF-8;
//! - integer: 8 bytes, big-endian two's complement;
//! - `duration_ms`: the 8 bytes of its IEEE 754 binary64 value, big-endian;
//! - timestamp: milliseconds since 1970-01-01T00:00:00Z, as an integer;
//! - optional value: one byte `0x00` when absent, else `0x01` and the value;
//! - hash: its 32 bytes.

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Links the first entry of every chain.
pub const GENESIS: Hash = [0; 32];

const ENTRY_TAG: &[u8] = b"randomize/audit-entry/v1";
const CHECKPOINT_TAG: &[u8] = b"randomize/audit-checkpoint/v1";

/// An entry's recorded fields, in the order they are encoded. The database's `id` is not
/// one of them: it is where the row sits, and `(chain, seq)` names the entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub status: i32,
    pub duration_ms: f64,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub created: NaiveDateTime,
    pub resource_id: Option<i64>,
    pub token_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
}

/// The hash of entry `seq` of `chain`, linked to its predecessor's hash `prev`.
pub fn entry_hash(chain: i64, seq: i64, prev: &Hash, fields: &EntryFields<'_>) -> Hash {
    let mut out = Encoder::with_capacity(256);
    out.raw(ENTRY_TAG);
    out.int(chain);
    out.int(seq);
    out.raw(prev);
    out.text(fields.request_id);
    out.text(fields.method);
    out.text(fields.path);
    out.optional_text(fields.query);
    out.int(i64::from(fields.status));
    out.raw(&fields.duration_ms.to_bits().to_be_bytes());
    out.optional_text(fields.client_ip);
    out.optional_text(fields.user_agent);
    out.optional_text(fields.subject);
    out.time(fields.created);
    match fields.resource_id {
        None => out.raw(&[0]),
        Some(id) => {
            out.raw(&[1]);
            out.int(id);
        }
    }
    out.optional_text(fields.token_id);
    out.optional_text(fields.trace_id);
    out.digest()
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_message(
    chain: i64,
    seq: i64,
    hash: &Hash,
    created: NaiveDateTime,
    kind: &str,
) -> Vec<u8> {
    let mut out = Encoder::with_capacity(96);
    out.raw(CHECKPOINT_TAG);
    out.int(chain);
    out.int(seq);
    out.raw(hash);
    out.time(created);
    out.text(kind);
    out.0
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn int(&mut self, value: i64) {
        self.raw(&value.to_be_bytes());
    }

    fn text(&mut self, value: &str) {
        // Stored strings are bounded far below 4 GiB (the body and header limits).
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.raw(&len.to_be_bytes());
        self.raw(value.as_bytes());
    }

    fn optional_text(&mut self, value: Option<&str>) {
        match value {
            None => self.raw(&[0]),
            Some(value) => {
                self.raw(&[1]);
                self.text(value);
            }
        }
    }

    fn time(&mut self, at: NaiveDateTime) {
        self.int(at.and_utc().timestamp_millis());
    }

    fn digest(self) -> Hash {
        Sha256::digest(&self.0).into()
    }
}

/// Lower-case hex, as auditors' tools print digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest `text` spells in hex, if it is one.
pub fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn vector_fields() -> EntryFields<'static> {
        EntryFields {
            request_id: "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c",
            method: "POST",
            path: "/api/randomizes",
            query: None,
            status: 201,
            duration_ms: 0.412,
            client_ip: Some("203.0.113.7"),
            user_agent: Some("curl/8.5.0"),
            subject: None,
            created: chrono::DateTime::from_timestamp_millis(1_684_809_477_698)
                .map(|t| t.naive_utc())
                .unwrap_or_default(),
            resource_id: Some(42),
            token_id: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        }
    }

    /// The vectors published in docs/AUDIT.md: a re-implementation must print these.
    #[test]
    fn entry_hashes_match_the_documented_vectors() {
        let first = entry_hash(1, 1, &GENESIS, &vector_fields());
        assert_eq!(hex(&first), DOCUMENTED_FIRST);
        let second = EntryFields {
            method: "GET",
            path: "/api/histories",
            query: Some("status=500"),
            status: 200,
            subject: Some("auditor"),
            resource_id: None,
            token_id: Some("a1b2"),
            ..vector_fields()
        };
        assert_eq!(hex(&entry_hash(1, 2, &first, &second)), DOCUMENTED_SECOND);
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = entry_hash(1, 1, &GENESIS, &vector_fields());
        let f = vector_fields();
        let variants = [
            EntryFields {
                request_id: "x",
                ..f
            },
            EntryFields { method: "GET", ..f },
            EntryFields {
                path: "/api/randomizes/1",
                ..f
            },
            EntryFields {
                query: Some(""),
                ..f
            },
            EntryFields { status: 200, ..f },
            EntryFields {
                duration_ms: 0.413,
                ..f
            },
            EntryFields {
                client_ip: None,
                ..f
            },
            EntryFields {
                user_agent: Some("curl/8.5.1"),
                ..f
            },
            EntryFields {
                subject: Some(""),
                ..f
            },
            EntryFields {
                created: f.created + chrono::Duration::milliseconds(1),
                ..f
            },
            EntryFields {
                resource_id: None,
                ..f
            },
            EntryFields {
                token_id: Some("t"),
                ..f
            },
            EntryFields {
                trace_id: None,
                ..f
            },
        ];
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(entry_hash(1, 1, &GENESIS, variant), base, "field {i}");
        }
        assert_ne!(entry_hash(2, 1, &GENESIS, &f), base, "chain");
        assert_ne!(entry_hash(1, 2, &GENESIS, &f), base, "seq");
        assert_ne!(entry_hash(1, 1, &[1; 32], &f), base, "prev");
    }

    #[test]
    fn lengths_keep_adjacent_texts_apart() {
        let f = vector_fields();
        let a = EntryFields {
            user_agent: Some("ab"),
            subject: Some("c"),
            ..f
        };
        let b = EntryFields {
            user_agent: Some("a"),
            subject: Some("bc"),
            ..f
        };
        assert_ne!(
            entry_hash(1, 1, &GENESIS, &a),
            entry_hash(1, 1, &GENESIS, &b)
        );
    }

    #[test]
    fn hex_round_trips() {
        let hash = entry_hash(1, 1, &GENESIS, &vector_fields());
        assert_eq!(parse_hash(&hex(&hash)), Some(hash));
        assert_eq!(parse_hash("zz"), None);
        assert_eq!(parse_hash(&"g".repeat(64)), None);
    }

    const DOCUMENTED_FIRST: &str =
        "8ed759a06e1c437abc928b96ddf6e40fdfa36083988c077a0b29346453c7954a";
    const DOCUMENTED_SECOND: &str =
        "8759538bfe05a7800e81a83efd795a414796479f7c1be1dca1d694b8eb197fcb";
}
