//! Assembling and running one node: load keys, policy, store and TLS from a
//! [`NodeConfig`], bind the listener, and serve FlagIndex, gRPC health and
//! server reflection until told to stop. There is no plaintext listener.

use crate::audit_service::AuditLogGrpc;
use crate::audit_trail::{AuditTrail, AuditedTrustEvents, watch_audit_health};
use crate::config::NodeConfig;
use crate::federation::FederationGrpc;
use crate::flag_index::FlagIndexCore;
use crate::grpc::FlagIndexGrpc;
use crate::incoming::{ListenerLimits, accept_tls};
use crate::metrics::{MetricSources, NodeMetrics, serve_admin};
use crate::peers::PeerSet;
use crate::policy_admin::{PolicyAdminGrpc, PolicySettings};
use crate::tls_reload::{ReloadTask, TrustReload, trust_paths};
use flagnet_audit::{AuditLog, AuditLogConfig, AuditSink, AuditTokenKey, CheckpointSigner};
use flagnet_core::AgencyId;
use flagnet_core::{Clock, MatchingKey, Store, SystemClock};
use flagnet_proto::v1::audit_log_server::AuditLogServer;
use flagnet_proto::v1::federation_server::FederationServer;
use flagnet_proto::v1::flag_index_server::FlagIndexServer;
use flagnet_proto::v1::policy_admin_server::PolicyAdminServer;
use flagnet_store::{DataKey, SqliteStore};
use flagnet_trust::events::{FanOut, LogSink, TrustEventSink};
use flagnet_trust::reload::{ReloadOutcome, ReloadTrigger, ReloadingServerConfig, TrustStatus};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The largest request message accepted, after decompression.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("matching key: {0}")]
    MatchingKey(String),
    #[error("store: {0}")]
    Store(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("audit log: {0}")]
    Audit(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// A node that is serving.
#[derive(Debug)]
pub struct RunningNode {
    local_addr: SocketAddr,
    agency: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    trust: TrustReload,
    _trust_reload_task: ReloadTask,
    audit_log: Option<Arc<AuditLog>>,
    admin_addr: SocketAddr,
}

impl RunningNode {
    /// Where `GET /metrics` is served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The node's durable audit log (none when a sink was supplied instead).
    pub fn audit_log(&self) -> Option<&Arc<AuditLog>> {
        self.audit_log.as_ref()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn agency(&self) -> &str {
        &self.agency
    }

    /// The certificate and trust bundle in use, and the last reload refusal.
    pub fn trust_status(&self) -> TrustStatus {
        self.trust.status()
    }

    /// Reloads the certificate, key, trust bundle and CRLs now, as SIGHUP does.
    pub async fn reload_trust(&self) -> ReloadOutcome {
        self.trust.reload(ReloadTrigger::Manual).await
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => tracing::info!(agency = %self.agency, "node stopped"),
            Ok(Err(error)) => tracing::error!(agency = %self.agency, %error, "node stopped with an error"),
            Err(error) => tracing::error!(agency = %self.agency, %error, "node task failed"),
        }
    }

    /// Waits until the node stops by itself (it only does so on error).
    pub async fn wait(self) -> Result<(), String> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Everything a node is built from, for callers that supply their own clock.
#[derive(Debug)]
pub struct NodeParts {
    pub config: NodeConfig,
    pub clock: Arc<dyn Clock>,
    /// receives refused handshakes and trust reloads; [`LogSink`] by default
    pub trust_events: Arc<dyn TrustEventSink>,
    /// where audit records go instead of the durable log named in config
    /// (benchmarks compare against a null sink); `None` opens the log
    pub audit_sink: Option<Arc<dyn AuditSink>>,
}

impl NodeParts {
    pub fn new(config: NodeConfig) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
            trust_events: Arc::new(LogSink),
            audit_sink: None,
        }
    }
}

