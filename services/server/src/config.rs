//! Node configuration: a TOML file read into serde structs that refuse
//! unknown keys, with defaults in named functions and an explicit
//! [`NodeConfig::validate`] whose messages name the key and what is wrong.
//! Relative paths are resolved against the config file's directory.
//! See `deploy/node.minimal.toml` and `deploy/node.full.toml`.

use flagnet_core::AgencyId;
use flagnet_core::identity::check_trust_domain;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config {path}: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub tls: TlsSection,
    pub store: StoreSection,
    pub matching: MatchingSection,
    pub policy: PolicySection,
    pub audit: AuditSection,
    #[serde(default)]
    pub federation: FederationSection,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub log: LogSection,
}

/// The admin listener: Prometheus metrics over plain HTTP, for the local
/// scraper only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// where `GET /metrics` is served; loopback by default, never the mTLS port
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:9464".to_owned()
}

/// Peers and how this node treats them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    /// the longest a lookup may take when the caller sets no deadline
    #[serde(default = "default_lookup_budget_ms")]
    pub lookup_budget_ms: u64,
    /// the longest one peer may take, within the lookup's deadline
    #[serde(default = "default_peer_timeout_ms")]
    pub peer_timeout_ms: u64,
    /// kept back from the remaining deadline for merging and answering
    #[serde(default = "default_deadline_margin_ms")]
    pub deadline_margin_ms: u64,
    /// consecutive failures that open a peer's circuit breaker
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// how long an open breaker skips its peer before one probe
    #[serde(default = "default_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// how often queued encounters are offered to their owner again
    #[serde(default = "default_delivery_retry_ms")]
    pub delivery_retry_ms: u64,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

impl Default for FederationSection {
    fn default() -> Self {
        Self {
            lookup_budget_ms: default_lookup_budget_ms(),
            peer_timeout_ms: default_peer_timeout_ms(),
            deadline_margin_ms: default_deadline_margin_ms(),
            breaker_failures: default_breaker_failures(),
            breaker_cooldown_ms: default_breaker_cooldown_ms(),
            delivery_retry_ms: default_delivery_retry_ms(),
            peers: Vec::new(),
        }
    }
}

/// One peer node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// a label for logs and status
    pub name: String,
    /// `https://host:port`
    pub endpoint: String,
    /// the agency whose node identity the peer must present
    pub agency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// this node's agency id, as in its certificate
    pub agency: String,
    /// the SPIFFE trust domain of the federation
    pub federation: String,
    /// where to listen; loopback by default
    #[serde(default = "default_listen")]
    pub listen: String,
    /// ISO 3166-1 alpha-2 region for phone numbers typed without a country code
    #[serde(default = "default_phone_region")]
    pub phone_region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// the node's certificate (PEM)
    pub certificate: PathBuf,
    /// the node's private key (PEM)
    pub private_key: PathBuf,
    /// directory of agency CAs: `<agency>/ca.pem` and `<agency>/crl.pem`
    pub trust_dir: PathBuf,
    /// a TLS handshake that takes longer is dropped
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// how often the certificate, key, trust bundle and CRLs are re-read;
    /// SIGHUP re-reads them at once
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// a connection this old is sent GOAWAY, so its client reconnects and
    /// a revoked certificate is refused at the new handshake
    #[serde(default = "default_max_connection_age_secs")]
    pub max_connection_age_secs: u64,
    /// how long after its maximum age a connection may finish its calls
    /// before it is closed
    #[serde(default = "default_max_connection_age_grace_secs")]
    pub max_connection_age_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// the SQLite database file (give this or `url`)
    #[serde(default)]
    pub path: PathBuf,
    /// a database URL instead of `path`: `sqlite://FILE`, or
    /// `postgres://user@host:port/database?schema=NAME` for replicated nodes
    #[serde(default)]
    pub url: Option<String>,
    /// hex key file of the node data key that seals flag and consent content
    pub data_key_file: PathBuf,
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchingSection {
    /// hex key file of the federation-wide matching key
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// directory holding model.conf, policy.csv, roles.csv and tests/cases.csv:
    /// the seed of the node's first stored policy version, and the policy
    /// tests every edit must pass
    pub dir: PathBuf,
    /// an applied edit or rollback waits until a second privacy officer approves it
    #[serde(default)]
    pub two_person_rule: bool,
    /// how often the node looks for a version applied by another replica of it
    #[serde(default = "default_policy_poll_ms")]
    pub poll_interval_ms: u64,
}

