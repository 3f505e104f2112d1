//! The one place where certificates, CRLs, keys and PKCS#12 files are made
//! (ECDSA P-256, SHA-256, through OpenSSL). A [`CertificateProfile`] says
//! what a certificate holds; [`make_certificate`] turns it into a signed
//! certificate; the agency CA, node and user profiles are its constructors.
//!
//! This module must never write files or decide identities: it turns
//! descriptions into DER and PEM, and the caller decides what to keep. The
//! odd certificates of the tests are made here too, from the same profiles
//! with a field changed, never by a second builder.

use crate::error::ExtendedPurpose;
use crate::pki::IssueOptions;
use flagnet_core::{AgencyId, Identity, Principal};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, BigNumRef};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Crl, X509CrlBuilder, X509NameBuilder, X509Ref, X509RevokedBuilder};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// How long an agency CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a node or user certificate is valid unless told otherwise.
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// How long a CRL is current; a node refuses every certificate of an agency
/// whose CRL is past its next update, so renew it well before.
pub const CRL_VALIDITY: Duration = Duration::days(30);
/// Certificates start this long before they are made, so a peer whose clock
/// is a little behind does not see them as not yet valid.
pub const BACKDATE: Duration = Duration::minutes(5);

fn digest() -> MessageDigest {
    MessageDigest::sha256()
}

/// What a certificate holds. Made by [`CertificateProfile::agency_ca`],
/// [`CertificateProfile::node`] or [`CertificateProfile::user`].
#[derive(Debug, Clone)]
pub(crate) struct CertificateProfile {
    pub(crate) common_name: String,
    pub(crate) organization: String,
    pub(crate) organizational_unit: Option<String>,
    pub(crate) uris: Vec<String>,
    pub(crate) dns_names: Vec<String>,
    pub(crate) ip_addresses: Vec<IpAddr>,
    /// basicConstraints critical, CA:true with pathlen 0, or CA:false.
    pub(crate) is_ca: bool,
    /// keyUsage, always critical.
    pub(crate) key_usage: KeyUsages,
    /// extendedKeyUsage; empty means no extension at all.
    pub(crate) extended_key_usage: Vec<ExtendedPurpose>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    /// Appends the extendedKeyUsage extension twice.
    #[cfg(test)]
    pub(crate) repeat_extended_key_usage: bool,
}

/// The keyUsage bits flagnet uses.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyUsages {
    pub(crate) digital_signature: bool,
    pub(crate) key_cert_sign: bool,
    pub(crate) crl_sign: bool,
}

impl CertificateProfile {
    fn base(common_name: String, organization: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        Self {
            common_name,
            organization: organization.to_owned(),
            organizational_unit: None,
            uris: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            is_ca: false,
            key_usage: KeyUsages::default(),
            extended_key_usage: Vec::new(),
            not_before,
            not_after,
            #[cfg(test)]
            repeat_extended_key_usage: false,
        }
    }

    /// A self-signed agency CA: CN "<agency> CA", O "<federation>", CA with
    /// pathlen 0 (it signs leaves only), keyCertSign and cRLSign, 10 years.
    pub(crate) fn agency_ca(federation: &str, agency: &AgencyId, now: OffsetDateTime) -> Self {
        let now = whole_seconds(now);
        let mut profile = Self::base(format!("{agency} CA"), federation, now - BACKDATE, now + CA_VALIDITY);
        profile.is_ca = true;
        profile.key_usage = KeyUsages {
            digital_signature: false,
            key_cert_sign: true,
            crl_sign: true,
        };
        profile
    }

    /// A node certificate: URI SAN of the node identity, DNS `localhost`,
    /// IP 127.0.0.1 (for generic tools on the node's own host) and any extra
    /// names, serverAuth and clientAuth (a node serves, and calls its peers).
    pub(crate) fn node(identity: &Identity, options: &IssueOptions) -> Result<Self, String> {
        debug_assert!(identity.is_node());
        let mut profile = Self::leaf(identity, format!("{} node", identity.agency), options)?;
        profile.dns_names.push("localhost".into());
        profile.ip_addresses.push(IpAddr::from([127, 0, 0, 1]));
        for name in &options.extra_dns_names {
            check_dns_name(name)?;
            profile.dns_names.push(name.clone());
        }
        profile.ip_addresses.extend(options.extra_ip_addresses.iter().copied());
        profile.extended_key_usage = vec![ExtendedPurpose::ServerAuth, ExtendedPurpose::ClientAuth];
        Ok(profile)
    }

