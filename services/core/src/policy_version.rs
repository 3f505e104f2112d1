//! Policy versions as a node keeps them: the Casbin model, the policy rows and
//! the role assignments of one applied version, with who made it, when, why,
//! its content hash and what it changed; and proposals waiting for a second
//! privacy officer under the two-person rule.
//!
//! Versions are numbered 1, 2, 3, ... per agency with no gaps; version 1 is
//! seeded from the reviewable `policies/` directory. A version is never
//! changed once stored: an edit or a rollback is a new version. This module
//! holds the text only; parsing and checking rows is `flagnet-policy`'s job,
//! and it must never be skipped because a text came from the store.

use crate::error::{CoreError, CoreResult};
use crate::flag::check_text;
use crate::identifier::AgencyId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// The largest model, policy or role assignment text accepted (each).
pub const MAX_POLICY_TEXT_LEN: usize = 8 * 1024 * 1024;
/// The longest reason, note or impact summary kept with a version.
pub const MAX_POLICY_NOTE_LEN: usize = 2000;
/// The domain separation prefix of [`PolicyContent::content_hash`].
const CONTENT_HASH_DOMAIN: &[u8] = b"flagnet/policy-content/v1";

/// The three files of one policy, as text: `model.conf`, `policy.csv`
/// (permissions, regions, role inheritance) and `roles.csv` (role assignments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyContent {
    pub model: String,
    pub policy: String,
    pub roles: String,
}

impl PolicyContent {
    /// SHA-256 over the three texts, each length-prefixed, as lowercase hex:
    /// equal exactly when the texts are equal, comments and order included.
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(CONTENT_HASH_DOMAIN);
        for text in [&self.model, &self.policy, &self.roles] {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Bounds each text and refuses control characters other than newline
    /// and tab (the rows themselves are checked by `flagnet-policy`).
    pub fn validate(&self) -> CoreResult<()> {
        for (field, text) in [
            ("policy.model", &self.model),
            ("policy.policy", &self.policy),
            ("policy.roles", &self.roles),
        ] {
            if text.len() > MAX_POLICY_TEXT_LEN {
                return Err(CoreError::invalid(
                    field,
                    format!("must be at most {MAX_POLICY_TEXT_LEN} bytes, got {}", text.len()),
                ));
            }
            if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
                return Err(CoreError::invalid(field, "must not contain control characters"));
            }
        }
        if self.model.trim().is_empty() {
            return Err(CoreError::invalid("policy.model", "is required"));
        }
        Ok(())
    }
}

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PolicyChangeKind {
    /// read from the node's `policy.dir` when the store had no version
    Seed,
    /// additions and removals, or a whole policy, proposed by a privacy officer
    Edit,
    /// the content of an earlier version, made current again
    Rollback { to: u64 },
}

impl PolicyChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyChangeKind::Seed => "seed",
            PolicyChangeKind::Edit => "edit",
            PolicyChangeKind::Rollback { .. } => "rollback",
        }
    }
}

