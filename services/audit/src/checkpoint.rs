//! Signed checkpoints: a node's Ed25519 signature over its log's tree size,
//! root hash, time and agency, so a peer or auditor that keeps one can later
//! prove the log was neither truncated nor rewritten.
//!
//! The signed message (`flagnet-checkpoint/v1`) and the key files (PKCS#8
//! and SPKI PEM, as `openssl genpkey -algorithm ed25519` writes them) are
//! specified in `services/audit/FORMAT.md`. This module must never log or
//! print secret key bytes, and never accept a signature it did not check
//! with `verify_strict`.

use crate::error::AuditError;
use crate::merkle::Hash;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use flagnet_core::AgencyId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::Path;
use time::OffsetDateTime;

/// The first line of every signed checkpoint message.
pub const CHECKPOINT_MESSAGE_HEADER: &str = "flagnet-checkpoint/v1";

/// A signed statement that the log of `agency` had `tree_size` records with
/// root `root_hash` at `time` (whole seconds, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub agency: AgencyId,
    pub tree_size: u64,
    #[serde(with = "hex_array")]
    pub root_hash: Hash,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The exact bytes signed: five lines, each ending in `\n`:
    /// header, agency, decimal size, lower-case hex root, decimal unix seconds.
    pub fn signed_message(agency: &AgencyId, tree_size: u64, root_hash: &Hash, time: OffsetDateTime) -> String {
        format!(
            "{CHECKPOINT_MESSAGE_HEADER}\n{agency}\n{tree_size}\n{}\n{}\n",
            hex::encode(root_hash),
            time.unix_timestamp()
        )
    }

    pub fn message(&self) -> String {
        Self::signed_message(&self.agency, self.tree_size, &self.root_hash, self.time)
    }

    /// Checks the signature with the agency's public key.
    pub fn verify(&self, key: &CheckpointVerifier) -> Result<(), AuditError> {
        let signature = Signature::from_bytes(&self.signature);
        key.0
            .verify_strict(self.message().as_bytes(), &signature)
            .map_err(|_| AuditError::Verification(format!("checkpoint at size {} has a bad signature", self.tree_size)))
    }
}

/// The node's checkpoint signing key, bound to its agency.
pub struct CheckpointSigner {
    agency: AgencyId,
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("agency", &self.agency)
            .field("public_key", &hex::encode(self.key.verifying_key().as_bytes()))
            .finish()
    }
}

fn fresh_signing_key() -> SigningKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

impl CheckpointSigner {
    /// A fresh key held only in memory (tests, demos).
    pub fn generate(agency: AgencyId) -> Self {
        Self {
            agency,
            key: fresh_signing_key(),
        }
    }

    pub fn from_pkcs8_pem(agency: AgencyId, pem: &str) -> Result<Self, AuditError> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|error| AuditError::Key(format!("not an ed25519 pkcs#8 pem private key: {error}")))?;
        Ok(Self { agency, key })
    }

    /// Reads a PKCS#8 PEM key file.
    pub fn load(agency: AgencyId, path: &Path) -> Result<Self, AuditError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|error| AuditError::Key(format!("cannot read {}: {error}", path.display())))?;
        Self::from_pkcs8_pem(agency, &pem).map_err(|error| match error {
            AuditError::Key(reason) => AuditError::Key(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// Writes a fresh key to a new file (mode 0600; an existing file is never
    /// overwritten) and returns its public half.
    pub fn generate_key_file(path: &Path) -> Result<CheckpointVerifier, AuditError> {
        let key = fresh_signing_key();
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| AuditError::Key(format!("cannot encode key: {error}")))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|error| AuditError::Key(format!("cannot create {}: {error}", path.display())))?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|error| AuditError::Key(format!("cannot write {}: {error}", path.display())))?;
        Ok(CheckpointVerifier(key.verifying_key()))
    }

    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier(self.key.verifying_key())
    }

    /// Signs the tree head at `time`, truncated to whole seconds.
    pub fn sign(&self, tree_size: u64, root_hash: Hash, time: OffsetDateTime) -> Checkpoint {
        let time = time
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .expect("zero is a valid nanosecond");
        let message = Checkpoint::signed_message(&self.agency, tree_size, &root_hash, time);
        Checkpoint {
            agency: self.agency.clone(),
            tree_size,
            root_hash,
            time,
            signature: self.key.sign(message.as_bytes()).to_bytes(),
        }
    }
}

/// An agency's checkpoint public key.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointVerifier(VerifyingKey);

impl fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointVerifier({})", hex::encode(self.0.as_bytes()))
    }
}

