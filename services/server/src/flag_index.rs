//! FlagIndex, the person-facing service: lookups for dispatchers, officers
//! and liaisons; flags and consents for records clerks. Each operation takes
//! an authenticated [`Caller`] and domain values, decides, touches the store,
//! and returns domain values; the gRPC adapter in [`crate::grpc`] converts.

use crate::audit_trail::{AuditTrail, record_disclosures};
use crate::caller::{Caller, require_person};
use crate::convert::{FlagDraft, MAX_INCIDENT_ID_LEN};
use crate::peers::{FanOutQuery, PeerOutcome, PeerSet};
use flagnet_audit::{AuditOutcome, AuditRecord};
use flagnet_core::flag::check_text;
use flagnet_core::{
    AgencyId, Clock, Consent, CoreError, CoreResult, Flag, MatchingKey, NewConsent, NewFlag, Purpose, Store,
    SubjectKeyKind, SubjectToken,
};
use flagnet_core::{Alert, ReviewItem, RoleName};
use flagnet_policy::{Actor, DecisionEngine, Disclosure, Operation};
use std::sync::Arc;
use tokio::time::Instant;
use uuid::Uuid;

/// The longest written reason (change, revocation, override) accepted.
pub const MAX_REASON_LEN: usize = 1000;
/// The most flags one page of `ListFlags` returns.
pub const MAX_PAGE_SIZE: usize = 500;

/// What a lookup asks.
#[derive(Debug, Clone)]
pub struct LookupQuery {
    pub tokens: Vec<SubjectToken>,
    pub purpose: Purpose,
    pub incident_id: String,
    pub override_reason: Option<String>,
    /// ask the peers too
    pub federated: bool,
}

/// Why a lookup failed, and whether its audit record is still to be written.
#[derive(Debug)]
pub enum LookupFailure {
    /// refused or failed before anything was recorded: the caller records it
    NotAudited(CoreError, Box<AuditRecord>),
    /// the record could not be made durable: nothing may be disclosed
    AuditFailed(CoreError),
}

/// One disclosed flag.
#[derive(Debug, Clone)]
pub struct DisclosedFlag {
    pub flag: Flag,
    pub disclosure: Disclosure,
    pub phonetic_only: bool,
}

/// The answer to a lookup, before conversion.
#[derive(Debug, Clone)]
pub struct LookupOutcome {
    pub request_id: Uuid,
    pub matches: Vec<DisclosedFlag>,
    /// one entry per peer asked, with its matches if it answered
    pub peers: Vec<(AgencyId, PeerOutcome)>,
}

/// Everything a node's FlagIndex needs.
#[derive(Debug, Clone)]
pub struct FlagIndexCore {
    pub agency: AgencyId,
    pub federation: String,
    pub phone_region: String,
    pub store: Arc<dyn Store>,
    pub engine: Arc<DecisionEngine>,
    pub matching_key: Arc<MatchingKey>,
    pub clock: Arc<dyn Clock>,
    pub peers: Arc<PeerSet>,
    pub audit: AuditTrail,
    pub metrics: Arc<crate::metrics::NodeMetrics>,
    /// live encounter alerts, for `WatchAlerts` streams
    pub alerts: tokio::sync::broadcast::Sender<Alert>,
}

/// A written reason: required, bounded, printable.
pub fn reason(field: &str, value: &str) -> CoreResult<String> {
    if value.trim().is_empty() {
        return Err(CoreError::invalid(field, "is required"));
    }
    if value.len() > MAX_REASON_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_REASON_LEN} bytes"),
        ));
    }
    check_text(field, value)?;
    Ok(value.trim().to_owned())
}

impl FlagIndexCore {
    /// Whether any of the caller's roles is `role` or inherits it, by the
    /// policy in force.
    pub fn holds_role(&self, caller: &Caller, role: &str) -> bool {
        let Ok(wanted) = RoleName::parse(role) else {
            return false;
        };
        let snapshot = self.engine.snapshot();
        caller.roles.iter().any(|held| snapshot.role_includes(held, &wanted))
    }

    /// Refuses anyone but a person of this node's agency holding `role`,
    /// with `refusal` as the reason.
    pub fn require_own_agency_role(&self, caller: &Caller, role: &str, refusal: &str) -> CoreResult<()> {
        require_person(caller)?;
        if caller.identity.agency != self.agency || !self.holds_role(caller, role) {
            return Err(CoreError::PermissionDenied(refusal.to_owned()));
        }
        Ok(())
    }

