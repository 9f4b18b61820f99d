//! Checkpoints: a chain's `{seq, hash}` at a moment, signed, stored in the database and
//! logged as one JSON line so that a copy lives outside the database's trust domain.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::encoding::{Hash, checkpoint_message, hex, parse_hash};
use super::keys::{PublicKey, SigningKey};

/// Why a checkpoint was taken. Signed with the rest: a `cut` says that the chain's
/// entries up to `seq` were removed by retention, so it must not be forgeable from
/// another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `CHECKPOINT_INTERVAL` passed while the chain grew.
    Interval,
    /// The writer stopped.
    Shutdown,
    /// Retention removed the chain's entries up to `seq`: verification starts after it.
    Cut,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::Shutdown => "shutdown",
            Self::Cut => "cut",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Interval, Self::Shutdown, Self::Cut]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub chain: i64,
    pub seq: i64,
    pub hash: Hash,
    pub created: NaiveDateTime,
    pub kind: Kind,
    /// Ed25519 over [`checkpoint_message`]; `None` when the service has no signing key.
    pub signature: Option<Vec<u8>>,
}

impl Checkpoint {
    /// A checkpoint of `(chain, seq, hash)`, signed with `key` when there is one.
    pub fn new(
        chain: i64,
        seq: i64,
        hash: Hash,
        created: NaiveDateTime,
        kind: Kind,
        key: Option<&SigningKey>,
    ) -> Self {
        let mut checkpoint = Self {
            chain,
            seq,
            hash,
            created,
            kind,
            signature: None,
        };
        checkpoint.signature = key.map(|key| key.sign(&checkpoint.message()).to_vec());
        checkpoint
    }

    pub fn message(&self) -> Vec<u8> {
        checkpoint_message(
            self.chain,
            self.seq,
            &self.hash,
            self.created,
            self.kind.as_str(),
        )
    }

    /// Whether `key` signed exactly this checkpoint.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        self.signature
            .as_deref()
            .is_some_and(|signature| key.verifies(&self.message(), signature))
    }

    /// The object written to the log (and read back by `randomize audit verify`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Line::from(self)).unwrap_or_default()
    }

    /// The checkpoint a log line carries, if it carries one: the service's JSON log
    /// line (the object is the `checkpoint` field's text), its pretty line
    /// (`checkpoint={…}`), or the bare object.
    pub fn from_log_line(line: &str) -> Option<Self> {
        let line = line.trim();
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            let field = value
                .get("fields")
                .and_then(|fields| fields.get("checkpoint"))
                .or_else(|| value.get("checkpoint"));
            let parsed = match field {
                Some(serde_json::Value::String(text)) => serde_json::from_str::<Line>(text).ok(),
                Some(object) => serde_json::from_value::<Line>(object.clone()).ok(),
                None => serde_json::from_value::<Line>(value).ok(),
            };
            return parsed.and_then(Line::into_checkpoint);
        }
        let start = line.find("checkpoint={")? + "checkpoint=".len();
        let mut stream = serde_json::Deserializer::from_str(&line[start..]).into_iter::<Line>();
        stream.next()?.ok()?.into_checkpoint()
    }
}

/// A checkpoint in JSON: digests and signatures in hex, the time in RFC 3339.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    chain: i64,
    seq: i64,
    hash: String,
    created: String,
    kind: Kind,
    signature: Option<String>,
}

impl From<&Checkpoint> for Line {
    fn from(c: &Checkpoint) -> Self {
        Self {
            chain: c.chain,
            seq: c.seq,
            hash: hex(&c.hash),
            created: c
                .created
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind: c.kind,
            signature: c.signature.as_deref().map(hex),
        }
    }
}

impl Line {
    fn into_checkpoint(self) -> Option<Checkpoint> {
        let signature = match self.signature {
            None => None,
            Some(text) => Some(parse_hex(&text)?),
        };
        Some(Checkpoint {
            chain: self.chain,
            seq: self.seq,
            hash: parse_hash(&self.hash)?,
            created: chrono::DateTime::parse_from_rfc3339(&self.created)
                .ok()?
                .naive_utc(),
            kind: self.kind,
            signature,
        })
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: Option<&SigningKey>) -> Checkpoint {
        let created = chrono::DateTime::from_timestamp_millis(1_764_633_600_123)
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        Checkpoint::new(3, 120, [7; 32], created, Kind::Interval, key)
    }

    #[test]
    fn a_signed_checkpoint_verifies_only_with_its_key_and_unchanged() {
        let key = SigningKey::generate();
        let checkpoint = sample(Some(&key));
        assert!(checkpoint.signed_by(&key.public()));
        assert!(!checkpoint.signed_by(&SigningKey::generate().public()));
        let relabelled = Checkpoint {
            kind: Kind::Cut,
            ..checkpoint.clone()
        };
        assert!(!relabelled.signed_by(&key.public()));
        let moved = Checkpoint {
            seq: 121,
            ..checkpoint
        };
        assert!(!moved.signed_by(&key.public()));
        assert!(!sample(None).signed_by(&key.public()));
    }

    #[test]
    fn log_lines_of_every_format_read_back() {
        let checkpoint = sample(Some(&SigningKey::generate()));
        let object = checkpoint.to_json();
        let json_log = serde_json::json!({
            "timestamp": "2026-12-02T10:00:00Z", "level": "INFO",
            "fields": {"message": "audit checkpoint", "checkpoint": object},
            "target": "randomize::audit"
        })
        .to_string();
        let pretty =
            format!("2026-12-02T10:00:00Z  INFO randomize: audit checkpoint checkpoint={object}");
        for line in [object.clone(), json_log, pretty] {
            assert_eq!(
                Checkpoint::from_log_line(&line),
                Some(checkpoint.clone()),
                "{line}"
            );
        }
        assert_eq!(Checkpoint::from_log_line("GET /api/randomizes 200"), None);
        assert_eq!(Checkpoint::from_log_line(r#"{"level":"INFO"}"#), None);
    }
}
