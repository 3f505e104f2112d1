//! The home node's side of federation: one long-lived mTLS channel per
//! configured peer (HTTP/2 reused, no handshake per call), a circuit breaker
//! per peer, and the fan-out that asks every peer concurrently, each call
//! carrying the remaining deadline minus a margin as its grpc-timeout, and
//! reports every peer's status. Partial results are never presented as
//! complete.

use crate::breaker::{Admission, BreakerState, CircuitBreaker};
use crate::config::FederationSection;
use flagnet_core::{AgencyId, SubjectToken};
use flagnet_policy::Actor;
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::federation_client::FederationClient;
use flagnet_trust::ExpectedServer;
use flagnet_trust::reload::ReloadingServerConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;
use uuid::Uuid;

/// The shortest per-peer deadline worth sending; below it the peer is reported as timed out at once.
const MIN_PEER_DEADLINE: Duration = Duration::from_millis(5);

/// One peer node.
#[derive(Debug)]
pub struct Peer {
    pub name: String,
    pub agency: AgencyId,
    pub endpoint: String,
    client: FederationClient<Channel>,
    breaker: CircuitBreaker,
}

impl Peer {
    pub fn client(&self) -> FederationClient<Channel> {
        self.client.clone()
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state(Instant::now())
    }
}

/// Every configured peer, with the timing rules of this node.
#[derive(Debug)]
pub struct PeerSet {
    peers: Vec<Peer>,
    metrics: Option<Arc<crate::metrics::NodeMetrics>>,
    peer_timeout: Duration,
    margin: Duration,
}

/// How one peer answered a fan-out.
#[derive(Debug, Clone)]
pub enum PeerOutcome {
    Answered(Vec<pb::Match>),
    Denied(String),
    TimedOut,
    Unavailable(String),
    Failed(String),
}

impl PeerOutcome {
    pub fn state(&self) -> pb::PeerState {
        match self {
            PeerOutcome::Answered(_) => pb::PeerState::Ok,
            PeerOutcome::Denied(_) => pb::PeerState::Denied,
            PeerOutcome::TimedOut => pb::PeerState::Timeout,
            PeerOutcome::Unavailable(_) => pb::PeerState::Unavailable,
            PeerOutcome::Failed(_) => pb::PeerState::Error,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            PeerOutcome::Answered(matches) => format!("{} match(es)", matches.len()),
            PeerOutcome::Denied(reason) | PeerOutcome::Unavailable(reason) | PeerOutcome::Failed(reason) => {
                reason.clone()
            }
            PeerOutcome::TimedOut => "no answer within the deadline".to_owned(),
        }
    }
}

/// What the home node asks each peer.
#[derive(Debug, Clone)]
pub struct FanOutQuery {
    pub request_id: Uuid,
    pub actor: Actor,
    pub purpose: String,
    pub incident_id: String,
    pub tokens: Vec<SubjectToken>,
    pub override_reason: Option<String>,
}

impl PeerSet {
    /// A set with no peers: every lookup is local.
    pub fn empty() -> Self {
        Self {
            peers: Vec::new(),
            metrics: None,
            peer_timeout: Duration::from_millis(1500),
            margin: Duration::from_millis(50),
        }
    }

