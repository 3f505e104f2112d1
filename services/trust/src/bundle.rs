//! The trust bundle: for each agency of the federation, its CA
//! certificates and its CRLs, read from `<trust_dir>/<agency>/ca.pem` and
//! `<trust_dir>/<agency>/crl.pem`. The directory name is the agency id.
//!
//! This module must never pool the agencies' CAs into one root set (a CA
//! is believed only for its own agency), never load an agency without a
//! CRL (unknown revocation status is a refusal, and rustls checks no
//! revocation at all when given no CRL), and never read private keys: files
//! other than `ca.pem` and `crl.pem`, and hidden entries (such as the
//! `..data` links of a Kubernetes volume), are ignored.

use crate::error::{Result, TrustError};
use crate::files;
use flagnet_core::AgencyId;
use flagnet_core::identity::check_trust_domain;
use openssl::x509::{X509, X509Crl};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use crate::pki::{CA_CERTIFICATE_FILE, CRL_FILE};

/// The CAs and CRLs of every agency of one federation, kept per agency.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    federation: String,
    agencies: BTreeMap<AgencyId, AgencyTrust>,
}

/// One agency's CA certificates (several while a CA is rotated) and CRLs.
#[derive(Debug, Clone)]
pub struct AgencyTrust {
    ca_certificates: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

/// The bytes of one file as read at one moment, or why it could not be read.
#[derive(Debug)]
pub(crate) struct FileContents {
    pub(crate) path: PathBuf,
    pub(crate) contents: std::io::Result<Vec<u8>>,
}

impl FileContents {
    pub(crate) fn read(path: PathBuf) -> Self {
        let contents = std::fs::read(&path);
        Self { path, contents }
    }

    /// The bytes, or the read error naming the file.
    pub(crate) fn bytes(&self) -> Result<&[u8]> {
        self.contents.as_deref().map_err(|error| TrustError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(error.kind(), error.to_string()),
        })
    }

    /// SHA-256 of the contents, `None` when the file could not be read.
    pub(crate) fn digest(&self) -> Option<[u8; 32]> {
        self.contents
            .as_deref()
            .ok()
            .map(|contents| Sha256::digest(contents).into())
    }
}

/// Every file of a trust directory that a bundle is made of, read once, so
/// that a bundle is built from one moment's contents and a reload can tell
/// what changed.
#[derive(Debug)]
pub(crate) struct TrustDirFiles {
    pub(crate) trust_dir: PathBuf,
    /// Non-hidden subdirectories, sorted by name.
    pub(crate) agencies: Vec<AgencyDirFiles>,
}

#[derive(Debug)]
pub(crate) struct AgencyDirFiles {
    pub(crate) name: String,
    pub(crate) ca: FileContents,
    pub(crate) crl: FileContents,
}

impl TrustDirFiles {
    /// Fails only when the directory itself cannot be listed; a missing
    /// `ca.pem` or `crl.pem` is kept as a read error for the bundle to refuse.
    pub(crate) fn read(trust_dir: &Path) -> Result<Self> {
        let mut agencies = Vec::new();
        for path in files::entries(trust_dir)? {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            agencies.push(AgencyDirFiles {
                name,
                ca: FileContents::read(path.join(CA_CERTIFICATE_FILE)),
                crl: FileContents::read(path.join(CRL_FILE)),
            });
        }
        Ok(Self {
            trust_dir: trust_dir.to_owned(),
            agencies,
        })
    }

    /// Every file read, with the digest of its contents.
    pub(crate) fn files(&self) -> impl Iterator<Item = &FileContents> {
        self.agencies.iter().flat_map(|agency| [&agency.ca, &agency.crl])
    }
}

impl TrustBundle {
    /// Reads every agency subdirectory of `trust_dir`. Refuses an agency
    /// without `ca.pem` or `crl.pem`, a `ca.pem` holding something other than
    /// CA certificates valid now, a CRL not signed by one of the agency's
    /// CAs, a subdirectory whose name is not an agency id, and an empty
    /// bundle.
    pub fn load(federation: &str, trust_dir: &Path) -> Result<Self> {
        check_trust_domain(federation).map_err(|reason| TrustError::invalid("federation", reason))?;
        Self::from_files(federation, &TrustDirFiles::read(trust_dir)?)
    }

