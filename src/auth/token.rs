//! Tokens: the claims we read, why a token is refused, and the verifier and signer that
//! apply one fixed policy.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::unix_now;
use crate::settings::ConfigError;

/// The algorithm and the claims every token must satisfy.
#[derive(Clone)]
pub(super) struct Policy {
    pub(super) algorithm: Algorithm,
    pub(super) issuer: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) leeway: Duration,
}

impl Policy {
    fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Deliberate: with no audience configured, `aud` stays validated against an
            // empty set, so a token minted for another audience is refused.
            None => validation.validate_aud = true,
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The token's own id: what the audit records as the credential that acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Claims {
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split_ascii_whitespace().any(|scope| scope == wanted))
    }
}

/// Why a bearer token was refused; the text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no key is configured, so no token can be accepted")]
    NoKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is signed with an algorithm this service does not accept")]
    WrongAlgorithm,
    #[error("the token signature does not verify")]
    BadSignature,
    #[error("the token has the wrong issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(String),
    #[error("the token is malformed")]
    Malformed,
}

pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub(super) fn new(key: DecodingKey, policy: &Policy) -> Self {
        Self {
            key,
            validation: policy.validation(),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::MissingAlgorithm => TokenError::WrongAlgorithm,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
                _ => TokenError::Malformed,
            })
    }
}

pub struct Signer {
    key: EncodingKey,
    policy: Policy,
}

impl Signer {
    pub(super) fn new(key: EncodingKey, policy: Policy) -> Self {
        Self { key, policy }
    }

    /// A token for `subject` with `scope`, valid for `ttl` from `now` (Unix seconds).
    pub fn sign(
        &self,
        subject: &str,
        scope: &str,
        ttl: Duration,
        now: u64,
    ) -> Result<String, ConfigError> {
        let claims = Claims {
            sub: subject.to_owned(),
            scope: (!scope.is_empty()).then(|| scope.to_owned()),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            iss: self.policy.issuer.clone(),
            aud: self.policy.audience.clone(),
            jti: Some(uuid::Uuid::now_v7().to_string()),
        };
        jsonwebtoken::encode(&Header::new(self.policy.algorithm), &claims, &self.key)
            .map_err(|e| ConfigError::new("JWT_PRIVATE_KEY", format!("cannot sign: {e}")))
    }
}

/// `Ok` iff the verifier accepts what the signer makes (a mismatched key pair is
/// caught before an operator hands out unusable tokens).
pub fn check_pair(signer: &Signer, verifier: &Verifier) -> Result<(), TokenError> {
    let now = unix_now();
    let token = signer
        .sign("pair-check", "", Duration::from_secs(60), now)
        .map_err(|_| TokenError::Malformed)?;
    verifier.verify(&token).map(|_| ())
}
