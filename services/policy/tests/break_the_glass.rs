//! Break-the-glass through the engine with the default policy: purpose
//! `emergency_override` grants what the policy names for the role, without
//! the subject's consent, only while the flag's lifecycle allows disclosure,
//! and marks the disclosure as an override.

mod support;

use flagnet_core::consent::Revocation;
use flagnet_core::{FieldClass, FieldClassSet, FlagStatus, Purpose, TimeBoundBasis};
use flagnet_policy::{ClassDecision, DenyReason, Disclosure};
use support::{NOW, active_flag, actor, consent, default_engine};
use time::Duration;

fn set(classes: &[FieldClass]) -> FieldClassSet {
    classes.iter().copied().collect()
}

const ALL_BUT_CLINICAL: [FieldClass; 5] = [
    FieldClass::Presence,
    FieldClass::Response,
    FieldClass::Safety,
    FieldClass::Contacts,
    FieldClass::Identity,
];

#[tokio::test]
async fn a_liaison_in_the_region_gets_every_class_without_any_consent() {
    let engine = default_engine().await;
    let flag = active_flag("phelps-so");
    for agency in ["phelps-so", "rolla-pd", "pulaski-so"] {
        let liaison = actor(agency, &["liaison"]);
        let disclosure = engine.decide(&liaison, Purpose::EmergencyOverride, &flag, &[], NOW);
        assert_eq!(disclosure.allowed(), FieldClassSet::all(), "liaison at {agency}");
        assert!(disclosure.is_override(), "liaison at {agency}");
    }
}

#[tokio::test]
async fn a_cit_officer_in_the_region_gets_all_but_clinical() {
    let engine = default_engine().await;
    let flag = active_flag("phelps-so");
    let cit = actor("rolla-pd", &["cit_officer"]);
    let disclosure = engine.decide(&cit, Purpose::EmergencyOverride, &flag, &[], NOW);
    assert_eq!(disclosure.allowed(), set(&ALL_BUT_CLINICAL));
    assert_eq!(
        disclosure.verdict(FieldClass::Clinical),
        ClassDecision::Denied(DenyReason::Policy)
    );
    assert!(disclosure.is_override());
}

#[tokio::test]
async fn roles_without_override_rules_get_nothing_extra() {
    let engine = default_engine().await;
    let flag = active_flag("phelps-so");
    let everything = [consent(
        &flag,
        &["south-central-mo"],
        &["dispatcher", "officer", "records_clerk", "privacy_officer", "auditor"],
        &FieldClass::ALL,
    )];
    for role in ["dispatcher", "officer", "records_clerk", "privacy_officer", "auditor"] {
        for agency in ["phelps-so", "rolla-pd"] {
            let person = actor(agency, &[role]);
            let disclosure = engine.decide(&person, Purpose::EmergencyOverride, &flag, &everything, NOW);
            assert_eq!(
                disclosure,
                Disclosure::denied_all(DenyReason::Policy),
                "{role} at {agency}"
            );
            assert!(!disclosure.is_override());
        }
    }
}

#[tokio::test]
async fn an_officer_cannot_break_the_glass_but_a_cit_officer_who_is_also_an_officer_can() {
    let engine = default_engine().await;
    let flag = active_flag("phelps-so");
    let both = actor("rolla-pd", &["officer", "cit_officer"]);
    let disclosure = engine.decide(&both, Purpose::EmergencyOverride, &flag, &[], NOW);
    assert_eq!(disclosure.allowed(), set(&ALL_BUT_CLINICAL));
    assert!(disclosure.is_override());
}

#[tokio::test]
async fn outside_the_region_there_is_no_break_the_glass() {
    let engine = default_engine().await;
    let phelps_flag = active_flag("phelps-so");
    let boone_flag = active_flag("boone-so");
    for (asking, flag) in [
        ("boone-so", &phelps_flag),
        ("phelps-so", &boone_flag),
        ("boone-so", &boone_flag),
    ] {
        for role in ["liaison", "cit_officer"] {
            let person = actor(asking, &[role]);
            let disclosure = engine.decide(&person, Purpose::EmergencyOverride, flag, &[], NOW);
            assert!(
                disclosure.allowed().is_empty(),
                "{role} at {asking} on a {} flag",
                flag.owner
            );
            assert!(!disclosure.is_override());
        }
    }
}

#[tokio::test]
async fn a_revoked_or_narrow_consent_does_not_stop_break_the_glass() {
    let engine = default_engine().await;
    let flag = active_flag("phelps-so");
    let mut revoked = consent(&flag, &["phelps-so"], &["liaison"], &[FieldClass::Presence]);
    revoked.revocation = Some(Revocation {
        at: NOW - Duration::hours(1),
        by: "subject".into(),
        reason: "withdrawn".into(),
    });
    let narrow = consent(&flag, &["phelps-so"], &["liaison"], &[FieldClass::Presence]);
    let liaison = actor("rolla-pd", &["liaison"]);
    for consents in [vec![revoked], vec![narrow]] {
        let disclosure = engine.decide(&liaison, Purpose::EmergencyOverride, &flag, &consents, NOW);
        assert_eq!(disclosure.allowed(), FieldClassSet::all());
        assert!(disclosure.is_override());
    }
}

#[tokio::test]
async fn the_lifecycle_still_applies_to_break_the_glass() {
    let engine = default_engine().await;
    let liaison = actor("rolla-pd", &["liaison"]);
    for status in [
        FlagStatus::Lapsed,
        FlagStatus::Unverified,
        FlagStatus::Revoked,
        FlagStatus::Archived,
    ] {
        let mut flag = active_flag("phelps-so");
        flag.status = status;
        let disclosure = engine.decide(&liaison, Purpose::EmergencyOverride, &flag, &[], NOW);
        assert_eq!(disclosure, Disclosure::denied_all(DenyReason::Lifecycle), "{status:?}");
        assert!(!disclosure.is_override());
    }
    let mut overdue = active_flag("phelps-so");
    overdue.review_date = Some(NOW.date() - Duration::days(1));
    let mut expired_hold = active_flag("phelps-so");
    expired_hold.basis = Some(TimeBoundBasis {
        kind: "96-hour evaluation hold".into(),
        expires_at: Some(NOW - Duration::seconds(1)),
        extended_until: None,
    });
    for flag in [overdue, expired_hold] {
        let disclosure = engine.decide(&liaison, Purpose::EmergencyOverride, &flag, &[], NOW);
        assert_eq!(disclosure, Disclosure::denied_all(DenyReason::Lifecycle));
    }
}

#[tokio::test]
async fn ordinary_purposes_are_never_marked_as_overrides() {
    let engine = default_engine().await;
    let flag = active_flag("phelps-so");
    let consents = [consent(
        &flag,
        &["south-central-mo"],
        &["liaison", "officer"],
        &FieldClass::ALL,
    )];
    for purpose in [
        Purpose::EmergencyResponse,
        Purpose::WelfareCheck,
        Purpose::CrisisFollowup,
    ] {
        for person in [actor("phelps-so", &["liaison"]), actor("rolla-pd", &["cit_officer"])] {
            let disclosure = engine.decide(&person, purpose, &flag, &consents, NOW);
            assert!(!disclosure.is_override(), "{purpose}");
        }
    }
    let without_consent = engine.decide(
        &actor("phelps-so", &["liaison"]),
        Purpose::CrisisFollowup,
        &flag,
        &[],
        NOW,
    );
    assert_eq!(without_consent, Disclosure::denied_all(DenyReason::NoConsent));
}
