//! The owner's side of federation: `flagnet.v1.Federation`, callable only by
//! the node identities of configured peers. A peer's query is decided here,
//! by this node's policy and this node's consents, for the person the peer
//! names, whose roles are capped at those their agency holds in this node's
//! policy. Nothing of this node's flags is kept by the peer.

use crate::audit_trail::authenticate_audited;
use crate::audit_trail::record_disclosures;
use crate::caller::Caller;
use crate::convert::{self, incident_id};
use crate::encounters::encounter_from_message;
use crate::flag_index::{FlagIndexCore, reason};
use crate::status::to_status;
use flagnet_audit::{AuditAction, AuditRecord};
use flagnet_core::{
    AgencyId, BlindToken, CoreError, CoreResult, Purpose, RoleName, SubjectKeyKind, SubjectToken, UserId,
};
use flagnet_policy::Actor;
use flagnet_proto::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The most tokens one federated query may carry.
pub const MAX_FEDERATED_TOKENS: usize = 64;

impl FlagIndexCore {
    /// Refuses anyone but the node of a configured peer.
    pub fn require_peer_node(&self, caller: &Caller) -> CoreResult<()> {
        if !caller.identity.is_node() {
            return Err(CoreError::PermissionDenied(
                "only peer nodes may call the Federation service".into(),
            ));
        }
        if self.peers.by_agency(&caller.identity.agency).is_none() {
            return Err(CoreError::PermissionDenied(format!(
                "{} is not a configured peer",
                caller.identity.agency
            )));
        }
        Ok(())
    }

    /// Decides a peer's query for the person it names, filling `record`
    /// with who asked and what was disclosed.
    pub async fn answer_peer(
        &self,
        caller: &Caller,
        message: pb::FederatedQueryRequest,
        record: &mut AuditRecord,
    ) -> CoreResult<Vec<pb::Match>> {
        self.require_peer_node(caller)?;
        let actor_message = convert::required("actor", message.actor)?;
        let agency =
            AgencyId::parse(&actor_message.agency).map_err(|e| CoreError::invalid("actor.agency", e.to_string()))?;
        if agency != caller.identity.agency {
            return Err(CoreError::PermissionDenied(format!(
                "the node of {} may not ask for people of {agency}",
                caller.identity.agency
            )));
        }
        let user = UserId::parse(&actor_message.user).map_err(|e| CoreError::invalid("actor.user", e.to_string()))?;
        record.actor_user = Some(user.clone());
        if actor_message.roles.is_empty() || actor_message.roles.len() > 16 {
            return Err(CoreError::invalid("actor.roles", "must name between 1 and 16 roles"));
        }
        let ceiling = self.engine.snapshot().roles_held_at(&agency);
        let mut roles = Vec::new();
        for (index, role) in actor_message.roles.iter().enumerate() {
            let role = RoleName::parse(role)
                .map_err(|e| CoreError::invalid(format!("actor.roles[{index}]"), e.to_string()))?;
            if !ceiling.contains(&role) {
                return Err(CoreError::PermissionDenied(format!(
                    "{agency} holds no role {role} in this node's policy"
                )));
            }
            roles.push(role);
        }
        record.actor_roles = roles.clone();
        let purpose = Purpose::parse(&message.purpose)?;
        record.purpose = Some(purpose);
        record.incident_id = Some(incident_id(&message.incident_id)?);
        if purpose == Purpose::EmergencyOverride {
            record.override_reason = Some(reason("override_reason", &message.override_reason)?);
            record.override_used = true;
        }
        if message.tokens.is_empty() || message.tokens.len() > MAX_FEDERATED_TOKENS {
            return Err(CoreError::invalid(
                "tokens",
                format!("must hold between 1 and {MAX_FEDERATED_TOKENS} tokens"),
            ));
        }
        let tokens = message
            .tokens
            .iter()
            .enumerate()
            .map(|(index, token)| {
                Ok(SubjectToken {
                    kind: SubjectKeyKind::parse(&token.kind).map_err(|e| e.under(&format!("tokens[{index}]")))?,
                    token: BlindToken::from_slice(&token.token).map_err(|e| e.under(&format!("tokens[{index}]")))?,
                })
            })
            .collect::<CoreResult<Vec<_>>>()?;
        record.subject_refs = self.audit.subject_refs(&tokens);
        let actor = Actor {
            agency,
            user: Some(user),
            roles,
        };
        let decided = self.decide_flags(&actor, &tokens, purpose).await?;
        self.open_reviews(
            record.request_id,
            &actor,
            &decided,
            record.override_reason.as_deref(),
            &message.incident_id,
        )
        .await?;
        record_disclosures(record, &decided);
        tracing::info!(
            request_id = %message.request_id,
            peer = %caller.identity.agency,
            actor_user = %actor_message.user,
            purpose = %purpose,
            incident_id = %message.incident_id,
            matches = decided.len(),
            "federated query decided"
        );
        Ok(decided
            .iter()
            .map(|found| convert::disclosed_match(&found.flag, &found.disclosure, found.phonetic_only))
            .collect())
    }

    /// Stores an encounter a peer delivers about one of this node's flags.
    pub async fn accept_delivery(&self, caller: &Caller, message: pb::DeliverEncounterRequest) -> CoreResult<bool> {
        self.require_peer_node(caller)?;
        let encounter = encounter_from_message(
            convert::required("encounter", message.encounter)?,
            caller.identity.agency.clone(),
            None,
        )?;
        if encounter.owner != self.agency {
            return Err(CoreError::invalid(
                "encounter.owner_agency",
                "names another agency than this node's",
            ));
        }
        self.receive_encounter(encounter).await
    }
}

/// Federation served over tonic.
#[derive(Debug, Clone)]
pub struct FederationGrpc {
    core: FlagIndexCore,
}

impl FederationGrpc {
    pub fn new(core: FlagIndexCore) -> Self {
        Self { core }
    }

    /// Authenticates the caller; a refusal is audited and answered.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        authenticate_audited(&self.core, request).await
    }
}

#[tonic::async_trait]
impl pb::federation_server::Federation for FederationGrpc {
    async fn query(
        &self,
        request: Request<pb::FederatedQueryRequest>,
    ) -> Result<Response<pb::FederatedQueryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        // the asking node's request id, so both logs hold the same disclosure id
        let request_id = Uuid::parse_str(&message.request_id).ok();
        let mut record = self.core.audit.begin(
            Some(&caller),
            None,
            AuditAction::FederatedQuery,
            request_id.unwrap_or_else(Uuid::new_v4),
        );
        let result = match request_id {
            None => Err(CoreError::invalid("request_id", "is not an id")),
            Some(_) => self.core.answer_peer(&caller, message, &mut record).await,
        };
        self.core
            .audit
            .conclude(record, result)
            .await
            .map(|matches| Response::new(pb::FederatedQueryResponse { matches }))
            .map_err(to_status)
    }

    async fn deliver_encounter(
        &self,
        request: Request<pb::DeliverEncounterRequest>,
    ) -> Result<Response<pb::DeliverEncounterResponse>, Status> {
        let caller = self.caller(&request).await?;
        let record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::Encounter, Uuid::new_v4());
        let result = self.core.accept_delivery(&caller, request.into_inner()).await;
        self.core
            .audit
            .conclude(record, result)
            .await
            .map(|newly_stored| Response::new(pb::DeliverEncounterResponse { newly_stored }))
            .map_err(to_status)
    }
}
