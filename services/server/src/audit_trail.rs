//! The last link of the call chain: every call, refusal and change becomes
//! one audit record, and a caller is answered only after its record is
//! durable. When the log cannot take a record in time the call fails with
//! UNAVAILABLE and discloses nothing; the health service then reports
//! NOT_SERVING until the log is writable again (see [`watch_audit_health`]).

use crate::caller::Caller;
use crate::flag_index::DisclosedFlag;
use crate::incoming::PeerInfo;
use crate::metrics::NodeMetrics;
use crate::status::code_of;
use flagnet_audit::{
    AuditAction, AuditHealth, AuditOutcome, AuditRecord, AuditSink, AuditTokenKey, DisclosedFields, SubjectRef,
    WithheldField, WithholdReason,
};
use flagnet_core::{Clock, CoreError, CoreResult, SubjectToken};
use flagnet_policy::DenyReason;
use std::sync::Arc;
use tonic::Code;
use uuid::Uuid;

/// Where a node's audit records go.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    sink: Arc<dyn AuditSink>,
    token_key: Arc<AuditTokenKey>,
    clock: Arc<dyn Clock>,
    metrics: Arc<NodeMetrics>,
}

fn fingerprint_bytes(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

impl AuditTrail {
    pub fn new(
        sink: Arc<dyn AuditSink>,
        token_key: Arc<AuditTokenKey>,
        clock: Arc<dyn Clock>,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Self {
            sink,
            token_key,
            clock,
            metrics,
        }
    }

    pub fn sink(&self) -> &Arc<dyn AuditSink> {
        &self.sink
    }

    pub fn token_key(&self) -> &AuditTokenKey {
        &self.token_key
    }

    /// A record of `action` by `caller` (or, before authentication, by
    /// whoever the connection's certificate says), not yet concluded.
    pub fn begin(
        &self,
        caller: Option<&Caller>,
        peer: Option<&PeerInfo>,
        action: AuditAction,
        request_id: Uuid,
    ) -> AuditRecord {
        let mut record = AuditRecord::new(self.clock.now(), request_id, action);
        match caller {
            Some(caller) => {
                record.actor_agency = Some(caller.identity.agency.clone());
                record.actor_user = caller.identity.user_id().cloned();
                record.actor_roles = caller.roles.clone();
                record.caller_identity = Some(caller.spiffe_id());
                record.caller_fingerprint = fingerprint_bytes(&caller.certificate_fingerprint);
            }
            None => {
                if let Some(certificate) = peer.and_then(|peer| peer.certificate.as_ref()) {
                    record.actor_agency = Some(certificate.identity.agency.clone());
                    record.actor_user = certificate.identity.user_id().cloned();
                    record.caller_identity = Some(certificate.identity.spiffe_uri());
                    record.caller_fingerprint = fingerprint_bytes(&certificate.fingerprint_sha256);
                }
            }
        }
        record
    }

    pub fn subject_refs(&self, tokens: &[SubjectToken]) -> Vec<SubjectRef> {
        self.token_key.subject_refs(tokens.iter().map(|token| &token.token))
    }

    /// Appends a concluded record; an audit failure is `Unavailable`.
    pub async fn append(&self, record: AuditRecord) -> CoreResult<()> {
        let request_id = record.request_id;
        if record.action != AuditAction::CertificateEvent {
            let code = Code::from(record.grpc_code as i32);
            self.metrics
                .requests
                .with_label_values(&[record.action.as_str(), &format!("{code:?}")])
                .inc();
        }
        self.metrics.audit_pending.inc();
        let started = std::time::Instant::now();
        let appended = self.sink.append(record).await;
        self.metrics.audit_pending.dec();
        self.metrics
            .audit_durable_seconds
            .observe(started.elapsed().as_secs_f64());
        appended.map(|_| ()).map_err(|error| {
            tracing::error!(%request_id, %error, "audit record could not be made durable; refusing the request");
            CoreError::Unavailable(format!("audit log: {error}"))
        })
    }

    /// Concludes `record` with the outcome of `result` and appends it; the
    /// result is passed on only once the record is durable.
    pub async fn conclude<T>(&self, mut record: AuditRecord, result: CoreResult<T>) -> CoreResult<T> {
        let (outcome, code) = match &result {
            Ok(_) => (AuditOutcome::Ok, Code::Ok),
            Err(error) => outcome_of(error),
        };
        record.outcome = outcome;
        record.grpc_code = code as u32;
        self.append(record).await?;
        result
    }
}

/// The first link of every service's chain: the connection's verified
/// certificate as a [`Caller`]; a refusal is audited as
/// `authentication_refused` and answered with its status.
pub async fn authenticate_audited<T>(
    core: &crate::flag_index::FlagIndexCore,
    request: &tonic::Request<T>,
) -> Result<Caller, tonic::Status> {
    let peer = request.extensions().get::<PeerInfo>();
    match crate::caller::authenticate(peer, &core.federation, &core.engine) {
        Ok(caller) => Ok(caller),
        Err(error) => {
            tracing::warn!(%error, method = ?request.extensions().get::<tonic::GrpcMethod>().map(|m| m.method()), "request refused at authentication");
            let record = core
                .audit
                .begin(None, peer, AuditAction::AuthenticationRefused, Uuid::new_v4());
            let refused = core.audit.conclude::<()>(record, Err(error)).await;
            Err(crate::status::to_status(refused.err().unwrap_or_else(|| {
                CoreError::Internal("authentication refusal lost".into())
            })))
        }
    }
}

/// The audit outcome and gRPC code of a failed call.
pub fn outcome_of(error: &CoreError) -> (AuditOutcome, Code) {
    let code = code_of(error);
    let outcome = match error {
        CoreError::InvalidArgument { .. } => AuditOutcome::Invalid,
        CoreError::Unauthenticated(_) => AuditOutcome::Unauthenticated,
        CoreError::PermissionDenied(_) => AuditOutcome::Denied,
        CoreError::Unavailable(_) => AuditOutcome::Unavailable,
        CoreError::NotFound(_) | CoreError::FailedPrecondition(_) | CoreError::Aborted(_) | CoreError::Internal(_) => {
            AuditOutcome::Error
        }
    };
    (outcome, code)
}

fn withhold_reason(reason: DenyReason) -> WithholdReason {
    match reason {
        DenyReason::Policy => WithholdReason::Policy,
        DenyReason::Consent => WithholdReason::Consent,
        DenyReason::NoConsent => WithholdReason::NoConsent,
        DenyReason::Lifecycle => WithholdReason::Lifecycle,
    }
}

/// Writes what each flag disclosed and withheld into `record`.
pub fn record_disclosures(record: &mut AuditRecord, flags: &[DisclosedFlag]) {
    for found in flags {
        record.disclosed.push(DisclosedFields {
            owner_agency: found.flag.owner.clone(),
            flag_id: found.flag.id,
            classes: found.disclosure.allowed(),
        });
        for (class, reason) in found.disclosure.withheld() {
            record.withheld.push(WithheldField {
                owner_agency: found.flag.owner.clone(),
                flag_id: found.flag.id,
                class,
                reason: withhold_reason(reason),
            });
        }
    }
}

/// Keeps the health service in step with the audit log: NOT_SERVING for
/// every service while the log cannot take records, SERVING once it can.
pub fn watch_audit_health(
    mut health: tokio::sync::watch::Receiver<AuditHealth>,
    reporter: tonic_health::server::HealthReporter,
    services: Vec<&'static str>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let status = match &*health.borrow_and_update() {
                AuditHealth::Writable => tonic_health::ServingStatus::Serving,
                AuditHealth::Failing { .. } => tonic_health::ServingStatus::NotServing,
            };
            for service in std::iter::once("").chain(services.iter().copied()) {
                reporter.set_service_status(service, status).await;
            }
            if status == tonic_health::ServingStatus::NotServing {
                tracing::warn!("audit log failing: health reports NOT_SERVING");
            }
            if health.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Trust events (refused handshakes, certificate reloads) as audit records.
/// `record` must not block the TLS accept path, so events go through a
/// bounded queue to a task that appends them; if the queue is full the event
/// is logged as lost.
#[derive(Debug)]
pub struct AuditedTrustEvents {
    queue: tokio::sync::mpsc::Sender<flagnet_trust::events::TrustEvent>,
}

/// How many trust events may wait for the audit log.
const TRUST_EVENT_QUEUE: usize = 1024;

impl AuditedTrustEvents {
    pub fn start(trail: AuditTrail) -> Self {
        let (queue, mut events) = tokio::sync::mpsc::channel(TRUST_EVENT_QUEUE);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let record = trail.trust_record(event);
                let _ = trail.append(record).await;
            }
        });
        Self { queue }
    }
}