impl fmt::Display for PolicyChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyChangeKind::Rollback { to } => write!(f, "rollback to v{to}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The second privacy officer's approval under the two-person rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyApproval {
    /// the approver's SPIFFE id
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A version to store as the one after `base_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicyVersion {
    pub agency: AgencyId,
    /// the version this one replaces; 0 for the seed
    pub base_version: u64,
    /// the SPIFFE id of the privacy officer, or `seed:<dir>` for the seed
    pub author: String,
    pub created_at: OffsetDateTime,
    pub reason: String,
    pub kind: PolicyChangeKind,
    pub content: PolicyContent,
    /// what the change does to decisions, for example `+3/-1 decisions`
    pub impact_summary: String,
    /// the proposal this version applies, under the two-person rule
    pub proposal: Option<Uuid>,
    pub approval: Option<PolicyApproval>,
}

/// One stored, applied version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub agency: AgencyId,
    pub version: u64,
    pub base_version: u64,
    pub author: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub reason: String,
    pub kind: PolicyChangeKind,
    pub content: PolicyContent,
    /// [`PolicyContent::content_hash`] of `content`
    pub content_hash: String,
    pub impact_summary: String,
    pub proposal: Option<Uuid>,
    pub approval: Option<PolicyApproval>,
}

impl NewPolicyVersion {
    /// Checks what a store must check before storing: the texts, the
    /// author, the reason, the summary, and that a rollback names an earlier
    /// version.
    pub fn validate(&self) -> CoreResult<()> {
        self.content.validate()?;
        check_note("policy.author", &self.author, true)?;
        check_note("policy.reason", &self.reason, true)?;
        check_note("policy.impact_summary", &self.impact_summary, false)?;
        if let PolicyChangeKind::Rollback { to } = self.kind
            && (to == 0 || to > self.base_version)
        {
            return Err(CoreError::invalid(
                "policy.rollback_to",
                format!("must name a version from 1 to {}, got {to}", self.base_version),
            ));
        }
        if self.base_version == 0 && self.kind != PolicyChangeKind::Seed {
            return Err(CoreError::invalid(
                "policy.base_version",
                "only the seed has no base version",
            ));
        }
        if let Some(approval) = &self.approval {
            check_note("policy.approval.by", &approval.by, true)?;
        }
        Ok(())
    }

    /// The stored version this becomes as number `base_version + 1`.
    pub fn into_version(self) -> PolicyVersion {
        PolicyVersion {
            version: self.base_version + 1,
            content_hash: self.content.content_hash(),
            agency: self.agency,
            base_version: self.base_version,
            author: self.author,
            created_at: self.created_at,
            reason: self.reason,
            kind: self.kind,
            content: self.content,
            impact_summary: self.impact_summary,
            proposal: self.proposal,
            approval: self.approval,
        }
    }
}

/// How a proposal was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ProposalOutcome {
    /// approved by a second privacy officer and stored as `version`
    Approved { version: u64 },
    /// rejected (or withdrawn by its author), with why
    Rejected { reason: String },
}

/// Who closed a proposal, when, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalClosing {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub outcome: ProposalOutcome,
}

/// An applied edit waiting, under the two-person rule, for a second privacy
/// officer. It applies only if its base is still the latest version then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyProposal {
    pub id: Uuid,
    pub agency: AgencyId,
    pub base_version: u64,
    pub proposed_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub proposed_at: OffsetDateTime,
    pub reason: String,
    pub kind: PolicyChangeKind,
    pub content: PolicyContent,
    pub content_hash: String,
    pub impact_summary: String,
    pub closing: Option<ProposalClosing>,
}

impl PolicyProposal {
    /// Checks a new (open) proposal; its hash must be that of its content.
    pub fn validate_new(&self) -> CoreResult<()> {
        let as_version = self.as_new_version(None);
        as_version.validate()?;
        if self.base_version == 0 {
            return Err(CoreError::invalid(
                "proposal.base_version",
                "must name the version it edits",
            ));
        }
        if self.content_hash != self.content.content_hash() {
            return Err(CoreError::invalid(
                "proposal.content_hash",
                "is not the hash of its content",
            ));
        }
        if self.closing.is_some() {
            return Err(CoreError::invalid("proposal.closing", "a new proposal is open"));
        }
        Ok(())
    }

    /// The version this proposal becomes once `approval` is given.
    pub fn as_new_version(&self, approval: Option<PolicyApproval>) -> NewPolicyVersion {
        NewPolicyVersion {
            agency: self.agency.clone(),
            base_version: self.base_version,
            author: self.proposed_by.clone(),
            created_at: approval.as_ref().map_or(self.proposed_at, |approval| approval.at),
            reason: self.reason.clone(),
            kind: self.kind,
            content: self.content.clone(),
            impact_summary: self.impact_summary.clone(),
            proposal: Some(self.id),
            approval,
        }
    }

    pub fn is_open(&self) -> bool {
        self.closing.is_none()
    }
}

/// Checks a closing before any proposal is read.
pub fn check_closing(closing: &ProposalClosing) -> CoreResult<()> {
    check_note("proposal.closed_by", &closing.by, true)?;
    if let ProposalOutcome::Rejected { reason } = &closing.outcome {
        check_note("proposal.reason", reason, true)?;
    }
    Ok(())
}

fn check_note(field: &str, value: &str, required: bool) -> CoreResult<()> {
    check_text(field, value)?;
    if required && value.trim().is_empty() {
        return Err(CoreError::invalid(field, "is required"));
    }
    if value.len() > MAX_POLICY_NOTE_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_POLICY_NOTE_LEN} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> PolicyContent {
        PolicyContent {
            model: "[request_definition]\nr = role\n".into(),
            policy: "p, dispatcher, any, same, presence, emergency_response, allow\n".into(),
            roles: "g, dispatcher1, dispatcher, phelps-so\n".into(),
        }
    }

    #[test]
    fn the_content_hash_covers_every_byte_and_every_boundary() {
        let base = content();
        let hash = base.content_hash();
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, content().content_hash());
        let mut moved = base.clone();
        moved.policy.push_str(&moved.roles);
        moved.roles.clear();
        assert_ne!(
            moved.content_hash(),
            hash,
            "text moved between files hashes differently"
        );
        let mut commented = base.clone();
        commented.policy.insert_str(0, "# why\n");
        assert_ne!(commented.content_hash(), hash);
    }

    #[test]
    fn new_versions_are_checked() {
        let good = NewPolicyVersion {
            agency: AgencyId::parse("phelps-so").unwrap(),
            base_version: 3,
            author: "spiffe://flagnet.demo/agency/phelps-so/user/privacy_officer1".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            reason: "grant rolla-pd dispatchers safety notes".into(),
            kind: PolicyChangeKind::Edit,
            content: content(),
            impact_summary: "+3/-0 decisions".into(),
            proposal: None,
            approval: None,
        };
        good.validate().unwrap();
        assert_eq!(good.clone().into_version().version, 4);
        type Spoil = fn(&mut NewPolicyVersion);
        let cases: [(&str, Spoil); 6] = [
            ("policy.reason", |v| v.reason = "  ".into()),
            ("policy.author", |v| v.author.clear()),
            ("policy.rollback_to", |v| v.kind = PolicyChangeKind::Rollback { to: 4 }),
            ("policy.rollback_to", |v| v.kind = PolicyChangeKind::Rollback { to: 0 }),
            ("policy.base_version", |v| v.base_version = 0),
            ("policy.policy", |v| v.content.policy.push('\u{0}')),
        ];
        for (field, spoil) in cases {
            let mut bad = good.clone();
            spoil(&mut bad);
            match bad.validate() {
                Err(CoreError::InvalidArgument { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
