//! The one place where domain errors become gRPC statuses. The match is
//! exhaustive with no catch-all arm, so a new error variant does not compile
//! until someone decides its code. Internal detail is logged, never sent.

use flagnet_core::CoreError;
use tonic::{Code, Status};

/// Maps a domain error to the status the caller sees.
pub fn to_status(error: CoreError) -> Status {
    match error {
        CoreError::InvalidArgument { field, reason } => Status::invalid_argument(format!("{field}: {reason}")),
        CoreError::Unauthenticated(reason) => Status::unauthenticated(reason),
        CoreError::PermissionDenied(reason) => Status::permission_denied(reason),
        CoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
        CoreError::FailedPrecondition(reason) => Status::failed_precondition(reason),
        CoreError::Aborted(reason) => Status::aborted(reason),
        CoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "dependency unavailable");
            Status::unavailable("the node cannot serve this request right now; try again")
        }
        CoreError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            Status::internal("internal error")
        }
    }
}

/// The status code an error maps to, for logs and audit outcomes.
pub fn code_of(error: &CoreError) -> Code {
    match error {
        CoreError::InvalidArgument { .. } => Code::InvalidArgument,
        CoreError::Unauthenticated(_) => Code::Unauthenticated,
        CoreError::PermissionDenied(_) => Code::PermissionDenied,
        CoreError::NotFound(_) => Code::NotFound,
        CoreError::FailedPrecondition(_) => Code::FailedPrecondition,
        CoreError::Aborted(_) => Code::Aborted,
        CoreError::Unavailable(_) => Code::Unavailable,
        CoreError::Internal(_) => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let status = to_status(CoreError::invalid("lookup.purpose", "is required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "lookup.purpose: is required");
        let status = to_status(CoreError::Internal("sqlite: disk I/O error at page 7".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("sqlite"));
        let status = to_status(CoreError::Unavailable("store pool closed".into()));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("pool"));
        for error in [
            CoreError::Unauthenticated("x".into()),
            CoreError::PermissionDenied("x".into()),
            CoreError::NotFound("flag".into()),
            CoreError::FailedPrecondition("x".into()),
            CoreError::Aborted("x".into()),
        ] {
            assert_eq!(to_status(error.clone()).code(), code_of(&error));
        }
    }
}
