//! Writing a federation to disk and running its nodes.
//!
//! ```text
//! DIR/pki/                 federation directory (flagctl certs layout)
//! DIR/pki/agencies/<a>/    ca.pem, crl.pem (the trust dir), nodes/, users/
//! DIR/keys/matching.key    the federation matching key
//! DIR/nodes/<a>/           node.toml, data.key, flags.sqlite
//! DIR/policies/            model.conf, policy.csv, roles.csv, tests/cases.csv
//! DIR/profiles/<a>-<role>.toml   one flagctl profile per person
//! ```

use crate::{DEMO_FEDERATION, DEMO_ROLES, demo_user};
use flagnet_audit::{AuditTokenKey, CheckpointSigner};
use flagnet_core::{AgencyId, Clock, MatchingKey, SystemClock, UserId};
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_server::{NodeConfig, NodeParts, RunningNode};
use flagnet_store::DataKey;
use flagnet_trust::client::ClientProfile;
use flagnet_trust::events::{FanOut, LogSink, TrustEventSink};
use flagnet_trust::pki::FederationDir;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tonic::transport::Channel;

const MODEL_CONF: &str = include_str!("../../../policies/model.conf");
const POLICY_CSV: &str = include_str!("../../../policies/policy.csv");
const ROLES_CSV: &str = include_str!("../../../policies/roles.csv");
const POLICY_TESTS_CSV: &str = include_str!("../../../policies/tests/cases.csv");

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("sandbox {step}: {reason}")]
    Setup { step: String, reason: String },
    #[error("node {agency}: {reason}")]
    Node { agency: String, reason: String },
    #[error("no node for agency {0}")]
    UnknownAgency(String),
}

fn setup(step: impl Into<String>) -> impl FnOnce(String) -> SandboxError {
    let step = step.into();
    move |reason| SandboxError::Setup { step, reason }
}

/// What to stand up.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// where to write; a new temporary directory (removed on drop) if `None`
    pub dir: Option<PathBuf>,
    pub federation: String,
    pub agencies: Vec<String>,
    /// the clock every node decides by
    pub clock: Arc<dyn Clock>,
    /// the `[federation]` timing every node gets
    pub federation_timing: FederationTiming,
    /// the `[tls]` reload interval and connection age every node gets
    pub tls_timing: TlsTiming,
    /// a PostgreSQL server (`postgres://user@host:port/db`) to keep every
    /// node's store in, one fresh schema per node; SQLite files when `None`
    pub postgres: Option<String>,
    /// also receives every node's trust events (refused handshakes,
    /// reloads); each node logs them in any case
    pub trust_events: Option<Arc<dyn TrustEventSink>>,
    /// a directory holding `model.conf`, `policy.csv` and `roles.csv` to
    /// copy to `DIR/policies` (a benchmark grows the policy); the
    /// repository's `policies/` if `None`
    pub policy_dir: Option<PathBuf>,
}

/// TLS reload and connection-age settings written into every node's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsTiming {
    pub reload_interval_ms: u64,
    pub max_connection_age_secs: u64,
    pub max_connection_age_grace_secs: u64,
}

impl Default for TlsTiming {
    /// The node's own defaults.
    fn default() -> Self {
        Self {
            reload_interval_ms: 5_000,
            max_connection_age_secs: 3_600,
            max_connection_age_grace_secs: 60,
        }
    }
}

impl TlsTiming {
    fn config_text(&self) -> String {
        format!(
            "reload_interval_ms = {}\nmax_connection_age_secs = {}\nmax_connection_age_grace_secs = {}\n",
            self.reload_interval_ms, self.max_connection_age_secs, self.max_connection_age_grace_secs
        )
    }
}

/// Federation timing written into every node's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FederationTiming {
    pub lookup_budget_ms: u64,
    pub peer_timeout_ms: u64,
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    pub delivery_retry_ms: u64,
}

impl Default for FederationTiming {
    fn default() -> Self {
        Self {
            lookup_budget_ms: 2_000,
            peer_timeout_ms: 1_500,
            breaker_failures: 3,
            breaker_cooldown_ms: 5_000,
            delivery_retry_ms: 1_000,
        }
    }
}

