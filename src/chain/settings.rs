//! `AUDIT_SIGNING_KEY`: the key checkpoints are signed with (SPEC §7, §12).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use secrecy::ExposeSecret;

use super::keys::SigningKey;
use crate::settings::{ConfigError, read_secret};

#[derive(Clone, Args)]
pub struct SigningArgs {
    /// Ed25519 private key (PEM, PKCS#8: `randomize audit keygen` or `openssl genpkey
    /// -algorithm ed25519`) that signs audit checkpoints (or AUDIT_SIGNING_KEY_FILE).
    /// Unset: checkpoints are recorded unsigned, with a warning at start.
    #[arg(long, env = "AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,
    #[arg(long, env = "AUDIT_SIGNING_KEY_FILE")]
    pub audit_signing_key_file: Option<PathBuf>,
}

/// Never shows the key, only whether one is set.
impl std::fmt::Debug for SigningArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningArgs")
            .field(
                "audit_signing_key",
                &self.audit_signing_key.as_ref().map(|_| "[redacted]"),
            )
            .field("audit_signing_key_file", &self.audit_signing_key_file)
            .finish()
    }
}

impl SigningArgs {
    pub fn key(&self) -> Result<Option<Arc<SigningKey>>, ConfigError> {
        let pem = read_secret(
            "AUDIT_SIGNING_KEY",
            self.audit_signing_key.as_deref().filter(|s| !s.is_empty()),
            self.audit_signing_key_file.as_deref(),
        )?;
        pem.map(|pem| {
            SigningKey::from_pem(pem.expose_secret())
                .map(Arc::new)
                .map_err(|e| ConfigError::new("AUDIT_SIGNING_KEY", e.to_string()))
        })
        .transpose()
    }
}