/// Opens the durable audit log the config names.
async fn open_audit_log(config: &NodeConfig, agency: &AgencyId) -> Result<Arc<AuditLog>, StartError> {
    let audit = &config.audit;
    let signer = CheckpointSigner::load(agency.clone(), &audit.checkpoint_key_file)
        .map_err(|error| StartError::Audit(error.to_string()))?;
    let mut log_config = AuditLogConfig::new(&audit.path);
    log_config.append_deadline = Duration::from_millis(audit.append_deadline_ms);
    log_config.checkpoint_every = audit.checkpoint_every;
    log_config.checkpoint_interval = Duration::from_secs(audit.checkpoint_interval_secs);
    log_config.queue_capacity = audit.queue_capacity;
    let log = AuditLog::open(log_config, signer)
        .await
        .map_err(|error| StartError::Audit(error.to_string()))?;
    Ok(Arc::new(log))
}

/// Live alerts buffered per watcher before it must re-read the store.
const ALERT_BUFFER: usize = 256;

/// Offers queued encounters to their owners until the node stops.
fn spawn_delivery_loop(core: FlagIndexCore, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        if core.peers.is_empty() {
            return;
        }
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let delivered = core.deliver_pending().await;
            if delivered > 0 {
                tracing::info!(delivered, "queued encounters delivered");
            }
        }
    })
}

