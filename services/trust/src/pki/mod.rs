//! The federation directory: one CA per agency, and the node and user
//! certificates each agency CA issues, kept on disk in a layout an operator
//! can read (see `certs/README.md`):
//!
//! ```text
//! <root>/federation.toml          name = "<federation>"
//! <root>/agencies/<agency>/ca.pem     the agency CA (the trust anchor)
//! <root>/agencies/<agency>/ca.key     its private key (0600)
//! <root>/agencies/<agency>/crl.pem    its current CRL
//! <root>/agencies/<agency>/serial     the next serial number (hex)
//! <root>/agencies/<agency>/issued/<SERIAL>.pem   every certificate it issued
//! <root>/agencies/<agency>/nodes/node.pem, node.key
//! <root>/agencies/<agency>/users/<user>.pem, .key, .p12
//! ```
//!
//! This module must never hand out a certificate that the verifiers would
//! refuse (each issued leaf is read back through the identity module before
//! it is written), never write a private key readable by others, and never
//! reuse a serial number. The CA keys live here; a node needs only
//! `ca.pem` and `crl.pem` of each agency, never this directory.

pub(crate) mod build;

use crate::error::{CertificateRefusal, Result, TrustError};
use crate::files::{self, Readers};
use crate::identity::{LeafCertificate, fingerprint_sha256, parse_certificate};
use build::{CertificateProfile, Issuer, RevokedEntry, serial_text};
use flagnet_core::identity::check_trust_domain;
use flagnet_core::{AgencyId, Identity, UserId};
use openssl::bn::BigNum;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Crl};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

pub use build::{BACKDATE, CA_VALIDITY, CRL_VALIDITY, LEAF_VALIDITY};

const FEDERATION_FILE: &str = "federation.toml";
const AGENCIES_DIR: &str = "agencies";
/// The agency CA certificate, inside an agency's directory.
pub const CA_CERTIFICATE_FILE: &str = "ca.pem";
/// The agency CA's private key, inside an agency's directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// The agency CA's current CRL, inside an agency's directory.
pub const CRL_FILE: &str = "crl.pem";
const SERIAL_FILE: &str = "serial";
const LOCK_FILE: &str = ".lock";
const ISSUED_DIR: &str = "issued";
const NODES_DIR: &str = "nodes";
const USERS_DIR: &str = "users";

/// Overrides for an issued certificate; the defaults give a certificate
/// valid from five minutes ago for [`LEAF_VALIDITY`].
#[derive(Debug, Clone, Default)]
pub struct IssueOptions {
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    /// DNS names besides `localhost` (node certificates only). They serve
    /// generic tools that check host names; flagnet itself never does.
    pub extra_dns_names: Vec<String>,
    /// IP addresses besides 127.0.0.1 (node certificates only).
    pub extra_ip_addresses: Vec<IpAddr>,
}

/// A certificate just issued, and where it was written.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub identity: Identity,
    /// Uppercase hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    pub fingerprint_sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub pkcs12_path: Option<PathBuf>,
}

/// One agency's CA and what it issued, as [`FederationDir::list`] finds it.
#[derive(Debug, Clone)]
pub struct AgencyListing {
    pub agency: AgencyId,
    pub ca_path: PathBuf,
    pub ca_not_after: OffsetDateTime,
    pub crl: CrlInfo,
    pub certificates: Vec<CertificateRecord>,
}

/// A certificate an agency CA issued.
#[derive(Debug, Clone)]
pub struct CertificateRecord {
    pub serial: String,
    /// `None` for a certificate that holds no flagnet identity (made by
    /// hand for a test).
    pub identity: Option<Identity>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub fingerprint_sha256: String,
    pub revoked_at: Option<OffsetDateTime>,
    pub path: PathBuf,
}

/// An agency CA's current CRL.
#[derive(Debug, Clone)]
pub struct CrlInfo {
    pub path: PathBuf,
    /// The CRL number, in decimal; it grows with every new CRL.
    pub number: String,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub revoked: usize,
}