impl FederationTiming {
    fn config_text(&self) -> String {
        format!(
            "\n[federation]\nlookup_budget_ms = {}\npeer_timeout_ms = {}\nbreaker_failures = {}\nbreaker_cooldown_ms = {}\ndelivery_retry_ms = {}\n",
            self.lookup_budget_ms,
            self.peer_timeout_ms,
            self.breaker_failures,
            self.breaker_cooldown_ms,
            self.delivery_retry_ms
        )
    }
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            dir: None,
            federation: DEMO_FEDERATION.to_owned(),
            agencies: crate::DEMO_AGENCIES.iter().map(|agency| (*agency).to_owned()).collect(),
            clock: Arc::new(SystemClock),
            federation_timing: FederationTiming::default(),
            tls_timing: TlsTiming::default(),
            postgres: None,
            trust_events: None,
            policy_dir: None,
        }
    }
}

/// One subject for [`Sandbox::bulk_seed`], as a records clerk would enter it.
#[derive(Debug, Clone)]
pub struct BulkSubject {
    pub flag: flagnet_proto::v1::FlagInput,
    /// recorded for the new flag; its `flag_id` is filled in
    pub consent: Option<flagnet_proto::v1::ConsentInput>,
}

#[derive(Debug)]
struct SandboxNode {
    addr: SocketAddr,
    config_path: PathBuf,
    running: Option<RunningNode>,
    /// replaces the durable audit log at the next start (see [`Sandbox::set_audit_sink`])
    audit_sink: Option<Arc<dyn flagnet_audit::AuditSink>>,
}

/// A running federation.
#[derive(Debug)]
pub struct Sandbox {
    dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    federation: FederationDir,
    clock: Arc<dyn Clock>,
    trust_events: Option<Arc<dyn TrustEventSink>>,
    nodes: BTreeMap<String, SandboxNode>,
}

fn free_loopback_port() -> Result<SocketAddr, SandboxError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| setup("port")(error.to_string()))?;
    listener.local_addr().map_err(|error| setup("port")(error.to_string()))
}

fn write(path: &Path, contents: &str) -> Result<(), SandboxError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| setup(format!("mkdir {}", parent.display()))(error.to_string()))?;
    }
    std::fs::write(path, contents).map_err(|error| setup(format!("write {}", path.display()))(error.to_string()))
}

/// Writes a key file readable by its owner only.
fn write_secret(path: &Path, contents: &str) -> Result<(), SandboxError> {
    write(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| setup(format!("chmod {}", path.display()))(error.to_string()))?;
    }
    Ok(())
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

