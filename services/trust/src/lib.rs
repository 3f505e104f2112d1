//! Trust between flagnet's agencies: who a certificate says it is, whether
//! its own agency's CA and CRL vouch for it, the rustls configs that enforce
//! this on every connection, and the OpenSSL tooling that makes the
//! federation's certificates. See "Trust and identity" in the design and
//! `certs/README.md`.
//!
//! An identity is the single SPIFFE URI SAN of a leaf, and it counts for
//! agency A only if it chains to agency A's CA and passes A's CRL. This
//! crate must never pool the agencies' CAs, never take identity from a
//! common name or DNS name, never accept a client without a certificate,
//! and never treat unknown revocation status as good.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod channel;
pub mod client;
pub mod error;
pub mod events;
mod files;
pub mod identity;
pub mod inspect;
pub mod pem;
pub mod pki;
pub mod reload;
pub mod tls;
pub mod verifier;

#[cfg(test)]
mod tests;

pub use bundle::{AgencyTrust, TrustBundle};
pub use error::{CertificateRefusal, ExtendedPurpose, Result, TrustError};
pub use identity::{fingerprint_sha256, identity_from_certificate};
pub use pki::{AgencyListing, CertificateRecord, CrlInfo, FederationDir, IssueOptions, IssuedCertificate, Revocation};
/// The certificate types of this crate's API.
pub use rustls_pki_types;
pub use tls::{PeerCertificateInfo, client_config, peer_certificate_info, peer_identity, server_config};
pub use verifier::{
    AgencyClientVerifier, AgencyServerVerifier, ExpectedServer, RefusedCertificate, capture_client_refusal, refusal_of,
};
