//! The audit error: what can go wrong writing, reading, proving or verifying
//! the log. A request whose record meets [`AuditError::Unavailable`] must fail
//! with UNAVAILABLE and disclose nothing; the server maps the rest through
//! `flagnet_core::CoreError`. Messages never carry record content.

use flagnet_core::CoreError;
use thiserror::Error;

/// A failure of the audit log.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuditError {
    /// The record could not be made durable in time (queue full, commit
    /// failed, commit too slow, writer stopped, log refused at open).
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// The caller asked for something malformed; `field` names it.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// No record, checkpoint or tree of that index or size.
    #[error("{0} not found")]
    NotFound(String),
    /// Stored bytes that do not decode, or a store that does not behave.
    #[error("audit store: {0}")]
    Store(String),
    /// A key file that cannot be read, parsed or written.
    #[error("audit key: {0}")]
    Key(String),
    /// A signature or proof that does not verify.
    #[error("audit verification failed: {0}")]
    Verification(String),
}

impl AuditError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::Error> for AuditError {
    fn from(error: rusqlite::Error) -> Self {
        AuditError::Store(error.to_string())
    }
}

impl From<AuditError> for CoreError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::Unavailable(reason) => CoreError::Unavailable(reason),
            AuditError::Invalid { field, reason } => CoreError::InvalidArgument { field, reason },
            AuditError::NotFound(what) => CoreError::NotFound(what),
            AuditError::Store(reason) => CoreError::Internal(format!("audit store: {reason}")),
            AuditError::Key(reason) => CoreError::Internal(format!("audit key: {reason}")),
            AuditError::Verification(reason) => CoreError::FailedPrecondition(format!("audit verification: {reason}")),
        }
    }
}