/// A revocation just written to an agency's CRL.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub agency: AgencyId,
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    pub crl: CrlInfo,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FederationFile {
    name: String,
}

/// A federation directory on disk (see the module documentation).
#[derive(Debug, Clone)]
pub struct FederationDir {
    root: PathBuf,
    federation: String,
}

/// An agency CA loaded to sign with.
pub(crate) struct AgencyCa {
    pub(crate) certificate: X509,
    pub(crate) key: PKey<Private>,
}

/// A leaf signed by an agency CA and recorded under `issued/`, not yet
/// written anywhere else.
pub(crate) struct SignedLeaf {
    pub(crate) certificate: X509,
    pub(crate) key: PKey<Private>,
    pub(crate) serial: String,
    pub(crate) ca_certificate: X509,
}

impl FederationDir {
    /// Creates a federation directory at `root` (which may exist, empty or
    /// not, but must not hold a federation already).
    pub fn init(root: &Path, federation: &str) -> Result<Self> {
        check_trust_domain(federation).map_err(|reason| TrustError::invalid("federation", reason))?;
        files::create_dir_all(root)?;
        let federation_file = root.join(FEDERATION_FILE);
        if federation_file.exists() {
            return Err(TrustError::AlreadyExists {
                what: "federation file",
                path: federation_file,
            });
        }
        files::create_dir(&root.join(AGENCIES_DIR), "agencies directory")?;
        let contents = toml::to_string(&FederationFile {
            name: federation.to_owned(),
        })
        .map_err(|error| TrustError::bad_file("federation file", &federation_file, error))?;
        files::write_atomically(&federation_file, contents.as_bytes(), Readers::Everyone)?;
        tracing::info!(root = %root.display(), federation, "federation directory created");
        Ok(Self {
            root: root.to_owned(),
            federation: federation.to_owned(),
        })
    }

