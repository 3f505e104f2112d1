//! Sealing row bodies at rest: a JSON body encrypted with XChaCha20-Poly1305
//! under the node data key, with a fresh random 24-byte nonce per write and
//! associated data that binds the body to its row.
//!
//! The associated data ([`RowBinding`]) names the table, the row id, the
//! owner agency and every plaintext column of the row, each length-prefixed
//! so no two bindings encode alike. A body copied into another row, or a row
//! whose plaintext columns were edited (a status flipped back to `active`, a
//! consent's end pushed out, a token attached to another flag), no longer
//! opens: the store reports it as corrupt and discloses nothing.
//!
//! This module must never return or log a plaintext body it could not
//! authenticate, and never reuse a nonce.

use crate::data_key::DataKey;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use flagnet_core::{CoreError, CoreResult};
use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// The first byte of every sealed value; a later key rotation or cipher
/// change gets a new one.
const FORMAT_V1: u8 = 0x01;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The domain separation prefix of every binding.
const BINDING_DOMAIN: &[u8] = b"flagnet/store/v1";

/// The associated data of one sealed value: which row, of which table, owned
/// by whom, with which plaintext columns.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RowBinding {
    table: &'static str,
    row_id: String,
    encoded: Vec<u8>,
}

impl fmt::Debug for RowBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowBinding")
            .field("table", &self.table)
            .field("row_id", &self.row_id)
            .finish_non_exhaustive()
    }
}

impl RowBinding {
    /// Starts the binding of row `row_id` of `table`.
    pub(crate) fn new(table: &'static str, row_id: impl Into<String>) -> Self {
        let row_id = row_id.into();
        let mut binding = Self {
            table,
            row_id: String::new(),
            encoded: Vec::with_capacity(256),
        };
        binding.push_bytes(BINDING_DOMAIN);
        binding.push_bytes(table.as_bytes());
        binding.push_bytes(row_id.as_bytes());
        binding.row_id = row_id;
        binding
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        self.encoded.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.encoded.extend_from_slice(bytes);
    }

    /// Adds a text column.
    #[must_use]
    pub(crate) fn text(mut self, value: &str) -> Self {
        self.encoded.push(b's');
        self.push_bytes(value.as_bytes());
        self
    }

    /// Adds a byte column.
    #[must_use]
    pub(crate) fn bytes(mut self, value: &[u8]) -> Self {
        self.encoded.push(b'b');
        self.push_bytes(value);
        self
    }

