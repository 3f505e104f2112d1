//! flagnet's tamper-evident audit log: one record per request and decision,
//! encoded canonically ([`record`]), chained into an RFC 6962 Merkle log
//! ([`merkle`]), made durable by a group-commit SQLite writer before any
//! answer goes out ([`log`]), sealed by Ed25519-signed checkpoints
//! ([`checkpoint`]) and read back by auditors through search, export,
//! proofs, verification and a subject's accounting of disclosures.
//!
//! This crate must never depend on tonic or hold a subject's plaintext: it
//! sees subjects only as keyed HMACs of blind tokens. The byte formats are in
//! `services/audit/FORMAT.md`.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod error;
pub mod log;
pub mod merkle;
pub mod query;
pub mod record;
pub mod sink;
pub mod store;

pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
pub use error::AuditError;
pub use log::{AuditLog, AuditLogConfig, AuditStats};
pub use merkle::Hash;
pub use query::{
    AuditPage, AuditQuery, ConsistencyProof, DisclosureAccount, InclusionProof, StoredRecord, VerifyReport,
};
pub use record::{
    AuditAction, AuditOutcome, AuditRecord, AuditTokenKey, DisclosedFields, Fingerprint, SubjectRef, WithheldField,
    WithholdReason, certificate_fingerprint, decode_entry, encode_entry,
};
pub use sink::{AppendReceipt, AuditHealth, AuditSink, NullAuditSink};
pub use store::FaultInjector;
