//! `JwtArgs`: the JWT settings, and the keys and policy they make (SPEC §6).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretString};

use super::token::{Policy, Signer, Verifier};
use crate::settings::{ConfigError, parse_duration, read_secret};

/// RFC 7518 §3.2: an HS256 key shorter than the hash output weakens it.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct JwtArgs {
    /// Signature algorithm accepted (and used by `randomize token`): HS256, RS256, ES256 or EdDSA.
    #[arg(long, env = "JWT_ALGORITHM", default_value = "HS256")]
    pub jwt_algorithm: String,
    /// HS256 shared secret, at least 32 bytes (or JWT_SECRET_FILE).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, env = "JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM public key that verifies RS256 / ES256 / EdDSA tokens (or JWT_PUBLIC_KEY_FILE).
    #[arg(long, env = "JWT_PUBLIC_KEY", hide_env_values = true)]
    pub jwt_public_key: Option<String>,
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// PEM private key that `randomize token` signs with (or JWT_PRIVATE_KEY_FILE).
    #[arg(long, env = "JWT_PRIVATE_KEY", hide_env_values = true)]
    pub jwt_private_key: Option<String>,
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set. When unset, a token that names any audience is
    /// rejected: it was minted for someone else.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[arg(long, env = "JWT_LEEWAY", default_value = "30s", value_parser = parse_duration)]
    pub jwt_leeway: Duration,
}

impl JwtArgs {
    fn policy(&self) -> Result<Policy, ConfigError> {
        let algorithm = match self.jwt_algorithm.to_ascii_uppercase().as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EDDSA" => Algorithm::EdDSA,
            _ => {
                return Err(ConfigError::new(
                    "JWT_ALGORITHM",
                    "must be HS256, RS256, ES256 or EdDSA",
                ));
            }
        };
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        if algorithm == Algorithm::HS256
            && (present(&self.jwt_public_key) || self.jwt_public_key_file.is_some())
        {
            return Err(ConfigError::new(
                "JWT_PUBLIC_KEY",
                "is set but JWT_ALGORITHM is HS256 (use JWT_SECRET)",
            ));
        }
        if algorithm != Algorithm::HS256
            && (present(&self.jwt_secret) || self.jwt_secret_file.is_some())
        {
            return Err(ConfigError::new(
                "JWT_SECRET",
                format!(
                    "is set but JWT_ALGORITHM is {algorithm:?} (use JWT_PUBLIC_KEY / JWT_PRIVATE_KEY)"
                ),
            ));
        }
        Ok(Policy {
            algorithm,
            issuer: self.jwt_issuer.clone().filter(|s| !s.is_empty()),
            audience: self.jwt_audience.clone().filter(|s| !s.is_empty()),
            leeway: self.jwt_leeway,
        })
    }

    fn secret(&self) -> Result<Option<SecretString>, ConfigError> {
        let secret = read_secret(
            "JWT_SECRET",
            self.jwt_secret.as_deref(),
            self.jwt_secret_file.as_deref(),
        )?;
        if secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < MIN_SECRET_BYTES)
        {
            return Err(ConfigError::new(
                "JWT_SECRET",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        Ok(secret)
    }

    /// The verifier for `serve`; `None` when no key is configured (every request 401).
    pub fn verifier(&self) -> Result<Option<Verifier>, ConfigError> {
        let policy = self.policy()?;
        let key = if policy.algorithm == Algorithm::HS256 {
            self.secret()?
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()))
        } else {
            let pem = read_secret(
                "JWT_PUBLIC_KEY",
                self.jwt_public_key.as_deref(),
                self.jwt_public_key_file.as_deref(),
            )?;
            match pem {
                None => None,
                Some(pem) => Some(
                    decoding_key(policy.algorithm, pem.expose_secret().as_bytes()).map_err(
                        |_| {
                            ConfigError::new(
                                "JWT_PUBLIC_KEY",
                                format!("is not a PEM public key for {:?}", policy.algorithm),
                            )
                        },
                    )?,
                ),
            }
        };
        Ok(key.map(|key| Verifier::new(key, &policy)))
    }

    /// The signer for `randomize token`.
    pub fn signer(&self) -> Result<Signer, ConfigError> {
        let policy = self.policy()?;
        let key = if policy.algorithm == Algorithm::HS256 {
            let secret = self.secret()?.ok_or_else(|| {
                ConfigError::new("JWT_SECRET", "must be set to sign HS256 tokens")
            })?;
            EncodingKey::from_secret(secret.expose_secret().as_bytes())
        } else {
            let pem = read_secret(
                "JWT_PRIVATE_KEY",
                self.jwt_private_key.as_deref(),
                self.jwt_private_key_file.as_deref(),
            )?
            .ok_or_else(|| {
                ConfigError::new(
                    "JWT_PRIVATE_KEY",
                    format!("must be set to sign {:?} tokens", policy.algorithm),
                )
            })?;
            encoding_key(policy.algorithm, pem.expose_secret().as_bytes()).map_err(|_| {
                ConfigError::new(
                    "JWT_PRIVATE_KEY",
                    format!("is not a PEM private key for {:?}", policy.algorithm),
                )
            })?
        };
        Ok(Signer::new(key, policy))
    }
}

fn decoding_key(algorithm: Algorithm, pem: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
    match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
        _ => DecodingKey::from_ed_pem(pem),
    }
}

fn encoding_key(algorithm: Algorithm, pem: &[u8]) -> jsonwebtoken::errors::Result<EncodingKey> {
    match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::auth::{HISTORIES_READ, unix_now};

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        jwt: JwtArgs,
    }

    fn args(list: &[&str]) -> JwtArgs {
        let mut argv = vec!["test"];
        argv.extend_from_slice(list);
        Wrapper::parse_from(argv).jwt
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn hs256_round_trip_and_scope_matching_is_exact() {
        let a = args(&["--jwt-secret", SECRET]);
        let (signer, verifier) = (a.signer().unwrap_or_else(|e| panic!("{e}")), a.verifier());
        let verifier = verifier
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("verifier"));
        let token = signer.sign(
            "alice",
            "histories:reader other",
            Duration::from_secs(60),
            unix_now(),
        );
        let claims = verifier
            .verify(&token.unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.sub, "alice");
        assert!(!claims.has_scope(HISTORIES_READ));
        assert!(claims.has_scope("other"));
    }

    #[test]
    fn short_secret_and_mismatched_keys_are_configuration_errors() {
        assert_eq!(
            args(&["--jwt-secret", "short"])
                .verifier()
                .err()
                .map(|e| e.var),
            Some("JWT_SECRET")
        );
        let rs = args(&["--jwt-algorithm", "RS256", "--jwt-secret", SECRET]);
        assert_eq!(rs.verifier().err().map(|e| e.var), Some("JWT_SECRET"));
        let bogus = args(&["--jwt-algorithm", "ES256", "--jwt-public-key", "not a pem"]);
        assert_eq!(
            bogus.verifier().err().map(|e| e.var),
            Some("JWT_PUBLIC_KEY")
        );
        assert_eq!(
            args(&["--jwt-algorithm", "none"])
                .verifier()
                .err()
                .map(|e| e.var),
            Some("JWT_ALGORITHM")
        );
        assert!(
            args(&[]).verifier().is_ok_and(|v| v.is_none()),
            "no key: starts, refuses every token"
        );
    }
}
