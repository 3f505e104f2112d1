//! Writing certificate material to disk so that a reader never sees half a
//! file: write a temporary file beside the target, flush it to disk, rename
//! it over the target, flush the directory. Private keys are created with
//! mode 0600 from the first byte on, never chmod-ed afterwards.
//!
//! This module must never log or return file contents; it is Unix-only,
//! like flagnet's deployments.

use crate::error::{Result, TrustError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart the temporary files of concurrent writers in one process.
static TEMPORARY_FILES: AtomicU64 = AtomicU64::new(0);

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readers {
    /// Owner only (0600): private keys and PKCS#12 files.
    Owner,
    /// Everyone (0644): certificates, CRLs, the federation file.
    Everyone,
}

impl Readers {
    fn mode(self) -> u32 {
        match self {
            Self::Owner => 0o600,
            Self::Everyone => 0o644,
        }
    }
}

/// Replaces `path` with `contents` atomically.
pub(crate) fn write_atomically(path: &Path, contents: &[u8], readers: Readers) -> Result<()> {
    let directory = path
        .parent()
        .ok_or_else(|| TrustError::invalid("path", format!("{} has no parent directory", path.display())))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| TrustError::invalid("path", format!("{} has no file name", path.display())))?;
    let unique = TEMPORARY_FILES.fetch_add(1, Ordering::Relaxed);
    let temporary = directory.join(format!(
        ".{}.tmp-{}-{unique}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_new(&temporary, contents, readers).and_then(|()| {
        std::fs::rename(&temporary, path).map_err(TrustError::io(path))?;
        File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(TrustError::io(directory))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_new(path: &Path, contents: &[u8], readers: Readers) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(readers.mode())
        .open(path)
        .map_err(TrustError::io(path))?;
    file.write_all(contents).map_err(TrustError::io(path))?;
    file.sync_all().map_err(TrustError::io(path))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(TrustError::io(path))
}

pub(crate) fn create_dir(path: &Path, what: &'static str) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(TrustError::AlreadyExists {
            what,
            path: path.to_owned(),
        }),
        Err(error) => Err(TrustError::Io {
            path: path.to_owned(),
            source: error,
        }),
    }
}

pub(crate) fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(TrustError::io(path))
}

/// The entries of a directory, sorted by name.
pub(crate) fn entries(directory: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(TrustError::io(directory))? {
        paths.push(entry.map_err(TrustError::io(directory))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// An exclusive advisory lock on `path` (created if missing), held until
/// the guard is dropped; it serialises serial numbers and CRL updates
/// between concurrent `flagctl` runs.
pub(crate) fn lock(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(Readers::Owner.mode())
        .open(path)
        .map_err(TrustError::io(path))?;
    file.lock().map_err(TrustError::io(path))?;
    Ok(file)
}
