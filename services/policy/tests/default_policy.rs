//! The default policy in `policies/` decided through the engine, with real
//! Casbin and consents built here.

use flagnet_core::{
    AgencyId, Consent, ConsentBasis, ConsentElements, ConsentScope, FieldClass, Flag, FlagContent, FlagStatus, Purpose,
    RoleName, UserId,
};
use flagnet_policy::{Actor, ClassDecision, DecisionEngine, DenyReason, Operation, PolicySource};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

async fn engine() -> DecisionEngine {
    DecisionEngine::load(
        &PolicySource::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies")),
        &[],
    )
    .await
    .expect("default policy loads")
}

fn agency(name: &str) -> AgencyId {
    AgencyId::parse(name).unwrap()
}

fn actor(engine: &DecisionEngine, agency_name: &str, role: &str) -> Actor {
    let user = UserId::parse(&format!("{role}1")).unwrap();
    let roles = engine.roles_of(&agency(agency_name), &user);
    assert!(!roles.is_empty(), "{role}1 at {agency_name} has roles");
    Actor {
        agency: agency(agency_name),
        user: Some(user),
        roles,
    }
}

fn flag(owner: &str) -> Flag {
    Flag {
        id: Uuid::new_v4(),
        owner: agency(owner),
        status: FlagStatus::Active,
        review_date: None,
        basis: None,
        content: FlagContent::default(),
        subject_tokens: vec![],
        created_at: NOW,
        updated_at: NOW,
        updated_by: String::new(),
        revision: 1,
    }
}

fn consent(flag: &Flag, recipients: &[&str], roles: &[&str], classes: &[FieldClass]) -> Consent {
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
            recipients: recipients.iter().map(|r| agency(r)).collect(),
            roles: roles.iter().map(|r| RoleName::parse(r).unwrap()).collect(),
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

const EVERY_ROLE: [&str; 4] = ["dispatcher", "officer", "liaison", "records_clerk"];

#[tokio::test]
async fn own_dispatcher_sees_presence_response_identity_but_never_clinical() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(&flag, &["south-central-mo"], &EVERY_ROLE, &FieldClass::ALL)];
    let dispatcher = actor(&engine, "phelps-so", "dispatcher");
    let disclosure = engine.decide(&dispatcher, Purpose::EmergencyResponse, &flag, &consents, NOW);
    let allowed: Vec<_> = disclosure.allowed().iter().collect();
    assert_eq!(
        allowed,
        vec![FieldClass::Presence, FieldClass::Response, FieldClass::Identity]
    );
    assert_eq!(
        disclosure.verdict(FieldClass::Clinical),
        ClassDecision::Denied(DenyReason::Policy)
    );
}

#[tokio::test]
async fn own_liaison_sees_clinical_and_cit_officer_inherits_officer() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(
        &flag,
        &["phelps-so"],
        &["liaison", "officer"],
        &FieldClass::ALL,
    )];
    let liaison = actor(&engine, "phelps-so", "liaison");
    assert!(
        engine
            .decide(&liaison, Purpose::CrisisFollowup, &flag, &consents, NOW)
            .is_allowed(FieldClass::Clinical)
    );
    let cit = actor(&engine, "phelps-so", "cit_officer");
    let disclosure = engine.decide(&cit, Purpose::EmergencyResponse, &flag, &consents, NOW);
    assert!(disclosure.is_allowed(FieldClass::Safety));
    assert!(disclosure.is_allowed(FieldClass::Contacts));
    assert!(!disclosure.is_allowed(FieldClass::Clinical));
}

#[tokio::test]
async fn neighbour_dispatcher_gets_presence_and_response_only() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(&flag, &["south-central-mo"], &EVERY_ROLE, &FieldClass::ALL)];
    let neighbour = actor(&engine, "rolla-pd", "dispatcher");
    let allowed: Vec<_> = engine
        .decide(&neighbour, Purpose::EmergencyResponse, &flag, &consents, NOW)
        .allowed()
        .iter()
        .collect();
    assert_eq!(allowed, vec![FieldClass::Presence, FieldClass::Response]);
}

