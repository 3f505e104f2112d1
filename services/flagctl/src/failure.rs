//! What flagctl says when something fails: a usage problem, a status from the
//! node, or a connection the node (or flagctl) refused. Transport errors are
//! unwound to their cause so a refused certificate reads as one.

use flagnet_trust::client::ClientProfile;
use std::fmt;

#[derive(Debug)]
pub enum Failure {
    /// the command line or profile is wrong
    Usage(String),
    /// the node answered with an error status
    Status(tonic::Status),
    /// no answer: connection or handshake failed
    Connection(String),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Status(_) => 3,
            Failure::Connection(_) => 4,
        }
    }

    /// Explains a status, adding the likely fix for transport-level refusals.
    pub fn from_status(profile: &ClientProfile, status: tonic::Status) -> Self {
        if !matches!(
            status.code(),
            tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
        ) {
            return Failure::Status(status);
        }
        let cause = std::error::Error::source(&status)
            .map(flagnet_trust::channel::describe_transport_error)
            .unwrap_or_default();
        let detail = format!("{} {cause}", status.message()).to_lowercase();
        let certificate = profile.certificate.display();
        let hint = if detail.contains("certificaterequired") || detail.contains("certificate required") {
            format!(
                "the node at {} wanted a client certificate and got none; check `certificate` in the profile",
                profile.endpoint
            )
        } else if detail.contains("unknownca") || detail.contains("unknown ca") || detail.contains("unknownissuer") {
            format!(
                "the node at {} does not trust the CA that issued {certificate}",
                profile.endpoint
            )
        } else if detail.contains("decrypterror") || detail.contains("badsignature") {
            format!(
                "the node at {} refused {certificate}: its signature does not verify against the CA the node trusts for that agency (was it issued by another CA?)",
                profile.endpoint
            )
        } else if detail.contains("certificateexpired") || detail.contains("expired") {
            format!(
                "the node at {} refused {certificate}: the certificate has expired or is not yet valid",
                profile.endpoint
            )
        } else if detail.contains("certificaterevoked") || detail.contains("revoked") {
            format!(
                "the node at {} refused {certificate}: it has been revoked",
                profile.endpoint
            )
        } else if detail.contains("badcertificate")
            || detail.contains("bad certificate")
            || detail.contains("access denied")
        {
            format!("the node at {} refused {certificate}: {cause}", profile.endpoint)
        } else if detail.contains("connection refused") {
            format!("nothing is listening at {}; is the node running?", profile.endpoint)
        } else {
            return Failure::Connection(format!(
                "{} (presenting {certificate}): {} {cause}",
                profile.endpoint,
                status.message()
            ));
        };
        Failure::Connection(hint)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => f.write_str(message),
            Failure::Status(status) => write!(f, "the node said {:?}: {}", status.code(), status.message()),
            Failure::Connection(message) => f.write_str(message),
        }
    }
}