/// The audit log: its own database file and keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// the audit log's SQLite file (WAL, synchronous=FULL), apart from the store
    pub path: PathBuf,
    /// the Ed25519 key (PKCS#8 PEM) that signs checkpoints
    pub checkpoint_key_file: PathBuf,
    /// hex key of the HMAC that turns blind tokens into the log's subject references
    pub token_key_file: PathBuf,
    /// an answer waits at most this long for its record to be durable, then fails
    #[serde(default = "default_append_deadline_ms")]
    pub append_deadline_ms: u64,
    /// sign a checkpoint after this many records...
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// ...or after this many seconds with records not yet covered
    #[serde(default = "default_checkpoint_interval_secs")]
    pub checkpoint_interval_secs: u64,
    /// records waiting for the writer; beyond it appends wait for room until their deadline
    #[serde(default = "default_audit_queue")]
    pub queue_capacity: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    #[serde(default)]
    pub format: LogFormat,
    /// a tracing filter such as `info,flagnet_server=debug`
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

fn default_listen() -> String {
    "127.0.0.1:7443".to_owned()
}
fn default_phone_region() -> String {
    "US".to_owned()
}
fn default_handshake_timeout_ms() -> u64 {
    10_000
}
fn default_reload_interval_ms() -> u64 {
    5_000
}
fn default_max_connection_age_secs() -> u64 {
    3_600
}
fn default_max_connection_age_grace_secs() -> u64 {
    60
}
fn default_pool_size() -> usize {
    4
}
fn default_lookup_budget_ms() -> u64 {
    2_000
}
fn default_peer_timeout_ms() -> u64 {
    1_500
}
fn default_deadline_margin_ms() -> u64 {
    50
}
fn default_breaker_failures() -> u32 {
    3
}
fn default_breaker_cooldown_ms() -> u64 {
    5_000
}
fn default_delivery_retry_ms() -> u64 {
    1_000
}
fn default_append_deadline_ms() -> u64 {
    2_000
}
fn default_checkpoint_every() -> u64 {
    1_000
}
fn default_checkpoint_interval_secs() -> u64 {
    60
}
fn default_audit_queue() -> usize {
    4_096
}
fn default_policy_poll_ms() -> u64 {
    5_000
}
fn default_log_filter() -> String {
    "info".to_owned()
}

