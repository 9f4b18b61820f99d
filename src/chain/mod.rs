//! Tamper evidence for the audit history (SPEC §12), independent of any database.
//!
//! - `encoding`: the canonical bytes an entry's and a checkpoint's hash are taken over
//!   (documented byte for byte in docs/AUDIT.md, with test vectors);
//! - `link`: a chain's tip and how the next entries are linked onto it;
//! - `keys`: the Ed25519 signing key and public key, from PEM;
//! - `checkpoint`: a signed `{chain, seq, hash, created}` and its log line;
//! - `verify`: recomputing chains and checking them against checkpoints.

pub mod checkpoint;
pub mod encoding;
pub mod keys;
pub mod link;
pub mod settings;
pub mod verify;

pub use checkpoint::{Checkpoint, Kind};
pub use encoding::{EntryFields, Hash};
pub use keys::{PublicKey, SigningKey};
pub use link::Tip;
pub use settings::SigningArgs;