    /// [`TrustBundle::load`] of files already read.
    pub(crate) fn from_files(federation: &str, trust_files: &TrustDirFiles) -> Result<Self> {
        check_trust_domain(federation).map_err(|reason| TrustError::invalid("federation", reason))?;
        let trust_dir = &trust_files.trust_dir;
        let now = OffsetDateTime::now_utc();
        let mut agencies = BTreeMap::new();
        for agency_files in &trust_files.agencies {
            let name = &agency_files.name;
            let agency = AgencyId::parse(name).map_err(|error| {
                TrustError::bad_file(
                    "trust directory",
                    trust_dir,
                    format!("subdirectory {name:?} is not an agency id: {error}"),
                )
            })?;
            let trust = AgencyTrust::load(&agency, agency_files, now)?;
            agencies.insert(agency, trust);
        }
        if agencies.is_empty() {
            return Err(TrustError::bad_file("trust directory", trust_dir, "holds no agency"));
        }
        tracing::debug!(
            federation,
            trust_dir = %trust_dir.display(),
            agencies = agencies.len(),
            "trust bundle loaded"
        );
        Ok(Self {
            federation: federation.to_owned(),
            agencies,
        })
    }

    pub fn federation(&self) -> &str {
        &self.federation
    }

    /// The agencies with a CA in the bundle, sorted.
    pub fn agencies(&self) -> impl Iterator<Item = &AgencyId> {
        self.agencies.keys()
    }

    /// One agency's CAs and CRLs, and nobody else's.
    pub fn agency(&self, agency: &AgencyId) -> Option<&AgencyTrust> {
        self.agencies.get(agency)
    }
}

impl AgencyTrust {
    fn load(agency: &AgencyId, files: &AgencyDirFiles, now: OffsetDateTime) -> Result<Self> {
        let ca_path = &files.ca.path;
        let ca_certificates = crate::pem::certificates_in(ca_path, files.ca.bytes()?)?;
        let mut ca_subjects = Vec::new();
        for der in &ca_certificates {
            let ca = parse(der).map_err(|reason| TrustError::bad_file("certificate", ca_path, reason))?;
            check_ca(&ca, now).map_err(|reason| TrustError::bad_file("certificate", ca_path, reason))?;
            ca_subjects.push(ca.subject().as_raw().to_vec());
        }

        let crl_path = &files.crl.path;
        let crls = crate::pem::crls_in(crl_path, files.crl.bytes()?)?;
        for der in &crls {
            webpki::OwnedCertRevocationList::from_der(der).map_err(|error| {
                TrustError::bad_file("crl", crl_path, format!("not usable for revocation checks: {error}"))
            })?;
            let (_, crl) =
                x509_parser::parse_x509_crl(der).map_err(|error| TrustError::bad_file("crl", crl_path, error))?;
            let issuer = crl.issuer().as_raw();
            let signed_by_a_ca = ca_subjects
                .iter()
                .zip(&ca_certificates)
                .any(|(subject, ca)| subject.as_slice() == issuer && signed_by(der, ca));
            if !signed_by_a_ca {
                return Err(TrustError::bad_file(
                    "crl",
                    crl_path,
                    format!("not signed by a ca in {}", ca_path.display()),
                ));
            }
            if let Some(next_update) = crl.next_update().map(|time| time.to_datetime())
                && next_update < now
            {
                tracing::warn!(
                    agency = %agency,
                    crl = %crl_path.display(),
                    next_update = %next_update,
                    "crl is past its next update: every certificate of this agency will be refused until it is renewed"
                );
            }
        }
        Ok(Self { ca_certificates, crls })
    }

    pub fn ca_certificates(&self) -> &[CertificateDer<'static>] {
        &self.ca_certificates
    }

    pub fn crls(&self) -> &[CertificateRevocationListDer<'static>] {
        &self.crls
    }
}

fn parse(der: &[u8]) -> std::result::Result<X509Certificate<'_>, String> {
    crate::identity::parse_certificate(der).map_err(|refusal| refusal.to_string())
}

fn check_ca(ca: &X509Certificate<'_>, now: OffsetDateTime) -> std::result::Result<(), String> {
    let is_ca = ca
        .basic_constraints()
        .map_err(|error| format!("basicConstraints: {error}"))?
        .is_some_and(|extension| extension.value.ca);
    if !is_ca {
        return Err("not a ca certificate (basicConstraints CA:true missing)".into());
    }
    let key_usage = ca.key_usage().map_err(|error| format!("keyUsage: {error}"))?;
    if key_usage.is_some_and(|extension| !extension.value.key_cert_sign()) {
        return Err("ca without the keyCertSign key usage".into());
    }
    let not_before = ca.validity().not_before.to_datetime();
    let not_after = ca.validity().not_after.to_datetime();
    if now < not_before {
        return Err(format!("ca not valid before {not_before}"));
    }
    if now > not_after {
        return Err(format!("ca expired at {not_after}"));
    }
    Ok(())
}

