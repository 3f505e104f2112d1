//! Blind tokens: HMAC-SHA256 over a normalised subject key under the
//! federation-wide matching key. Nodes store, send and log only tokens; the
//! plaintext a person typed never leaves their home node.
//!
//! Each token is domain-separated by its kind, so a phone number and an
//! address that normalise to the same text give different tokens.

use crate::error::{CoreError, CoreResult};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

/// The shortest matching key accepted, in bytes.
pub const MIN_MATCHING_KEY_LEN: usize = 32;

/// What a token was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKeyKind {
    /// E.164 phone number
    Phone,
    /// normalised postal address
    Address,
    /// folded full name and ISO birth date
    NameBirthDate,
    /// phonetic key of the name and ISO birth date
    PhoneticNameBirthDate,
}

impl SubjectKeyKind {
    pub const ALL: [SubjectKeyKind; 4] = [
        SubjectKeyKind::Phone,
        SubjectKeyKind::Address,
        SubjectKeyKind::NameBirthDate,
        SubjectKeyKind::PhoneticNameBirthDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKeyKind::Phone => "phone",
            SubjectKeyKind::Address => "address",
            SubjectKeyKind::NameBirthDate => "name_birth_date",
            SubjectKeyKind::PhoneticNameBirthDate => "phonetic_name_birth_date",
        }
    }

    pub fn parse(value: &str) -> CoreResult<Self> {
        SubjectKeyKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| CoreError::invalid("token.kind", format!("unknown subject key kind {value:?}")))
    }
}

/// An HMAC-SHA256 blind token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlindToken(pub [u8; 32]);

impl BlindToken {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_slice(bytes: &[u8]) -> CoreResult<Self> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CoreError::invalid("token", format!("must be 32 bytes, got {}", bytes.len())))?;
        Ok(Self(array))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for BlindToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindToken({})", &self.to_hex()[..12])
    }
}

/// A subject key turned into a token, with what it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubjectToken {
    pub kind: SubjectKeyKind,
    pub token: BlindToken,
}

/// The federation-wide matching key. Its bytes never appear in logs.
#[derive(Clone)]
pub struct MatchingKey(Vec<u8>);

impl fmt::Debug for MatchingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MatchingKey(..)")
    }
}

impl MatchingKey {
    pub fn from_bytes(bytes: Vec<u8>) -> CoreResult<Self> {
        if bytes.len() < MIN_MATCHING_KEY_LEN {
            return Err(CoreError::invalid(
                "matching_key",
                format!("must be at least {MIN_MATCHING_KEY_LEN} bytes, got {}", bytes.len()),
            ));
        }
        Ok(Self(bytes))
    }

    /// Reads a key file holding the key as hex (whitespace ignored).
    pub fn load(path: &Path) -> CoreResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            CoreError::invalid("matching_key_file", format!("cannot read {}: {error}", path.display()))
        })?;
        let bytes = hex::decode(text.trim()).map_err(|error| {
            CoreError::invalid("matching_key_file", format!("{} is not hex: {error}", path.display()))
        })?;
        Self::from_bytes(bytes)
    }

    /// A fresh random 32-byte key, as hex for a key file.
    pub fn generate_hex() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// The token of an already normalised value.
    pub fn token(&self, kind: SubjectKeyKind, normalized: &str) -> SubjectToken {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("hmac accepts any key length");
        mac.update(b"flagnet/v1/");
        mac.update(kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        SubjectToken {
            kind,
            token: BlindToken(mac.finalize().into_bytes().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MatchingKey {
        MatchingKey::from_bytes(vec![7; 32]).unwrap()
    }

    #[test]
    fn tokens_are_deterministic_keyed_and_domain_separated() {
        let a = key().token(SubjectKeyKind::Phone, "+15735550100");
        assert_eq!(a, key().token(SubjectKeyKind::Phone, "+15735550100"));
        assert_ne!(a.token, key().token(SubjectKeyKind::Address, "+15735550100").token);
        let other = MatchingKey::from_bytes(vec![8; 32]).unwrap();
        assert_ne!(a.token, other.token(SubjectKeyKind::Phone, "+15735550100").token);
        assert!(!format!("{a:?}").contains("5735550100"));
    }

    #[test]
    fn matches_an_independent_hmac_computation() {
        // HMAC-SHA256(key = 32 x 0x07, "flagnet/v1/phone\0+15735550100"), computed with
        // `printf 'flagnet/v1/phone\0+15735550100' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0707...`
        let token = key().token(SubjectKeyKind::Phone, "+15735550100");
        assert_eq!(
            token.token.to_hex(),
            "0b799e039e97c5019b4a8e0fadf30af49f24037471c7223187e6e75c65c8b821"
        );
    }

    #[test]
    fn short_keys_and_bad_files_are_refused() {
        assert!(MatchingKey::from_bytes(vec![1; 16]).is_err());
        let dir = std::env::temp_dir().join(format!("flagnet-key-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, "not hex").unwrap();
        assert!(MatchingKey::load(&dir).unwrap_err().to_string().contains("not hex"));
        std::fs::write(&dir, MatchingKey::generate_hex()).unwrap();
        assert!(MatchingKey::load(&dir).is_ok());
        std::fs::remove_file(&dir).unwrap();
    }
}