    /// Refuses anyone but this agency's records clerks; checked before the
    /// request is even read, so others learn nothing from validation.
    pub fn require_records_clerk(&self, caller: &Caller) -> CoreResult<()> {
        require_person(caller)?;
        if caller.identity.agency != self.agency {
            return Err(CoreError::PermissionDenied(
                "records are kept only by the owner agency's own staff".into(),
            ));
        }
        if !self
            .engine
            .may(&caller.actor(), &self.agency, Operation::MaintainRecords)
        {
            return Err(CoreError::PermissionDenied(
                "maintaining flags and consents needs the records_clerk role".into(),
            ));
        }
        Ok(())
    }

    /// The flags carrying any of `tokens` and what `actor` may see of each;
    /// flags whose presence is not disclosed are left out entirely.
    pub async fn decide_flags(
        &self,
        actor: &Actor,
        tokens: &[SubjectToken],
        purpose: Purpose,
    ) -> CoreResult<Vec<DisclosedFlag>> {
        let now = self.clock.now();
        let found = self.store.find_flags(tokens).await?;
        let flag_ids: Vec<Uuid> = found.iter().map(|found| found.flag.id).collect();
        let consents = if flag_ids.is_empty() {
            Default::default()
        } else {
            self.store.consents_for_flags(&flag_ids).await?
        };
        let no_consents: Vec<Consent> = Vec::new();
        // one policy version for the whole request: roles and rules together
        let snapshot = self.engine.snapshot();
        let actor = &match &actor.user {
            Some(user) if actor.agency == self.agency => Actor {
                roles: snapshot.roles_of(&actor.agency, user.as_str()),
                ..actor.clone()
            },
            _ => actor.clone(),
        };
        Ok(found
            .into_iter()
            .filter_map(|found| {
                let flag_consents = consents.get(&found.flag.id).unwrap_or(&no_consents);
                let disclosure =
                    DecisionEngine::decide_with(&snapshot, actor, purpose, &found.flag, flag_consents, now);
                let outcome = match (disclosure.discloses_presence(), disclosure.is_override()) {
                    (false, _) => "hidden",
                    (true, true) => "override",
                    (true, false) => "disclosed",
                };
                self.metrics.decisions.with_label_values(&[outcome]).inc();
                if !disclosure.discloses_presence() {
                    return None;
                }
                let phonetic_only = found
                    .matched
                    .iter()
                    .all(|token| token.kind == SubjectKeyKind::PhoneticNameBirthDate);
                Some(DisclosedFlag {
                    flag: found.flag,
                    disclosure,
                    phonetic_only,
                })
            })
            .collect())
    }

    /// Opens a review item for every flag disclosed by break-the-glass; the
    /// answer waits for them, so no override goes unreviewed.
    pub async fn open_reviews(
        &self,
        request_id: Uuid,
        actor: &Actor,
        decided: &[DisclosedFlag],
        override_reason: Option<&str>,
        incident_id: &str,
    ) -> CoreResult<()> {
        for found in decided.iter().filter(|found| found.disclosure.is_override()) {
            let actor_user = actor
                .user
                .clone()
                .ok_or_else(|| CoreError::PermissionDenied("break-the-glass needs a person".into()))?;
            let item = ReviewItem {
                id: Uuid::new_v4(),
                request_id,
                owner: found.flag.owner.clone(),
                flag_id: found.flag.id,
                actor_agency: actor.agency.clone(),
                actor_user,
                actor_roles: actor.roles.clone(),
                field_classes: found.disclosure.allowed().iter().collect(),
                reason: override_reason.unwrap_or_default().to_owned(),
                incident_id: incident_id.to_owned(),
                created_at: self.clock.now(),
                resolution: None,
            };
            self.store.add_review_item(item).await?;
            tracing::warn!(%request_id, flag_id = %found.flag.id, actor_agency = %actor.agency, "break-the-glass disclosure opened a review item");
        }
        Ok(())
    }