impl Sandbox {
    /// Makes the PKI, keys, configs and profiles, then starts every node.
    pub async fn start(options: SandboxOptions) -> Result<Self, SandboxError> {
        let (dir, tempdir) = match &options.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|error| setup("create dir")(error.to_string()))?;
                (dir.clone(), None)
            }
            None => {
                let tempdir = tempfile::Builder::new()
                    .prefix("flagnet-")
                    .tempdir()
                    .map_err(|error| setup("tempdir")(error.to_string()))?;
                (tempdir.path().to_owned(), Some(tempdir))
            }
        };
        let federation = FederationDir::init(&dir.join("pki"), &options.federation)
            .map_err(|error| setup("init federation")(error.to_string()))?;
        write_secret(&dir.join("keys/matching.key"), &MatchingKey::generate_hex())?;
        match &options.policy_dir {
            Some(source) => {
                for name in ["model.conf", "policy.csv", "roles.csv"] {
                    let from = source.join(name);
                    let text = std::fs::read_to_string(&from)
                        .map_err(|error| setup(format!("read {}", from.display()))(error.to_string()))?;
                    write(&dir.join("policies").join(name), &text)?;
                }
                // the policy tests every edit must pass, when the source has them
                if let Ok(tests) = std::fs::read_to_string(source.join("tests/cases.csv")) {
                    write(&dir.join("policies/tests/cases.csv"), &tests)?;
                }
            }
            None => {
                write(&dir.join("policies/model.conf"), MODEL_CONF)?;
                write(&dir.join("policies/policy.csv"), POLICY_CSV)?;
                write(&dir.join("policies/roles.csv"), ROLES_CSV)?;
                write(&dir.join("policies/tests/cases.csv"), POLICY_TESTS_CSV)?;
            }
        }

        let addresses: BTreeMap<String, SocketAddr> = options
            .agencies
            .iter()
            .map(|agency| Ok((agency.clone(), free_loopback_port()?)))
            .collect::<Result<_, SandboxError>>()?;
        let mut nodes = BTreeMap::new();
        for agency_name in &options.agencies {
            let agency = AgencyId::parse(agency_name).map_err(|error| setup("agency")(error.to_string()))?;
            federation
                .add_agency(&agency)
                .map_err(|error| setup(format!("add agency {agency}"))(error.to_string()))?;
        }
        for agency_name in &options.agencies {
            let agency = AgencyId::parse(agency_name).map_err(|error| setup("agency")(error.to_string()))?;
            let node_cert = federation
                .issue_node(&agency)
                .map_err(|error| setup(format!("node certificate {agency}"))(error.to_string()))?;
            let node_dir = dir.join("nodes").join(agency_name);
            write_secret(&node_dir.join("data.key"), &DataKey::generate_hex())?;
            write_secret(&node_dir.join("audit-token.key"), &AuditTokenKey::generate_hex())?;
            CheckpointSigner::generate_key_file(&node_dir.join("checkpoint.key"))
                .map_err(|error| setup(format!("checkpoint key {agency}"))(error.to_string()))?;
            let addr = addresses[agency_name];
            let config_path = node_dir.join("node.toml");
            let mut config = format!(
                "# written by the flagnet sandbox\n[node]\nagency = \"{agency}\"\nfederation = \"{}\"\nlisten = \"{addr}\"\nphone_region = \"US\"\n\n[tls]\ncertificate = {}\nprivate_key = {}\ntrust_dir = {}\n{tls_timing}\n[store]\n{store_location}\ndata_key_file = \"data.key\"\n\n[matching]\nkey_file = {}\n\n[policy]\ndir = {}\n\n[audit]\npath = \"audit.sqlite\"\ncheckpoint_key_file = \"checkpoint.key\"\ntoken_key_file = \"audit-token.key\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n",
                options.federation,
                toml_path(&node_cert.cert_path),
                toml_path(&node_cert.key_path),
                toml_path(&federation.trust_dir()),
                toml_path(&dir.join("keys/matching.key")),
                toml_path(&dir.join("policies")),
                tls_timing = options.tls_timing.config_text(),
                store_location = match &options.postgres {
                    Some(server) => format!(
                        "url = \"{server}?schema=flagnet_{}_{}\"",
                        uuid::Uuid::new_v4().simple().to_string().get(..10).unwrap_or_default(),
                        agency_name.replace('-', "_")
                    ),
                    None => "path = \"flags.sqlite\"".to_owned(),
                },
            );
            config.push_str(&options.federation_timing.config_text());
            for (peer, peer_addr) in addresses.iter().filter(|(peer, _)| *peer != agency_name) {
                config.push_str(&format!(
                    "\n[[federation.peers]]\nname = \"{peer}\"\nendpoint = \"https://{peer_addr}\"\nagency = \"{peer}\"\n"
                ));
            }
            write(&config_path, &config)?;
            for role in DEMO_ROLES {
                let user = UserId::parse(&demo_user(role)).map_err(|error| setup("user")(error.to_string()))?;
                let issued = federation
                    .issue_user(&agency, &user, None)
                    .map_err(|error| setup(format!("user certificate {agency}/{user}"))(error.to_string()))?;
                let profile = ClientProfile {
                    endpoint: format!("https://{addr}"),
                    agency: agency_name.clone(),
                    federation: options.federation.clone(),
                    trust_dir: federation.trust_dir(),
                    certificate: issued.cert_path.clone(),
                    private_key: issued.key_path.clone(),
                };
                let text = toml::to_string(&profile).map_err(|error| setup("profile")(error.to_string()))?;
                write(&dir.join("profiles").join(format!("{agency_name}-{role}.toml")), &text)?;
            }
            nodes.insert(
                agency_name.clone(),
                SandboxNode {
                    addr,
                    config_path,
                    running: None,
                    audit_sink: None,
                },
            );
        }
        let mut sandbox = Self {
            dir,
            _tempdir: tempdir,
            federation,
            clock: options.clock,
            trust_events: options.trust_events,
            nodes,
        };
        let agencies: Vec<String> = sandbox.nodes.keys().cloned().collect();
        for agency in agencies {
            sandbox.start_node(&agency).await?;
        }
        Ok(sandbox)
    }

    /// Starts (or restarts) one node from its config file.
    pub async fn start_node(&mut self, agency: &str) -> Result<SocketAddr, SandboxError> {
        let clock = self.clock.clone();
        let node = self
            .nodes
            .get_mut(agency)
            .ok_or_else(|| SandboxError::UnknownAgency(agency.to_owned()))?;
        if node.running.is_some() {
            return Ok(node.addr);
        }
        let node_error = |reason: String| SandboxError::Node {
            agency: agency.to_owned(),
            reason,
        };
        let config = NodeConfig::load(&node.config_path).map_err(|error| node_error(error.to_string()))?;
        let trust_events: Arc<dyn TrustEventSink> = match &self.trust_events {
            Some(extra) => Arc::new(FanOut::new(vec![Arc::new(LogSink), extra.clone()])),
            None => Arc::new(LogSink),
        };
        let running = flagnet_server::start(NodeParts {
            config,
            clock,
            trust_events,
            audit_sink: node.audit_sink.clone(),
        })
        .await
        .map_err(|error| node_error(error.to_string()))?;
        node.addr = running.local_addr();
        node.running = Some(running);
        Ok(node.addr)
    }

    /// Stops one node; its files stay, so it can be started again.
    pub async fn stop_node(&mut self, agency: &str) -> Result<(), SandboxError> {
        let node = self
            .nodes
            .get_mut(agency)
            .ok_or_else(|| SandboxError::UnknownAgency(agency.to_owned()))?;
        if let Some(running) = node.running.take() {
            running.shutdown().await;
        }
        Ok(())
    }

    /// From the node's next start on, its audit records go to `sink`
    /// instead of its durable log (a benchmark's null sink); `None` puts the
    /// durable log back. A running node keeps what it started with.
    pub fn set_audit_sink(
        &mut self,
        agency: &str,
        sink: Option<Arc<dyn flagnet_audit::AuditSink>>,
    ) -> Result<(), SandboxError> {
        let node = self
            .nodes
            .get_mut(agency)
            .ok_or_else(|| SandboxError::UnknownAgency(agency.to_owned()))?;
        node.audit_sink = sink;
        Ok(())
    }

    /// Loads the flags `make` describes for `indices` straight into the
    /// store of `agency`, thousands per transaction (see
    /// `SqliteStore::bulk_put_flags`), instead of one `PutFlag` call each.
    /// Each subject goes through the same checks and token derivation as
    /// `PutFlag` and `RecordConsent`, as that agency's records clerk; the
    /// consent, if any, is recorded for the new flag (its `flag_id` is
    /// filled in). Inputs are converted on a blocking thread while the
    /// previous batch is written. `progress` hears the running total after
    /// each batch. The node may be running: SQLite serialises the writers.
    pub async fn bulk_seed<F>(
        &self,
        agency: &str,
        indices: std::ops::Range<u64>,
        make: F,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, SandboxError>
    where
        F: Fn(u64) -> BulkSubject + Send + 'static,
    {
        const BATCH: u64 = 5_000;
        let bulk_error = |reason: String| SandboxError::Node {
            agency: agency.to_owned(),
            reason: format!("bulk seed: {reason}"),
        };
        let config =
            NodeConfig::load(&self.node_config_path(agency)?).map_err(|error| bulk_error(error.to_string()))?;
        let owner = config.agency();
        let data_key = DataKey::load(&config.store.data_key_file).map_err(|error| bulk_error(error.to_string()))?;
        let matching_key =
            MatchingKey::load(&config.matching.key_file).map_err(|error| bulk_error(error.to_string()))?;
        let store_path = config.store.path.clone();
        let store = tokio::task::spawn_blocking(move || flagnet_store::SqliteStore::open(&store_path, data_key, 1))
            .await
            .map_err(|error| bulk_error(error.to_string()))?
            .map_err(|error| bulk_error(error.to_string()))?;
        let clerk = format!(
            "spiffe://{}/agency/{owner}/user/{}",
            config.node.federation,
            demo_user("records_clerk")
        );
        let phone_region = config.node.phone_region.clone();
        let now = self.clock.now();
        type Batch = flagnet_core::CoreResult<(Vec<flagnet_core::NewFlag>, Vec<flagnet_core::NewConsent>)>;
        let (batches, mut converted) = tokio::sync::mpsc::channel::<Batch>(2);
        let total = indices.end.saturating_sub(indices.start);
        let converter = tokio::task::spawn_blocking(move || {
            let mut start = indices.start;
            while start < indices.end {
                let end = (start + BATCH).min(indices.end);
                let batch = (start..end)
                    .map(|index| {
                        let subject = make(index);
                        let draft =
                            flagnet_server::convert::flag_draft(Some(subject.flag), &matching_key, &phone_region)?;
                        let id = uuid::Uuid::new_v4();
                        let consent = subject
                            .consent
                            .map(|mut consent| {
                                consent.flag_id = id.to_string();
                                flagnet_server::convert::new_consent(Some(consent), owner.clone(), clerk.clone(), now)
                            })
                            .transpose()?;
                        let flag = flagnet_core::NewFlag {
                            id: Some(id),
                            owner: owner.clone(),
                            status: draft.status,
                            review_date: draft.review_date,
                            basis: draft.basis,
                            content: draft.content,
                            subject_tokens: draft.subject_tokens,
                            author: clerk.clone(),
                            reason: "bulk seed".to_owned(),
                        };
                        Ok((flag, consent))
                    })
                    .collect::<flagnet_core::CoreResult<Vec<_>>>()
                    .map(|pairs| {
                        let mut flags = Vec::with_capacity(pairs.len());
                        let mut consents = Vec::new();
                        for (flag, consent) in pairs {
                            flags.push(flag);
                            consents.extend(consent);
                        }
                        (flags, consents)
                    });
                let failed = batch.is_err();
                if batches.blocking_send(batch).is_err() || failed {
                    return;
                }
                start = end;
            }
        });
        let mut loaded = 0;
        while let Some(batch) = converted.recv().await {
            let (flags, consents) = batch.map_err(|error| bulk_error(error.to_string()))?;
            let written = store
                .bulk_put_flags(flags, consents, now)
                .await
                .map_err(|error| bulk_error(error.to_string()))?;
            loaded += written.flags as u64;
            progress(loaded);
        }
        converter.await.map_err(|error| bulk_error(error.to_string()))?;
        debug_assert_eq!(loaded, total);
        Ok(loaded)
    }

    /// Where a running node serves `GET /metrics`.
    pub fn admin_addr(&self, agency: &str) -> Option<SocketAddr> {
        Some(self.nodes.get(agency)?.running.as_ref()?.admin_addr())
    }

    /// The durable audit log of a running node.
    pub fn audit_log(&self, agency: &str) -> Option<Arc<flagnet_audit::AuditLog>> {
        self.nodes.get(agency)?.running.as_ref()?.audit_log().cloned()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn federation(&self) -> &FederationDir {
        &self.federation
    }

    pub fn agencies(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    pub fn node_addr(&self, agency: &str) -> Result<SocketAddr, SandboxError> {
        self.nodes
            .get(agency)
            .map(|node| node.addr)
            .ok_or_else(|| SandboxError::UnknownAgency(agency.to_owned()))
    }

    /// The running node of `agency` (for its trust status and reload).
    pub fn running_node(&self, agency: &str) -> Result<&RunningNode, SandboxError> {
        let node = self
            .nodes
            .get(agency)
            .ok_or_else(|| SandboxError::UnknownAgency(agency.to_owned()))?;
        node.running.as_ref().ok_or_else(|| SandboxError::Node {
            agency: agency.to_owned(),
            reason: "not running".into(),
        })
    }

    pub fn node_config_path(&self, agency: &str) -> Result<PathBuf, SandboxError> {
        self.nodes
            .get(agency)
            .map(|node| node.config_path.clone())
            .ok_or_else(|| SandboxError::UnknownAgency(agency.to_owned()))
    }

    /// The flagctl profile of the demo person with `role` at `agency`.
    pub fn profile_path(&self, agency: &str, role: &str) -> PathBuf {
        self.dir.join("profiles").join(format!("{agency}-{role}.toml"))
    }

    /// A FlagIndex client authenticated as the demo person with `role` at `agency`.
    pub async fn client(&self, agency: &str, role: &str) -> Result<FlagIndexClient<Channel>, SandboxError> {
        let profile = ClientProfile::load(&self.profile_path(agency, role))
            .map_err(|error| setup("profile")(error.to_string()))?;
        let channel = profile
            .connect()
            .await
            .map_err(|error| setup("connect")(error.to_string()))?;
        Ok(FlagIndexClient::new(channel)
            .max_decoding_message_size(flagnet_server::node::MAX_REQUEST_BYTES)
            .max_encoding_message_size(8 * 1024 * 1024))
    }

    /// A channel authenticated as the demo person with `role` at `agency`,
    /// for any service (AuditLog, health).
    pub async fn channel(&self, agency: &str, role: &str) -> Result<Channel, SandboxError> {
        let profile = ClientProfile::load(&self.profile_path(agency, role))
            .map_err(|error| setup("profile")(error.to_string()))?;
        profile
            .connect()
            .await
            .map_err(|error| setup("connect")(error.to_string()))
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for node in self.nodes.values_mut() {
            if let Some(running) = node.running.take() {
                running.shutdown().await;
            }
        }
    }
}