/// Opens everything the config names and starts serving.
pub async fn start(parts: NodeParts) -> Result<RunningNode, StartError> {
    let NodeParts {
        config,
        clock,
        trust_events,
        audit_sink,
    } = parts;
    config.validate()?;
    let agency = config.agency();
    let matching_key =
        MatchingKey::load(&config.matching.key_file).map_err(|error| StartError::MatchingKey(error.to_string()))?;
    let data_key = DataKey::load(&config.store.data_key_file).map_err(|error| StartError::Store(error.to_string()))?;
    let store: Arc<dyn Store> = match &config.store.url {
        Some(url) => flagnet_store::open_store(url, data_key, config.store.pool_size)
            .await
            .map_err(|error| StartError::Store(error.to_string()))?,
        None => Arc::new(
            SqliteStore::open(&config.store.path, data_key, config.store.pool_size)
                .map_err(|error| StartError::Store(error.to_string()))?,
        ),
    };
    let (audit_log, audit_sink): (Option<Arc<AuditLog>>, Arc<dyn AuditSink>) = match audit_sink {
        Some(sink) => (None, sink),
        None => {
            let log = open_audit_log(&config, &agency).await?;
            (Some(log.clone()), log)
        }
    };
    let audit_token_key = Arc::new(
        AuditTokenKey::load(&config.audit.token_key_file).map_err(|error| StartError::Audit(error.to_string()))?,
    );
    let metrics = NodeMetrics::new(agency.as_str());
    let audit = AuditTrail::new(audit_sink.clone(), audit_token_key, clock.clone(), metrics.clone());
    let engine = Arc::new(
        crate::policy_admin::load_policy(store.as_ref(), &audit, clock.as_ref(), &config.policy.dir, &agency)
            .await
            .map_err(StartError::Policy)?,
    );
    let tls = Arc::new(
        ReloadingServerConfig::load(trust_paths(&config)).map_err(|error| StartError::Tls(error.to_string()))?,
    );
    let peers = Arc::new(PeerSet::connect(&config.federation, &tls, metrics.clone()).map_err(StartError::Tls)?);
    let admin_listen = config.admin_addr()?;
    let admin_listener = TcpListener::bind(admin_listen)
        .await
        .map_err(|error| StartError::Listen {
            addr: admin_listen.to_string(),
            reason: error.to_string(),
        })?;
    let admin_addr = admin_listener.local_addr().map_err(|error| StartError::Listen {
        addr: admin_listen.to_string(),
        reason: error.to_string(),
    })?;

    let listen = config.listen_addr()?;
    let listener = TcpListener::bind(listen).await.map_err(|error| StartError::Listen {
        addr: listen.to_string(),
        reason: error.to_string(),
    })?;
    let local_addr = listener.local_addr().map_err(|error| StartError::Listen {
        addr: listen.to_string(),
        reason: error.to_string(),
    })?;

    let core = FlagIndexCore {
        agency: agency.clone(),
        federation: config.node.federation.clone(),
        phone_region: config.node.phone_region.clone(),
        store,
        engine,
        matching_key: Arc::new(matching_key),
        clock,
        peers,
        audit,
        metrics: metrics.clone(),
        alerts: tokio::sync::broadcast::channel(ALERT_BUFFER).0,
    };
    let lookup_budget = Duration::from_millis(config.federation.lookup_budget_ms);
    let flag_index = FlagIndexServer::new(FlagIndexGrpc::new(core.clone(), lookup_budget))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_REQUEST_BYTES);
    let federation = FederationServer::new(FederationGrpc::new(core.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_REQUEST_BYTES);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<FlagIndexServer<FlagIndexGrpc>>().await;
    health_reporter.set_serving::<FederationServer<FederationGrpc>>().await;
    health_reporter
        .set_serving::<PolicyAdminServer<PolicyAdminGrpc>>()
        .await;
    let audit_health = watch_audit_health(
        audit_sink.health(),
        health_reporter.clone(),
        vec![
            <FlagIndexServer<FlagIndexGrpc> as tonic::server::NamedService>::NAME,
            <FederationServer<FederationGrpc> as tonic::server::NamedService>::NAME,
        ],
    );
    let trust_events: Arc<dyn TrustEventSink> = Arc::new(FanOut::new(vec![
        trust_events,
        Arc::new(AuditedTrustEvents::start(core.audit.clone())),
    ]));
    let trust = TrustReload::new(tls.clone(), trust_events.clone(), health_reporter.clone()).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(flagnet_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| StartError::Tls(format!("reflection: {error}")))?;

    let limits = ListenerLimits {
        handshake_timeout: config.handshake_timeout(),
        connection_lifetime: config.max_connection_age() + config.max_connection_age_grace(),
    };
    let incoming = accept_tls(listener, tls.clone(), limits, trust_events);
    let (stop, stopped) = oneshot::channel::<()>();
    // tonic 0.14.9 skips the GOAWAY when max_connection_age_grace is set,
    // so the grace is the listener's hard deadline instead
    let router = tonic::transport::Server::builder()
        .max_connection_age(config.max_connection_age())
        .add_service(health_service)
        .add_service(reflection)
        .add_service(flag_index)
        .add_service(federation)
        .add_service(PolicyAdminServer::new(PolicyAdminGrpc::new(
            core.clone(),
            PolicySettings::from_config(&config),
        )));
    let core_for_audit = core.clone();
    let peers_for_metrics = core.peers.clone();
    let delivery = spawn_delivery_loop(core, Duration::from_millis(config.federation.delivery_retry_ms));
    let router = match &audit_log {
        Some(log) => {
            health_reporter.set_serving::<AuditLogServer<AuditLogGrpc>>().await;
            router.add_service(AuditLogServer::new(AuditLogGrpc::new(core_for_audit, log.clone())))
        }
        None => router,
    };
    let admin = serve_admin(
        admin_listener,
        metrics,
        MetricSources {
            audit_log: audit_log.clone(),
            peers: peers_for_metrics,
            trust: Some(tls.clone()),
        },
    );
    let audit_log_for_task = audit_log.clone();
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        delivery.abort();
        audit_health.abort();
        admin.abort();
        if let Some(log) = &audit_log_for_task {
            log.shutdown().await;
        }
        served
    });
    let trust_reload_task = trust.spawn(config.reload_interval());
    tracing::info!(agency = %agency, addr = %local_addr, "node serving");
    Ok(RunningNode {
        local_addr,
        agency: agency.to_string(),
        stop: Some(stop),
        task,
        trust,
        _trust_reload_task: trust_reload_task,
        audit_log,
        admin_addr,
    })
}
