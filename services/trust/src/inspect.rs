//! What a certificate holds, read for a person ([`describe_certificate`]),
//! and whether a node of the federation would accept it
//! ([`acceptance`]), decided by the very checks of a handshake: the
//! identity rules, then the chain to the claimed agency's CA and CRL.
//!
//! This module must never decide anything of its own: acceptance is what
//! [`AgencyClientVerifier`] and [`AgencyServerVerifier`] say, so that
//! `flagctl certs inspect` and a node can never disagree.

use crate::bundle::TrustBundle;
use crate::error::{CertificateRefusal, Result};
use crate::identity::{LeafCertificate, fingerprint_sha256, parse_certificate};
use crate::pki::build::serial_text;
use crate::tls::crypto_provider;
use crate::verifier::{AgencyClientVerifier, AgencyServerVerifier, ExpectedServer};
use flagnet_core::Identity;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::net::IpAddr;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

/// The fields of a certificate a person checks.
#[derive(Debug, Clone)]
pub struct CertificateDescription {
    pub subject: String,
    pub issuer: String,
    /// Uppercase hex.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// basicConstraints CA:true.
    pub is_ca: bool,
    /// keyUsage bits by their RFC 5280 names; empty without the extension.
    pub key_usage: Vec<&'static str>,
    /// extendedKeyUsage purposes; `None` without the extension.
    pub extended_key_usage: Option<Vec<String>>,
    pub uri_names: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// The flagnet identity (the single URI SAN), or why there is none.
    pub identity: std::result::Result<Identity, CertificateRefusal>,
    pub fingerprint_sha256: String,
}

/// Whether a node of the bundle's federation would accept a certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Acceptance {
    pub federation: String,
    /// As a client of any node: how people, and nodes calling a peer,
    /// are checked.
    pub as_client: std::result::Result<(), CertificateRefusal>,
    /// As the server of its agency's node, for node identities only: how
    /// a caller checks the node it dialled.
    pub as_server: Option<std::result::Result<(), CertificateRefusal>>,
}

impl Acceptance {
    /// Accepted in every role the certificate's identity has.
    pub fn accepted(&self) -> bool {
        self.refusal().is_none()
    }

    /// The first reason for a refusal, if there is one.
    pub fn refusal(&self) -> Option<&CertificateRefusal> {
        self.as_client
            .as_ref()
            .err()
            .or_else(|| self.as_server.as_ref().and_then(|result| result.as_ref().err()))
    }
}

/// Reads a leaf certificate's fields. Refuses only DER that is not a
/// certificate.
pub fn describe_certificate(der: &[u8]) -> std::result::Result<CertificateDescription, CertificateRefusal> {
    let certificate = parse_certificate(der)?;
    let is_ca = certificate
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|extension| extension.value.ca);
    let key_usage = match certificate.key_usage().ok().flatten() {
        Some(extension) => {
            let usage = extension.value;
            [
                (usage.digital_signature(), "digitalSignature"),
                (usage.non_repudiation(), "nonRepudiation"),
                (usage.key_encipherment(), "keyEncipherment"),
                (usage.data_encipherment(), "dataEncipherment"),
                (usage.key_agreement(), "keyAgreement"),
                (usage.key_cert_sign(), "keyCertSign"),
                (usage.crl_sign(), "cRLSign"),
                (usage.encipher_only(), "encipherOnly"),
                (usage.decipher_only(), "decipherOnly"),
            ]
            .into_iter()
            .filter_map(|(present, name)| present.then_some(name))
            .collect()
        }
        None => Vec::new(),
    };
    let extended_key_usage = certificate.extended_key_usage().ok().flatten().map(|extension| {
        let usage = extension.value;
        let mut purposes: Vec<String> = [
            (usage.any, "anyExtendedKeyUsage"),
            (usage.server_auth, "serverAuth"),
            (usage.client_auth, "clientAuth"),
            (usage.code_signing, "codeSigning"),
            (usage.email_protection, "emailProtection"),
            (usage.time_stamping, "timeStamping"),
            (usage.ocsp_signing, "OCSPSigning"),
        ]
        .into_iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| name.to_owned())
        .collect();
        purposes.extend(usage.other.iter().map(|oid| oid.to_id_string()));
        purposes
    });
    let mut uri_names = Vec::new();
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(alternative_names)) = certificate.subject_alternative_name() {
        for name in &alternative_names.value.general_names {
            match name {
                GeneralName::URI(uri) => uri_names.push((*uri).to_owned()),
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => ip_addresses.push(ip_text(bytes)),
                _ => {}
            }
        }
    }
    Ok(CertificateDescription {
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        serial: serial_text(&certificate.serial.to_bytes_be()),
        not_before: certificate.validity().not_before.to_datetime(),
        not_after: certificate.validity().not_after.to_datetime(),
        is_ca,
        key_usage,
        extended_key_usage,
        uri_names,
        dns_names,
        ip_addresses,
        identity: LeafCertificate::parse(der).map(|leaf| leaf.identity),
        fingerprint_sha256: fingerprint_sha256(der),
    })
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => hex::encode(bytes),
    }
}

