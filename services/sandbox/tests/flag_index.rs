//! FlagIndex end to end: three real nodes on 127.0.0.1 with certificates made
//! by the project's own tooling, SQLite files in a temporary directory, the
//! policy in `policies/`, and clients over mTLS.

use flagnet_proto::v1 as pb;
use flagnet_sandbox::seed::ConsentCase;
use flagnet_sandbox::{Sandbox, SandboxOptions, SeededSubject, seed_demo};
use prost::Message;
use tonic::Code;

struct Federation {
    sandbox: Sandbox,
    subjects: Vec<SeededSubject>,
}

async fn federation() -> Federation {
    let sandbox = Sandbox::start(SandboxOptions::default()).await.expect("sandbox starts");
    let subjects = seed_demo(&sandbox).await.expect("seed");
    Federation { sandbox, subjects }
}

impl Federation {
    fn subject(&self, case: ConsentCase) -> &SeededSubject {
        self.subjects
            .iter()
            .find(|subject| subject.agency == "phelps-so" && subject.consent == case)
            .expect("seeded")
    }
}

fn by_phone(phone: &str, purpose: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: purpose.into(),
        incident_id: "CAD-2026-1201-0007".into(),
        scope: pb::LookupScope::Local as i32,
        override_reason: String::new(),
    }
}

async fn lookup(
    federation: &Federation,
    agency: &str,
    role: &str,
    request: pb::LookupRequest,
) -> Result<pb::LookupResponse, tonic::Status> {
    let mut client = federation.sandbox.client(agency, role).await.expect("client");
    client.lookup(request).await.map(tonic::Response::into_inner)
}

fn without_request_id(mut response: pb::LookupResponse) -> Vec<u8> {
    assert!(!response.request_id.is_empty(), "every answer carries a request id");
    response.request_id.clear();
    response.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_index_over_mtls() {
    let federation = federation().await;
    let covered = federation.subject(ConsentCase::Region);

    // a dispatcher sees presence, response and identity, and learns clinical was withheld by policy
    let answer = lookup(
        &federation,
        "phelps-so",
        "dispatcher",
        by_phone("573 555 0142", "emergency_response"),
    )
    .await
    .unwrap();
    assert_eq!(answer.matches.len(), 1);
    let found = &answer.matches[0];
    assert_eq!(found.flag_id, covered.flag_id);
    assert!(found.presence.is_some() && found.response.is_some() && found.identity.is_some());
    assert!(found.clinical.is_none() && found.safety.is_none() && found.contacts.is_none());
    assert!(
        found
            .withheld
            .iter()
            .any(|w| w.field_class == pb::FieldClass::Clinical as i32 && w.reason == pb::WithholdReason::Policy as i32)
    );
    assert!(answer.complete);

    // a liaison sees clinical
    let answer = lookup(
        &federation,
        "phelps-so",
        "liaison",
        by_phone(covered.phone, "crisis_followup"),
    )
    .await
    .unwrap();
    let clinical = answer.matches[0].clinical.as_ref().expect("liaison sees clinical");
    assert!(!clinical.crisis_plan.is_empty());
    assert!(answer.matches[0].withheld.is_empty());

    // the same person found by name and birth date, and by a misspelt name through the phonetic key
    let by_name = |given: &str, family: &str| pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::NameAndBirthDate(pb::NameAndBirthDate {
                given_name: given.into(),
                family_name: family.into(),
                birth_date: covered.birth_date.into(),
            })),
        }),
        ..by_phone("", "emergency_response")
    };
    let exact = lookup(&federation, "phelps-so", "officer", by_name("JORDAN", "avery"))
        .await
        .unwrap();
    assert_eq!(exact.matches.len(), 1);
    assert!(!exact.matches[0].phonetic_match);
    assert!(exact.matches[0].safety.is_some(), "an officer adds safety");
    let misspelt = lookup(&federation, "phelps-so", "officer", by_name("Jordan", "Averey"))
        .await
        .unwrap();
    assert_eq!(misspelt.matches.len(), 1);
    assert!(misspelt.matches[0].phonetic_match);

    // revoked, expired and missing consent give exactly the no-match answer
    let no_match = without_request_id(
        lookup(
            &federation,
            "phelps-so",
            "dispatcher",
            by_phone("573 555 0199", "emergency_response"),
        )
        .await
        .unwrap(),
    );
    for case in [ConsentCase::Revoked, ConsentCase::Expired, ConsentCase::None] {
        let subject = federation.subject(case);
        let answer = lookup(
            &federation,
            "phelps-so",
            "liaison",
            by_phone(subject.phone, "crisis_followup"),
        )
        .await
        .unwrap();
        assert_eq!(without_request_id(answer), no_match, "{case:?} must look like no match");
    }

    // missing purpose or incident id
    for (mutate, field) in [
        (
            Box::new(|r: &mut pb::LookupRequest| r.purpose.clear()) as Box<dyn Fn(&mut pb::LookupRequest)>,
            "purpose",
        ),
        (
            Box::new(|r: &mut pb::LookupRequest| r.incident_id.clear()),
            "incident_id",
        ),
        (
            Box::new(|r: &mut pb::LookupRequest| r.purpose = "curiosity".into()),
            "purpose",
        ),
        (
            Box::new(|r: &mut pb::LookupRequest| r.incident_id = "CAD'; DROP TABLE flags;--".into()),
            "incident_id",
        ),
        (Box::new(|r: &mut pb::LookupRequest| r.subject = None), "subject"),
        (
            Box::new(|r: &mut pb::LookupRequest| r.purpose = "emergency_override".into()),
            "override_reason",
        ),
    ] {
        let mut request = by_phone(covered.phone, "emergency_response");
        mutate(&mut request);
        let status = lookup(&federation, "phelps-so", "dispatcher", request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field) || status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }

    // only records clerks keep records
    let mut dispatcher = federation.sandbox.client("phelps-so", "dispatcher").await.unwrap();
    let status = dispatcher
        .list_flags(pb::ListFlagsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut foreign_clerk = federation.sandbox.client("rolla-pd", "records_clerk").await.unwrap();
    let listed = foreign_clerk
        .list_flags(pb::ListFlagsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.flags.iter().all(|flag| flag.flag_id != covered.flag_id),
        "a clerk sees only their agency's flags"
    );
    let status = foreign_clerk
        .get_flag(pb::GetFlagRequest {
            flag_id: covered.flag_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    federation.sandbox.shutdown().await;
}