    /// Lazy channels to every peer, presenting this node's certificate and
    /// accepting only each peer's own agency's node identity.
    /// Lazy channels to every peer. The TLS config comes from the node's
    /// reloading trust set, so each new handshake presents the node's
    /// certificate in use and checks the peer against the current CAs and CRLs.
    pub fn connect(
        federation: &FederationSection,
        trust: &Arc<ReloadingServerConfig>,
        metrics: Arc<crate::metrics::NodeMetrics>,
    ) -> Result<Self, String> {
        let mut peers = Vec::new();
        for peer in &federation.peers {
            let agency = AgencyId::parse(&peer.agency).map_err(|error| error.to_string())?;
            let tls = trust
                .peer_client_config(ExpectedServer::Agency(agency.clone()))
                .map_err(|error| format!("peer {}: {error}", peer.name))?;
            let channel = flagnet_trust::channel::connect_lazy(&peer.endpoint, tls)
                .map_err(|error| format!("peer {}: {error}", peer.name))?;
            peers.push(Peer {
                name: peer.name.clone(),
                agency,
                endpoint: peer.endpoint.clone(),
                client: FederationClient::new(channel),
                breaker: CircuitBreaker::new(
                    federation.breaker_failures,
                    Duration::from_millis(federation.breaker_cooldown_ms),
                ),
            });
        }
        Ok(Self {
            peers,
            metrics: Some(metrics),
            peer_timeout: Duration::from_millis(federation.peer_timeout_ms),
            margin: Duration::from_millis(federation.deadline_margin_ms),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    pub fn by_agency(&self, agency: &AgencyId) -> Option<&Peer> {
        self.peers.iter().find(|peer| &peer.agency == agency)
    }

    /// Asks every peer at once; returns when all answered or `deadline` passed.
    pub async fn fan_out(&self, query: &FanOutQuery, deadline: Instant) -> Vec<(AgencyId, PeerOutcome)> {
        let calls = self.peers.iter().map(|peer| async move {
            let outcome = self.ask(peer, query, deadline).await;
            (peer.agency.clone(), outcome)
        });
        futures::future::join_all(calls).await
    }

    async fn ask(&self, peer: &Peer, query: &FanOutQuery, deadline: Instant) -> PeerOutcome {
        let now = Instant::now();
        if peer.breaker.admit(now) == Admission::Skip {
            return PeerOutcome::Unavailable("circuit breaker open after repeated failures".to_owned());
        }
        let remaining = deadline.saturating_duration_since(now).saturating_sub(self.margin);
        let budget = remaining.min(self.peer_timeout);
        if budget < MIN_PEER_DEADLINE {
            return PeerOutcome::TimedOut;
        }
        let message = pb::FederatedQueryRequest {
            request_id: query.request_id.to_string(),
            actor: Some(pb::FederatedActor {
                agency: query.actor.agency.to_string(),
                user: query.actor.user.as_ref().map(ToString::to_string).unwrap_or_default(),
                roles: query.actor.roles.iter().map(ToString::to_string).collect(),
            }),
            purpose: query.purpose.clone(),
            incident_id: query.incident_id.clone(),
            tokens: query
                .tokens
                .iter()
                .map(|token| pb::BlindTokenMessage {
                    kind: token.kind.as_str().to_owned(),
                    token: token.token.as_bytes().to_vec(),
                })
                .collect(),
            override_reason: query.override_reason.clone().unwrap_or_default(),
            deadline_ms: u32::try_from(budget.as_millis()).unwrap_or(u32::MAX),
        };
        let mut request = tonic::Request::new(message);
        request.set_timeout(budget);
        let mut client = peer.client();
        let result = tokio::time::timeout(budget, client.query(request)).await;
        let outcome = match result {
            Err(_) => PeerOutcome::TimedOut,
            Ok(Ok(response)) => {
                let matches: Vec<pb::Match> = response
                    .into_inner()
                    .matches
                    .into_iter()
                    .filter(|found| found.owner_agency == peer.agency.as_str())
                    .collect();
                PeerOutcome::Answered(matches)
            }
            Ok(Err(status)) => match status.code() {
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                    PeerOutcome::Denied(status.message().to_owned())
                }
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => PeerOutcome::TimedOut,
                tonic::Code::Unavailable => PeerOutcome::Unavailable(status.message().to_owned()),
                _ => PeerOutcome::Failed(format!("{:?}: {}", status.code(), status.message())),
            },
        };
        match &outcome {
            PeerOutcome::Answered(_) | PeerOutcome::Denied(_) => peer.breaker.record_success(),
            PeerOutcome::TimedOut | PeerOutcome::Unavailable(_) | PeerOutcome::Failed(_) => {
                peer.breaker.record_failure(Instant::now())
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics
                .peer_calls
                .with_label_values(&[peer.agency.as_str(), outcome.state().as_str_name()])
                .inc();
        }
        tracing::debug!(
            request_id = %query.request_id,
            peer = %peer.agency,
            state = outcome.state().as_str_name(),
            breaker = peer.breaker_state().as_str(),
            "peer answered"
        );
        outcome
    }
}