    /// A person's certificate: URI SAN of the user identity, clientAuth only.
    pub(crate) fn user(identity: &Identity, options: &IssueOptions) -> Result<Self, String> {
        let Principal::User(user) = &identity.principal else {
            return Err("a user certificate needs a user identity".into());
        };
        if !options.extra_dns_names.is_empty() || !options.extra_ip_addresses.is_empty() {
            return Err("dns names and ip addresses are for node certificates only".into());
        }
        let mut profile = Self::leaf(identity, user.to_string(), options)?;
        profile.extended_key_usage = vec![ExtendedPurpose::ClientAuth];
        Ok(profile)
    }

    fn leaf(identity: &Identity, common_name: String, options: &IssueOptions) -> Result<Self, String> {
        let now = whole_seconds(OffsetDateTime::now_utc());
        let not_before = options.not_before.map(whole_seconds).unwrap_or(now - BACKDATE);
        let not_after = options
            .not_after
            .map(whole_seconds)
            .unwrap_or(not_before + BACKDATE + LEAF_VALIDITY);
        if not_after <= not_before {
            return Err(format!(
                "not after ({not_after}) must be later than not before ({not_before})"
            ));
        }
        let mut profile = Self::base(common_name, &identity.federation, not_before, not_after);
        profile.organizational_unit = Some(identity.agency.to_string());
        profile.uris.push(identity.spiffe_uri());
        profile.key_usage.digital_signature = true;
        Ok(profile)
    }
}

/// Certificates carry whole seconds; so do the times reported about them.
pub(crate) fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

fn check_dns_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*'));
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a dns name"))
    }
}

/// Who signs a certificate.
#[derive(Clone, Copy)]
pub(crate) enum Issuer<'a> {
    /// The certificate signs itself (an agency CA).
    SelfSigned,
    /// An agency CA signs it.
    Ca {
        certificate: &'a X509Ref,
        key: &'a PKeyRef<Private>,
    },
}

/// A fresh ECDSA P-256 key.
pub(crate) fn generate_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

pub(crate) fn asn1_time(at: OffsetDateTime) -> Result<Asn1Time, ErrorStack> {
    Asn1Time::from_unix(at.unix_timestamp())
}

/// Signs a certificate for `subject_key` as `profile` describes.
pub(crate) fn make_certificate(
    profile: &CertificateProfile,
    subject_key: &PKeyRef<Private>,
    issuer: Issuer<'_>,
    serial: &BigNumRef,
) -> Result<X509, ErrorStack> {
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    builder.set_serial_number(&*Asn1Integer::from_bn(serial)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, &profile.organization)?;
    if let Some(unit) = &profile.organizational_unit {
        name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, unit)?;
    }
    name.append_entry_by_nid(Nid::COMMONNAME, &profile.common_name)?;
    let name = name.build();
    builder.set_subject_name(&name)?;
    match issuer {
        Issuer::SelfSigned => builder.set_issuer_name(&name)?,
        Issuer::Ca { certificate, .. } => builder.set_issuer_name(certificate.subject_name())?,
    }
    builder.set_pubkey(subject_key)?;
    builder.set_not_before(&*asn1_time(profile.not_before)?)?;
    builder.set_not_after(&*asn1_time(profile.not_after)?)?;

    let mut basic_constraints = BasicConstraints::new();
    basic_constraints.critical();
    if profile.is_ca {
        basic_constraints.ca().pathlen(0);
    }
    builder.append_extension(basic_constraints.build()?)?;

    let mut key_usage = KeyUsage::new();
    key_usage.critical();
    if profile.key_usage.digital_signature {
        key_usage.digital_signature();
    }
    if profile.key_usage.key_cert_sign {
        key_usage.key_cert_sign();
    }
    if profile.key_usage.crl_sign {
        key_usage.crl_sign();
    }
    builder.append_extension(key_usage.build()?)?;

    if !profile.extended_key_usage.is_empty() {
        let mut extended_key_usage = ExtendedKeyUsage::new();
        for purpose in &profile.extended_key_usage {
            match purpose {
                ExtendedPurpose::ServerAuth => extended_key_usage.server_auth(),
                ExtendedPurpose::ClientAuth => extended_key_usage.client_auth(),
            };
        }
        builder.append_extension(extended_key_usage.build()?)?;
        #[cfg(test)]
        if profile.repeat_extended_key_usage {
            builder.append_extension(extended_key_usage.build()?)?;
        }
    }

    let issuer_certificate = match issuer {
        Issuer::SelfSigned => None,
        Issuer::Ca { certificate, .. } => Some(certificate),
    };
    let subject_key_identifier =
        SubjectKeyIdentifier::new().build(&builder.x509v3_context(issuer_certificate, None))?;
    builder.append_extension(subject_key_identifier)?;
    if issuer_certificate.is_some() {
        let authority_key_identifier = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(issuer_certificate, None))?;
        builder.append_extension(authority_key_identifier)?;
    }

    if !(profile.uris.is_empty() && profile.dns_names.is_empty() && profile.ip_addresses.is_empty()) {
        let mut alternative_names = SubjectAlternativeName::new();
        for uri in &profile.uris {
            alternative_names.uri(uri);
        }
        for dns_name in &profile.dns_names {
            alternative_names.dns(dns_name);
        }
        for ip in &profile.ip_addresses {
            alternative_names.ip(&ip.to_string());
        }
        let extension = alternative_names.build(&builder.x509v3_context(issuer_certificate, None))?;
        builder.append_extension(extension)?;
    }

    let signing_key = match issuer {
        Issuer::SelfSigned => subject_key,
        Issuer::Ca { key, .. } => key,
    };
    builder.sign(signing_key, digest())?;
    Ok(builder.build())
}

