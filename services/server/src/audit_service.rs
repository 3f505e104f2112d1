//! `flagnet.v1.AuditLog`, the auditor's service: search, verify, export,
//! checkpoints, proofs and a subject's accounting of disclosures. Only people
//! holding the `auditor` role at this node's agency may call it, and every
//! call is itself recorded in the log before it is answered.

use crate::audit_trail::authenticate_audited;
use crate::caller::Caller;
use crate::convert;
use crate::flag_index::FlagIndexCore;
use crate::status::to_status;
use flagnet_audit::{
    AuditAction, AuditLog, AuditOutcome, AuditQuery, Checkpoint, CheckpointVerifier, StoredRecord, SubjectRef,
};
use flagnet_core::{AgencyId, CoreError, CoreResult, UserId};
use flagnet_proto::v1 as pb;
use std::pin::Pin;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The role that may read the audit log.
pub const AUDITOR_ROLE: &str = "auditor";

/// AuditLog served over tonic.
#[derive(Debug, Clone)]
pub struct AuditLogGrpc {
    core: FlagIndexCore,
    log: Arc<AuditLog>,
}

fn hex32(hash: &[u8]) -> String {
    hex::encode(hash)
}

fn record_json(stored: &StoredRecord) -> String {
    serde_json::to_string(&stored.record).unwrap_or_else(|_| "{}".to_owned())
}

fn optional_text<T>(field: &str, value: &str, parse: impl Fn(&str) -> CoreResult<T>) -> CoreResult<Option<T>> {
    if value.is_empty() {
        return Ok(None);
    }
    parse(value).map(Some).map_err(|error| match error {
        CoreError::InvalidArgument { reason, .. } => CoreError::invalid(field, reason),
        other => CoreError::invalid(field, other.to_string()),
    })
}

fn optional_instant(field: &str, value: &str) -> CoreResult<Option<OffsetDateTime>> {
    optional_text(field, value, |text| {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| CoreError::invalid(field, "is not an RFC 3339 time"))
    })
}

fn signed_checkpoint(checkpoint: &Checkpoint, verifier: &CheckpointVerifier) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        agency: checkpoint.agency.to_string(),
        tree_size: checkpoint.tree_size,
        root_hash: hex32(&checkpoint.root_hash),
        time: convert::instant_text(checkpoint.time),
        signature: hex::encode(checkpoint.signature),
        public_key_pem: verifier.to_public_key_pem(),
    }
}

impl AuditLogGrpc {
    pub fn new(core: FlagIndexCore, log: Arc<AuditLog>) -> Self {
        Self { core, log }
    }

    /// Authenticates and authorises an auditor; every outcome is recorded.
    async fn auditor<T>(&self, request: &Request<T>, what: &str) -> Result<(Caller, Uuid), Status> {
        let request_id = Uuid::new_v4();
        let caller = authenticate_audited(&self.core, request).await?;
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::AuditRead, request_id);
        record.incident_id = Some(format!("audit:{what}"));
        let allowed = self.require_auditor(&caller);
        self.core.audit.conclude(record, allowed).await.map_err(to_status)?;
        Ok((caller, request_id))
    }

    fn require_auditor(&self, caller: &Caller) -> CoreResult<()> {
        self.core.require_own_agency_role(
            caller,
            AUDITOR_ROLE,
            "the audit log is read only by this agency's auditors",
        )
    }

    fn subject_refs(&self, subject: Option<pb::SubjectQuery>) -> CoreResult<Vec<SubjectRef>> {
        let tokens = convert::query_tokens(subject, &self.core.matching_key, &self.core.phone_region)?;
        Ok(self.core.audit.subject_refs(&tokens))
    }
}

fn reply<T>(result: CoreResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(to_status)
}

