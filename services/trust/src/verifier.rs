//! The rustls certificate verifiers of a flagnet node, both directions.
//!
//! [`AgencyClientVerifier`] (a node's server side) reads the agency from the
//! client leaf's single URI SAN, then hands the chain to a
//! `WebPkiClientVerifier` built from that agency's CA and CRL alone, with
//! unknown revocation status and a CRL past its next update both refused.
//! [`AgencyServerVerifier`] (a node or flagctl calling a node) accepts only
//! the node identity of the agency the caller expected, chained to that
//! agency's CA and CRL alone.
//!
//! These verifiers must never validate against a pool of every agency's
//! CAs: webpki cannot bind a CA to the SPIFFE ids it may issue, so the
//! binding is the choice of roots. They must never let a client in without
//! a certificate, never take identity from the common name or DNS names,
//! and never believe a server because of its host name.

use crate::bundle::TrustBundle;
use crate::error::{CertificateRefusal, ExtendedPurpose, Result, TrustError};
use crate::identity::{LeafCertificate, fingerprint_sha256};
use flagnet_core::{AgencyId, Identity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

/// Whom a client expects to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedServer {
    /// The node of this agency (`spiffe://<federation>/agency/<agency>/node`),
    /// as the peer list or flagctl's configuration names it.
    Agency(AgencyId),
}

impl fmt::Display for ExpectedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agency(agency) => write!(f, "the node of agency {agency}"),
        }
    }
}

/// The reason our verifiers gave for refusing a certificate, when rustls
/// reports the refusal. Path validation failures (unknown issuer, expired,
/// revoked) come back as rustls' own `CertificateError`s instead.
pub fn refusal_of(error: &rustls::Error) -> Option<&CertificateRefusal> {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => inner.downcast_ref(),
        _ => None,
    }
}

impl CertificateRefusal {
    fn into_rustls(self) -> rustls::Error {
        match self {
            Self::Path(error) => error,
            refusal => rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(refusal)))),
        }
    }
}

/// What the client verifier saw of a certificate it refused, for the
/// listener that reports the refused handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedCertificate {
    pub refusal: CertificateRefusal,
    /// The identity the certificate claims, when it holds one.
    pub claimed_identity: Option<Identity>,
    pub fingerprint_sha256: String,
}

tokio::task_local! {
    /// Set by [`capture_client_refusal`] around one connection's handshake.
    static REFUSED_CLIENT_CERTIFICATE: RefCell<Option<RefusedCertificate>>;
}

/// Runs one server-side handshake and returns, beside its result, what
/// [`AgencyClientVerifier`] refused during it. rustls reports only an error
/// once a handshake fails; the verifier is the one place that saw the
/// certificate, and it runs synchronously inside this future's polls, so a
/// task-local slot ties its finding to this connection.
pub async fn capture_client_refusal<F: Future>(handshake: F) -> (F::Output, Option<RefusedCertificate>) {
    REFUSED_CLIENT_CERTIFICATE
        .scope(RefCell::new(None), async move {
            let output = handshake.await;
            let refused = REFUSED_CLIENT_CERTIFICATE.with(|slot| slot.borrow_mut().take());
            (output, refused)
        })
        .await
}

fn refused(
    side: &'static str,
    identity: Option<&Identity>,
    end_entity: &[u8],
    refusal: CertificateRefusal,
) -> rustls::Error {
    let fingerprint = fingerprint_sha256(end_entity);
    let captured = side == "client"
        && REFUSED_CLIENT_CERTIFICATE
            .try_with(|slot| {
                *slot.borrow_mut() = Some(RefusedCertificate {
                    refusal: refusal.clone(),
                    claimed_identity: identity.cloned(),
                    fingerprint_sha256: fingerprint.clone(),
                });
            })
            .is_ok();
    let presented = identity.map(Identity::spiffe_uri);
    let presented = presented.as_deref().unwrap_or("-");
    if captured {
        // the listener reports it, with the remote address, as a trust event
        tracing::debug!(side, presented, fingerprint_sha256 = %fingerprint, reason = %refusal, "peer certificate refused");
    } else {
        tracing::warn!(side, presented, fingerprint_sha256 = %fingerprint, reason = %refusal, "peer certificate refused");
    }
    refusal.into_rustls()
}