    /// Adds an integer column.
    #[must_use]
    pub(crate) fn integer(mut self, value: i64) -> Self {
        self.encoded.push(b'i');
        self.encoded.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Adds a nullable text column; `NULL` and `''` bind differently.
    #[must_use]
    pub(crate) fn optional_text(self, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    /// Adds a nullable integer column.
    #[must_use]
    pub(crate) fn optional_integer(self, value: Option<i64>) -> Self {
        match value {
            Some(value) => self.integer(value),
            None => self.null(),
        }
    }

    fn null(mut self) -> Self {
        self.encoded.push(b'n');
        self
    }

    pub(crate) fn table(&self) -> &'static str {
        self.table
    }

    pub(crate) fn row_id(&self) -> &str {
        &self.row_id
    }
}

/// Seals and opens row bodies under the data key.
#[derive(Clone)]
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub(crate) fn new(key: &DataKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(key.as_bytes())),
        }
    }

    /// Serialises `body` as JSON and seals it for the row of `binding`.
    pub(crate) fn seal<T: Serialize>(&self, binding: &RowBinding, body: &T) -> CoreResult<Vec<u8>> {
        let plaintext = serde_json::to_vec(body).map_err(|error| {
            CoreError::Internal(format!(
                "{} row {} cannot be serialised: {error}",
                binding.table(),
                binding.row_id()
            ))
        })?;
        self.seal_bytes(binding, &plaintext)
    }

    pub(crate) fn seal_bytes(&self, binding: &RowBinding, plaintext: &[u8]) -> CoreResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &binding.encoded,
                },
            )
            .map_err(|_| {
                CoreError::Internal(format!(
                    "{} row {} cannot be encrypted",
                    binding.table(),
                    binding.row_id()
                ))
            })?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens a sealed body of the row of `binding` and parses its JSON.
    pub(crate) fn open<T: DeserializeOwned>(&self, binding: &RowBinding, sealed: &[u8]) -> CoreResult<T> {
        let plaintext = self.open_bytes(binding, sealed)?;
        serde_json::from_slice(&plaintext).map_err(|error| {
            tracing::error!(
                table = binding.table(),
                row_id = binding.row_id(),
                %error,
                "authenticated row body does not parse"
            );
            CoreError::Internal(format!(
                "{} row {} has a body that does not parse",
                binding.table(),
                binding.row_id()
            ))
        })
    }

    pub(crate) fn open_bytes(&self, binding: &RowBinding, sealed: &[u8]) -> CoreResult<Vec<u8>> {
        let undecryptable = |why: &'static str| {
            tracing::error!(
                table = binding.table(),
                row_id = binding.row_id(),
                why,
                "row cannot be decrypted"
            );
            CoreError::Internal(format!(
                "{} row {} cannot be decrypted: {why}",
                binding.table(),
                binding.row_id()
            ))
        };
        let Some((&format, rest)) = sealed.split_first() else {
            return Err(undecryptable("the sealed value is empty"));
        };
        if format != FORMAT_V1 {
            return Err(undecryptable("unknown sealed format"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(undecryptable("the sealed value is truncated"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &binding.encoded,
                },
            )
            .map_err(|_| undecryptable("wrong data key, or the row was altered or moved"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&DataKey::from_bytes([byte; 32]))
    }

    fn binding(id: &str) -> RowBinding {
        RowBinding::new("flags", id).text("phelps-so").integer(1)
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let sealer = sealer(1);
        let first = sealer.seal(&binding("a"), &"Jordan Avery").unwrap();
        let second = sealer.seal(&binding("a"), &"Jordan Avery").unwrap();
        assert_ne!(first, second, "each write gets its own nonce");
        let opened: String = sealer.open(&binding("a"), &first).unwrap();
        assert_eq!(opened, "Jordan Avery");
        assert!(!first.windows(6).any(|window| window == b"Jordan"));
    }

    #[test]
    fn another_row_another_column_value_or_another_key_does_not_open() {
        let sealed = sealer(1).seal(&binding("a"), &"x").unwrap();
        for (name, result) in [
            ("other row", sealer(1).open_bytes(&binding("b"), &sealed)),
            (
                "edited column",
                sealer(1).open_bytes(&RowBinding::new("flags", "a").text("phelps-so").integer(2), &sealed),
            ),
            (
                "other table",
                sealer(1).open_bytes(&RowBinding::new("consents", "a").text("phelps-so").integer(1), &sealed),
            ),
            ("other key", sealer(2).open_bytes(&binding("a"), &sealed)),
            ("truncated", sealer(1).open_bytes(&binding("a"), &sealed[..20])),
            ("empty", sealer(1).open_bytes(&binding("a"), &[])),
        ] {
            let error = result.expect_err(name);
            assert!(
                matches!(error, CoreError::Internal(ref message) if message.contains("cannot be decrypted")),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn bindings_are_unambiguous() {
        let split_one = RowBinding::new("flags", "a").text("bc");
        let split_two = RowBinding::new("flags", "ab").text("c");
        assert_ne!(split_one.encoded, split_two.encoded);
        let null = RowBinding::new("flags", "a").optional_text(None);
        let empty = RowBinding::new("flags", "a").optional_text(Some(""));
        assert_ne!(null.encoded, empty.encoded);
    }
}
