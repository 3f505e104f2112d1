//! The gRPC adapter of FlagIndex: authenticate, convert, call
//! [`FlagIndexCore`], convert back, map errors through [`crate::status`].
//! Nothing here decides anything.

use crate::audit_trail::authenticate_audited;
use crate::caller::Caller;
use crate::convert::{self, incident_id, parse_uuid};
use crate::encounters::encounter_from_report;
use crate::flag_index::LookupFailure;
use crate::flag_index::{FlagIndexCore, LookupQuery, reason};
use crate::peers::PeerOutcome;
use crate::status::to_status;
use flagnet_audit::{AuditAction, AuditRecord, DisclosedFields};
use flagnet_core::{AgencyId, CoreError, CoreResult, FieldClassSet, Purpose};
use flagnet_proto::v1 as pb;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// FlagIndex served over tonic.
#[derive(Debug, Clone)]
pub struct FlagIndexGrpc {
    core: FlagIndexCore,
    lookup_budget: Duration,
}

impl FlagIndexGrpc {
    /// `lookup_budget` is the longest a lookup takes when the caller asks for longer or sets no deadline.
    pub fn new(core: FlagIndexCore, lookup_budget: Duration) -> Self {
        Self { core, lookup_budget }
    }

    /// Authenticates the caller; a refusal is audited and answered.
    async fn caller<T>(&self, request: &Request<T>, action: AuditAction) -> Result<Caller, Status> {
        tracing::trace!(action = action.as_str(), "authenticating");
        authenticate_audited(&self.core, request).await
    }

    /// Concludes `record` with `result`, appends it, then answers.
    async fn answer<T>(&self, record: AuditRecord, result: CoreResult<T>) -> Result<Response<T>, Status> {
        reply(self.core.audit.conclude(record, result).await)
    }
}

fn reply<T>(result: CoreResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(to_status)
}

fn lookup_query(core: &FlagIndexCore, message: pb::LookupRequest) -> CoreResult<LookupQuery> {
    let purpose = Purpose::parse(&message.purpose)?;
    let incident_id = incident_id(&message.incident_id)?;
    let override_reason = match purpose {
        Purpose::EmergencyOverride => Some(reason("override_reason", &message.override_reason)?),
        _ if !message.override_reason.is_empty() => {
            return Err(CoreError::invalid(
                "override_reason",
                "is only accepted with purpose emergency_override",
            ));
        }
        _ => None,
    };
    let federated = !matches!(pb::LookupScope::try_from(message.scope), Ok(pb::LookupScope::Local));
    let tokens = convert::query_tokens(message.subject, &core.matching_key, &core.phone_region)?;
    Ok(LookupQuery {
        tokens,
        purpose,
        incident_id,
        override_reason,
        federated,
    })
}

/// The caller's `grpc-timeout`, if it sent one (`<digits><unit>`, unit one of H M S m u n).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn peer_status(agency: &AgencyId, outcome: &PeerOutcome) -> pb::PeerStatus {
    pb::PeerStatus {
        agency: agency.to_string(),
        state: outcome.state() as i32,
        detail: outcome.detail(),
    }
}

