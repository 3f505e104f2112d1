//! rustls configurations for flagnet's mutual TLS, built from a trust
//! bundle and a certificate/key pair on disk, with the ring provider chosen
//! explicitly (never the process default), ALPN `h2`, TLS 1.3 and 1.2.
//!
//! Session resumption is off in both directions: a resumed session skips
//! certificate verification, so it would let a certificate revoked since
//! the first handshake back in without the CRL being consulted. A full
//! handshake costs milliseconds on a connection meant to live long.
//!
//! This module must never build a config that accepts clients without a
//! certificate or that trusts a pooled root set, and never start a node on
//! a certificate its peers would refuse: a node's own pair is checked
//! through the same verifier its peers use.

use crate::bundle::TrustBundle;
use crate::error::{CertificateRefusal, ExtendedPurpose, Result, TrustError};
use crate::identity::{LeafCertificate, fingerprint_sha256};
use crate::verifier::{AgencyClientVerifier, AgencyServerVerifier, ExpectedServer};
use flagnet_core::{AgencyId, Identity};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConfig, ServerConfig, ServerConnection, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// The ALPN protocol of gRPC over TLS.
pub const ALPN_H2: &[u8] = b"h2";

const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider every flagnet TLS config uses: ring, named
/// explicitly so that a second provider elsewhere in the build cannot make
/// rustls panic over the process default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Who is on the other end of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificateInfo {
    pub identity: Identity,
    /// SHA-256 of the leaf certificate's DER, lowercase hex.
    pub fingerprint_sha256: String,
}

/// A node's server config: its node certificate, client certificates
/// mandatory and verified per agency by [`AgencyClientVerifier`].
///
/// Refuses a certificate that is not a node identity of the bundle's
/// federation, lacks serverAuth, or that the node's own agency CA and CRL
/// do not accept right now (expired, revoked, another CA).
pub fn server_config(bundle: Arc<TrustBundle>, cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>> {
    let (chain, key) = load_pair(cert_path, key_path)?;
    let node = NodeCertificate {
        chain,
        key,
        cert_path,
        key_path,
    };
    Ok(node_server_config(&bundle, node, None)?.0)
}

/// A node's certificate chain and key as read from their files.
pub(crate) struct NodeCertificate<'a> {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) cert_path: &'a Path,
    pub(crate) key_path: &'a Path,
}

/// [`server_config`] of a pair already read, which must also be the node
/// of `expected_agency` when one is given. Returns the node's leaf too.
pub(crate) fn node_server_config(
    bundle: &TrustBundle,
    node: NodeCertificate<'_>,
    expected_agency: Option<&AgencyId>,
) -> Result<(Arc<ServerConfig>, LeafCertificate)> {
    let NodeCertificate {
        chain,
        key,
        cert_path,
        key_path,
    } = node;
    let provider = crypto_provider();
    let leaf = own_leaf(bundle, cert_path, &chain)?;
    if !leaf.identity.is_node() {
        return Err(refused_file(
            cert_path,
            CertificateRefusal::NotANode(leaf.identity.spiffe_uri()),
        ));
    }
    if let Some(agency) = expected_agency
        && &leaf.identity.agency != agency
    {
        return Err(refused_file(
            cert_path,
            CertificateRefusal::UnexpectedServer {
                expected: ExpectedServer::Agency(agency.clone()).to_string(),
                presented: leaf.identity.spiffe_uri(),
            },
        ));
    }
    AgencyServerVerifier::new(
        bundle,
        ExpectedServer::Agency(leaf.identity.agency.clone()),
        provider.clone(),
    )?
    .check(&leaf, &chain[0], &chain[1..], UnixTime::now())
    .map_err(|refusal| refused_file(cert_path, refusal))?;
    let client_verifier = AgencyClientVerifier::new(bundle, provider.clone())?;
    let config = build_server_config(client_verifier, chain, key, provider)
        .map_err(|source| pair_error(cert_path, key_path, source))?;
    Ok((config, leaf))
}

