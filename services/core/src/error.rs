//! The core error: every failure the domain can name. The server maps each
//! variant to a gRPC status in exactly one place; nothing here knows gRPC.

use thiserror::Error;

/// A failure of a domain operation, in terms a caller can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// The caller sent something unusable; `field` is the path of the bad
    /// field (for example `flag.subject.phones[0]`).
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The caller's identity could not be established.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The named thing does not exist (or the caller may not know it does).
    #[error("{0} not found")]
    NotFound(String),
    /// The operation conflicts with the current state (for example revoking
    /// a consent twice).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// What the caller acted on moved since they read it (an edit made
    /// against a policy version that is no longer the latest); read again
    /// and retry.
    #[error("aborted: {0}")]
    Aborted(String),
    /// A dependency (store, audit log, peer) cannot serve right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or a corrupt store; the detail is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

/// Result of a domain operation.
pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// An `InvalidArgument` naming the field path and what is wrong with it.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with its field path placed under `prefix`
    /// (`phones[0]` under `flag.subject` becomes `flag.subject.phones[0]`).
    #[must_use]
    pub fn under(self, prefix: &str) -> Self {
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument {
                field: if field.is_empty() {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{field}")
                },
                reason,
            },
            other => other,
        }
    }
}
