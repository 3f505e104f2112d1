//! The errors of the trust crate: [`TrustError`] for everything that can go
//! wrong loading, issuing or configuring, and [`CertificateRefusal`] for why
//! a peer's certificate is not accepted as an identity.
//!
//! Every message names the file and what is wrong with it
//! (`certificate /x/node.pem: no URI SAN`). This module must never hold
//! certificate or key material, only descriptions of what went wrong.

use flagnet_core::{AgencyId, CoreError};
use std::path::PathBuf;
use thiserror::Error;

/// Result of a trust operation.
pub type Result<T, E = TrustError> = std::result::Result<T, E>;

/// The extended key usage a certificate needs for one side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendedPurpose {
    /// `id-kp-serverAuth`: the certificate may identify a TLS server.
    ServerAuth,
    /// `id-kp-clientAuth`: the certificate may identify a TLS client.
    ClientAuth,
}

impl std::fmt::Display for ExtendedPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ServerAuth => "serverAuth",
            Self::ClientAuth => "clientAuth",
        })
    }
}

/// Why a certificate is not accepted as a flagnet identity.
///
/// The verifiers hand this to rustls inside
/// `CertificateError::Other`, so a refused handshake can be told apart by
/// its reason (see [`crate::verifier::refusal_of`]).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CertificateRefusal {
    /// Not DER that parses as an X.509 certificate.
    #[error("not a parsable x.509 certificate: {0}")]
    Unparsable(String),
    /// An extension appears twice (RFC 5280 forbids it, and the two could
    /// say different things to different parsers).
    #[error("duplicate extension {0}")]
    DuplicateExtension(String),
    /// No URI in the subject alternative names.
    #[error("no URI SAN")]
    NoUriSan,
    /// More than one URI in the subject alternative names.
    #[error("{0} URI SANs, exactly one expected")]
    SeveralUriSans(usize),
    /// The single URI SAN is not a flagnet SPIFFE id.
    #[error("URI SAN is not a flagnet identity: {0}")]
    NotAFlagnetIdentity(String),
    /// The SPIFFE id names another federation.
    #[error("identity of federation {presented:?}, not of {expected:?}")]
    ForeignFederation { expected: String, presented: String },
    /// The agency named by the SPIFFE id has no CA in the trust bundle.
    #[error("agency {0} is not in the trust bundle")]
    UnknownAgency(AgencyId),
    /// The leaf is a CA certificate (basicConstraints CA:true).
    #[error("leaf is a CA certificate")]
    LeafIsCa,
    /// The leaf may sign certificates (keyUsage keyCertSign).
    #[error("leaf has the keyCertSign key usage")]
    LeafSignsCertificates,
    /// The leaf has no extended key usage extension at all.
    #[error("no extended key usage extension, {0} required")]
    NoExtendedKeyUsage(ExtendedPurpose),
    /// The leaf's extended key usage does not include the needed purpose.
    #[error("extended key usage lacks {0}")]
    MissingExtendedKeyUsage(ExtendedPurpose),
    /// A node's own certificate holds a person's identity.
    #[error("{0} is not a node identity")]
    NotANode(String),
    /// The server is not the node identity the caller expected.
    #[error("expected {expected}, the server presented {presented}")]
    UnexpectedServer { expected: String, presented: String },
    /// Path validation against the agency's own CA and CRL failed:
    /// unknown issuer, expired, not yet valid, revoked, unknown revocation
    /// status, bad signature.
    #[error("refused by path validation against the agency's CA and CRL: {0}")]
    Path(rustls::Error),
}

impl CertificateRefusal {
    /// A short, stable name of the reason (`revoked`, `unknown_issuer`,
    /// `no_uri_san`, ...), for audit records and metrics labels, which must
    /// not change when a message is reworded.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unparsable(_) => "unparsable",
            Self::DuplicateExtension(_) => "duplicate_extension",
            Self::NoUriSan => "no_uri_san",
            Self::SeveralUriSans(_) => "several_uri_sans",
            Self::NotAFlagnetIdentity(_) => "not_a_flagnet_identity",
            Self::ForeignFederation { .. } => "foreign_federation",
            Self::UnknownAgency(_) => "unknown_agency",
            Self::LeafIsCa => "leaf_is_ca",
            Self::LeafSignsCertificates => "leaf_signs_certificates",
            Self::NoExtendedKeyUsage(_) => "no_extended_key_usage",
            Self::MissingExtendedKeyUsage(_) => "missing_extended_key_usage",
            Self::NotANode(_) => "not_a_node",
            Self::UnexpectedServer { .. } => "unexpected_server",
            Self::Path(error) => path_code(error),
        }
    }
}

#[allow(deprecated)]
fn path_code(error: &rustls::Error) -> &'static str {
    use rustls::CertificateError as Certificate;
    let rustls::Error::InvalidCertificate(certificate_error) = error else {
        return "path_validation";
    };
    match certificate_error {
        Certificate::Revoked => "revoked",
        Certificate::UnknownIssuer => "unknown_issuer",
        Certificate::BadSignature => "bad_signature",
        Certificate::Expired | Certificate::ExpiredContext { .. } => "expired",
        Certificate::NotValidYet | Certificate::NotValidYetContext { .. } => "not_yet_valid",
        Certificate::UnknownRevocationStatus => "unknown_revocation_status",
        Certificate::ExpiredRevocationList | Certificate::ExpiredRevocationListContext { .. } => "crl_expired",
        Certificate::InvalidPurpose | Certificate::InvalidPurposeContext { .. } => "invalid_purpose",
        Certificate::BadEncoding => "bad_encoding",
        _ => "path_validation",
    }
}

/// A failure loading, issuing or configuring certificates and TLS.
#[derive(Debug, Error)]
pub enum TrustError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file holds something unusable; `what` says what the file should be
    /// (`certificate`, `private key`, `crl`, `federation file`).
    #[error("{what} {path}: {reason}")]
    BadFile {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A certificate file holds a certificate that is not a usable identity.
    #[error("certificate {path}: {refusal}")]
    RefusedFile { path: PathBuf, refusal: CertificateRefusal },
    /// A certificate is not a usable identity.
    #[error("certificate: {0}")]
    Refused(#[from] CertificateRefusal),
    /// Something that must not exist yet already does.
    #[error("{what} {path} already exists")]
    AlreadyExists { what: &'static str, path: PathBuf },
    /// The certificate is on the agency's CRL already.
    #[error("serial {serial} of agency {agency} was already revoked at {revoked_at}")]
    AlreadyRevoked {
        agency: AgencyId,
        serial: String,
        revoked_at: time::OffsetDateTime,
    },
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An argument is unusable.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// An identifier was refused by the domain core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// OpenSSL failed while making or reading certificates.
    #[error("openssl, {context}: {source}")]
    Openssl {
        context: String,
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// rustls refused a configuration.
    #[error("tls configuration, {context}: {source}")]
    Tls {
        context: String,
        #[source]
        source: rustls::Error,
    },
}

impl TrustError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrustError {
        let path = path.into();
        move |source| TrustError::Io { path, source }
    }

    pub(crate) fn openssl(context: impl Into<String>) -> impl FnOnce(openssl::error::ErrorStack) -> TrustError {
        let context = context.into();
        move |source| TrustError::Openssl { context, source }
    }

    pub(crate) fn bad_file(what: &'static str, path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> TrustError {
        TrustError::BadFile {
            what,
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> TrustError {
        TrustError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