fn signed_by(crl_der: &[u8], ca_der: &[u8]) -> bool {
    let verified = X509Crl::from_der(crl_der).and_then(|crl| {
        X509::from_der(ca_der)
            .and_then(|ca| ca.public_key())
            .and_then(|key| crl.verify(&key))
    });
    verified.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::FederationDir;

    fn federation() -> (tempfile::TempDir, FederationDir, AgencyId, AgencyId) {
        let temporary = tempfile::tempdir().unwrap();
        let federation = FederationDir::init(&temporary.path().join("federation"), "flagnet.test").unwrap();
        let rolla = AgencyId::parse("rolla-pd").unwrap();
        let phelps = AgencyId::parse("phelps-so").unwrap();
        federation.add_agency(&rolla).unwrap();
        federation.add_agency(&phelps).unwrap();
        (temporary, federation, rolla, phelps)
    }

    #[test]
    fn loads_each_agency_apart_and_ignores_keys_and_other_files() {
        let (_temporary, federation, rolla, phelps) = federation();
        federation.issue_node(&rolla).unwrap();
        std::fs::write(federation.trust_dir().join("README"), "not an agency").unwrap();
        std::fs::create_dir(federation.trust_dir().join("..data")).unwrap();
        let bundle = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap();
        assert_eq!(bundle.agencies().collect::<Vec<_>>(), vec![&phelps, &rolla]);
        let rolla_trust = bundle.agency(&rolla).unwrap();
        assert_eq!(rolla_trust.ca_certificates().len(), 1);
        assert_eq!(rolla_trust.crls().len(), 1);
        assert_ne!(
            rolla_trust.ca_certificates()[0],
            bundle.agency(&phelps).unwrap().ca_certificates()[0]
        );
        assert!(bundle.agency(&AgencyId::parse("nowhere").unwrap()).is_none());
    }

    #[test]
    fn refuses_an_agency_without_a_crl() {
        let (_temporary, federation, rolla, _) = federation();
        std::fs::remove_file(federation.crl_path(&rolla)).unwrap();
        let error = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap_err();
        assert!(error.to_string().contains("crl.pem"), "{error}");
    }

    #[test]
    fn refuses_a_crl_signed_by_another_agency() {
        let (_temporary, federation, rolla, phelps) = federation();
        std::fs::copy(federation.crl_path(&phelps), federation.crl_path(&rolla)).unwrap();
        let error = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap_err();
        assert!(error.to_string().contains("not signed by a ca"), "{error}");
    }

    #[test]
    fn refuses_a_torn_crl() {
        let (_temporary, federation, rolla, _) = federation();
        std::fs::write(
            federation.crl_path(&rolla),
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        let error = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap_err();
        assert!(error.to_string().starts_with("crl "), "{error}");
    }

    #[test]
    fn refuses_a_leaf_in_place_of_a_ca() {
        let (_temporary, federation, rolla, _) = federation();
        let node = federation.issue_node(&rolla).unwrap();
        std::fs::copy(&node.cert_path, federation.ca_certificate_path(&rolla)).unwrap();
        let error = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap_err();
        assert!(error.to_string().contains("not a ca certificate"), "{error}");
    }

    #[test]
    fn refuses_an_expired_ca() {
        let (_temporary, federation, rolla, _) = federation();
        let eleven_years_ago = OffsetDateTime::now_utc() - time::Duration::days(11 * 365);
        let profile = crate::pki::build::CertificateProfile::agency_ca("flagnet.test", &rolla, eleven_years_ago);
        let expired = crate::pki::build::self_signed(&profile).unwrap();
        std::fs::write(federation.ca_certificate_path(&rolla), expired.to_pem().unwrap()).unwrap();
        let error = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap_err();
        assert!(error.to_string().contains("ca expired"), "{error}");
    }

    #[test]
    fn refuses_a_directory_that_is_not_an_agency_id() {
        let (_temporary, federation, _, _) = federation();
        std::fs::create_dir(federation.trust_dir().join("Not An Agency")).unwrap();
        let error = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap_err();
        assert!(error.to_string().contains("is not an agency id"), "{error}");
    }

    #[test]
    fn refuses_an_empty_trust_directory() {
        let temporary = tempfile::tempdir().unwrap();
        let error = TrustBundle::load("flagnet.test", temporary.path()).unwrap_err();
        assert!(error.to_string().contains("holds no agency"), "{error}");
    }
}
