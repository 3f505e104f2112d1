//! The first link of the call chain: the verified certificate on the
//! connection becomes a typed [`Caller`] with the roles the agency assigned.
//! A request without a verified certificate is unauthenticated; there is no
//! default principal. Handlers receive a `Caller` and never look at
//! certificates themselves.

use crate::incoming::PeerInfo;
use flagnet_core::{CoreError, CoreResult, Identity, RoleName};
use flagnet_policy::{Actor, DecisionEngine};

/// An authenticated person or node.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// SHA-256 of the caller's leaf certificate, lowercase hex
    pub certificate_fingerprint: String,
    pub roles: Vec<RoleName>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor {
            agency: self.identity.agency.clone(),
            user: self.identity.user_id().cloned(),
            roles: self.roles.clone(),
        }
    }

    /// The SPIFFE id, as recorded in flag and consent history.
    pub fn spiffe_id(&self) -> String {
        self.identity.spiffe_uri()
    }
}

/// The peer info tonic attached to a request, as a caller of this federation.
pub fn authenticate(peer: Option<&PeerInfo>, federation: &str, engine: &DecisionEngine) -> CoreResult<Caller> {
    let certificate = peer
        .and_then(|peer| peer.certificate.as_ref())
        .ok_or_else(|| CoreError::Unauthenticated("no verified client certificate on this connection".into()))?;
    let identity = certificate.identity.clone();
    if identity.federation != federation {
        return Err(CoreError::Unauthenticated(format!(
            "certificate belongs to federation {:?}, not {federation:?}",
            identity.federation
        )));
    }
    let roles = match identity.user_id() {
        Some(user) => engine.roles_of(&identity.agency, user),
        None => Vec::new(),
    };
    Ok(Caller {
        identity,
        certificate_fingerprint: certificate.fingerprint_sha256.clone(),
        roles,
    })
}

/// Refuses node identities: only people call the person-facing services.
pub fn require_person(caller: &Caller) -> CoreResult<()> {
    if caller.identity.is_node() {
        return Err(CoreError::PermissionDenied(
            "node identities may not call this service".into(),
        ));
    }
    Ok(())
}
