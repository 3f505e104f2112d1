//! The benchmark's subjects: subject `i` is made from `i` alone, so the
//! seeder and the load generator agree without sharing state. Each has a
//! unique phone number (`573-XXX-NNNN`, a valid Missouri number), an
//! address, a name and birth date (which repeat, as common names do), a
//! full flag of every field class, and a consent covering the region
//! `south-central-mo`, so a dispatcher's lookup by phone finds one flag and
//! sees presence, response and identity, with safety, contacts and clinical
//! withheld by policy.

use flagnet_proto::v1 as pb;
use flagnet_sandbox::BulkSubject;
use flagnet_sandbox::seed::full_consent;
use time::{Duration, OffsetDateTime};

/// The node that is measured.
pub const HOME: &str = "phelps-so";
/// Its peers: the demo's other two agencies and the benchmark's fourth.
pub const PEERS: [&str; 3] = ["rolla-pd", "pulaski-so", crate::policy::FOURTH_AGENCY];

const GIVEN: [&str; 16] = [
    "Jordan", "Maria", "Samuel", "Lena", "Trevor", "Casey", "Dana", "Avery", "Morgan", "Riley", "Jamie", "Taylor",
    "Quinn", "Reese", "Hayden", "Rowan",
];
const FAMILY: [&str; 16] = [
    "Avery",
    "Delgado",
    "Okafor",
    "Whitfield",
    "Banks",
    "Morgan",
    "Kowalski",
    "Patel",
    "Nguyen",
    "Schmidt",
    "Brooks",
    "Romero",
    "Foster",
    "Haddad",
    "Lindqvist",
    "Murphy",
];
const STREETS: [&str; 8] = [
    "Pine Street",
    "Elm Avenue",
    "Oak Court",
    "Highway 63 South",
    "Bridge Road",
    "University Drive",
    "Fort Road",
    "Cedar Lane",
];

/// The phone number of subject `index` as a dispatcher would type it.
pub fn phone(index: u64) -> String {
    format!("573-{:03}-{:04}", 200 + (index / 10_000) % 800, index % 10_000)
}

fn birth_date(index: u64) -> String {
    let base = time::macros::date!(1940 - 01 - 01);
    (base + Duration::days((index.wrapping_mul(7_919) % 25_000) as i64)).to_string()
}

/// Subject `index` as `owner`'s records clerk enters it, with its consent.
pub fn subject(owner: &str, index: u64, now: OffsetDateTime) -> BulkSubject {
    let given = GIVEN[(index % 16) as usize];
    let family = FAMILY[((index / 16) % 16) as usize];
    let flag = pb::FlagInput {
        subject: Some(pb::Subject {
            given_name: given.into(),
            family_name: family.into(),
            birth_date: birth_date(index),
            phones: vec![phone(index)],
            addresses: vec![pb::Address {
                street: format!("{} {}", 1 + index % 9_000, STREETS[(index % 8) as usize]),
                unit: String::new(),
                city: "Rolla".into(),
                region: "MO".into(),
                postal_code: "65401".into(),
            }],
        }),
        status: pb::FlagStatus::Active as i32,
        review_date: (now + Duration::days(180)).date().to_string(),
        basis: None,
        presence: Some(pb::Presence {
            owner_agency: owner.into(),
            contact_name: "Records unit".into(),
            contact_phone: "573-555-0100".into(),
        }),
        response: Some(pb::Response {
            recommended: pb::RecommendedResponse::CitOfficer as i32,
            approach_guidance: "speak calmly, use first name, avoid sirens on approach".into(),
        }),
        safety: Some(pb::Safety {
            notes: "has reacted to uniforms with panic; no weapons history".into(),
        }),
        contacts: Some(pb::Contacts {
            contacts: vec![pb::Contact {
                name: "Pat Avery".into(),
                relationship: "sibling".into(),
                phone: "573-555-0111".into(),
            }],
        }),
        clinical: Some(pb::Clinical {
            conditions: vec!["bipolar I disorder".into()],
            care_provider: "Pathways Community Behavioral Healthcare".into(),
            crisis_plan: "call the liaison first; prefers the county crisis unit".into(),
            hold_history: vec![pb::HoldEvent {
                date: "2025-10-03".into(),
                kind: "96-hour evaluation".into(),
                facility: "Phelps Health".into(),
            }],
        }),
    };
    let consent = full_consent(
        "",
        &format!("{given} {family}"),
        &["south-central-mo"],
        now - Duration::days(30),
        now + Duration::days(365),
    );
    BulkSubject {
        flag,
        consent: Some(consent),
    }
}

/// A dispatcher's lookup of subject `index` by phone.
pub fn lookup(index: u64, scope: pb::LookupScope) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone(index))),
        }),
        purpose: "emergency_response".into(),
        incident_id: format!("CAD-2026-{:07}", index % 10_000_000),
        scope: scope as i32,
        override_reason: String::new(),
    }
}

/// What a dispatcher of the home agency should see of one match from
/// `owner`: presence, response and identity of the home agency's own flags
/// (safety, contacts and clinical withheld), presence and response of a
/// neighbour's (identity withheld too).
pub fn check_match(found: &pb::Match, owner: &str) -> Result<(), String> {
    if found.owner_agency != owner {
        return Err(format!(
            "a match owned by {} where {owner} was expected",
            found.owner_agency
        ));
    }
    let own = owner == HOME;
    let disclosed = (
        found.presence.is_some(),
        found.response.is_some(),
        found.identity.is_some(),
        found.safety.is_some() || found.contacts.is_some() || found.clinical.is_some(),
    );
    let (expected, withheld) = if own {
        ((true, true, true, false), 3)
    } else {
        ((true, true, false, false), 4)
    };
    if disclosed != expected || found.withheld.len() != withheld {
        return Err(format!(
            "a dispatcher's match from {owner} disclosed the wrong classes \
             (presence, response, identity, any other): {disclosed:?}, {} withheld",
            found.withheld.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_unique_and_valid_for_a_million_subjects() {
        let key = flagnet_core::MatchingKey::from_bytes(vec![1; 32]).unwrap();
        for index in [0, 1, 9_999, 10_000, 999_999, 7_999_999] {
            flagnet_core::normalize::phone_token(&key, &phone(index), "US").unwrap();
        }
        assert_ne!(phone(0), phone(10_000));
        assert_ne!(phone(9_999), phone(19_999));
    }

    #[test]
    fn a_subject_passes_the_records_clerks_checks() {
        let key = flagnet_core::MatchingKey::from_bytes(vec![1; 32]).unwrap();
        let now = OffsetDateTime::now_utc();
        let subject = subject(HOME, 123_456, now);
        let draft = flagnet_server::convert::flag_draft(Some(subject.flag), &key, "US").unwrap();
        assert_eq!(draft.subject_tokens.len(), 4);
        let mut consent = subject.consent.unwrap();
        consent.flag_id = "0b5e0e6e-2f7e-4c1e-9a55-4e0c8f3b8f10".into();
        let owner = flagnet_core::AgencyId::parse(HOME).unwrap();
        flagnet_server::convert::new_consent(Some(consent), owner, "clerk".into(), now).unwrap();
    }
}