fn same_federation(federation: &str, identity: &Identity) -> std::result::Result<(), CertificateRefusal> {
    if identity.federation == federation {
        Ok(())
    } else {
        Err(CertificateRefusal::ForeignFederation {
            expected: federation.to_owned(),
            presented: identity.federation.clone(),
        })
    }
}

/// The client certificate verifier of a node: client certificates are
/// mandatory, and each is validated against its own agency's CA and CRL.
#[derive(Debug)]
pub struct AgencyClientVerifier {
    federation: String,
    per_agency: BTreeMap<AgencyId, Arc<dyn ClientCertVerifier>>,
    root_hint_subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AgencyClientVerifier {
    /// One `WebPkiClientVerifier` per agency of the bundle, each knowing
    /// only its agency's CAs and CRLs.
    pub fn new(bundle: &TrustBundle, provider: Arc<CryptoProvider>) -> Result<Self> {
        let mut per_agency = BTreeMap::new();
        let mut root_hint_subjects = Vec::new();
        for agency in bundle.agencies() {
            let trust = bundle
                .agency(agency)
                .ok_or_else(|| TrustError::NotFound(format!("agency {agency}")))?;
            let roots = agency_roots(agency, trust.ca_certificates())?;
            root_hint_subjects.extend(roots.subjects());
            if trust.crls().is_empty() {
                return Err(TrustError::invalid(
                    "trust bundle",
                    format!("agency {agency} has no crl"),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(trust.crls().iter().cloned())
                .enforce_revocation_expiration()
                .build()
                .map_err(|error| TrustError::invalid("trust bundle", format!("agency {agency}: {error}")))?;
            per_agency.insert(agency.clone(), verifier);
        }
        Ok(Self {
            federation: bundle.federation().to_owned(),
            per_agency,
            root_hint_subjects,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    pub(crate) fn check(
        &self,
        leaf: &LeafCertificate,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<(), CertificateRefusal> {
        same_federation(&self.federation, &leaf.identity)?;
        leaf.require_purpose(ExtendedPurpose::ClientAuth)?;
        let agency = &leaf.identity.agency;
        let verifier = self
            .per_agency
            .get(agency)
            .ok_or_else(|| CertificateRefusal::UnknownAgency(agency.clone()))?;
        verifier
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(CertificateRefusal::Path)?;
        Ok(())
    }
}

impl ClientCertVerifier for AgencyClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_hint_subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let leaf =
            LeafCertificate::parse(end_entity).map_err(|refusal| refused("client", None, end_entity, refusal))?;
        self.check(&leaf, end_entity, intermediates, now)
            .map_err(|refusal| refused("client", Some(&leaf.identity), end_entity, refusal))?;
        tracing::debug!(identity = %leaf.identity, "client certificate accepted");
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server certificate verifier of a node calling a peer, or of flagctl
/// calling a node: the server must present the node identity of the
/// expected agency, chained to that agency's CA and CRL.
///
/// The host name the client dialled (`ServerName`) is deliberately not
/// checked. A node's identity is its SPIFFE id, bound to its agency by the
/// choice of CA; the address in the peer list may be an IP, a load
/// balancer or a service name that the certificate need not carry, and a
/// DNS name would be a second identity that the design says never counts.
/// This is also why `WebPkiServerVerifier` is not used: it always checks
/// the host name. The chain, validity, CRL and serverAuth checks are the
/// same webpki calls it makes.
#[derive(Debug)]
pub struct AgencyServerVerifier {
    federation: String,
    expected: ExpectedServer,
    expected_identity: Identity,
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AgencyServerVerifier {
    pub fn new(bundle: &TrustBundle, expected: ExpectedServer, provider: Arc<CryptoProvider>) -> Result<Self> {
        let ExpectedServer::Agency(agency) = &expected;
        let trust = bundle.agency(agency).ok_or_else(|| {
            TrustError::NotFound(format!(
                "agency {agency} is not in the trust bundle of federation {}",
                bundle.federation()
            ))
        })?;
        let anchors = trust
            .ca_certificates()
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|error| TrustError::invalid("trust bundle", format!("agency {agency}: ca: {error}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let crls = trust
            .crls()
            .iter()
            .map(|der| {
                OwnedCertRevocationList::from_der(der)
                    .map(CertRevocationList::from)
                    .map_err(|error| TrustError::invalid("trust bundle", format!("agency {agency}: crl: {error}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if anchors.is_empty() || crls.is_empty() {
            return Err(TrustError::invalid(
                "trust bundle",
                format!("agency {agency} needs a ca and a crl"),
            ));
        }
        Ok(Self {
            federation: bundle.federation().to_owned(),
            expected_identity: Identity::node(bundle.federation(), agency.clone()),
            expected,
            anchors,
            crls,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    pub(crate) fn check(
        &self,
        leaf: &LeafCertificate,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<(), CertificateRefusal> {
        same_federation(&self.federation, &leaf.identity)?;
        if leaf.identity != self.expected_identity {
            return Err(CertificateRefusal::UnexpectedServer {
                expected: self.expected.to_string(),
                presented: leaf.identity.spiffe_uri(),
            });
        }
        leaf.require_purpose(ExtendedPurpose::ServerAuth)?;
        let certificate =
            EndEntityCert::try_from(end_entity).map_err(|error| CertificateRefusal::Path(path_error(error)))?;
        let crls: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crls)
            .map_err(|_| {
                CertificateRefusal::Path(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownRevocationStatus,
                ))
            })?
            .with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Deny)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build();
        certificate
            .verify_for_usage(
                self.algorithms.all,
                &self.anchors,
                intermediates,
                now,
                KeyUsage::server_auth(),
                Some(revocation),
                None,
            )
            .map_err(|error| CertificateRefusal::Path(path_error(error)))?;
        Ok(())
    }
}

impl ServerCertVerifier for AgencyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let leaf =
            LeafCertificate::parse(end_entity).map_err(|refusal| refused("server", None, end_entity, refusal))?;
        self.check(&leaf, end_entity, intermediates, now)
            .map_err(|refusal| refused("server", Some(&leaf.identity), end_entity, refusal))?;
        tracing::debug!(identity = %leaf.identity, "server certificate accepted");
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn agency_roots(agency: &AgencyId, ca_certificates: &[CertificateDer<'static>]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for der in ca_certificates {
        roots
            .add(der.clone())
            .map_err(|error| TrustError::invalid("trust bundle", format!("agency {agency}: ca: {error}")))?;
    }
    Ok(roots)
}

/// webpki's path validation errors in rustls' terms (as
/// `WebPkiServerVerifier` reports them), so both directions read alike.
fn path_error(error: webpki::Error) -> rustls::Error {
    use webpki::Error as Pki;
    #[allow(deprecated)]
    let certificate_error = match error {
        Pki::BadDer | Pki::BadDerTime | Pki::TrailingData(_) => CertificateError::BadEncoding,
        Pki::CertNotValidYet { time, not_before } => CertificateError::NotValidYetContext { time, not_before },
        Pki::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        Pki::InvalidCertValidity => CertificateError::Expired,
        Pki::UnknownIssuer => CertificateError::UnknownIssuer,
        Pki::CertRevoked => CertificateError::Revoked,
        Pki::UnknownRevocationStatus => CertificateError::UnknownRevocationStatus,
        Pki::CrlExpired { time, next_update } => CertificateError::ExpiredRevocationListContext { time, next_update },
        Pki::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        Pki::RequiredEkuNotFound | Pki::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(certificate_error)
}
