//! Caller identities: the SPIFFE URI from a certificate's single URI SAN,
//! parsed into a typed [`Identity`]. Bytes of a certificate become a URI in
//! the trust crate; this module owns what the URI means.
//!
//! Accepted forms, nothing else:
//! `spiffe://<federation>/agency/<agency>/node` and
//! `spiffe://<federation>/agency/<agency>/user/<user-id>`.

use crate::error::{CoreError, CoreResult};
use crate::identifier::{AgencyId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest SPIFFE URI accepted.
pub const MAX_SPIFFE_URI_LEN: usize = 2048;

/// Who is calling, within an agency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Principal {
    /// An agency's node (for node-to-node federation calls).
    Node,
    /// A person.
    User(UserId),
}

/// An authenticated caller: federation, agency and principal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub federation: String,
    pub agency: AgencyId,
    pub principal: Principal,
}

impl Identity {
    pub fn node(federation: &str, agency: AgencyId) -> Self {
        Self {
            federation: federation.to_owned(),
            agency,
            principal: Principal::Node,
        }
    }

    pub fn user(federation: &str, agency: AgencyId, user: UserId) -> Self {
        Self {
            federation: federation.to_owned(),
            agency,
            principal: Principal::User(user),
        }
    }

    /// Parses a SPIFFE URI exactly; any other shape is refused.
    pub fn from_spiffe_uri(uri: &str) -> CoreResult<Self> {
        let refuse = |reason: &str| CoreError::Unauthenticated(format!("spiffe id {}: {reason}", shorten(uri)));
        if uri.len() > MAX_SPIFFE_URI_LEN {
            return Err(refuse("too long"));
        }
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| refuse("not a spiffe:// uri"))?;
        if rest.contains(['?', '#', '%']) {
            return Err(refuse("query, fragment and percent-encoding are not allowed"));
        }
        let mut segments = rest.split('/');
        let federation = segments.next().unwrap_or_default();
        check_trust_domain(federation).map_err(|reason| refuse(&reason))?;
        let segments: Vec<&str> = segments.collect();
        let agency_of = |name: &str| AgencyId::parse(name).map_err(|error| refuse(&error.to_string()));
        match segments.as_slice() {
            ["agency", agency, "node"] => Ok(Identity::node(federation, agency_of(agency)?)),
            ["agency", agency, "user", user] => Ok(Identity::user(
                federation,
                agency_of(agency)?,
                UserId::parse(user).map_err(|error| refuse(&error.to_string()))?,
            )),
            _ => Err(refuse("expected /agency/<agency>/node or /agency/<agency>/user/<id>")),
        }
    }

    /// The SPIFFE URI this identity is written as.
    pub fn spiffe_uri(&self) -> String {
        match &self.principal {
            Principal::Node => format!("spiffe://{}/agency/{}/node", self.federation, self.agency),
            Principal::User(user) => format!("spiffe://{}/agency/{}/user/{user}", self.federation, self.agency),
        }
    }

    pub fn user_id(&self) -> Option<&UserId> {
        match &self.principal {
            Principal::User(user) => Some(user),
            Principal::Node => None,
        }
    }

    pub fn is_node(&self) -> bool {
        matches!(self.principal, Principal::Node)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spiffe_uri())
    }
}

/// A SPIFFE trust domain: lower-case letters, digits, `.`, `-`, `_`.
pub fn check_trust_domain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty trust domain".into());
    }
    if name.len() > 255 {
        return Err("trust domain too long".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
    {
        return Err("trust domain may hold only a-z, 0-9, '.', '-' and '_'".into());
    }
    Ok(())
}

fn shorten(uri: &str) -> String {
    let mut short: String = uri.chars().take(120).collect();
    if short.len() < uri.len() {
        short.push('…');
    }
    format!("{short:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_and_nodes() {
        let user = Identity::from_spiffe_uri("spiffe://flagnet.demo/agency/rolla-pd/user/dispatcher1").unwrap();
        assert_eq!(user.agency.as_str(), "rolla-pd");
        assert_eq!(user.user_id().unwrap().as_str(), "dispatcher1");
        assert_eq!(
            user.spiffe_uri(),
            "spiffe://flagnet.demo/agency/rolla-pd/user/dispatcher1"
        );
        let node = Identity::from_spiffe_uri("spiffe://flagnet.demo/agency/phelps-so/node").unwrap();
        assert!(node.is_node());
    }

    #[test]
    fn refuses_every_other_shape() {
        for bad in [
            "",
            "https://flagnet.demo/agency/rolla-pd/node",
            "spiffe://",
            "spiffe:///agency/rolla-pd/node",
            "spiffe://Flagnet/agency/rolla-pd/node",
            "spiffe://flagnet.demo/agency/rolla-pd",
            "spiffe://flagnet.demo/agency/rolla-pd/node/extra",
            "spiffe://flagnet.demo/agency/rolla-pd/user/",
            "spiffe://flagnet.demo/agency//node",
            "spiffe://flagnet.demo/agency/DEFAULT/node",
            "spiffe://flagnet.demo/agency/rolla-pd/user/a/b",
            "spiffe://flagnet.demo/agency/rolla%2dpd/node",
            "spiffe://flagnet.demo/agency/rolla-pd/node?x=1",
            "spiffe://flagnet.demo/agency/rоlla-pd/node",
            "spiffe://flagnet.demo/agency/rolla-pd/user/j\u{200b}doe",
            "spiffe://flagnet.demo/tenant/rolla-pd/node",
        ] {
            let error = Identity::from_spiffe_uri(bad).unwrap_err();
            assert!(matches!(error, CoreError::Unauthenticated(_)), "{bad:?}: {error}");
        }
        let long = format!("spiffe://flagnet.demo/agency/rolla-pd/user/{}", "a".repeat(10_000));
        assert!(Identity::from_spiffe_uri(&long).is_err());
    }
}
