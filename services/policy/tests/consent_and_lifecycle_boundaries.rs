//! Consent periods, revocation, review dates and time-bound holds decided
//! through the engine at their boundary instants, with an injectable clock:
//! one second before, at, and one second after each.

mod support;

use flagnet_core::consent::Revocation;
use flagnet_core::{Clock, FieldClass, FixedClock, Flag, Purpose, TimeBoundBasis};
use flagnet_policy::{DecisionEngine, DenyReason, Disclosure};
use support::{active_flag, actor, consent, default_engine};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

const SECOND: Duration = Duration::seconds(1);

/// Decides a rolla-pd dispatcher's emergency lookup at each of `instants`.
fn presence_at(
    engine: &DecisionEngine,
    clock: &FixedClock,
    flag: &Flag,
    consents: &[flagnet_core::Consent],
    instants: [OffsetDateTime; 3],
) -> [Disclosure; 3] {
    let dispatcher = actor("rolla-pd", &["dispatcher"]);
    instants.map(|instant| {
        clock.set(instant);
        engine.decide(&dispatcher, Purpose::EmergencyResponse, flag, consents, clock.now())
    })
}

fn around(instant: OffsetDateTime) -> [OffsetDateTime; 3] {
    [instant - SECOND, instant, instant + SECOND]
}

fn summary(disclosures: &[Disclosure; 3]) -> [Result<Vec<FieldClass>, DenyReason>; 3] {
    disclosures.clone().map(|disclosure| {
        if disclosure.discloses_presence() {
            Ok(disclosure.allowed().iter().collect())
        } else {
            Err(disclosure.withheld()[0].1)
        }
    })
}

fn shown() -> Result<Vec<FieldClass>, DenyReason> {
    Ok(vec![FieldClass::Presence, FieldClass::Response])
}

#[tokio::test]
async fn a_consent_starts_at_valid_from_inclusive() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let flag = active_flag("phelps-so");
    let mut grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    grant.valid_from = datetime!(2026-03-01 8:00 UTC);
    let decisions = presence_at(&engine, &clock, &flag, &[grant], around(datetime!(2026-03-01 8:00 UTC)));
    assert_eq!(summary(&decisions), [Err(DenyReason::NoConsent), shown(), shown()]);
}

#[tokio::test]
async fn a_consent_ends_at_valid_until_exclusive() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let flag = active_flag("phelps-so");
    let mut grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    grant.valid_until = Some(datetime!(2026-09-30 17:00 UTC));
    let decisions = presence_at(
        &engine,
        &clock,
        &flag,
        &[grant],
        around(datetime!(2026-09-30 17:00 UTC)),
    );
    assert_eq!(
        summary(&decisions),
        [shown(), Err(DenyReason::NoConsent), Err(DenyReason::NoConsent)]
    );
}

#[tokio::test]
async fn a_revocation_takes_effect_at_its_instant() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let flag = active_flag("phelps-so");
    let revoked_at = datetime!(2026-06-15 14:30:00 UTC);
    let mut grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    grant.revocation = Some(Revocation {
        at: revoked_at,
        by: "subject".into(),
        reason: "withdrawn in writing".into(),
    });
    let decisions = presence_at(&engine, &clock, &flag, &[grant], around(revoked_at));
    assert_eq!(
        summary(&decisions),
        [shown(), Err(DenyReason::NoConsent), Err(DenyReason::NoConsent)]
    );
}

#[tokio::test]
async fn a_second_consent_keeps_disclosure_going_when_the_first_is_revoked() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let flag = active_flag("phelps-so");
    let revoked_at = datetime!(2026-06-15 14:30:00 UTC);
    let mut first = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    first.revocation = Some(Revocation {
        at: revoked_at,
        by: "subject".into(),
        reason: "replaced".into(),
    });
    let mut second = consent(&flag, &["rolla-pd"], &["dispatcher"], &[FieldClass::Presence]);
    second.valid_from = revoked_at;
    let decisions = presence_at(&engine, &clock, &flag, &[first, second], around(revoked_at));
    let presence_only = Ok(vec![FieldClass::Presence]);
    assert_eq!(summary(&decisions), [shown(), presence_only.clone(), presence_only]);
}

#[tokio::test]
async fn a_flag_is_disclosed_through_its_review_date_and_not_after() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let mut flag = active_flag("phelps-so");
    flag.review_date = Some(date!(2026 - 06 - 30));
    let grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    let decisions = presence_at(&engine, &clock, &flag, &[grant], around(datetime!(2026-07-01 0:00 UTC)));
    assert_eq!(
        summary(&decisions),
        [shown(), Err(DenyReason::Lifecycle), Err(DenyReason::Lifecycle)]
    );
}

fn hold(expires_at: OffsetDateTime, extended_until: Option<OffsetDateTime>) -> TimeBoundBasis {
    TimeBoundBasis {
        kind: "96-hour evaluation hold".into(),
        expires_at: Some(expires_at),
        extended_until,
    }
}

#[tokio::test]
async fn a_96_hour_hold_ends_its_flag_at_the_96th_hour() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let held_at = datetime!(2026-03-01 12:00 UTC);
    let ends = held_at + Duration::hours(96);
    assert_eq!(ends, datetime!(2026-03-05 12:00 UTC));
    let mut flag = active_flag("phelps-so");
    flag.basis = Some(hold(ends, None));
    let grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    let decisions = presence_at(&engine, &clock, &flag, &[grant], around(ends));
    assert_eq!(
        summary(&decisions),
        [shown(), Err(DenyReason::Lifecycle), Err(DenyReason::Lifecycle)]
    );
}

#[tokio::test]
async fn a_recorded_extension_carries_the_hold_to_its_new_end() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let ends = datetime!(2026-03-05 12:00 UTC);
    let extended = ends + Duration::hours(48);
    let mut flag = active_flag("phelps-so");
    flag.basis = Some(hold(ends, Some(extended)));
    let grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    let at_original_end = presence_at(&engine, &clock, &flag, std::slice::from_ref(&grant), around(ends));
    assert_eq!(summary(&at_original_end), [shown(), shown(), shown()]);
    let at_extended_end = presence_at(&engine, &clock, &flag, &[grant], around(extended));
    assert_eq!(
        summary(&at_extended_end),
        [shown(), Err(DenyReason::Lifecycle), Err(DenyReason::Lifecycle)]
    );
}

#[tokio::test]
async fn an_extension_earlier_than_the_hold_does_not_shorten_it() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let ends = datetime!(2026-03-05 12:00 UTC);
    let mut flag = active_flag("phelps-so");
    flag.basis = Some(hold(ends, Some(ends - Duration::hours(24))));
    let grant = consent(&flag, &["south-central-mo"], &["dispatcher"], &FieldClass::ALL);
    let decisions = presence_at(&engine, &clock, &flag, &[grant], around(ends));
    assert_eq!(
        summary(&decisions),
        [shown(), Err(DenyReason::Lifecycle), Err(DenyReason::Lifecycle)]
    );
}

#[tokio::test]
async fn the_lifecycle_is_judged_before_consent() {
    let engine = default_engine().await;
    let clock = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
    let mut flag = active_flag("phelps-so");
    flag.basis = Some(hold(datetime!(2026-03-05 12:00 UTC), None));
    let decisions = presence_at(&engine, &clock, &flag, &[], around(datetime!(2026-03-05 12:00 UTC)));
    assert_eq!(
        summary(&decisions),
        [
            Err(DenyReason::NoConsent),
            Err(DenyReason::Lifecycle),
            Err(DenyReason::Lifecycle)
        ]
    );
}