impl flagnet_trust::events::TrustEventSink for AuditedTrustEvents {
    fn record(&self, event: flagnet_trust::events::TrustEvent) {
        if self.queue.try_send(event).is_err() {
            tracing::error!("trust event not audited: the audit queue is full or closed");
        }
    }
}

impl AuditTrail {
    /// The audit record of a trust event. For events without an incident,
    /// `incident_id` carries the context (`tls:<refusal code>`, `trust:reload`).
    fn trust_record(&self, event: flagnet_trust::events::TrustEvent) -> AuditRecord {
        use flagnet_trust::events::TrustEvent;
        match event {
            TrustEvent::HandshakeRefused(refused) => {
                let mut record = AuditRecord::new(refused.at, Uuid::new_v4(), AuditAction::AuthenticationRefused);
                record.outcome = AuditOutcome::Unauthenticated;
                record.grpc_code = Code::Unauthenticated as u32;
                if let Some(claimed) = &refused.claimed_identity {
                    record.actor_agency = Some(claimed.agency.clone());
                    record.actor_user = claimed.user_id().cloned();
                    record.caller_identity = Some(claimed.spiffe_uri());
                }
                record.caller_fingerprint = refused.fingerprint_sha256.as_deref().and_then(fingerprint_bytes);
                record.incident_id = Some(format!("tls:{}", refused.reason.code()));
                record
            }
            TrustEvent::Reloaded(reloaded) => {
                let mut record = AuditRecord::new(reloaded.at, Uuid::new_v4(), AuditAction::CertificateEvent);
                record.outcome = AuditOutcome::Ok;
                record.grpc_code = Code::Ok as u32;
                record.incident_id = Some("trust:reload".into());
                record
            }
            TrustEvent::ReloadRefused(refused) => {
                let mut record = AuditRecord::new(refused.at, Uuid::new_v4(), AuditAction::CertificateEvent);
                record.outcome = AuditOutcome::Error;
                record.grpc_code = Code::FailedPrecondition as u32;
                record.incident_id = Some("trust:reload_refused".into());
                record
            }
        }
    }
}
