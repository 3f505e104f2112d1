//! Whether a subject's consent covers a request: the asking agency (by id or
//! by region), one of the person's roles (directly or by inheritance), the
//! purpose, and the moment. The answer is the field classes it covers.

use crate::engine::Actor;
use crate::snapshot::PolicySnapshot;
use flagnet_core::{Consent, FieldClassSet, Purpose};
use time::OffsetDateTime;

/// The classes `consent` opens to `actor` for `purpose` at `now`, or `None`
/// when it does not cover the request at all.
pub fn consent_covers(
    snapshot: &PolicySnapshot,
    consent: &Consent,
    actor: &Actor,
    purpose: Purpose,
    now: OffsetDateTime,
) -> Option<FieldClassSet> {
    if !consent.is_active_at(now) {
        return None;
    }
    let scope = &consent.scope;
    let recipient_covered = scope
        .recipients
        .iter()
        .any(|recipient| snapshot.agency_is_in(&actor.agency, recipient));
    let role_covered = actor.roles.iter().any(|held| {
        scope
            .roles
            .iter()
            .any(|consented| snapshot.role_includes(held, consented))
    });
    let purpose_covered = scope.purposes.contains(&purpose);
    (recipient_covered && role_covered && purpose_covered).then(|| scope.field_class_set())
}
