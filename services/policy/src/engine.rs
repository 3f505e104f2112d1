//! The decision engine: the one interface every caller decides through. It
//! holds the live [`PolicySnapshot`] behind an atomic pointer; a new policy
//! replaces the whole snapshot, and each decision reads exactly one.
//!
//! Break-the-glass (purpose `emergency_override`) is decided here too: the
//! policy alone names what a role may see in an emergency, the subject's
//! consent is not asked, the flag's lifecycle still is, and the result is
//! marked as an override. Checking the written reason, auditing and opening
//! the review item are the caller's; see `policies/README.md`.

use crate::consent_cover::consent_covers;
use crate::decision::{DenyReason, Disclosure};
use crate::rules::{PolicyError, PolicySource};
use crate::snapshot::PolicySnapshot;
use arc_swap::ArcSwap;
use flagnet_core::{AgencyId, Consent, FieldClassSet, Flag, Purpose, RoleName, UserId};
use std::sync::Arc;
use time::OffsetDateTime;

/// The person (or the peer acting for one) asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub agency: AgencyId,
    pub user: Option<UserId>,
    pub roles: Vec<RoleName>,
}

/// Operations other than reading flag content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// create and change flags and consents, list and read them in full
    MaintainRecords,
}

/// Decides disclosures from the current policy snapshot.
#[derive(Debug)]
pub struct DecisionEngine {
    current: ArcSwap<PolicySnapshot>,
}

impl DecisionEngine {
    pub fn new(snapshot: PolicySnapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// Reads, checks and builds the policy in `source`.
    pub async fn load(source: &PolicySource, extra_agencies: &[AgencyId]) -> Result<Self, PolicyError> {
        let rules = source.read()?;
        Ok(Self::new(PolicySnapshot::build(rules, extra_agencies).await?))
    }

    /// The snapshot in force now; hold it for the whole of one request.
    pub fn snapshot(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Swaps in a new snapshot; requests already holding the old one finish with it.
    pub fn replace(&self, snapshot: PolicySnapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// The roles of a person, from the agency's role assignments.
    pub fn roles_of(&self, agency: &AgencyId, user: &UserId) -> Vec<RoleName> {
        self.snapshot().roles_of(agency, user.as_str())
    }

    /// Whether `actor` may perform `operation` on records owned by `owner`.
    pub fn may(&self, actor: &Actor, owner: &AgencyId, operation: Operation) -> bool {
        match operation {
            Operation::MaintainRecords => self.snapshot().may_maintain_records(&actor.roles, &actor.agency, owner),
        }
    }

    /// Decides each field class of `flag` for `actor`: policy allows it, and an
    /// active consent among `consents` covers it, and the flag's lifecycle
    /// lets it be disclosed at `now`.
    ///
    /// For [`Purpose::EmergencyOverride`] (break-the-glass) the consent is not
    /// asked: the classes the policy grants the override are allowed, the
    /// rest denied by policy, and the result [`Disclosure::is_override`]
    /// whenever anything is allowed. A role the policy gives no override gets
    /// nothing. The lifecycle still applies: a lapsed flag or an expired hold
    /// is not disclosed even in an emergency.
    pub fn decide(
        &self,
        actor: &Actor,
        purpose: Purpose,
        flag: &Flag,
        consents: &[Consent],
        now: OffsetDateTime,
    ) -> Disclosure {
        Self::decide_with(&self.snapshot(), actor, purpose, flag, consents, now)
    }

    /// [`DecisionEngine::decide`] against a snapshot the caller holds, so
    /// every flag of one request is decided by the same policy version.
    pub fn decide_with(
        snapshot: &PolicySnapshot,
        actor: &Actor,
        purpose: Purpose,
        flag: &Flag,
        consents: &[Consent],
        now: OffsetDateTime,
    ) -> Disclosure {
        if flag.lifecycle_at(now).is_err() {
            return Disclosure::denied_all(DenyReason::Lifecycle);
        }
        let policy = snapshot.allowed_classes(&actor.roles, &actor.agency, &flag.owner, purpose);
        if purpose == Purpose::EmergencyOverride {
            return Disclosure::break_the_glass(policy);
        }
        let covering: Vec<FieldClassSet> = consents
            .iter()
            .filter(|consent| consent.flag_id == flag.id)
            .filter_map(|consent| consent_covers(snapshot, consent, actor, purpose, now))
            .collect();
        if covering.is_empty() {
            return Disclosure::denied_all(DenyReason::NoConsent);
        }
        let consented = covering.into_iter().fold(FieldClassSet::EMPTY, FieldClassSet::union);
        Disclosure::from_sets(policy, consented)
    }
}
