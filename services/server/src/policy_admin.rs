//! `flagnet.v1.PolicyAdmin`, for privacy officers of this node's agency. For
//! now it serves the break-the-glass review queue: every disclosure granted
//! under `emergency_override` of this agency's flags, to be marked justified
//! or not. Every call is audited as a policy action.

use crate::caller::{Caller, authenticate, require_person};
use crate::convert::{self, parse_uuid, proto_field_class};
use crate::flag_index::{FlagIndexCore, reason};
use crate::incoming::PeerInfo;
use crate::status::to_status;
use flagnet_audit::AuditAction;
use flagnet_core::{CoreError, CoreResult, ReviewItem, ReviewResolution, RoleName};
use flagnet_proto::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The role that administers policy and reviews overrides.
pub const PRIVACY_OFFICER_ROLE: &str = "privacy_officer";
/// The most review items one call lists.
const REVIEW_PAGE: usize = 500;

#[derive(Debug, Clone)]
pub struct PolicyAdminGrpc {
    core: FlagIndexCore,
}

fn review_message(item: &ReviewItem) -> pb::ReviewItem {
    let resolution = item.resolution.as_ref();
    pb::ReviewItem {
        review_id: item.id.to_string(),
        request_id: item.request_id.to_string(),
        flag_id: item.flag_id.to_string(),
        actor_agency: item.actor_agency.to_string(),
        actor_user: item.actor_user.to_string(),
        actor_roles: item.actor_roles.iter().map(ToString::to_string).collect(),
        field_classes: item
            .field_classes
            .iter()
            .map(|class| proto_field_class(*class) as i32)
            .collect(),
        reason: item.reason.clone(),
        incident_id: item.incident_id.clone(),
        created_at: convert::instant_text(item.created_at),
        resolved_at: resolution.map(|r| convert::instant_text(r.at)).unwrap_or_default(),
        resolved_by: resolution.map(|r| r.by.clone()).unwrap_or_default(),
        justified: resolution.is_some_and(|r| r.justified),
        note: resolution.map(|r| r.note.clone()).unwrap_or_default(),
    }
}

impl PolicyAdminGrpc {
    pub fn new(core: FlagIndexCore) -> Self {
        Self { core }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let peer = request.extensions().get::<PeerInfo>();
        match authenticate(peer, &self.core.federation, &self.core.engine) {
            Ok(caller) => Ok(caller),
            Err(error) => {
                let record = self
                    .core
                    .audit
                    .begin(None, peer, AuditAction::AuthenticationRefused, Uuid::new_v4());
                Err(to_status(
                    self.core.audit.conclude::<()>(record, Err(error)).await.unwrap_err(),
                ))
            }
        }
    }

    fn require_privacy_officer(&self, caller: &Caller) -> CoreResult<()> {
        require_person(caller)?;
        let officer = RoleName::parse(PRIVACY_OFFICER_ROLE).map_err(|error| CoreError::Internal(error.to_string()))?;
        let snapshot = self.core.engine.snapshot();
        if caller.identity.agency != self.core.agency
            || !caller.roles.iter().any(|held| snapshot.role_includes(held, &officer))
        {
            return Err(CoreError::PermissionDenied(
                "policy administration is for this agency's privacy officers".into(),
            ));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::policy_admin_server::PolicyAdmin for PolicyAdminGrpc {
    async fn review_queue(
        &self,
        request: Request<pb::ReviewQueueRequest>,
    ) -> Result<Response<pb::ReviewQueueResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::PolicyChange, Uuid::new_v4());
        record.incident_id = Some("policy:review_queue".into());
        let result = async {
            self.require_privacy_officer(&caller)?;
            let items = self
                .core
                .store
                .review_items(&self.core.agency, request.get_ref().include_resolved, REVIEW_PAGE)
                .await?;
            Ok(pb::ReviewQueueResponse {
                items: items.iter().map(review_message).collect(),
            })
        }
        .await;
        self.core
            .audit
            .conclude(record, result)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn resolve_review(
        &self,
        request: Request<pb::ResolveReviewRequest>,
    ) -> Result<Response<pb::ReviewItem>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::PolicyChange, Uuid::new_v4());
        record.incident_id = Some("policy:resolve_review".into());
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            let id = parse_uuid("review_id", &message.review_id)?;
            let note = reason("note", &message.note)?;
            let resolution = ReviewResolution {
                at: self.core.clock.now(),
                by: caller.spiffe_id(),
                justified: message.justified,
                note,
            };
            let item = self
                .core
                .store
                .resolve_review_item(&self.core.agency, id, resolution)
                .await?;
            Ok(review_message(&item))
        }
        .await;
        self.core
            .audit
            .conclude(record, result)
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
