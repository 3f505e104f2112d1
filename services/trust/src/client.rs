//! A person's (or a tool's) connection settings: the profile file that
//! flagctl reads and the demo writes, holding the node's endpoint and agency,
//! the federation, the trust directory, and the certificate and key to
//! present. Connecting checks that the server is that agency's node.

use crate::bundle::TrustBundle;
use crate::verifier::ExpectedServer;
use flagnet_core::AgencyId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tonic::transport::Channel;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read profile {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("profile {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("endpoint {0}")]
    Endpoint(String),
    #[error("{0}")]
    Trust(#[from] crate::error::TrustError),
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
}

/// What a client needs to call its own node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientProfile {
    /// `https://host:port` of the node
    pub endpoint: String,
    /// the node's agency; the server must present that agency's node identity
    pub agency: String,
    /// the federation's SPIFFE trust domain
    pub federation: String,
    /// directory of agency CAs (`<agency>/ca.pem`, `<agency>/crl.pem`)
    pub trust_dir: PathBuf,
    /// the person's certificate (PEM)
    pub certificate: PathBuf,
    /// its private key (PEM)
    pub private_key: PathBuf,
}

impl ClientProfile {
    /// Reads a profile; relative paths are taken from the file's directory.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|error| ClientError::Unreadable {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let mut profile: ClientProfile = toml::from_str(&text).map_err(|error| ClientError::Invalid {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [
            &mut profile.trust_dir,
            &mut profile.certificate,
            &mut profile.private_key,
        ] {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        AgencyId::parse(&profile.agency).map_err(|error| ClientError::Invalid {
            path: path.to_owned(),
            reason: format!("agency: {error}"),
        })?;
        crate::channel::authority_of(&profile.endpoint)?;
        Ok(profile)
    }

    /// The rustls config: present our certificate, accept only the node of `agency`.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let bundle = Arc::new(TrustBundle::load(&self.federation, &self.trust_dir)?);
        let agency = AgencyId::parse(&self.agency).map_err(|error| ClientError::Endpoint(error.to_string()))?;
        Ok(crate::tls::client_config(
            bundle,
            ExpectedServer::Agency(agency),
            &self.certificate,
            &self.private_key,
        )?)
    }

    /// One long-lived channel to the node.
    pub async fn connect(&self) -> Result<Channel, ClientError> {
        crate::channel::connect(&self.endpoint, self.tls_config()?).await
    }
}
