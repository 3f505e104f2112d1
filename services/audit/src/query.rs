//! What auditors ask of the log and what they get back: search filters and
//! pages, stored records, the accounting of disclosures, proofs and the
//! verification report.
//!
//! Everything here is plain data with no I/O. Subjects are named only by
//! [`SubjectRef`]s; the node turns what an auditor typed into refs before it
//! builds a query, and nothing here may carry that plaintext.

use crate::checkpoint::Checkpoint;
use crate::error::AuditError;
use crate::merkle::Hash;
use crate::record::{AuditAction, AuditOutcome, AuditRecord, SubjectRef};
use flagnet_core::{AgencyId, FieldClassSet, Purpose, RoleName, UserId};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The page size used when a query asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page a search returns; larger page sizes are clamped.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The most subject refs one query may carry.
pub const MAX_QUERY_SUBJECT_REFS: usize = 64;
/// The most entries one accounting of disclosures returns.
pub const MAX_DISCLOSURE_ENTRIES: usize = 10_000;

/// A search of the log. Every filter that is set must match; a record
/// matches `subject_refs` when it names any of them. Results come oldest
/// first (by leaf index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Inclusive lower bound on the record time.
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound on the record time.
    pub to: Option<OffsetDateTime>,
    pub actor_agency: Option<AgencyId>,
    pub actor_user: Option<UserId>,
    pub action: Option<AuditAction>,
    pub incident_id: Option<String>,
    pub request_id: Option<Uuid>,
    pub outcome: Option<AuditOutcome>,
    pub subject_refs: Vec<SubjectRef>,
    /// 0 means [`DEFAULT_PAGE_SIZE`]; at most [`MAX_PAGE_SIZE`] are returned.
    pub page_size: u32,
    /// The `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

impl AuditQuery {
    pub(crate) fn effective_page_size(&self) -> u32 {
        match self.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        }
    }

    /// The first leaf index this page may return.
    pub(crate) fn start_index(&self) -> Result<u64, AuditError> {
        let Some(token) = &self.page_token else {
            return Ok(0);
        };
        token
            .strip_prefix("after:")
            .and_then(|rest| rest.parse::<u64>().ok())
            .and_then(|last| last.checked_add(1))
            .ok_or_else(|| AuditError::invalid("page_token", "not a token this log issued"))
    }

    pub(crate) fn validate(&self) -> Result<(), AuditError> {
        if self.subject_refs.len() > MAX_QUERY_SUBJECT_REFS {
            return Err(AuditError::invalid(
                "subject_refs",
                format!("at most {MAX_QUERY_SUBJECT_REFS} refs, got {}", self.subject_refs.len()),
            ));
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(AuditError::invalid("to", "must not be before from"));
        }
        self.start_index().map(|_| ())
    }
}

pub(crate) fn page_token_after(last_index: u64) -> String {
    format!("after:{last_index}")
}

/// One record as stored: its leaf index, canonical entry bytes and leaf
/// hash, and the decoded record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    pub index: u64,
    #[serde(serialize_with = "hex_bytes")]
    pub leaf_hash: Hash,
    #[serde(serialize_with = "hex_bytes")]
    pub entry: Vec<u8>,
    pub record: AuditRecord,
}

fn hex_bytes<S: serde::Serializer>(bytes: impl AsRef<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<StoredRecord>,
    /// Set when more results may follow.
    pub next_page_token: Option<String>,
}

/// One line of a subject's accounting of disclosures: who received which
/// field classes of which flag, when, and for what purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisclosureAccount {
    pub index: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub request_id: Uuid,
    pub action: AuditAction,
    pub recipient_agency: Option<AgencyId>,
    pub recipient_user: Option<UserId>,
    pub recipient_roles: Vec<RoleName>,
    pub owner_agency: AgencyId,
    pub flag_id: Uuid,
    #[serde(serialize_with = "class_names")]
    pub classes: FieldClassSet,
    pub purpose: Option<Purpose>,
    pub incident_id: Option<String>,
    pub override_used: bool,
}

fn class_names<S: serde::Serializer>(classes: &FieldClassSet, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(classes.iter())
}

/// Proof that the leaf at `leaf_index` is in the tree of `tree_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub root_hash: Hash,
    pub hashes: Vec<Hash>,
}

/// Proof that the tree of `old_size` is a prefix of the tree of `new_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: Hash,
    pub new_root: Hash,
    pub hashes: Vec<Hash>,
}

/// The result of recomputing the log from its stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many records are stored.
    pub size: u64,
    /// The root over the leaf hashes recomputed from the stored bytes, in
    /// stored order.
    pub root: Hash,
    /// The first index that breaks the log and why; `None` when it verifies.
    /// For a problem found only against a checkpoint, the index is the first
    /// one no good checkpoint vouches for (for a truncation, the first
    /// missing index).
    pub first_bad: Option<(u64, String)>,
    /// How many signed checkpoints were checked against the records.
    pub checkpoints_checked: u64,
    /// The newest stored checkpoint.
    pub latest_checkpoint: Option<Checkpoint>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}
