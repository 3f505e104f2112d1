//! What the engine-level tests share: the default policy, flags, consents
//! and actors built in code.
#![allow(dead_code)]

pub mod synthetic;

use flagnet_core::{
    AgencyId, Consent, ConsentBasis, ConsentElements, ConsentScope, FieldClass, Flag, FlagContent, FlagStatus, Purpose,
    RoleName,
};
use flagnet_policy::{Actor, DecisionEngine, PolicySource};
use std::path::PathBuf;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

pub const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

pub fn policies() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies"))
}

pub async fn default_engine() -> DecisionEngine {
    DecisionEngine::load(&PolicySource::new(policies()), &[])
        .await
        .expect("default policy loads")
}

pub fn agency(name: &str) -> AgencyId {
    AgencyId::parse(name).unwrap()
}

pub fn role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap()
}

/// A person holding `roles` at `agency_name`, as a peer would assert them.
pub fn actor(agency_name: &str, roles: &[&str]) -> Actor {
    Actor {
        agency: agency(agency_name),
        user: None,
        roles: roles.iter().map(|name| role(name)).collect(),
    }
}

pub fn active_flag(owner: &str) -> Flag {
    Flag {
        id: Uuid::new_v4(),
        owner: agency(owner),
        status: FlagStatus::Active,
        review_date: None,
        basis: None,
        content: FlagContent::default(),
        subject_tokens: vec![],
        created_at: datetime!(2026-01-01 0:00 UTC),
        updated_at: datetime!(2026-01-01 0:00 UTC),
        updated_by: String::new(),
        revision: 1,
    }
}

/// A complete consent for `flag`, valid through 2026, for every purpose.
pub fn consent(flag: &Flag, recipients: &[&str], roles: &[&str], classes: &[FieldClass]) -> Consent {
    Consent {
        id: Uuid::new_v4(),
        flag_id: flag.id,
        owner: flag.owner.clone(),
        basis: ConsentBasis::Subject,
        elements: ConsentElements {
            subject_name: "Jordan Avery".into(),
            granted_by: String::new(),
            disclosing_party: "Phelps County Sheriff".into(),
            information_description: "crisis flag".into(),
            purpose_description: "crisis response".into(),
            revocation_instructions: "in writing".into(),
            expiry_event: String::new(),
            signature_reference: "form-1".into(),
            signed_on: None,
        },
        scope: ConsentScope {
            recipients: recipients.iter().map(|name| agency(name)).collect(),
            roles: roles.iter().map(|name| role(name)).collect(),
            purposes: Purpose::ALL.to_vec(),
            field_classes: classes.to_vec(),
        },
        valid_from: datetime!(2026-01-01 0:00 UTC),
        valid_until: Some(datetime!(2027-01-01 0:00 UTC)),
        recorded_at: datetime!(2026-01-01 0:00 UTC),
        recorded_by: String::new(),
        revocation: None,
    }
}
