//! Reading PEM files with `rustls-pki-types`' [`PemObject`] (not the
//! archived `rustls-pemfile`), with errors that name the file and what is
//! wrong with it.
//!
//! This module must never judge what it reads: a certificate read here is
//! only bytes until a verifier or the identity module has looked at it.

use crate::error::{Result, TrustError};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::path::Path;

/// Every certificate in a PEM file, in order; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    certificates_in(path, &crate::files::read(path)?)
}

/// Every CRL in a PEM file, in order; at least one.
pub fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    crls_in(path, &crate::files::read(path)?)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    private_key_in(path, &crate::files::read(path)?)
}

/// [`certificates`] of bytes already read from `path`.
pub(crate) fn certificates_in(path: &Path, contents: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    all(path, contents, "certificate")
}

/// [`crls`] of bytes already read from `path`.
pub(crate) fn crls_in(path: &Path, contents: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    all(path, contents, "crl")
}

/// [`private_key`] of bytes already read from `path`.
pub(crate) fn private_key_in(path: &Path, contents: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(contents).map_err(|error| pem_error("private key", path, error))
}

fn all<T: PemObject>(path: &Path, contents: &[u8], what: &'static str) -> Result<Vec<T>> {
    let items = T::pem_slice_iter(contents)
        .collect::<Result<Vec<T>, pem::Error>>()
        .map_err(|error| pem_error(what, path, error))?;
    if items.is_empty() {
        return Err(TrustError::bad_file(what, path, format!("no {what} in the file")));
    }
    Ok(items)
}

fn pem_error(what: &'static str, path: &Path, error: pem::Error) -> TrustError {
    match error {
        pem::Error::Io(source) => TrustError::Io {
            path: path.to_owned(),
            source,
        },
        pem::Error::NoItemsFound => TrustError::bad_file(what, path, format!("no {what} in the file")),
        other => TrustError::bad_file(what, path, format!("not readable as pem: {other}")),
    }
}