#[tokio::test]
async fn home_only_consent_hides_the_flag_from_neighbours() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(&flag, &["phelps-so"], &EVERY_ROLE, &FieldClass::ALL)];
    let neighbour = actor(&engine, "rolla-pd", "officer");
    let disclosure = engine.decide(&neighbour, Purpose::EmergencyResponse, &flag, &consents, NOW);
    assert!(!disclosure.discloses_presence());
    assert_eq!(
        disclosure.verdict(FieldClass::Presence),
        ClassDecision::Denied(DenyReason::NoConsent)
    );
}

#[tokio::test]
async fn consent_narrower_than_policy_is_named_as_consent() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(
        &flag,
        &["phelps-so"],
        &["officer"],
        &[FieldClass::Presence, FieldClass::Response],
    )];
    let officer = actor(&engine, "phelps-so", "officer");
    let disclosure = engine.decide(&officer, Purpose::EmergencyResponse, &flag, &consents, NOW);
    assert_eq!(
        disclosure.verdict(FieldClass::Safety),
        ClassDecision::Denied(DenyReason::Consent)
    );
    assert_eq!(
        disclosure.verdict(FieldClass::Clinical),
        ClassDecision::Denied(DenyReason::Policy)
    );
}

#[tokio::test]
async fn expired_or_revoked_consent_and_lapsed_flags_disclose_nothing() {
    let engine = engine().await;
    let mut flag = flag("phelps-so");
    let mut expired = consent(&flag, &["phelps-so"], &EVERY_ROLE, &FieldClass::ALL);
    expired.valid_until = Some(NOW);
    let dispatcher = actor(&engine, "phelps-so", "dispatcher");
    assert!(
        !engine
            .decide(&dispatcher, Purpose::EmergencyResponse, &flag, &[expired], NOW)
            .discloses_presence()
    );

    let mut revoked = consent(&flag, &["phelps-so"], &EVERY_ROLE, &FieldClass::ALL);
    revoked.revocation = Some(flagnet_core::consent::Revocation {
        at: NOW,
        by: "x".into(),
        reason: "asked".into(),
    });
    assert!(
        !engine
            .decide(&dispatcher, Purpose::EmergencyResponse, &flag, &[revoked], NOW)
            .discloses_presence()
    );

    let good = consent(&flag, &["phelps-so"], &EVERY_ROLE, &FieldClass::ALL);
    flag.status = FlagStatus::Lapsed;
    let disclosure = engine.decide(&dispatcher, Purpose::EmergencyResponse, &flag, &[good], NOW);
    assert_eq!(
        disclosure.verdict(FieldClass::Presence),
        ClassDecision::Denied(DenyReason::Lifecycle)
    );
}

#[tokio::test]
async fn auditors_and_privacy_officers_see_no_content_and_only_clerks_maintain_records() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(
        &flag,
        &["phelps-so"],
        &["auditor", "privacy_officer"],
        &FieldClass::ALL,
    )];
    for role in ["auditor", "privacy_officer"] {
        let person = actor(&engine, "phelps-so", role);
        for purpose in Purpose::ALL {
            assert!(
                engine
                    .decide(&person, purpose, &flag, &consents, NOW)
                    .allowed()
                    .is_empty(),
                "{role} {purpose}"
            );
        }
        assert!(!engine.may(&person, &agency("phelps-so"), Operation::MaintainRecords));
    }
    let clerk = actor(&engine, "phelps-so", "records_clerk");
    assert!(engine.may(&clerk, &agency("phelps-so"), Operation::MaintainRecords));
    assert!(!engine.may(&clerk, &agency("rolla-pd"), Operation::MaintainRecords));
}

#[tokio::test]
async fn an_unknown_agency_or_role_gets_nothing() {
    let engine = engine().await;
    let flag = flag("phelps-so");
    let consents = [consent(&flag, &["any-agency"], &["dispatcher"], &FieldClass::ALL)];
    let stranger = Actor {
        agency: agency("any-agency"),
        user: None,
        roles: vec![RoleName::parse("dispatcher").unwrap()],
    };
    assert!(
        !engine
            .decide(&stranger, Purpose::EmergencyResponse, &flag, &consents, NOW)
            .discloses_presence()
    );
    assert!(
        engine
            .roles_of(&agency("phelps-so"), &UserId::parse("nobody").unwrap())
            .is_empty()
    );
}
