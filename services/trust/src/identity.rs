//! Certificate bytes in, a typed [`Identity`] out: the identity of a leaf
//! certificate is its single URI SAN, read as a SPIFFE id by
//! [`Identity::from_spiffe_uri`].
//!
//! This module must never take an identity from the common name, a DNS name
//! or any other field, never pick one URI out of several, and never accept a
//! leaf that could act as a CA. It does not validate chains, validity dates
//! or revocation: that is the verifiers' job, and nothing may treat an
//! identity parsed here as authenticated unless a verifier accepted the same
//! certificate.

use crate::error::{CertificateRefusal, ExtendedPurpose, TrustError};
use flagnet_core::Identity;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2sn};

/// The identity in a leaf certificate (DER): its single URI SAN as a flagnet
/// SPIFFE id. Refuses certificates with no URI SAN or several, a URI that is
/// not a flagnet SPIFFE id, duplicate extensions, and CA certificates
/// (basicConstraints CA:true or keyUsage keyCertSign).
pub fn identity_from_certificate(der: &[u8]) -> Result<Identity, TrustError> {
    Ok(LeafCertificate::parse(der)?.identity)
}

/// SHA-256 over the certificate's DER, lowercase hex: the fingerprint the
/// audit log records for a caller.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// What the verifiers need to know about a leaf, read once.
#[derive(Debug, Clone)]
pub(crate) struct LeafCertificate {
    pub(crate) identity: Identity,
    /// `None` when the certificate has no extended key usage extension.
    extended_key_usage: Option<ExtendedKeyUsages>,
}

#[derive(Debug, Clone, Copy)]
struct ExtendedKeyUsages {
    server_auth: bool,
    client_auth: bool,
}

impl LeafCertificate {
    pub(crate) fn parse(der: &[u8]) -> Result<Self, CertificateRefusal> {
        let certificate = parse_certificate(der)?;
        refuse_duplicate_extensions(&certificate)?;
        let identity = single_uri_identity(&certificate)?;

        let basic_constraints = certificate
            .basic_constraints()
            .map_err(|error| unparsable("basicConstraints", error))?;
        if basic_constraints.is_some_and(|extension| extension.value.ca) {
            return Err(CertificateRefusal::LeafIsCa);
        }
        let key_usage = certificate.key_usage().map_err(|error| unparsable("keyUsage", error))?;
        if key_usage.is_some_and(|extension| extension.value.key_cert_sign()) {
            return Err(CertificateRefusal::LeafSignsCertificates);
        }
        let extended_key_usage = certificate
            .extended_key_usage()
            .map_err(|error| unparsable("extendedKeyUsage", error))?
            .map(|extension| ExtendedKeyUsages {
                server_auth: extension.value.server_auth,
                client_auth: extension.value.client_auth,
            });

        Ok(Self {
            identity,
            extended_key_usage,
        })
    }

    /// Refuses a leaf whose extended key usage is absent or lacks `purpose`.
    /// webpki accepts a leaf without the extension; flagnet does not, so a
    /// certificate made for something else never opens a connection.
    pub(crate) fn require_purpose(&self, purpose: ExtendedPurpose) -> Result<(), CertificateRefusal> {
        let Some(usages) = self.extended_key_usage else {
            return Err(CertificateRefusal::NoExtendedKeyUsage(purpose));
        };
        let present = match purpose {
            ExtendedPurpose::ServerAuth => usages.server_auth,
            ExtendedPurpose::ClientAuth => usages.client_auth,
        };
        if present {
            Ok(())
        } else {
            Err(CertificateRefusal::MissingExtendedKeyUsage(purpose))
        }
    }
}

pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, CertificateRefusal> {
    let (rest, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|error| CertificateRefusal::Unparsable(error.to_string()))?;
    if !rest.is_empty() {
        return Err(CertificateRefusal::Unparsable(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    Ok(certificate)
}

fn refuse_duplicate_extensions(certificate: &X509Certificate<'_>) -> Result<(), CertificateRefusal> {
    let mut seen = HashSet::new();
    for extension in certificate.extensions() {
        if !seen.insert(&extension.oid) {
            let name = oid2sn(&extension.oid, oid_registry())
                .map(str::to_owned)
                .unwrap_or_else(|_| extension.oid.to_id_string());
            return Err(CertificateRefusal::DuplicateExtension(name));
        }
    }
    Ok(())
}

fn single_uri_identity(certificate: &X509Certificate<'_>) -> Result<Identity, CertificateRefusal> {
    let Some(alternative_names) = certificate
        .subject_alternative_name()
        .map_err(|error| unparsable("subjectAltName", error))?
    else {
        return Err(CertificateRefusal::NoUriSan);
    };
    let uris: Vec<&str> = alternative_names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(CertificateRefusal::NoUriSan),
        [uri] => {
            Identity::from_spiffe_uri(uri).map_err(|error| CertificateRefusal::NotAFlagnetIdentity(error.to_string()))
        }
        several => Err(CertificateRefusal::SeveralUriSans(several.len())),
    }
}

fn unparsable(extension: &str, error: impl std::fmt::Display) -> CertificateRefusal {
    CertificateRefusal::Unparsable(format!("extension {extension}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::build::{CertificateProfile, self_signed};
    use flagnet_core::{AgencyId, UserId};
    use openssl::hash::MessageDigest;

    const FEDERATION: &str = "flagnet.test";

    fn user_profile() -> CertificateProfile {
        let identity = Identity::user(
            FEDERATION,
            AgencyId::parse("rolla-pd").unwrap(),
            UserId::parse("dispatcher1").unwrap(),
        );
        CertificateProfile::user(&identity, &Default::default()).unwrap()
    }

    fn refusal(profile: &CertificateProfile) -> CertificateRefusal {
        let der = self_signed(profile).unwrap().to_der().unwrap();
        match identity_from_certificate(&der).unwrap_err() {
            TrustError::Refused(refusal) => refusal,
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn reads_the_single_uri_san() {
        let der = self_signed(&user_profile()).unwrap().to_der().unwrap();
        let identity = identity_from_certificate(&der).unwrap();
        assert_eq!(
            identity.spiffe_uri(),
            "spiffe://flagnet.test/agency/rolla-pd/user/dispatcher1"
        );
    }

    #[test]
    fn refuses_two_uri_sans() {
        let mut profile = user_profile();
        profile
            .uris
            .push("spiffe://flagnet.test/agency/phelps-so/user/dispatcher1".into());
        assert_eq!(refusal(&profile), CertificateRefusal::SeveralUriSans(2));
    }

    #[test]
    fn refuses_no_uri_san_even_when_cn_and_dns_look_like_an_identity() {
        let mut profile = user_profile();
        profile.uris.clear();
        profile.common_name = "spiffe://flagnet.test/agency/rolla-pd/user/dispatcher1".into();
        profile.dns_names.push("rolla-pd.flagnet.test".into());
        assert_eq!(refusal(&profile), CertificateRefusal::NoUriSan);
    }

    #[test]
    fn refuses_a_non_spiffe_uri() {
        let mut profile = user_profile();
        profile.uris = vec!["https://flagnet.test/agency/rolla-pd/user/dispatcher1".into()];
        assert!(matches!(
            refusal(&profile),
            CertificateRefusal::NotAFlagnetIdentity(reason) if reason.contains("not a spiffe")
        ));
    }

    #[test]
    fn refuses_a_ca_certificate() {
        let mut profile = user_profile();
        profile.is_ca = true;
        assert_eq!(refusal(&profile), CertificateRefusal::LeafIsCa);
    }

    #[test]
    fn refuses_a_leaf_that_signs_certificates() {
        let mut profile = user_profile();
        profile.key_usage.key_cert_sign = true;
        assert_eq!(refusal(&profile), CertificateRefusal::LeafSignsCertificates);
    }

    #[test]
    fn refuses_duplicate_extensions() {
        let mut profile = user_profile();
        profile.repeat_extended_key_usage = true;
        assert_eq!(
            refusal(&profile),
            CertificateRefusal::DuplicateExtension("extendedKeyUsage".into())
        );
    }

    #[test]
    fn refuses_garbage_and_trailing_bytes() {
        assert!(matches!(
            identity_from_certificate(b"not a certificate"),
            Err(TrustError::Refused(CertificateRefusal::Unparsable(_)))
        ));
        let mut der = self_signed(&user_profile()).unwrap().to_der().unwrap();
        der.push(0);
        assert!(matches!(
            identity_from_certificate(&der),
            Err(TrustError::Refused(CertificateRefusal::Unparsable(reason))) if reason.contains("after")
        ));
    }

    #[test]
    fn requires_the_extended_key_usage_asked_for() {
        let der = self_signed(&user_profile()).unwrap().to_der().unwrap();
        let leaf = LeafCertificate::parse(&der).unwrap();
        assert!(leaf.require_purpose(ExtendedPurpose::ClientAuth).is_ok());
        assert_eq!(
            leaf.require_purpose(ExtendedPurpose::ServerAuth),
            Err(CertificateRefusal::MissingExtendedKeyUsage(ExtendedPurpose::ServerAuth))
        );
        let mut profile = user_profile();
        profile.extended_key_usage.clear();
        let der = self_signed(&profile).unwrap().to_der().unwrap();
        let leaf = LeafCertificate::parse(&der).unwrap();
        assert_eq!(
            leaf.require_purpose(ExtendedPurpose::ClientAuth),
            Err(CertificateRefusal::NoExtendedKeyUsage(ExtendedPurpose::ClientAuth))
        );
    }

    #[test]
    fn fingerprint_is_lowercase_sha256_hex_of_the_der() {
        let certificate = self_signed(&user_profile()).unwrap();
        let der = certificate.to_der().unwrap();
        let by_openssl = hex::encode(certificate.digest(MessageDigest::sha256()).unwrap());
        let fingerprint = fingerprint_sha256(&der);
        assert_eq!(fingerprint, by_openssl);
        assert_eq!(fingerprint.len(), 64);
        assert!(
            fingerprint
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
    }
}