/// Runs the handshake checks of a node of `bundle`'s federation on `chain`
/// (leaf first, then any intermediates) at this moment. Fails only when
/// the bundle cannot make a verifier.
pub fn acceptance(bundle: &TrustBundle, chain: &[CertificateDer<'_>]) -> Result<Acceptance> {
    let federation = bundle.federation().to_owned();
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Ok(Acceptance {
            federation,
            as_client: Err(CertificateRefusal::Unparsable("no certificate".into())),
            as_server: None,
        });
    };
    let leaf = match LeafCertificate::parse(end_entity) {
        Ok(leaf) => leaf,
        Err(refusal) => {
            return Ok(Acceptance {
                federation,
                as_client: Err(refusal),
                as_server: None,
            });
        }
    };
    let now = UnixTime::now();
    let provider = crypto_provider();
    let client_verifier = AgencyClientVerifier::new(bundle, provider.clone())?;
    let as_client = client_verifier.check(&leaf, end_entity, intermediates, now);
    let as_server = if leaf.identity.is_node() {
        let agency = leaf.identity.agency.clone();
        Some(match bundle.agency(&agency) {
            None => Err(CertificateRefusal::UnknownAgency(agency)),
            Some(_) => AgencyServerVerifier::new(bundle, ExpectedServer::Agency(agency), provider)?.check(
                &leaf,
                end_entity,
                intermediates,
                now,
            ),
        })
    } else {
        None
    };
    Ok(Acceptance {
        federation,
        as_client,
        as_server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExtendedPurpose;
    use crate::tests::support::{FEDERATION, TestFederation};
    use rustls::CertificateError;

    fn chain(path: &std::path::Path) -> Vec<CertificateDer<'static>> {
        crate::pem::certificates(path).unwrap()
    }

    #[test]
    fn describes_a_node_certificate() {
        let federation = TestFederation::new();
        let node = &federation.rolla_node;
        let description = describe_certificate(&chain(&node.cert_path)[0]).unwrap();
        assert_eq!(description.identity.unwrap(), node.identity);
        assert_eq!(description.serial, node.serial);
        assert_eq!(description.fingerprint_sha256, node.fingerprint_sha256);
        assert_eq!(description.key_usage, vec!["digitalSignature"]);
        assert_eq!(
            description.extended_key_usage,
            Some(vec!["serverAuth".to_owned(), "clientAuth".to_owned()])
        );
        assert_eq!(description.uri_names, vec![node.identity.spiffe_uri()]);
        assert_eq!(description.dns_names, vec!["localhost"]);
        assert_eq!(description.ip_addresses, vec!["127.0.0.1"]);
        assert!(!description.is_ca);
        assert!(description.issuer.contains("rolla-pd CA"), "{}", description.issuer);
        assert_eq!(description.not_after, node.not_after);
    }

    #[test]
    fn accepts_a_node_in_both_roles_and_a_user_as_client() {
        let federation = TestFederation::new();
        let bundle = federation.bundle();
        let node = acceptance(&bundle, &chain(&federation.rolla_node.cert_path)).unwrap();
        assert_eq!(node.as_client, Ok(()));
        assert_eq!(node.as_server, Some(Ok(())));
        assert!(node.accepted());
        assert_eq!(node.federation, FEDERATION);
        let user = federation.user(&federation.phelps, "cit7");
        let user = acceptance(&bundle, &chain(&user.cert_path)).unwrap();
        assert_eq!(user.as_client, Ok(()));
        assert_eq!(user.as_server, None);
    }

    #[test]
    fn refuses_a_revoked_user_with_the_reason() {
        let federation = TestFederation::new();
        let user = federation.user(&federation.rolla, "dispatcher1");
        federation.dir.revoke(&federation.rolla, &user.serial).unwrap();
        let verdict = acceptance(&federation.bundle(), &chain(&user.cert_path)).unwrap();
        assert!(!verdict.accepted());
        let refusal = verdict.refusal().unwrap();
        assert_eq!(
            refusal,
            &CertificateRefusal::Path(rustls::Error::InvalidCertificate(CertificateError::Revoked))
        );
        assert_eq!(refusal.code(), "revoked");
    }

    #[test]
    fn refuses_a_certificate_of_agency_a_ca_claiming_agency_b() {
        let federation = TestFederation::new();
        let claims_phelps = federation.user_profile(&federation.phelps, "sheriff");
        let pair = federation.odd(&federation.rolla, &claims_phelps);
        let verdict = acceptance(&federation.bundle(), &chain(&pair.cert)).unwrap();
        assert_eq!(verdict.refusal().map(CertificateRefusal::code), Some("unknown_issuer"));
    }

    #[test]
    fn refuses_a_node_certificate_without_server_auth_as_server_only() {
        let federation = TestFederation::new();
        let mut profile = federation.node_profile(&federation.rolla);
        profile.extended_key_usage = vec![ExtendedPurpose::ClientAuth];
        let pair = federation.odd(&federation.rolla, &profile);
        let verdict = acceptance(&federation.bundle(), &chain(&pair.cert)).unwrap();
        assert_eq!(verdict.as_client, Ok(()));
        assert_eq!(
            verdict.as_server,
            Some(Err(CertificateRefusal::MissingExtendedKeyUsage(
                ExtendedPurpose::ServerAuth
            )))
        );
        assert!(!verdict.accepted());
    }

    #[test]
    fn refuses_a_leaf_without_uri_san_and_describes_it_anyway() {
        let federation = TestFederation::new();
        let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
        profile.uris.clear();
        let pair = federation.odd(&federation.rolla, &profile);
        let der = chain(&pair.cert);
        let description = describe_certificate(&der[0]).unwrap();
        assert_eq!(description.identity, Err(CertificateRefusal::NoUriSan));
        let verdict = acceptance(&federation.bundle(), &der).unwrap();
        assert_eq!(verdict.as_client, Err(CertificateRefusal::NoUriSan));
    }
}