    /// Opens an existing federation directory.
    pub fn open(root: &Path) -> Result<Self> {
        let federation_file = root.join(FEDERATION_FILE);
        let contents = files::read(&federation_file)?;
        let contents = std::str::from_utf8(&contents)
            .map_err(|error| TrustError::bad_file("federation file", &federation_file, error))?;
        let parsed: FederationFile = toml::from_str(contents)
            .map_err(|error| TrustError::bad_file("federation file", &federation_file, error))?;
        check_trust_domain(&parsed.name)
            .map_err(|reason| TrustError::bad_file("federation file", &federation_file, format!("name: {reason}")))?;
        let agencies = root.join(AGENCIES_DIR);
        if !agencies.is_dir() {
            return Err(TrustError::NotFound(format!(
                "federation {root}: no {AGENCIES_DIR} directory",
                root = root.display()
            )));
        }
        Ok(Self {
            root: root.to_owned(),
            federation: parsed.name,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn federation(&self) -> &str {
        &self.federation
    }

    /// The directory holding one subdirectory per agency, each with its
    /// `ca.pem` and `crl.pem`: what [`crate::TrustBundle::load`] reads.
    pub fn trust_dir(&self) -> PathBuf {
        self.root.join(AGENCIES_DIR)
    }

    pub fn agency_dir(&self, agency: &AgencyId) -> PathBuf {
        self.trust_dir().join(agency.as_str())
    }

    pub fn ca_certificate_path(&self, agency: &AgencyId) -> PathBuf {
        self.agency_dir(agency).join(CA_CERTIFICATE_FILE)
    }

    pub fn crl_path(&self, agency: &AgencyId) -> PathBuf {
        self.agency_dir(agency).join(CRL_FILE)
    }

    /// The agencies that have a CA here, sorted.
    pub fn agencies(&self) -> Result<Vec<AgencyId>> {
        let mut agencies = Vec::new();
        for path in files::entries(&self.trust_dir())? {
            if !path.join(CA_CERTIFICATE_FILE).is_file() {
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            agencies.push(AgencyId::parse(&name)?);
        }
        Ok(agencies)
    }

    /// Creates the agency's CA: `ca.pem`, `ca.key` (0600), an empty signed
    /// `crl.pem` and the serial counter. Refuses an agency that exists.
    pub fn add_agency(&self, agency: &AgencyId) -> Result<()> {
        let directory = self.agency_dir(agency);
        files::create_dir(&directory, "agency directory")?;
        files::create_dir(&directory.join(ISSUED_DIR), "issued directory")?;
        let now = build::whole_seconds(OffsetDateTime::now_utc());
        let key = build::generate_key().map_err(TrustError::openssl("generating the agency ca key"))?;
        let profile = CertificateProfile::agency_ca(&self.federation, agency, now);
        let certificate = BigNum::from_u32(1)
            .and_then(|first_serial| build::make_certificate(&profile, &key, Issuer::SelfSigned, &first_serial))
            .map_err(TrustError::openssl("making the agency ca certificate"))?;
        let key_pem = key
            .private_key_to_pem_pkcs8()
            .map_err(TrustError::openssl("encoding the agency ca key"))?;
        files::write_atomically(&directory.join(CA_KEY_FILE), &key_pem, Readers::Owner)?;
        let certificate_pem = certificate
            .to_pem()
            .map_err(TrustError::openssl("encoding the agency ca certificate"))?;
        files::write_atomically(
            &directory.join(CA_CERTIFICATE_FILE),
            &certificate_pem,
            Readers::Everyone,
        )?;
        files::write_atomically(&directory.join(SERIAL_FILE), b"02\n", Readers::Everyone)?;
        let ca = AgencyCa { certificate, key };
        let first_crl_number = BigNum::from_u32(1).map_err(TrustError::openssl("numbering the crl"))?;
        self.write_crl(agency, &ca, &[], &first_crl_number, now, now + CRL_VALIDITY)?;
        tracing::info!(
            agency = %agency,
            ca = %directory.join(CA_CERTIFICATE_FILE).display(),
            "agency ca created"
        );
        Ok(())
    }

    /// Issues the agency's node certificate with the default validity.
    pub fn issue_node(&self, agency: &AgencyId) -> Result<IssuedCertificate> {
        self.issue_node_with(agency, &IssueOptions::default())
    }

    /// Issues the agency's node certificate to `nodes/node.pem` and
    /// `nodes/node.key`, replacing a previous one (which stays valid until
    /// it expires or is revoked).
    pub fn issue_node_with(&self, agency: &AgencyId, options: &IssueOptions) -> Result<IssuedCertificate> {
        let identity = Identity::node(&self.federation, agency.clone());
        let profile = CertificateProfile::node(&identity, options)
            .map_err(|reason| TrustError::invalid("issue options", reason))?;
        let directory = self.agency_dir(agency).join(NODES_DIR);
        self.issue(agency, &identity, &profile, &directory, "node", None)
    }

    /// Issues a person's certificate with the default validity.
    pub fn issue_user(
        &self,
        agency: &AgencyId,
        user: &UserId,
        pkcs12_password: Option<&str>,
    ) -> Result<IssuedCertificate> {
        self.issue_user_with(agency, user, pkcs12_password, &IssueOptions::default())
    }

    /// Issues a person's certificate to `users/<user>.pem` and `.key`, and a
    /// PKCS#12 file `users/<user>.p12` protected by `pkcs12_password` when
    /// one is given.
    pub fn issue_user_with(
        &self,
        agency: &AgencyId,
        user: &UserId,
        pkcs12_password: Option<&str>,
        options: &IssueOptions,
    ) -> Result<IssuedCertificate> {
        if let Some(password) = pkcs12_password {
            if password.is_empty() {
                return Err(TrustError::invalid("pkcs12 password", "must not be empty"));
            }
            if password.contains('\0') {
                return Err(TrustError::invalid(
                    "pkcs12 password",
                    "must not contain a nul character",
                ));
            }
        }
        let identity = Identity::user(&self.federation, agency.clone(), user.clone());
        let profile = CertificateProfile::user(&identity, options)
            .map_err(|reason| TrustError::invalid("issue options", reason))?;
        let directory = self.agency_dir(agency).join(USERS_DIR);
        self.issue(agency, &identity, &profile, &directory, user.as_str(), pkcs12_password)
    }

    fn issue(
        &self,
        agency: &AgencyId,
        identity: &Identity,
        profile: &CertificateProfile,
        directory: &Path,
        file_stem: &str,
        pkcs12_password: Option<&str>,
    ) -> Result<IssuedCertificate> {
        let signed = self.sign_leaf(agency, profile)?;
        let der = signed
            .certificate
            .to_der()
            .map_err(TrustError::openssl("encoding the certificate"))?;
        let read_back = LeafCertificate::parse(&der)?;
        if &read_back.identity != identity {
            return Err(TrustError::Refused(CertificateRefusal::NotAFlagnetIdentity(format!(
                "issued {} instead of {identity}",
                read_back.identity
            ))));
        }

        files::create_dir_all(directory)?;
        let key_path = directory.join(format!("{file_stem}.key"));
        let cert_path = directory.join(format!("{file_stem}.pem"));
        let key_pem = signed
            .key
            .private_key_to_pem_pkcs8()
            .map_err(TrustError::openssl("encoding the private key"))?;
        files::write_atomically(&key_path, &key_pem, Readers::Owner)?;
        let certificate_pem = signed
            .certificate
            .to_pem()
            .map_err(TrustError::openssl("encoding the certificate"))?;
        files::write_atomically(&cert_path, &certificate_pem, Readers::Everyone)?;
        let pkcs12_path = match pkcs12_password {
            None => None,
            Some(password) => {
                let path = directory.join(format!("{file_stem}.p12"));
                let pkcs12 = build::make_pkcs12(
                    &identity.spiffe_uri(),
                    &signed.key,
                    &signed.certificate,
                    &signed.ca_certificate,
                    password,
                )
                .map_err(TrustError::openssl("making the pkcs#12 file"))?;
                files::write_atomically(&path, &pkcs12, Readers::Owner)?;
                Some(path)
            }
        };
        tracing::info!(
            identity = %identity,
            serial = %signed.serial,
            not_after = %profile.not_after,
            cert = %cert_path.display(),
            "certificate issued"
        );
        Ok(IssuedCertificate {
            identity: identity.clone(),
            serial: signed.serial,
            fingerprint_sha256: fingerprint_sha256(&der),
            not_before: profile.not_before,
            not_after: profile.not_after,
            cert_path,
            key_path,
            pkcs12_path,
        })
    }

    /// The agency CA's certificate, without its key.
    fn ca_certificate(&self, agency: &AgencyId) -> Result<X509> {
        let directory = self.agency_dir(agency);
        if !directory.is_dir() {
            return Err(TrustError::NotFound(format!(
                "agency {agency} has no ca in {root}: add the agency first",
                root = self.root.display()
            )));
        }
        let certificate_path = directory.join(CA_CERTIFICATE_FILE);
        X509::from_pem(&files::read(&certificate_path)?)
            .map_err(|error| TrustError::bad_file("certificate", &certificate_path, error))
    }

    pub(crate) fn agency_ca(&self, agency: &AgencyId) -> Result<AgencyCa> {
        let certificate = self.ca_certificate(agency)?;
        let certificate_path = self.ca_certificate_path(agency);
        let key_path = self.agency_dir(agency).join(CA_KEY_FILE);
        let key = PKey::private_key_from_pem(&files::read(&key_path)?)
            .map_err(|error| TrustError::bad_file("private key", &key_path, error))?;
        let public_key = certificate
            .public_key()
            .map_err(|error| TrustError::bad_file("certificate", &certificate_path, error))?;
        if !key.public_eq(&public_key) {
            return Err(TrustError::bad_file(
                "private key",
                &key_path,
                format!("does not match {}", certificate_path.display()),
            ));
        }
        Ok(AgencyCa { certificate, key })
    }

    /// Signs `profile` with the agency CA under the next serial and records
    /// the certificate under `issued/`.
    pub(crate) fn sign_leaf(&self, agency: &AgencyId, profile: &CertificateProfile) -> Result<SignedLeaf> {
        let ca = self.agency_ca(agency)?;
        let directory = self.agency_dir(agency);
        let _lock = files::lock(&directory.join(LOCK_FILE))?;
        let serial = next_serial(&directory.join(SERIAL_FILE))?;
        let key = build::generate_key().map_err(TrustError::openssl("generating a key"))?;
        let certificate = build::make_certificate(
            profile,
            &key,
            Issuer::Ca {
                certificate: &ca.certificate,
                key: &ca.key,
            },
            &serial,
        )
        .map_err(TrustError::openssl("making the certificate"))?;
        let serial = serial_text(&serial.to_vec());
        let record = certificate
            .to_pem()
            .map_err(TrustError::openssl("encoding the certificate"))?;
        files::create_dir_all(&directory.join(ISSUED_DIR))?;
        files::write_atomically(
            &directory.join(ISSUED_DIR).join(format!("{serial}.pem")),
            &record,
            Readers::Everyone,
        )?;
        Ok(SignedLeaf {
            certificate,
            key,
            serial,
            ca_certificate: ca.certificate,
        })
    }

    /// Every agency's CA, CRL and issued certificates.
    pub fn list(&self) -> Result<Vec<AgencyListing>> {
        let mut listings = Vec::new();
        for agency in self.agencies()? {
            let ca_path = self.ca_certificate_path(&agency);
            let ca_certificate = self.ca_certificate(&agency)?;
            let ca_der = ca_certificate
                .to_der()
                .map_err(TrustError::openssl("encoding the agency ca certificate"))?;
            let ca_not_after = parse_certificate(&ca_der)
                .map_err(|refusal| TrustError::bad_file("certificate", &ca_path, refusal))?
                .validity()
                .not_after
                .to_datetime();
            let crl = self.read_crl(&agency, &ca_certificate)?;
            let mut certificates = Vec::new();
            for path in files::entries(&self.agency_dir(&agency).join(ISSUED_DIR))? {
                if path.extension().is_some_and(|extension| extension == "pem") {
                    certificates.push(certificate_record(&path, &crl.entries)?);
                }
            }
            certificates
                .sort_by(|left, right| (left.serial.len(), &left.serial).cmp(&(right.serial.len(), &right.serial)));
            listings.push(AgencyListing {
                agency,
                ca_path,
                ca_not_after,
                crl: crl.info,
                certificates,
            });
        }
        Ok(listings)
    }

    /// Revokes the certificate with `serial` (hex, either case) issued by
    /// the agency's CA and writes the agency's new CRL.
    pub fn revoke(&self, agency: &AgencyId, serial: &str) -> Result<Revocation> {
        self.revoke_at(agency, serial, build::whole_seconds(OffsetDateTime::now_utc()))
    }

    /// Revokes the certificate in a PEM file; its agency comes from its URI
    /// SAN and it must have been issued by that agency's CA.
    pub fn revoke_file(&self, certificate_path: &Path) -> Result<Revocation> {
        let der = crate::pem::certificates(certificate_path)?.remove(0);
        let leaf = LeafCertificate::parse(&der).map_err(|refusal| TrustError::RefusedFile {
            path: certificate_path.to_owned(),
            refusal,
        })?;
        if leaf.identity.federation != self.federation {
            return Err(TrustError::RefusedFile {
                path: certificate_path.to_owned(),
                refusal: CertificateRefusal::ForeignFederation {
                    expected: self.federation.clone(),
                    presented: leaf.identity.federation,
                },
            });
        }
        let agency = leaf.identity.agency;
        let ca_certificate = self.ca_certificate(&agency)?;
        let certificate =
            X509::from_der(&der).map_err(|error| TrustError::bad_file("certificate", certificate_path, error))?;
        let signed_by_ca = ca_certificate
            .public_key()
            .and_then(|ca_public_key| certificate.verify(&ca_public_key))
            .map_err(TrustError::openssl("checking the certificate's signature"))?;
        if !signed_by_ca {
            return Err(TrustError::bad_file(
                "certificate",
                certificate_path,
                format!("not issued by the ca of agency {agency}"),
            ));
        }
        let serial = serial_text(
            certificate
                .serial_number()
                .to_bn()
                .map_err(TrustError::openssl("reading the serial"))?
                .to_vec()
                .as_slice(),
        );
        self.revoke(&agency, &serial)
    }

    pub(crate) fn revoke_at(&self, agency: &AgencyId, serial: &str, revoked_at: OffsetDateTime) -> Result<Revocation> {
        let serial = canonical_serial(serial)?;
        let directory = self.agency_dir(agency);
        if !directory.join(ISSUED_DIR).join(format!("{serial}.pem")).is_file() {
            return Err(TrustError::NotFound(format!(
                "agency {agency} issued no certificate with serial {serial}"
            )));
        }
        let ca = self.agency_ca(agency)?;
        let _lock = files::lock(&directory.join(LOCK_FILE))?;
        let current = self.read_crl(agency, &ca.certificate)?;
        let magnitude = hex::decode(&serial).map_err(|error| TrustError::invalid("serial", error.to_string()))?;
        if let Some(previous) = current.entries.iter().find(|entry| entry.serial == magnitude) {
            return Err(TrustError::AlreadyRevoked {
                agency: agency.clone(),
                serial,
                revoked_at: previous.revoked_at,
            });
        }
        let mut entries = current.entries;
        entries.push(RevokedEntry {
            serial: magnitude,
            revoked_at,
        });
        let number = next_crl_number(&current.number)?;
        let crl = self.write_crl(agency, &ca, &entries, &number, revoked_at, revoked_at + CRL_VALIDITY)?;
        tracing::info!(agency = %agency, serial = %serial, crl_number = %crl.number, "certificate revoked");
        Ok(Revocation {
            agency: agency.clone(),
            serial,
            revoked_at,
            crl,
        })
    }

    /// Re-signs the agency's CRL with the same revocations and a new next
    /// update ([`CRL_VALIDITY`] from now). Run it well before the current
    /// CRL's next update: after it, nodes refuse the agency's certificates.
    pub fn renew_crl(&self, agency: &AgencyId) -> Result<CrlInfo> {
        let now = build::whole_seconds(OffsetDateTime::now_utc());
        self.renew_crl_until(agency, now, now + CRL_VALIDITY)
    }

    pub(crate) fn renew_crl_until(
        &self,
        agency: &AgencyId,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<CrlInfo> {
        let ca = self.agency_ca(agency)?;
        let _lock = files::lock(&self.agency_dir(agency).join(LOCK_FILE))?;
        let current = self.read_crl(agency, &ca.certificate)?;
        let number = next_crl_number(&current.number)?;
        let crl = self.write_crl(agency, &ca, &current.entries, &number, this_update, next_update)?;
        tracing::info!(agency = %agency, crl_number = %crl.number, "crl renewed");
        Ok(crl)
    }

    fn write_crl(
        &self,
        agency: &AgencyId,
        ca: &AgencyCa,
        entries: &[RevokedEntry],
        number: &BigNum,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<CrlInfo> {
        let crl = build::make_crl(&ca.certificate, &ca.key, entries, number, this_update, next_update)
            .map_err(TrustError::openssl("making the crl"))?;
        let pem = crl.to_pem().map_err(TrustError::openssl("encoding the crl"))?;
        let path = self.crl_path(agency);
        files::write_atomically(&path, &pem, Readers::Everyone)?;
        Ok(CrlInfo {
            path,
            number: number
                .to_dec_str()
                .map_err(TrustError::openssl("printing the crl number"))?
                .to_string(),
            this_update,
            next_update: Some(next_update),
            revoked: entries.len(),
        })
    }

    fn read_crl(&self, agency: &AgencyId, ca_certificate: &X509) -> Result<CurrentCrl> {
        let path = self.crl_path(agency);
        let der = crate::pem::crls(&path)?.remove(0);
        let signed_by_ca = X509Crl::from_der(&der)
            .and_then(|crl| ca_certificate.public_key().and_then(|key| crl.verify(&key)))
            .map_err(|error| TrustError::bad_file("crl", &path, error))?;
        if !signed_by_ca {
            return Err(TrustError::bad_file(
                "crl",
                &path,
                format!("not signed by the ca of agency {agency}"),
            ));
        }
        let (_, crl) = x509_parser::parse_x509_crl(&der).map_err(|error| TrustError::bad_file("crl", &path, error))?;
        let entries = crl
            .iter_revoked_certificates()
            .map(|revoked| RevokedEntry {
                serial: revoked.serial().to_bytes_be(),
                revoked_at: revoked.revocation_date.to_datetime(),
            })
            .collect::<Vec<_>>();
        let number = match crl.crl_number() {
            Some(number) => {
                BigNum::from_slice(&number.to_bytes_be()).map_err(TrustError::openssl("reading the crl number"))?
            }
            None => BigNum::new().map_err(TrustError::openssl("reading the crl number"))?,
        };
        let info = CrlInfo {
            path,
            number: number
                .to_dec_str()
                .map_err(TrustError::openssl("printing the crl number"))?
                .to_string(),
            this_update: crl.last_update().to_datetime(),
            next_update: crl.next_update().map(|next_update| next_update.to_datetime()),
            revoked: entries.len(),
        };
        Ok(CurrentCrl { entries, number, info })
    }
}

struct CurrentCrl {
    entries: Vec<RevokedEntry>,
    number: BigNum,
    info: CrlInfo,
}

fn certificate_record(path: &Path, revoked: &[RevokedEntry]) -> Result<CertificateRecord> {
    let der = crate::pem::certificates(path)?.remove(0);
    let certificate = parse_certificate(&der).map_err(|refusal| TrustError::RefusedFile {
        path: path.to_owned(),
        refusal,
    })?;
    let magnitude = certificate.serial.to_bytes_be();
    Ok(CertificateRecord {
        serial: serial_text(&magnitude),
        identity: LeafCertificate::parse(&der).ok().map(|leaf| leaf.identity),
        not_before: certificate.validity().not_before.to_datetime(),
        not_after: certificate.validity().not_after.to_datetime(),
        fingerprint_sha256: fingerprint_sha256(&der),
        revoked_at: revoked
            .iter()
            .find(|entry| entry.serial == magnitude)
            .map(|entry| entry.revoked_at),
        path: path.to_owned(),
    })
}

/// Reads the next serial and stores the one after it; the caller holds the
/// agency's lock.
fn next_serial(path: &Path) -> Result<BigNum> {
    let contents = files::read(path)?;
    let text = String::from_utf8_lossy(&contents);
    let serial = canonical_serial(text.trim()).map_err(|error| TrustError::bad_file("serial file", path, error))?;
    let serial = BigNum::from_hex_str(&serial).map_err(|error| TrustError::bad_file("serial file", path, error))?;
    let mut following = BigNum::new().map_err(TrustError::openssl("counting serials"))?;
    following
        .checked_add(
            &serial,
            &*BigNum::from_u32(1).map_err(TrustError::openssl("counting serials"))?,
        )
        .map_err(TrustError::openssl("counting serials"))?;
    let following = format!("{}\n", serial_text(&following.to_vec()));
    files::write_atomically(path, following.as_bytes(), Readers::Everyone)?;
    Ok(serial)
}

fn next_crl_number(current: &BigNum) -> Result<BigNum> {
    let mut next = BigNum::new().map_err(TrustError::openssl("numbering the crl"))?;
    next.checked_add(
        current,
        &*BigNum::from_u32(1).map_err(TrustError::openssl("numbering the crl"))?,
    )
    .map_err(TrustError::openssl("numbering the crl"))?;
    Ok(next)
}

/// A serial as typed by a person (hex, either case, optional colons) in
/// its canonical text.
fn canonical_serial(serial: &str) -> Result<String> {
    let digits: String = serial.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 40 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TrustError::invalid(
            "serial",
            format!("{serial:?} is not a hex serial number"),
        ));
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes = hex::decode(&padded).map_err(|error| TrustError::invalid("serial", error.to_string()))?;
    Ok(serial_text(&bytes))
}

#[cfg(test)]
mod tests;