impl CheckpointVerifier {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, AuditError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| AuditError::Key("not an ed25519 public key".into()))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn from_public_key_pem(pem: &str) -> Result<Self, AuditError> {
        VerifyingKey::from_public_key_pem(pem)
            .map(Self)
            .map_err(|error| AuditError::Key(format!("not an ed25519 spki pem public key: {error}")))
    }

    /// Reads an SPKI PEM public key file.
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|error| AuditError::Key(format!("cannot read {}: {error}", path.display())))?;
        Self::from_public_key_pem(&pem)
    }

    pub fn to_public_key_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("an ed25519 public key always encodes")
    }
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("must be {N} bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn agency() -> AgencyId {
        AgencyId::parse("phelps-so").unwrap()
    }

    #[test]
    fn signed_message_is_the_documented_text() {
        let message = Checkpoint::signed_message(&agency(), 42, &[0xab; 32], datetime!(2025-03-01 00:00:00 UTC));
        assert_eq!(
            message,
            format!(
                "flagnet-checkpoint/v1\nphelps-so\n42\n{}\n1740787200\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_breaks_it() {
        let signer = CheckpointSigner::generate(agency());
        let checkpoint = signer.sign(8, [7; 32], datetime!(2025-03-01 10:00:00.75 UTC));
        assert_eq!(checkpoint.time, datetime!(2025-03-01 10:00:00 UTC));
        checkpoint.verify(&signer.verifier()).unwrap();

        let mut bigger = checkpoint.clone();
        bigger.tree_size = 9;
        assert!(bigger.verify(&signer.verifier()).is_err());
        let mut other_root = checkpoint.clone();
        other_root.root_hash[0] ^= 1;
        assert!(other_root.verify(&signer.verifier()).is_err());
        let mut other_agency = checkpoint.clone();
        other_agency.agency = AgencyId::parse("rolla-pd").unwrap();
        assert!(other_agency.verify(&signer.verifier()).is_err());
        let stranger = CheckpointSigner::generate(agency());
        assert!(checkpoint.verify(&stranger.verifier()).is_err());

        let json = serde_json::to_string(&checkpoint).unwrap();
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, checkpoint);
    }

    #[test]
    fn rfc8032_test_1_signature_is_reproduced() {
        // RFC 8032 §7.1, TEST 1: empty message.
        let secret: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let key = SigningKey::from_bytes(&secret);
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn rfc8410_pem_keys_load() {
        // RFC 8410 §10.1 and §10.3: the example Ed25519 key pair.
        let private_pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let public_pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let signer = CheckpointSigner::from_pkcs8_pem(agency(), private_pem).unwrap();
        let verifier = CheckpointVerifier::from_public_key_pem(public_pem).unwrap();
        assert_eq!(signer.verifier(), verifier);
        assert_eq!(verifier.to_public_key_pem(), public_pem);
        assert!(CheckpointSigner::from_pkcs8_pem(agency(), public_pem).is_err());
    }

    #[test]
    fn golden_checkpoint_under_the_rfc8410_key() {
        // The FORMAT.md example; the signature was computed independently with
        // python3 `cryptography` (Ed25519PrivateKey.sign) over the same message.
        let private_pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let signer = CheckpointSigner::from_pkcs8_pem(agency(), private_pem).unwrap();
        let root: Hash = hex::decode("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
            .unwrap()
            .try_into()
            .unwrap();
        let checkpoint = signer.sign(8, root, datetime!(2025-03-01 00:00:00 UTC));
        assert_eq!(
            hex::encode(checkpoint.signature),
            "fabfeb79ed668329e0a999274b30aeed6dabb16255ae4dbd98fbc7c8bd9937168121a759e8dacbfac3c09b3afa6e12273947c85fb55b5d5d521299342b5cdb08"
        );
        checkpoint.verify(&signer.verifier()).unwrap();
    }

    #[test]
    fn key_files_are_created_once_with_private_mode_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.key");
        let verifier = CheckpointSigner::generate_key_file(&path).unwrap();
        let signer = CheckpointSigner::load(agency(), &path).unwrap();
        assert_eq!(signer.verifier(), verifier);
        assert!(!format!("{signer:?}").contains("PRIVATE"));
        assert!(
            CheckpointSigner::generate_key_file(&path).is_err(),
            "an existing key is never overwritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let public_path = dir.path().join("checkpoint.pub");
        std::fs::write(&public_path, verifier.to_public_key_pem()).unwrap();
        assert_eq!(CheckpointVerifier::load(&public_path).unwrap(), verifier);
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            CheckpointSigner::load(agency(), &path)
                .unwrap_err()
                .to_string()
                .contains("checkpoint.key")
        );
    }
}