#[tonic::async_trait]
impl pb::audit_log_server::AuditLog for AuditLogGrpc {
    async fn search(
        &self,
        request: Request<pb::AuditSearchRequest>,
    ) -> Result<Response<pb::AuditSearchResponse>, Status> {
        self.auditor(&request, "search").await?;
        let result = async {
            let message = request.into_inner();
            let query = AuditQuery {
                from: optional_instant("from", &message.from)?,
                to: optional_instant("to", &message.to)?,
                actor_agency: optional_text("actor_agency", &message.actor_agency, AgencyId::parse)?,
                actor_user: optional_text("actor_user", &message.actor_user, UserId::parse)?,
                action: optional_text("action", &message.action, |text| {
                    AuditAction::parse(text).map_err(CoreError::from)
                })?,
                incident_id: (!message.incident_id.is_empty()).then_some(message.incident_id),
                request_id: optional_text("request_id", &message.request_id, |text| {
                    Uuid::parse_str(text).map_err(|_| CoreError::invalid("request_id", "is not an id"))
                })?,
                outcome: optional_text("outcome", &message.outcome, |text| {
                    AuditOutcome::parse(text).map_err(CoreError::from)
                })?,
                subject_refs: match message.subject {
                    Some(subject) => self.subject_refs(Some(subject))?,
                    None => Vec::new(),
                },
                page_size: message.page_size,
                page_token: (!message.page_token.is_empty()).then_some(message.page_token),
            };
            let page = self.log.search(query).await.map_err(CoreError::from)?;
            Ok(pb::AuditSearchResponse {
                records: page
                    .records
                    .iter()
                    .map(|stored| pb::AuditEntry {
                        index: stored.index,
                        leaf_hash: hex32(&stored.leaf_hash),
                        record_json: record_json(stored),
                    })
                    .collect(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        }
        .await;
        reply(result)
    }

    async fn verify(
        &self,
        request: Request<pb::AuditVerifyRequest>,
    ) -> Result<Response<pb::AuditVerifyResponse>, Status> {
        self.auditor(&request, "verify").await?;
        let result = async {
            let report = self.log.verify().await.map_err(CoreError::from)?;
            let (first_bad_index, reason) = report.first_bad.clone().unwrap_or_default();
            Ok(pb::AuditVerifyResponse {
                size: report.size,
                root_hash: hex32(&report.root),
                ok: report.is_ok(),
                first_bad_index,
                reason,
                checkpoints_checked: report.checkpoints_checked,
                latest_checkpoint: report
                    .latest_checkpoint
                    .as_ref()
                    .map(|checkpoint| signed_checkpoint(checkpoint, self.log.verifier())),
            })
        }
        .await;
        reply(result)
    }

    type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::AuditExportLine, Status>> + Send + 'static>>;

    async fn export(&self, request: Request<pb::AuditExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        self.auditor(&request, "export").await?;
        let total = self.log.size();
        let mut records = self.log.export(request.get_ref().from_index);
        let stream = async_stream_lines(move |sender| async move {
            while let Some(item) = records.recv().await {
                let line = item
                    .map_err(|error| to_status(CoreError::from(error)))
                    .map(|stored| pb::AuditExportLine {
                        index: stored.index,
                        total,
                        json: serde_json::json!({
                            "index": stored.index,
                            "leaf_hash": hex32(&stored.leaf_hash),
                            "record": stored.record,
                        })
                        .to_string(),
                    });
                if sender.send(line).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn checkpoint(
        &self,
        request: Request<pb::AuditCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        self.auditor(&request, "checkpoint").await?;
        let result = async {
            let checkpoint = if request.get_ref().fresh {
                Some(self.log.checkpoint_now().await.map_err(CoreError::from)?)
            } else {
                self.log.latest_checkpoint().await.map_err(CoreError::from)?
            };
            let checkpoint = checkpoint.ok_or_else(|| CoreError::NotFound("checkpoint".into()))?;
            Ok(signed_checkpoint(&checkpoint, self.log.verifier()))
        }
        .await;
        reply(result)
    }

    async fn inclusion_proof(
        &self,
        request: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProofResponse>, Status> {
        self.auditor(&request, "inclusion_proof").await?;
        let message = request.into_inner();
        let result = async {
            let proof = self
                .log
                .inclusion_proof(message.leaf_index, message.tree_size)
                .await
                .map_err(CoreError::from)?;
            Ok(pb::InclusionProofResponse {
                leaf_index: proof.leaf_index,
                tree_size: proof.tree_size,
                leaf_hash: hex32(&proof.leaf_hash),
                root_hash: hex32(&proof.root_hash),
                hashes: proof.hashes.iter().map(|hash| hex32(hash)).collect(),
            })
        }
        .await;
        reply(result)
    }

    async fn consistency_proof(
        &self,
        request: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProofResponse>, Status> {
        self.auditor(&request, "consistency_proof").await?;
        let message = request.into_inner();
        let result = async {
            let proof = self
                .log
                .consistency_proof(message.old_size, message.new_size)
                .await
                .map_err(CoreError::from)?;
            Ok(pb::ConsistencyProofResponse {
                old_size: proof.old_size,
                new_size: proof.new_size,
                old_root: hex32(&proof.old_root),
                new_root: hex32(&proof.new_root),
                hashes: proof.hashes.iter().map(|hash| hex32(hash)).collect(),
            })
        }
        .await;
        reply(result)
    }

    async fn disclosures(
        &self,
        request: Request<pb::DisclosuresRequest>,
    ) -> Result<Response<pb::DisclosuresResponse>, Status> {
        self.auditor(&request, "disclosures").await?;
        let result = async {
            let refs = self.subject_refs(request.into_inner().subject)?;
            let accounts = self.log.disclosures(refs).await.map_err(CoreError::from)?;
            Ok(pb::DisclosuresResponse {
                disclosures: accounts
                    .iter()
                    .map(|account| pb::Disclosure {
                        time: convert::instant_text(account.time),
                        request_id: account.request_id.to_string(),
                        recipient_agency: account
                            .recipient_agency
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        recipient_user: account
                            .recipient_user
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        recipient_roles: account.recipient_roles.iter().map(ToString::to_string).collect(),
                        owner_agency: account.owner_agency.to_string(),
                        flag_id: account.flag_id.to_string(),
                        field_classes: account.classes.iter().map(|class| class.as_str().to_owned()).collect(),
                        purpose: account
                            .purpose
                            .map(|purpose| purpose.as_str().to_owned())
                            .unwrap_or_default(),
                        incident_id: account.incident_id.clone().unwrap_or_default(),
                        override_used: account.override_used,
                    })
                    .collect(),
            })
        }
        .await;
        reply(result)
    }
}

/// A stream fed by a task through a bounded channel.
fn async_stream_lines<F, Fut>(produce: F) -> impl Stream<Item = Result<pb::AuditExportLine, Status>> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::AuditExportLine, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(sender));
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}
