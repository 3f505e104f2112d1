//! Sample subjects for the demo and the tests, entered the way a records
//! clerk would: through FlagIndex, over mTLS, as `records_clerk1`. Each
//! subject shows one consent situation: covering the region, home agency
//! only, expired, revoked, or none at all.

use crate::layout::{Sandbox, SandboxError};
use flagnet_proto::v1 as pb;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Which consent situation a seeded subject shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentCase {
    /// consent to the region south-central-mo, every role, every class
    Region,
    /// consent to the owner agency only
    HomeAgencyOnly,
    /// consent that ended yesterday
    Expired,
    /// consent recorded, then revoked
    Revoked,
    /// no consent on file
    None,
}

impl ConsentCase {
    /// How the demo describes it.
    pub fn describe(self) -> &'static str {
        match self {
            ConsentCase::Region => "consent covers the region south-central-mo",
            ConsentCase::HomeAgencyOnly => "consent covers the home agency only",
            ConsentCase::Expired => "consent expired yesterday",
            ConsentCase::Revoked => "consent revoked",
            ConsentCase::None => "no consent on file",
        }
    }
}

/// A subject the seed created.
#[derive(Debug, Clone)]
pub struct SeededSubject {
    pub agency: &'static str,
    pub given_name: &'static str,
    pub family_name: &'static str,
    pub birth_date: &'static str,
    pub phone: &'static str,
    pub consent: ConsentCase,
    pub flag_id: String,
}

struct SubjectSeed {
    agency: &'static str,
    given_name: &'static str,
    family_name: &'static str,
    birth_date: &'static str,
    phone: &'static str,
    street: &'static str,
    city: &'static str,
    consent: ConsentCase,
    recommended: pb::RecommendedResponse,
    guidance: &'static str,
    safety: &'static str,
    conditions: &'static [&'static str],
    crisis_plan: &'static str,
}

const SUBJECTS: [SubjectSeed; 7] = [
    SubjectSeed {
        agency: "phelps-so",
        given_name: "Jordan",
        family_name: "Avery",
        birth_date: "1988-04-12",
        phone: "(573) 555-0142",
        street: "1200 North Pine Street",
        city: "Rolla",
        consent: ConsentCase::Region,
        recommended: pb::RecommendedResponse::CitOfficer,
        guidance: "speak calmly, use first name, avoid sirens on approach",
        safety: "has reacted to uniforms with panic; no weapons history",
        conditions: &["bipolar I disorder"],
        crisis_plan: "call liaison K. Patel first; prefers Phelps Health crisis unit",
    },
    SubjectSeed {
        agency: "phelps-so",
        given_name: "María",
        family_name: "Delgado",
        birth_date: "1975-11-02",
        phone: "573-555-0157",
        street: "44 Elm Avenue",
        city: "St. James",
        consent: ConsentCase::HomeAgencyOnly,
        recommended: pb::RecommendedResponse::CoResponder,
        guidance: "Spanish speaker; ask for her daughter Ana",
        safety: "none known",
        conditions: &["major depressive disorder"],
        crisis_plan: "co-responder clinician on call through the sheriff's office",
    },
    SubjectSeed {
        agency: "phelps-so",
        given_name: "Samuel",
        family_name: "Okafor",
        birth_date: "1992-07-30",
        phone: "573.555.0163",
        street: "9 Oak Court",
        city: "Rolla",
        consent: ConsentCase::Expired,
        recommended: pb::RecommendedResponse::Liaison,
        guidance: "give space, one officer speaks",
        safety: "none known",
        conditions: &["schizoaffective disorder"],
        crisis_plan: "liaison follow-up within 24 hours",
    },
    SubjectSeed {
        agency: "phelps-so",
        given_name: "Lena",
        family_name: "Whitfield",
        birth_date: "2001-01-19",
        phone: "+1 573 555 0178",
        street: "310 Highway 63 South",
        city: "Rolla",
        consent: ConsentCase::Revoked,
        recommended: pb::RecommendedResponse::CitOfficer,
        guidance: "CIT officer only",
        safety: "none known",
        conditions: &["PTSD"],
        crisis_plan: "none on file",
    },
    SubjectSeed {
        agency: "phelps-so",
        given_name: "Trevor",
        family_name: "Banks",
        birth_date: "1969-09-09",
        phone: "573 555 0189",
        street: "71 Bridge Road",
        city: "Newburg",
        consent: ConsentCase::None,
        recommended: pb::RecommendedResponse::CitOfficer,
        guidance: "—",
        safety: "—",
        conditions: &["dementia"],
        crisis_plan: "—",
    },
    SubjectSeed {
        agency: "rolla-pd",
        given_name: "Casey",
        family_name: "Morgan",
        birth_date: "1996-03-05",
        phone: "573-555-0121",
        street: "18 University Drive",
        city: "Rolla",
        consent: ConsentCase::Region,
        recommended: pb::RecommendedResponse::CoResponder,
        guidance: "student; contact campus counselling after hours",
        safety: "none known",
        conditions: &["anxiety disorder"],
        crisis_plan: "campus counselling centre",
    },
    SubjectSeed {
        agency: "pulaski-so",
        given_name: "Dana",
        family_name: "Kowalski",
        birth_date: "1983-12-24",
        phone: "573-555-0134",
        street: "5 Fort Road",
        city: "Waynesville",
        consent: ConsentCase::Region,
        recommended: pb::RecommendedResponse::Liaison,
        guidance: "veteran; ask about service, calm tone",
        safety: "may be armed (legally owned firearms at home)",
        conditions: &["PTSD"],
        crisis_plan: "VA crisis line and liaison R. Diaz",
    },
];