#[tonic::async_trait]
impl pb::flag_index_server::FlagIndex for FlagIndexGrpc {
    async fn lookup(&self, request: Request<pb::LookupRequest>) -> Result<Response<pb::LookupResponse>, Status> {
        let _timer = self.core.metrics.lookup_seconds.start_timer();
        let caller = self.caller(&request, AuditAction::Lookup).await?;
        let budget = self.lookup_budget;
        let deadline = Instant::now() + grpc_timeout(request.metadata()).map_or(budget, |asked| asked.min(budget));
        let request_id = Uuid::new_v4();
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::Lookup, request_id);
        let message = request.into_inner();
        let query = match lookup_query(&self.core, message) {
            Ok(query) => query,
            Err(error) => return self.answer::<pb::LookupResponse>(record, Err(error)).await,
        };
        record.incident_id = Some(query.incident_id.clone());
        record.purpose = Some(query.purpose);
        record.subject_refs = self.core.audit.subject_refs(&query.tokens);
        record.override_used = query.override_reason.is_some();
        record.override_reason = query.override_reason.clone();
        let outcome = match self.core.lookup(&caller, query, deadline, request_id, record).await {
            Ok(outcome) => outcome,
            Err(LookupFailure::NotAudited(error, record)) => {
                return self.answer::<pb::LookupResponse>(*record, Err(error)).await;
            }
            Err(LookupFailure::AuditFailed(error)) => return Err(to_status(error)),
        };
        let mut matches: Vec<pb::Match> = outcome
            .matches
            .iter()
            .map(|found| convert::disclosed_match(&found.flag, &found.disclosure, found.phonetic_only))
            .collect();
        let mut peers = Vec::new();
        let mut complete = true;
        for (agency, peer_outcome) in outcome.peers {
            peers.push(peer_status(&agency, &peer_outcome));
            match peer_outcome {
                PeerOutcome::Answered(found) => matches.extend(found),
                _ => complete = false,
            }
        }
        Ok(Response::new(pb::LookupResponse {
            request_id: outcome.request_id.to_string(),
            matches,
            peers,
            complete,
        }))
    }

    async fn put_flag(&self, request: Request<pb::PutFlagRequest>) -> Result<Response<pb::PutFlagResponse>, Status> {
        let caller = self.caller(&request, AuditAction::PutFlag).await?;
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::PutFlag, Uuid::new_v4());
        let result = async {
            self.core.require_records_clerk(&caller)?;
            let message = request.into_inner();
            let flag_id = if message.flag_id.is_empty() {
                None
            } else {
                Some(parse_uuid("flag_id", &message.flag_id)?)
            };
            let change_reason = reason("change_reason", &message.change_reason)?;
            let draft = convert::flag_draft(message.flag, &self.core.matching_key, &self.core.phone_region)?;
            record.subject_refs = self.core.audit.subject_refs(&draft.subject_tokens);
            let stored = self.core.put_flag(&caller, flag_id, draft, change_reason).await?;
            Ok(pb::PutFlagResponse {
                flag: Some(convert::flag_record(&stored)),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn get_flag(&self, request: Request<pb::GetFlagRequest>) -> Result<Response<pb::GetFlagResponse>, Status> {
        let caller = self.caller(&request, AuditAction::GetFlag).await?;
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::GetFlag, Uuid::new_v4());
        let result = async {
            self.core.require_records_clerk(&caller)?;
            let flag_id = parse_uuid("flag_id", &request.get_ref().flag_id)?;
            let flag = self.core.get_flag(&caller, flag_id).await?;
            record.subject_refs = self.core.audit.subject_refs(&flag.subject_tokens);
            record.disclosed.push(DisclosedFields {
                owner_agency: flag.owner.clone(),
                flag_id: flag.id,
                classes: FieldClassSet::all(),
            });
            Ok(pb::GetFlagResponse {
                flag: Some(convert::flag_record(&flag)),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn list_flags(
        &self,
        request: Request<pb::ListFlagsRequest>,
    ) -> Result<Response<pb::ListFlagsResponse>, Status> {
        let caller = self.caller(&request, AuditAction::ListFlags).await?;
        let record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::ListFlags, Uuid::new_v4());
        let result = async {
            self.core.require_records_clerk(&caller)?;
            let message = request.into_inner();
            let after = if message.page_token.is_empty() {
                None
            } else {
                Some(parse_uuid("page_token", &message.page_token)?)
            };
            let page_size = if message.page_size == 0 {
                50
            } else {
                message.page_size as usize
            };
            let (flags, next) = self.core.list_flags(&caller, after, page_size).await?;
            Ok(pb::ListFlagsResponse {
                flags: flags.iter().map(convert::flag_summary).collect(),
                next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn record_consent(
        &self,
        request: Request<pb::RecordConsentRequest>,
    ) -> Result<Response<pb::RecordConsentResponse>, Status> {
        let caller = self.caller(&request, AuditAction::RecordConsent).await?;
        let record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::RecordConsent, Uuid::new_v4());
        let result = async {
            self.core.require_records_clerk(&caller)?;
            let consent = convert::new_consent(
                request.into_inner().consent,
                self.core.agency.clone(),
                caller.spiffe_id(),
                self.core.clock.now(),
            )?;
            let stored = self.core.record_consent(&caller, consent).await?;
            Ok(pb::RecordConsentResponse {
                consent: Some(convert::consent_record(&stored)),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn revoke_consent(
        &self,
        request: Request<pb::RevokeConsentRequest>,
    ) -> Result<Response<pb::RevokeConsentResponse>, Status> {
        let caller = self.caller(&request, AuditAction::RevokeConsent).await?;
        let record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::RevokeConsent, Uuid::new_v4());
        let result = async {
            self.core.require_records_clerk(&caller)?;
            let message = request.into_inner();
            let consent_id = parse_uuid("consent_id", &message.consent_id)?;
            let revocation_reason = reason("reason", &message.reason)?;
            let revoked = self.core.revoke_consent(&caller, consent_id, revocation_reason).await?;
            Ok(pb::RevokeConsentResponse {
                consent: Some(convert::consent_record(&revoked)),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn list_consents(
        &self,
        request: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        let caller = self.caller(&request, AuditAction::ListConsents).await?;
        let record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::ListConsents, Uuid::new_v4());
        let result = async {
            self.core.require_records_clerk(&caller)?;
            let flag_id = parse_uuid("flag_id", &request.get_ref().flag_id)?;
            let consents = self.core.list_consents(&caller, flag_id).await?;
            Ok(pb::ListConsentsResponse {
                consents: consents.iter().map(convert::consent_record).collect(),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn report_encounter(
        &self,
        request: Request<pb::ReportEncounterRequest>,
    ) -> Result<Response<pb::ReportEncounterResponse>, Status> {
        let caller = self.caller(&request, AuditAction::Encounter).await?;
        let mut record = self
            .core
            .audit
            .begin(Some(&caller), None, AuditAction::Encounter, Uuid::new_v4());
        let result = async {
            let encounter = encounter_from_report(&caller, request.into_inner().encounter)?;
            record.incident_id = (!encounter.incident_id.is_empty()).then(|| encounter.incident_id.clone());
            let encounter_id = encounter.id.to_string();
            let delivered = self.core.report_encounter(&caller, encounter).await?;
            Ok(pb::ReportEncounterResponse {
                encounter_id,
                delivered,
            })
        }
        .await;
        self.answer(record, result).await
    }

    type WatchAlertsStream = Pin<Box<dyn Stream<Item = Result<pb::Alert, Status>> + Send + 'static>>;

    async fn watch_alerts(
        &self,
        request: Request<pb::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let watch = AuditAction::Other("watch_alerts".into());
        let caller = self.caller(&request, watch.clone()).await?;
        let record = self.core.audit.begin(Some(&caller), None, watch, Uuid::new_v4());
        let after_cursor = request.get_ref().after_cursor;
        self.core
            .audit
            .conclude(record, self.core.require_liaison(&caller))
            .await
            .map_err(to_status)?;
        let alerts = self.core.watch_alerts(after_cursor);
        tracing::info!(actor = %caller.spiffe_id(), after_cursor, "alert watch opened");
        let stream = ReceiverStream::new(alerts).map(|item| item.map_err(to_status));
        Ok(Response::new(Box::pin(stream)))
    }
}