/// A self-signed certificate of `profile` under a fresh key.
#[cfg(test)]
pub(crate) fn self_signed(profile: &CertificateProfile) -> Result<X509, ErrorStack> {
    let key = generate_key()?;
    make_certificate(profile, &key, Issuer::SelfSigned, &*BigNum::from_u32(1)?)
}

/// A certificate revoked by a CRL: its serial (big-endian magnitude) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RevokedEntry {
    pub(crate) serial: Vec<u8>,
    pub(crate) revoked_at: OffsetDateTime,
}

/// A v2 CRL signed by the CA, with CRL number and authority key identifier.
pub(crate) fn make_crl(
    ca_certificate: &X509Ref,
    ca_key: &PKeyRef<Private>,
    revoked: &[RevokedEntry],
    number: &BigNumRef,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<X509Crl, ErrorStack> {
    let mut builder = X509CrlBuilder::new()?;
    builder.set_issuer_name(ca_certificate.subject_name())?;
    builder.set_last_update(&*asn1_time(this_update)?)?;
    builder.set_next_update(&*asn1_time(next_update)?)?;
    let context_holder = X509Builder::new()?;
    let context = context_holder.x509v3_context(Some(ca_certificate), None);
    builder.append_extension(AuthorityKeyIdentifier::new().keyid(true).build(&context)?)?;
    builder.append_extension(openssl::x509::extension::CrlNumber::new(number.to_owned()?)?.build()?)?;
    for entry in revoked {
        let mut revoked_builder = X509RevokedBuilder::new()?;
        revoked_builder.set_serial_number(&*Asn1Integer::from_bn(&*BigNum::from_slice(&entry.serial)?)?)?;
        revoked_builder.set_revocation_date(&*asn1_time(entry.revoked_at)?)?;
        builder.add_revoked(revoked_builder.build())?;
    }
    builder.sort()?;
    builder.sign(ca_key, digest())?;
    builder.build()
}

/// A password-protected PKCS#12 file holding the key, the certificate and
/// the agency CA (OpenSSL 3 defaults: AES-256-CBC, PBKDF2, HMAC-SHA256).
pub(crate) fn make_pkcs12(
    friendly_name: &str,
    key: &PKeyRef<Private>,
    certificate: &X509Ref,
    ca_certificate: &X509Ref,
    password: &str,
) -> Result<Vec<u8>, ErrorStack> {
    let mut chain = Stack::new()?;
    chain.push(ca_certificate.to_owned())?;
    Pkcs12::builder()
        .name(friendly_name)
        .pkey(key)
        .cert(certificate)
        .ca(chain)
        .build2(password)?
        .to_der()
}

/// The canonical text of a serial: uppercase hex of its big-endian
/// magnitude, two digits a byte, as `openssl x509 -serial` prints it.
pub(crate) fn serial_text(magnitude: &[u8]) -> String {
    let trimmed: &[u8] = match magnitude.iter().position(|byte| *byte != 0) {
        Some(first) => &magnitude[first..],
        None => &[0],
    };
    hex::encode_upper(trimmed)
}