/// A client config for calling the node of the expected agency, presenting
/// the certificate at `cert_path` (a node's, for peer calls, or a
/// person's, for flagctl).
///
/// Refuses a certificate that holds no flagnet identity of the bundle's
/// federation or lacks clientAuth. Whether its agency's CA and CRL vouch
/// for it is left to the server: a client's copy of the CRLs may be older
/// than the node's, and the node is the one that decides.
pub fn client_config(
    bundle: Arc<TrustBundle>,
    expected: ExpectedServer,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ClientConfig>> {
    let provider = crypto_provider();
    let (chain, key) = load_pair(cert_path, key_path)?;
    let leaf = own_leaf(&bundle, cert_path, &chain)?;
    leaf.require_purpose(ExtendedPurpose::ClientAuth)
        .map_err(|refusal| refused_file(cert_path, refusal))?;
    let server_verifier = AgencyServerVerifier::new(&bundle, expected, provider.clone())?;
    build_client_config(server_verifier, Some((chain, key)), provider)
        .map(Arc::new)
        .map_err(|source| pair_error(cert_path, key_path, source))
}

/// The verified identity and fingerprint of the client of an accepted
/// connection; `None` before the handshake is done.
pub fn peer_identity(connection: &ServerConnection) -> Option<PeerCertificateInfo> {
    peer_certificate_info(connection.peer_certificates()?)
}

/// The identity and fingerprint of a verified peer's certificate list (as
/// rustls or tonic hands it over); `None` when it is empty or its leaf
/// holds no identity, which cannot happen after [`AgencyClientVerifier`]
/// accepted it.
pub fn peer_certificate_info(certificates: &[CertificateDer<'_>]) -> Option<PeerCertificateInfo> {
    let leaf = certificates.first()?;
    let identity = LeafCertificate::parse(leaf).ok()?.identity;
    Some(PeerCertificateInfo {
        identity,
        fingerprint_sha256: fingerprint_sha256(leaf),
    })
}

pub(crate) fn build_server_config(
    client_verifier: AgencyClientVerifier,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: Arc<CryptoProvider>,
) -> std::result::Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_client_cert_verifier(Arc::new(client_verifier))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

pub(crate) fn build_client_config(
    server_verifier: AgencyServerVerifier,
    client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    provider: Arc<CryptoProvider>,
) -> std::result::Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(server_verifier));
    let mut config = match client_certificate {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// A client config whose server verifier and client certificate are
/// chosen per handshake by the caller (see `ReloadingServerConfig::peer_client_config`).
pub(crate) fn build_dynamic_client_config(
    server_verifier: Arc<dyn ServerCertVerifier>,
    client_certificate: Arc<dyn ResolvesClientCert>,
    provider: Arc<CryptoProvider>,
) -> std::result::Result<ClientConfig, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier)
        .with_client_cert_resolver(client_certificate);
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    Ok((crate::pem::certificates(cert_path)?, crate::pem::private_key(key_path)?))
}

fn own_leaf(bundle: &TrustBundle, cert_path: &Path, chain: &[CertificateDer<'static>]) -> Result<LeafCertificate> {
    debug_assert!(!chain.is_empty(), "pem::certificates returns at least one");
    let leaf = LeafCertificate::parse(&chain[0]).map_err(|refusal| refused_file(cert_path, refusal))?;
    if leaf.identity.federation != bundle.federation() {
        return Err(refused_file(
            cert_path,
            CertificateRefusal::ForeignFederation {
                expected: bundle.federation().to_owned(),
                presented: leaf.identity.federation.clone(),
            },
        ));
    }
    Ok(leaf)
}

fn refused_file(path: &Path, refusal: CertificateRefusal) -> TrustError {
    TrustError::RefusedFile {
        path: path.to_owned(),
        refusal,
    }
}

fn pair_error(cert_path: &Path, key_path: &Path, source: rustls::Error) -> TrustError {
    TrustError::Tls {
        context: format!("certificate {} with key {}", cert_path.display(), key_path.display()),
        source,
    }
}