fn rfc3339(instant: OffsetDateTime) -> String {
    instant.format(&Rfc3339).unwrap_or_default()
}

fn status_error(step: &str, status: tonic::Status) -> SandboxError {
    SandboxError::Setup {
        step: format!("seed: {step}"),
        reason: format!("{:?}: {}", status.code(), status.message()),
    }
}

fn flag_input(seed: &SubjectSeed, today: OffsetDateTime) -> pb::FlagInput {
    pb::FlagInput {
        subject: Some(pb::Subject {
            given_name: seed.given_name.into(),
            family_name: seed.family_name.into(),
            birth_date: seed.birth_date.into(),
            phones: vec![seed.phone.into()],
            addresses: vec![pb::Address {
                street: seed.street.into(),
                unit: String::new(),
                city: seed.city.into(),
                region: "MO".into(),
                postal_code: "65401".into(),
            }],
        }),
        status: pb::FlagStatus::Active as i32,
        review_date: (today + Duration::days(180)).date().to_string(),
        basis: None,
        presence: Some(pb::Presence {
            owner_agency: seed.agency.into(),
            contact_name: "Records unit".into(),
            contact_phone: "573-555-0100".into(),
        }),
        response: Some(pb::Response {
            recommended: seed.recommended as i32,
            approach_guidance: seed.guidance.into(),
        }),
        safety: Some(pb::Safety {
            notes: seed.safety.into(),
        }),
        contacts: Some(pb::Contacts {
            contacts: vec![pb::Contact {
                name: "Pat Avery".into(),
                relationship: "sibling".into(),
                phone: "573-555-0111".into(),
            }],
        }),
        clinical: Some(pb::Clinical {
            conditions: seed.conditions.iter().map(|c| (*c).to_owned()).collect(),
            care_provider: "Pathways Community Behavioral Healthcare".into(),
            crisis_plan: seed.crisis_plan.into(),
            hold_history: vec![pb::HoldEvent {
                date: "2025-10-03".into(),
                kind: "96-hour evaluation".into(),
                facility: "Phelps Health".into(),
            }],
        }),
    }
}