    /// Finds the subject's flags at this node and, unless the lookup is
    /// local, at every peer, all at once and within `deadline`. The record
    /// of this node's own part is made durable while the peers work (each
    /// peer's own record covers what it discloses); nothing is returned
    /// before it is.
    pub async fn lookup(
        &self,
        caller: &Caller,
        query: LookupQuery,
        deadline: Instant,
        request_id: Uuid,
        mut record: AuditRecord,
    ) -> Result<LookupOutcome, LookupFailure> {
        if let Err(error) = require_person(caller) {
            return Err(LookupFailure::NotAudited(error, Box::new(record)));
        }
        if caller.roles.is_empty() {
            let error = CoreError::PermissionDenied(format!(
                "{} has no role at {}",
                caller.spiffe_id(),
                caller.identity.agency
            ));
            return Err(LookupFailure::NotAudited(error, Box::new(record)));
        }
        debug_assert!(query.incident_id.len() <= MAX_INCIDENT_ID_LEN);
        let actor = caller.actor();
        let ask_peers = query.federated && !self.peers.is_empty();
        let fan_out = FanOutQuery {
            request_id,
            actor: actor.clone(),
            purpose: query.purpose.as_str().to_owned(),
            incident_id: query.incident_id.clone(),
            tokens: query.tokens.clone(),
            override_reason: query.override_reason.clone(),
        };
        let local = async {
            let matches = match self.decide_flags(&actor, &query.tokens, query.purpose).await {
                Ok(matches) => matches,
                Err(error) => return Err(LookupFailure::NotAudited(error, Box::new(record))),
            };
            if let Err(error) = self
                .open_reviews(
                    request_id,
                    &actor,
                    &matches,
                    query.override_reason.as_deref(),
                    &query.incident_id,
                )
                .await
            {
                return Err(LookupFailure::NotAudited(error, Box::new(record)));
            }
            record_disclosures(&mut record, &matches);
            record.outcome = AuditOutcome::Ok;
            record.grpc_code = 0;
            self.audit.append(record).await.map_err(LookupFailure::AuditFailed)?;
            Ok(matches)
        };
        let (local, peers) = if ask_peers {
            tokio::join!(local, self.peers.fan_out(&fan_out, deadline))
        } else {
            (local.await, Vec::new())
        };
        let matches = local?;
        tracing::info!(
            request_id = %request_id,
            actor = %caller.spiffe_id(),
            fingerprint = %caller.certificate_fingerprint,
            purpose = %query.purpose,
            incident_id = %query.incident_id,
            override_used = query.override_reason.is_some(),
            matches = matches.len(),
            peers_asked = peers.len(),
            "lookup decided"
        );
        Ok(LookupOutcome {
            request_id,
            matches,
            peers,
        })
    }

    pub async fn put_flag(
        &self,
        caller: &Caller,
        flag_id: Option<Uuid>,
        draft: FlagDraft,
        change_reason: String,
    ) -> CoreResult<Flag> {
        self.require_records_clerk(caller)?;
        let flag = NewFlag {
            id: flag_id,
            owner: self.agency.clone(),
            status: draft.status,
            review_date: draft.review_date,
            basis: draft.basis,
            content: draft.content,
            subject_tokens: draft.subject_tokens,
            author: caller.spiffe_id(),
            reason: change_reason,
        };
        let stored = self.store.put_flag(flag, self.clock.now()).await?;
        tracing::info!(flag_id = %stored.id, revision = stored.revision, actor = %caller.spiffe_id(), "flag stored");
        Ok(stored)
    }

    pub async fn get_flag(&self, caller: &Caller, flag_id: Uuid) -> CoreResult<Flag> {
        self.require_records_clerk(caller)?;
        self.store
            .get_flag(&self.agency, flag_id)
            .await?
            .ok_or_else(|| CoreError::NotFound("flag".into()))
    }

    /// A page of this agency's flags and the token of the next page.
    pub async fn list_flags(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        page_size: usize,
    ) -> CoreResult<(Vec<Flag>, Option<Uuid>)> {
        self.require_records_clerk(caller)?;
        let limit = page_size.clamp(1, MAX_PAGE_SIZE);
        let flags = self.store.list_flags(&self.agency, after, limit + 1).await?;
        let has_more = flags.len() > limit;
        let page: Vec<Flag> = flags.into_iter().take(limit).collect();
        let next = if has_more {
            page.last().map(|flag| flag.id)
        } else {
            None
        };
        Ok((page, next))
    }

    pub async fn record_consent(&self, caller: &Caller, consent: NewConsent) -> CoreResult<Consent> {
        self.require_records_clerk(caller)?;
        let stored = self.store.record_consent(consent, self.clock.now()).await?;
        tracing::info!(consent_id = %stored.id, flag_id = %stored.flag_id, actor = %caller.spiffe_id(), "consent recorded");
        Ok(stored)
    }

    pub async fn revoke_consent(
        &self,
        caller: &Caller,
        consent_id: Uuid,
        revocation_reason: String,
    ) -> CoreResult<Consent> {
        self.require_records_clerk(caller)?;
        let revoked = self
            .store
            .revoke_consent(
                &self.agency,
                consent_id,
                &caller.spiffe_id(),
                &revocation_reason,
                self.clock.now(),
            )
            .await?;
        tracing::info!(consent_id = %revoked.id, actor = %caller.spiffe_id(), "consent revoked");
        Ok(revoked)
    }

    pub async fn list_consents(&self, caller: &Caller, flag_id: Uuid) -> CoreResult<Vec<Consent>> {
        self.require_records_clerk(caller)?;
        if self.store.get_flag(&self.agency, flag_id).await?.is_none() {
            return Err(CoreError::NotFound("flag".into()));
        }
        self.store.list_consents(&self.agency, flag_id).await
    }
}
