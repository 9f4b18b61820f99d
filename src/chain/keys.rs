//! Ed25519 keys in PEM (RFC 8410): the private key the service signs checkpoints with
//! (`openssl genpkey -algorithm ed25519` writes one; so does `randomize audit keygen`),
//! and the public key `randomize audit verify` checks them with.

use ed25519_dalek::{Signer as _, Verifier as _};

/// PKCS#8 `PrivateKeyInfo` up to the 32-byte seed: version 0 or 1, algorithm
/// id-Ed25519 (1.3.101.112), the key as an OCTET STRING inside an OCTET STRING.
const PRIVATE_PREFIX: [u8; 11] = [
    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// `SubjectPublicKeyInfo` up to the 32-byte key.
const PUBLIC_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("is not PEM")]
    NotPem,
    #[error("is a PEM {0}, not an Ed25519 {1}")]
    WrongKind(String, &'static str),
    #[error("is not an Ed25519 key (RFC 8410)")]
    NotEd25519,
}

/// Signs checkpoints. Never printed: `Debug` shows only the public half.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public().fingerprint())
    }
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = decode(pem, "PRIVATE KEY", "private key")?;
        // SEQUENCE, length, INTEGER version (0, or 1 when the public key follows).
        let header_ok = der.len() >= 48
            && der[0] == 0x30
            && der[2..4] == [0x02, 0x01]
            && der[4] <= 1
            && der[5..16] == PRIVATE_PREFIX;
        if !header_ok {
            return Err(KeyError::NotEd25519);
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&der[16..48]);
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// A fresh key from the operating system's random source (through the thread's
    /// CSPRNG, which it seeds).
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn to_pem(&self) -> String {
        let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00];
        der.extend_from_slice(&PRIVATE_PREFIX);
        der.extend_from_slice(self.0.as_bytes());
        encode("PRIVATE KEY", der)
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// Checks checkpoint signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = decode(pem, "PUBLIC KEY", "public key")?;
        if der.len() != 44 || der[..12] != PUBLIC_PREFIX {
            return Err(KeyError::NotEd25519);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&der[12..]);
        ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map(Self)
            .map_err(|_| KeyError::NotEd25519)
    }

    pub fn to_pem(&self) -> String {
        let mut der = PUBLIC_PREFIX.to_vec();
        der.extend_from_slice(self.0.as_bytes());
        encode("PUBLIC KEY", der)
    }

    /// Whether `signature` is this key's over `message` (strict: no malleable forms).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &signature).is_ok()
            && self.0.verify(message, &signature).is_ok()
    }

    /// The first 8 bytes of the key's SHA-256, in hex: names the key in logs and output.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        super::encoding::hex(&sha2::Sha256::digest(self.0.as_bytes())[..8])
    }
}

fn decode(text: &str, label: &str, wanted: &'static str) -> Result<Vec<u8>, KeyError> {
    let block = pem::parse(text.trim()).map_err(|_| KeyError::NotPem)?;
    if block.tag() != label {
        return Err(KeyError::WrongKind(block.tag().to_owned(), wanted));
    }
    Ok(block.into_contents())
}

fn encode(label: &str, der: Vec<u8>) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `openssl genpkey -algorithm ed25519` (a test key, nothing else).
    const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIBYkcyq/88gm9tZMwrjD9LpssUgh3LO0/Gz8xrI7eUnw\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn an_openssl_key_round_trips_and_signs() {
        let key = SigningKey::from_pem(OPENSSL_PRIVATE).unwrap();
        assert_eq!(
            SigningKey::from_pem(&key.to_pem()).unwrap().to_pem(),
            key.to_pem()
        );
        let public = PublicKey::from_pem(&key.public().to_pem()).unwrap();
        let signature = key.sign(b"message");
        assert!(public.verifies(b"message", &signature));
        assert!(!public.verifies(b"messagf", &signature));
        assert!(!public.verifies(b"message", &signature[..63]));
    }

    #[test]
    fn another_key_does_not_verify() {
        let signature = SigningKey::generate().sign(b"m");
        assert!(!SigningKey::generate().public().verifies(b"m", &signature));
    }

    #[test]
    fn wrong_inputs_are_named() {
        assert_eq!(SigningKey::from_pem("nope").unwrap_err(), KeyError::NotPem);
        let public = SigningKey::generate().public().to_pem();
        assert!(matches!(
            SigningKey::from_pem(&public),
            Err(KeyError::WrongKind(tag, _)) if tag == "PUBLIC KEY"
        ));
        let rsa_like = encode("PRIVATE KEY", vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(
            SigningKey::from_pem(&rsa_like).unwrap_err(),
            KeyError::NotEd25519
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SigningKey::from_pem(OPENSSL_PRIVATE).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.starts_with("SigningKey(public "));
        assert!(!shown.contains("MC4CAQ"));
    }
}