/// A consent with every 42 CFR 2.31 element, for the recipients given.
pub fn full_consent(
    flag_id: &str,
    subject_name: &str,
    recipients: &[&str],
    valid_from: OffsetDateTime,
    valid_until: OffsetDateTime,
) -> pb::ConsentInput {
    pb::ConsentInput {
        flag_id: flag_id.into(),
        basis: pb::ConsentBasis::Subject as i32,
        subject_name: subject_name.into(),
        granted_by: String::new(),
        disclosing_party: "the owner agency's records unit".into(),
        information_description: "crisis flag: whom to send, how to approach, safety notes, contacts, crisis plan"
            .into(),
        purpose_description: "so that responders send the right help in a crisis and my liaison is told".into(),
        revocation_instructions: "tell the records unit in writing or in person".into(),
        scope: Some(pb::ConsentScope {
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            roles: ["dispatcher", "officer", "liaison"].map(String::from).to_vec(),
            purposes: [
                "emergency_response",
                "welfare_check",
                "crisis_followup",
                "emergency_override",
            ]
            .map(String::from)
            .to_vec(),
            field_classes: (1..=6).collect(),
        }),
        valid_from: rfc3339(valid_from),
        valid_until: rfc3339(valid_until),
        expiry_event: String::new(),
        signature_reference: format!("consent-form-{}", &flag_id[..8.min(flag_id.len())]),
        signed_on: valid_from.date().to_string(),
    }
}

/// Seeds the sample subjects of every agency the sandbox runs.
pub async fn seed_demo(sandbox: &Sandbox) -> Result<Vec<SeededSubject>, SandboxError> {
    let now = OffsetDateTime::now_utc();
    let running: Vec<&str> = sandbox.agencies().collect();
    let mut seeded = Vec::new();
    for seed in SUBJECTS.iter().filter(|seed| running.contains(&seed.agency)) {
        let mut clerk = sandbox.client(seed.agency, "records_clerk").await?;
        let stored = clerk
            .put_flag(pb::PutFlagRequest {
                flag_id: String::new(),
                flag: Some(flag_input(seed, now)),
                change_reason: "entered from the intake form".into(),
            })
            .await
            .map_err(|status| status_error("put flag", status))?
            .into_inner();
        let flag_id = stored.flag.map(|flag| flag.flag_id).unwrap_or_default();
        let subject_name = format!("{} {}", seed.given_name, seed.family_name);
        let year = Duration::days(365);
        let consent = match seed.consent {
            ConsentCase::Region => Some(full_consent(
                &flag_id,
                &subject_name,
                &["south-central-mo"],
                now - Duration::days(30),
                now + year,
            )),
            ConsentCase::HomeAgencyOnly => Some(full_consent(
                &flag_id,
                &subject_name,
                &[seed.agency],
                now - Duration::days(30),
                now + year,
            )),
            ConsentCase::Expired => Some(full_consent(
                &flag_id,
                &subject_name,
                &["south-central-mo"],
                now - year - year,
                now - Duration::days(1),
            )),
            ConsentCase::Revoked => Some(full_consent(
                &flag_id,
                &subject_name,
                &["south-central-mo"],
                now - Duration::days(30),
                now + year,
            )),
            ConsentCase::None => None,
        };
        if let Some(consent) = consent {
            let recorded = clerk
                .record_consent(pb::RecordConsentRequest { consent: Some(consent) })
                .await
                .map_err(|status| status_error("record consent", status))?
                .into_inner();
            if seed.consent == ConsentCase::Revoked {
                let consent_id = recorded.consent.map(|c| c.consent_id).unwrap_or_default();
                clerk
                    .revoke_consent(pb::RevokeConsentRequest {
                        consent_id,
                        reason: "subject withdrew consent by phone".into(),
                    })
                    .await
                    .map_err(|status| status_error("revoke consent", status))?;
            }
        }
        seeded.push(SeededSubject {
            agency: seed.agency,
            given_name: seed.given_name,
            family_name: seed.family_name,
            birth_date: seed.birth_date,
            phone: seed.phone,
            consent: seed.consent,
            flag_id,
        });
    }
    Ok(seeded)
}
