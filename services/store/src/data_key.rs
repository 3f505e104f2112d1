//! The node data key: the 32-byte XChaCha20-Poly1305 key under which flag and
//! consent content is sealed at rest. It is read from a hex key file that
//! lives apart from the database, so a copied database file alone discloses
//! nothing.
//!
//! The key's bytes must never appear in a log, an error message or `Debug`
//! output, and nothing here ever writes the key anywhere.

use flagnet_core::{CoreError, CoreResult};
use rand::RngCore;
use std::fmt;
use std::path::Path;

/// The length of a data key, in bytes.
pub const DATA_KEY_LEN: usize = 32;

/// The node data key. `Debug` shows `DataKey(..)`, never the bytes.
#[derive(Clone)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses a key written as hex (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> CoreResult<Self> {
        let bytes =
            hex::decode(text.trim()).map_err(|error| CoreError::invalid("data_key", format!("is not hex: {error}")))?;
        let array: [u8; DATA_KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            CoreError::invalid("data_key", format!("must be {DATA_KEY_LEN} bytes, got {}", bytes.len()))
        })?;
        Ok(Self(array))
    }

    /// Reads a key file holding the key as hex. Warns when the file can be
    /// read by anyone but its owner.
    pub fn load(path: &Path) -> CoreResult<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| CoreError::invalid("data_key_file", format!("cannot read {}: {error}", path.display())))?;
        warn_if_shared(path);
        Self::from_hex(&text).map_err(|error| match error {
            CoreError::InvalidArgument { reason, .. } => {
                CoreError::invalid("data_key_file", format!("{}: {reason}", path.display()))
            }
            other => other,
        })
    }

    /// A fresh random key from the operating system, as hex for a key file.
    pub fn generate_hex() -> String {
        let mut bytes = [0u8; DATA_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "data key file is readable by group or others"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = DataKey::from_bytes([0xab; DATA_KEY_LEN]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "DataKey(..)");
        assert!(!shown.contains("ab"));
    }

    #[test]
    fn generated_keys_load_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.key");
        let hex_key = DataKey::generate_hex();
        assert_eq!(hex_key.len(), 2 * DATA_KEY_LEN);
        assert_ne!(hex_key, DataKey::generate_hex());
        std::fs::write(&path, format!("{hex_key}\n")).unwrap();
        let key = DataKey::load(&path).unwrap();
        assert_eq!(hex::encode(key.as_bytes()), hex_key);

        std::fs::write(&path, "not hex").unwrap();
        let error = DataKey::load(&path).unwrap_err();
        assert!(matches!(error, CoreError::InvalidArgument { ref field, ref reason }
            if field == "data_key_file" && reason.contains("not hex")));

        std::fs::write(&path, "abcd").unwrap();
        let error = DataKey::load(&path).unwrap_err().to_string();
        assert!(error.contains("must be 32 bytes, got 2"), "{error}");
        assert!(error.contains("data.key"), "{error}");

        let missing = DataKey::load(&dir.path().join("missing.key")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }
}
