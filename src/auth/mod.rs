//! Bearer JWT authentication for the audit history (SPEC §6).
//!
//! The accepted algorithm comes from configuration only, never from a token's header,
//! so `alg: none` and algorithm-confusion tokens (an RS256 public key used as an HMAC
//! secret, …) are rejected before any signature check. Tokens, headers and keys are
//! never logged, stored or echoed.

mod keys;
mod token;

pub use keys::JwtArgs;
pub use token::{Claims, Signer, TokenError, Verifier, check_pair};

/// The scope that opens `/api/histories`.
pub const HISTORIES_READ: &str = "histories:read";

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The key and policy a token's signature is checked with, kept across requests.
pub type SharedVerifier = Option<std::sync::Arc<Verifier>>;
