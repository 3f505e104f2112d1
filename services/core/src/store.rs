//! The `Store` trait: what the node needs from its database, in domain terms.
//! SQLite implements it today and PostgreSQL later, behind the same trait and
//! the same conformance suite. Implementations keep flag and consent content
//! encrypted at rest and index subjects by blind token only.

use crate::blind_token::SubjectToken;
use crate::consent::{Consent, NewConsent};
use crate::encounter::{Alert, Encounter};
use crate::error::CoreResult;
use crate::flag::{Flag, FlagChange, NewFlag};
use crate::identifier::AgencyId;
use crate::policy_version::{NewPolicyVersion, PolicyApproval, PolicyProposal, PolicyVersion, ProposalClosing};
use crate::review::{ReviewItem, ReviewResolution};
use async_trait::async_trait;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A flag found by a lookup, with which of the asked tokens matched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagMatch {
    pub flag: Flag,
    pub matched: Vec<SubjectToken>,
}

/// A node's durable state: flags, their history, consents, alerts, review
/// items, and the node's policy versions.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Creates a flag (`id` is `None`) or replaces one (`id` names a flag of
    /// `owner`; another agency's flag is `NotFound`). Bumps the revision and
    /// appends a history entry in the same transaction.
    async fn put_flag(&self, flag: NewFlag, at: OffsetDateTime) -> CoreResult<Flag>;

    /// A flag of `owner`, or `None`.
    async fn get_flag(&self, owner: &AgencyId, id: Uuid) -> CoreResult<Option<Flag>>;

    /// Flags of `owner` ordered by id, starting after `after`, at most `limit`.
    async fn list_flags(&self, owner: &AgencyId, after: Option<Uuid>, limit: usize) -> CoreResult<Vec<Flag>>;

    /// The history of a flag of `owner`, oldest first.
    async fn flag_history(&self, owner: &AgencyId, id: Uuid) -> CoreResult<Vec<FlagChange>>;

    /// Every flag carrying any of `tokens` (kind and token both match).
    async fn find_flags(&self, tokens: &[SubjectToken]) -> CoreResult<Vec<FlagMatch>>;

    /// Records a consent for a flag of `consent.owner` (`NotFound` otherwise).
    /// The caller validates it first.
    async fn record_consent(&self, consent: NewConsent, at: OffsetDateTime) -> CoreResult<Consent>;

    /// Revokes a consent of `owner`. Revoking twice is `FailedPrecondition`.
    async fn revoke_consent(
        &self,
        owner: &AgencyId,
        id: Uuid,
        by: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> CoreResult<Consent>;

    /// Consents of a flag of `owner`, oldest first.
    async fn list_consents(&self, owner: &AgencyId, flag_id: Uuid) -> CoreResult<Vec<Consent>>;

    /// Consents of each of `flag_ids`, for deciding a lookup in one query.
    async fn consents_for_flags(&self, flag_ids: &[Uuid]) -> CoreResult<HashMap<Uuid, Vec<Consent>>>;

    /// Stores an encounter about a flag of this node and gives it the next
    /// alert cursor; the same encounter id twice returns the first alert and
    /// `false`.
    async fn store_alert(&self, encounter: Encounter, at: OffsetDateTime) -> CoreResult<(Alert, bool)>;

    /// Alerts about flags of `owner` with a cursor above `after`, in cursor
    /// order, at most `limit`.
    async fn alerts_after(&self, owner: &AgencyId, after: u64, limit: usize) -> CoreResult<Vec<Alert>>;

    /// Queues an encounter for delivery to another agency's node; the same
    /// encounter id twice is queued once (`false`).
    async fn enqueue_delivery(&self, encounter: Encounter, at: OffsetDateTime) -> CoreResult<bool>;

    /// Queued encounters not yet delivered, oldest first, at most `limit`.
    async fn pending_deliveries(&self, limit: usize) -> CoreResult<Vec<Encounter>>;

    /// Marks a queued encounter delivered; it is not offered again.
    async fn mark_delivered(&self, encounter_id: Uuid, at: OffsetDateTime) -> CoreResult<()>;

    /// Opens a break-the-glass review item for the owner's privacy officer.
    async fn add_review_item(&self, item: ReviewItem) -> CoreResult<()>;

    /// Review items of `owner`, oldest first; resolved ones only if asked.
    async fn review_items(&self, owner: &AgencyId, include_resolved: bool, limit: usize)
    -> CoreResult<Vec<ReviewItem>>;

    /// Closes a review item of `owner`; closing twice is `FailedPrecondition`.
    async fn resolve_review_item(
        &self,
        owner: &AgencyId,
        id: Uuid,
        resolution: ReviewResolution,
    ) -> CoreResult<ReviewItem>;

    /// The applied policy version of `agency` with the highest number, or
    /// `None` before the seed.
    async fn latest_policy_version(&self, agency: &AgencyId) -> CoreResult<Option<PolicyVersion>>;

    /// One applied version of `agency`, or `None`.
    async fn policy_version(&self, agency: &AgencyId, version: u64) -> CoreResult<Option<PolicyVersion>>;

    /// Applied versions of `agency`, newest first, numbered below `before`
    /// when given, at most `limit`.
    async fn policy_history(
        &self,
        agency: &AgencyId,
        before: Option<u64>,
        limit: usize,
    ) -> CoreResult<Vec<PolicyVersion>>;

    /// Stores `version` as number `base_version + 1`, if `base_version` is
    /// still the latest (0: no version yet); `Aborted` otherwise, and nothing
    /// is stored. Concurrent appends on one base: exactly one succeeds.
    async fn append_policy_version(&self, version: NewPolicyVersion) -> CoreResult<PolicyVersion>;

    /// Stores an open proposal (two-person rule).
    async fn add_policy_proposal(&self, proposal: PolicyProposal) -> CoreResult<()>;

    /// One proposal of `agency`, open or closed, or `None`.
    async fn policy_proposal(&self, agency: &AgencyId, id: Uuid) -> CoreResult<Option<PolicyProposal>>;

    /// Proposals of `agency`, oldest first; closed ones only if asked.
    async fn policy_proposals(
        &self,
        agency: &AgencyId,
        include_closed: bool,
        limit: usize,
    ) -> CoreResult<Vec<PolicyProposal>>;

    /// In one transaction: closes open proposal `id` as approved and stores
    /// its content as the next version, if its base is still the latest.
    /// A closed proposal is `FailedPrecondition`; a moved base is `Aborted`
    /// and the proposal stays open.
    async fn approve_policy_proposal(
        &self,
        agency: &AgencyId,
        id: Uuid,
        approval: PolicyApproval,
    ) -> CoreResult<PolicyVersion>;

    /// Closes open proposal `id` as rejected (`closing.outcome` must say
    /// so); a closed one is `FailedPrecondition`.
    async fn reject_policy_proposal(
        &self,
        agency: &AgencyId,
        id: Uuid,
        closing: ProposalClosing,
    ) -> CoreResult<PolicyProposal>;
}