impl NodeConfig {
    /// Reads, resolves relative paths against the file's directory, and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|error| ConfigError::Syntax {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        if !self.store.path.as_os_str().is_empty() && self.store.path.is_relative() {
            self.store.path = base.join(&self.store.path);
        }
        for path in [
            &mut self.tls.certificate,
            &mut self.tls.private_key,
            &mut self.tls.trust_dir,
            &mut self.store.data_key_file,
            &mut self.matching.key_file,
            &mut self.policy.dir,
            &mut self.audit.path,
            &mut self.audit.checkpoint_key_file,
            &mut self.audit.token_key_file,
        ] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        AgencyId::parse(&self.node.agency).map_err(|error| invalid("node.agency", error.to_string()))?;
        check_trust_domain(&self.node.federation).map_err(|reason| invalid("node.federation", reason))?;
        self.listen_addr()?;
        let region = &self.node.phone_region;
        if region.len() != 2 || !region.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                "node.phone_region",
                format!("expected a two-letter country code such as US, got {region:?}"),
            ));
        }
        if !(100..=120_000).contains(&self.tls.handshake_timeout_ms) {
            return Err(invalid("tls.handshake_timeout_ms", "must be between 100 and 120000"));
        }
        if !(100..=3_600_000).contains(&self.tls.reload_interval_ms) {
            return Err(invalid("tls.reload_interval_ms", "must be between 100 and 3600000"));
        }
        if !(1..=86_400).contains(&self.tls.max_connection_age_secs) {
            return Err(invalid("tls.max_connection_age_secs", "must be between 1 and 86400"));
        }
        if !(1..=3_600).contains(&self.tls.max_connection_age_grace_secs) {
            return Err(invalid(
                "tls.max_connection_age_grace_secs",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=64).contains(&self.store.pool_size) {
            return Err(invalid("store.pool_size", "must be between 1 and 64"));
        }
        for (key, path) in [
            ("tls.certificate", &self.tls.certificate),
            ("tls.private_key", &self.tls.private_key),
            ("store.data_key_file", &self.store.data_key_file),
            ("matching.key_file", &self.matching.key_file),
            ("audit.checkpoint_key_file", &self.audit.checkpoint_key_file),
            ("audit.token_key_file", &self.audit.token_key_file),
        ] {
            if !path.is_file() {
                return Err(invalid(key, format!("{} is not a readable file", path.display())));
            }
        }
        for (key, path) in [("tls.trust_dir", &self.tls.trust_dir), ("policy.dir", &self.policy.dir)] {
            if !path.is_dir() {
                return Err(invalid(key, format!("{} is not a directory", path.display())));
            }
        }
        self.validate_federation()?;
        self.admin_addr()?;
        if !(100..=3_600_000).contains(&self.policy.poll_interval_ms) {
            return Err(invalid("policy.poll_interval_ms", "must be between 100 and 3600000"));
        }
        if !(10..=60_000).contains(&self.audit.append_deadline_ms) {
            return Err(invalid("audit.append_deadline_ms", "must be between 10 and 60000"));
        }
        if !(1..=1_000_000).contains(&self.audit.checkpoint_every) {
            return Err(invalid("audit.checkpoint_every", "must be between 1 and 1000000"));
        }
        if !(1..=86_400).contains(&self.audit.checkpoint_interval_secs) {
            return Err(invalid("audit.checkpoint_interval_secs", "must be between 1 and 86400"));
        }
        if !(1..=1_000_000).contains(&self.audit.queue_capacity) {
            return Err(invalid("audit.queue_capacity", "must be between 1 and 1000000"));
        }
        match (&self.store.url, self.store.path.as_os_str().is_empty()) {
            (Some(_), false) => return Err(invalid("store.url", "give either store.path or store.url, not both")),
            (None, true) => return Err(invalid("store.path", "is required (or give store.url)")),
            (Some(url), true) => {
                if !(url.starts_with("sqlite://") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
                {
                    return Err(invalid("store.url", "must start with sqlite:// or postgres://"));
                }
            }
            (None, false) => {}
        }
        if self.audit.path == self.store.path {
            return Err(invalid("audit.path", "must be a different file from store.path"));
        }
        if self.store.url.is_none()
            && let Some(parent) = self.store.path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.is_dir()
        {
            return Err(invalid(
                "store.path",
                format!("directory {} does not exist", parent.display()),
            ));
        }
        Ok(())
    }

    fn validate_federation(&self) -> Result<(), ConfigError> {
        let federation = &self.federation;
        if !(50..=60_000).contains(&federation.lookup_budget_ms) {
            return Err(invalid("federation.lookup_budget_ms", "must be between 50 and 60000"));
        }
        if !(10..=60_000).contains(&federation.peer_timeout_ms) {
            return Err(invalid("federation.peer_timeout_ms", "must be between 10 and 60000"));
        }
        if federation.deadline_margin_ms >= federation.lookup_budget_ms {
            return Err(invalid(
                "federation.deadline_margin_ms",
                "must be less than federation.lookup_budget_ms",
            ));
        }
        if !(1..=100).contains(&federation.breaker_failures) {
            return Err(invalid("federation.breaker_failures", "must be between 1 and 100"));
        }
        if !(10..=600_000).contains(&federation.breaker_cooldown_ms) {
            return Err(invalid(
                "federation.breaker_cooldown_ms",
                "must be between 10 and 600000",
            ));
        }
        if !(10..=600_000).contains(&federation.delivery_retry_ms) {
            return Err(invalid("federation.delivery_retry_ms", "must be between 10 and 600000"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for peer in &federation.peers {
            let agency = AgencyId::parse(&peer.agency)
                .map_err(|error| invalid("federation.peers.agency", format!("peer {:?}: {error}", peer.name)))?;
            if agency.as_str() == self.node.agency {
                return Err(invalid(
                    "federation.peers.agency",
                    format!("peer {:?} is this node's own agency", peer.name),
                ));
            }
            if !seen.insert(agency) {
                return Err(invalid(
                    "federation.peers.agency",
                    format!("agency {} is listed twice", peer.agency),
                ));
            }
            flagnet_trust::channel::authority_of(&peer.endpoint)
                .map_err(|error| invalid("federation.peers.endpoint", format!("peer {:?}: {error}", peer.name)))?;
        }
        Ok(())
    }

    pub fn agency(&self) -> AgencyId {
        AgencyId::parse(&self.node.agency).expect("validated")
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.node.listen.parse().map_err(|error| {
            invalid(
                "node.listen",
                format!("{:?} is not an address and port: {error}", self.node.listen),
            )
        })
    }

    pub fn admin_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.admin.listen.parse().map_err(|error| {
            invalid(
                "admin.listen",
                format!("{:?} is not an address and port: {error}", self.admin.listen),
            )
        })
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls.handshake_timeout_ms)
    }

    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.tls.reload_interval_ms)
    }

    pub fn max_connection_age(&self) -> Duration {
        Duration::from_secs(self.tls.max_connection_age_secs)
    }

    pub fn max_connection_age_grace(&self) -> Duration {
        Duration::from_secs(self.tls.max_connection_age_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, body: &str) -> PathBuf {
        for file in [
            "node.pem",
            "node.key",
            "data.key",
            "matching.key",
            "checkpoint.key",
            "audit-token.key",
        ] {
            std::fs::write(dir.join(file), "x").unwrap();
        }
        std::fs::create_dir_all(dir.join("trust")).unwrap();
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(&path, body).unwrap();
        path
    }

    const GOOD: &str = r#"
[node]
agency = "phelps-so"
federation = "flagnet.demo"
[tls]
certificate = "node.pem"
private_key = "node.key"
trust_dir = "trust"
[store]
path = "flags.sqlite"
data_key_file = "data.key"
[matching]
key_file = "matching.key"
[policy]
dir = "policies"
[audit]
path = "audit.sqlite"
checkpoint_key_file = "checkpoint.key"
token_key_file = "audit-token.key"
"#;

    #[test]
    fn minimal_config_loads_with_defaults_and_resolved_paths() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::load(&write_config(dir.path(), GOOD)).unwrap();
        assert_eq!(config.node.listen, "127.0.0.1:7443");
        assert_eq!(config.store.pool_size, 4);
        assert_eq!(config.tls.certificate, dir.path().join("node.pem"));
        assert_eq!(config.reload_interval(), Duration::from_secs(5));
        assert_eq!(config.max_connection_age(), Duration::from_secs(3600));
        assert_eq!(config.max_connection_age_grace(), Duration::from_secs(60));
        assert!(!config.policy.two_person_rule);
        assert_eq!(config.policy.poll_interval_ms, 5_000);
    }

    #[test]
    fn deploy_samples_parse() {
        for sample in [
            include_str!("../../../deploy/node.minimal.toml"),
            include_str!("../../../deploy/node.full.toml"),
        ] {
            let config: NodeConfig = toml::from_str(sample).expect("sample parses with deny_unknown_fields");
            assert_eq!(config.node.agency, "phelps-so");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (GOOD.replace("phelps-so", "Phelps SO"), "node.agency"),
            (GOOD.replace("[policy]", "[node2]\nx=1\n[policy]"), "unknown field"),
            (
                GOOD.replace(
                    "federation = \"flagnet.demo\"",
                    "federation = \"flagnet.demo\"\nlisten = \"localhost\"",
                ),
                "node.listen",
            ),
            (
                GOOD.replace(
                    "federation = \"flagnet.demo\"",
                    "federation = \"flagnet.demo\"\nphone_region = \"usa\"",
                ),
                "node.phone_region",
            ),
            (GOOD.replace("\"node.key\"", "\"missing.key\""), "tls.private_key"),
            (GOOD.replace("dir = \"policies\"", "dir = \"nowhere\""), "policy.dir"),
            (
                GOOD.replace("dir = \"policies\"", "dir = \"policies\"\npoll_interval_ms = 10"),
                "policy.poll_interval_ms",
            ),
            (
                GOOD.replace("path = \"flags.sqlite\"", "url = \"mysql://x\""),
                "store.url",
            ),
            (
                GOOD.replace(
                    "path = \"flags.sqlite\"",
                    "path = \"flags.sqlite\"\nurl = \"postgres://x/y\"",
                ),
                "store.url",
            ),
            (GOOD.replace("path = \"flags.sqlite\"\n", ""), "store.path"),
            (
                GOOD.replace(
                    "data_key_file = \"data.key\"",
                    "data_key_file = \"data.key\"\npool_size = 0",
                ),
                "store.pool_size",
            ),
            (
                GOOD.replace("trust_dir = \"trust\"", "trust_dir = \"trust\"\nreload_interval_ms = 0"),
                "tls.reload_interval_ms",
            ),
            (
                GOOD.replace(
                    "trust_dir = \"trust\"",
                    "trust_dir = \"trust\"\nmax_connection_age_secs = 0",
                ),
                "tls.max_connection_age_secs",
            ),
            (
                GOOD.replace(
                    "trust_dir = \"trust\"",
                    "trust_dir = \"trust\"\nmax_connection_age_grace_secs = 7200",
                ),
                "tls.max_connection_age_grace_secs",
            ),
        ];
        for (body, expected) in cases {
            let error = NodeConfig::load(&write_config(dir.path(), &body))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "expected {expected:?} in {error}");
        }
    }
}
