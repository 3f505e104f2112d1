//! What a node refuses, over real mTLS: callers without a certificate or with
//! a foreign CA's, node identities on the person-facing service, and bad
//! input of every kind, which must get INVALID_ARGUMENT (or the right code)
//! and leave the store unchanged.

use flagnet_core::{AgencyId, UserId};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_sandbox::seed::full_consent;
use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};
use flagnet_trust::{AgencyServerVerifier, ExpectedServer, FederationDir, TrustBundle};
use std::sync::Arc;
use time::OffsetDateTime;
use tonic::Code;
use tonic::transport::Channel;

fn phelps() -> AgencyId {
    AgencyId::parse("phelps-so").unwrap()
}

fn bundle(sandbox: &Sandbox) -> Arc<TrustBundle> {
    Arc::new(TrustBundle::load(sandbox.federation().federation(), &sandbox.federation().trust_dir()).unwrap())
}

async fn channel_with(sandbox: &Sandbox, config: Arc<rustls::ClientConfig>) -> Channel {
    let endpoint = format!("https://{}", sandbox.node_addr("phelps-so").unwrap());
    flagnet_trust::channel::connect_lazy(&endpoint, config).unwrap()
}

fn lookup_request(phone: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-1".into(),
        scope: pb::LookupScope::Local as i32,
        override_reason: String::new(),
    }
}

fn flag_request(given: &str, phone: &str) -> pb::PutFlagRequest {
    pb::PutFlagRequest {
        flag_id: String::new(),
        flag: Some(pb::FlagInput {
            subject: Some(pb::Subject {
                given_name: given.into(),
                family_name: "Reyes".into(),
                birth_date: "1990-05-06".into(),
                phones: vec![phone.into()],
                addresses: vec![],
            }),
            status: pb::FlagStatus::Active as i32,
            ..Default::default()
        }),
        change_reason: "intake".into(),
    }
}

async fn flag_count(clerk: &mut FlagIndexClient<Channel>) -> usize {
    clerk
        .list_flags(pb::ListFlagsRequest {
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .flags
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_trusted_person_certificate_cannot_call() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let provider = flagnet_trust::tls::crypto_provider();

    // no client certificate at all
    let verifier =
        AgencyServerVerifier::new(&bundle(&sandbox), ExpectedServer::Agency(phelps()), provider.clone()).unwrap();
    let mut anonymous = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![b"h2".to_vec()];
    let mut client = FlagIndexClient::new(channel_with(&sandbox, Arc::new(anonymous)).await);
    let status = client.lookup(lookup_request("573-555-0142")).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::Unknown | Code::Unavailable | Code::Cancelled),
        "{status:?}"
    );

    // a certificate from another federation's CA claiming the same agency and user
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = FederationDir::init(foreign_dir.path(), sandbox.federation().federation()).unwrap();
    foreign.add_agency(&phelps()).unwrap();
    let impostor = foreign
        .issue_user(&phelps(), &UserId::parse("dispatcher1").unwrap(), None)
        .unwrap();
    let config = flagnet_trust::client_config(
        bundle(&sandbox),
        ExpectedServer::Agency(phelps()),
        &impostor.cert_path,
        &impostor.key_path,
    )
    .unwrap();
    let mut client = FlagIndexClient::new(channel_with(&sandbox, config).await);
    let status = client.lookup(lookup_request("573-555-0142")).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::Unknown | Code::Unavailable | Code::Cancelled),
        "{status:?}"
    );

    // the node's own identity may not use the person-facing service
    let node = sandbox.federation().issue_node(&phelps()).unwrap();
    let config = flagnet_trust::client_config(
        bundle(&sandbox),
        ExpectedServer::Agency(phelps()),
        &node.cert_path,
        &node.key_path,
    )
    .unwrap();
    let mut client = FlagIndexClient::new(channel_with(&sandbox, config).await);
    let status = client.lookup(lookup_request("573-555-0142")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // a person of the agency can, and so can the standard health check
    let mut dispatcher = sandbox.client("phelps-so", "dispatcher").await.unwrap();
    assert!(
        dispatcher
            .lookup(lookup_request("573-555-0142"))
            .await
            .unwrap()
            .into_inner()
            .matches
            .is_empty()
    );
    let profile = flagnet_trust::client::ClientProfile::load(&sandbox.profile_path("phelps-so", "auditor")).unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(profile.connect().await.unwrap());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "flagnet.v1.FlagIndex".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_and_changes_nothing() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seed_demo(&sandbox).await.unwrap();
    let mut clerk = sandbox.client("phelps-so", "records_clerk").await.unwrap();
    let mut dispatcher = sandbox.client("phelps-so", "dispatcher").await.unwrap();
    let before = flag_count(&mut clerk).await;
    let mebibyte = "x".repeat(1024 * 1024);

    let bad_flags: Vec<(pb::PutFlagRequest, &str)> = vec![
        (flag_request("Ana", "573-555-01"), "flag.subject.phones[0]"),
        (flag_request("Ana", "not a number"), "flag.subject.phones[0]"),
        (flag_request("Ana", ""), "flag.subject.phones[0]"),
        (flag_request("", "573-555-0150"), "flag.subject.given_name"),
        (flag_request(&mebibyte, "573-555-0150"), "flag.subject.given_name"),
        (flag_request("Ana\u{0}", "573-555-0150"), "flag.subject.given_name"),
        (flag_request("Аna", "573-555-0150"), "flag.subject"),
        (
            flag_request("Robert'); DROP TABLE flags;--", "573-555-0150"),
            "flag.subject.given_name",
        ),
        (
            pb::PutFlagRequest {
                change_reason: String::new(),
                ..flag_request("Ana", "573-555-0150")
            },
            "change_reason",
        ),
        (
            pb::PutFlagRequest {
                flag: None,
                ..flag_request("Ana", "573-555-0150")
            },
            "flag",
        ),
        (
            pb::PutFlagRequest {
                flag_id: "not-a-uuid".into(),
                ..flag_request("Ana", "573-555-0150")
            },
            "flag_id",
        ),
    ];
    for (request, field) in bad_flags {
        let status = clerk.put_flag(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "expected {field}, got {}",
            status.message()
        );
    }
    let mut safety_too_long = flag_request("Ana", "573-555-0150");
    safety_too_long.flag.as_mut().unwrap().safety = Some(pb::Safety {
        notes: mebibyte.clone(),
    });
    let status = clerk.put_flag(safety_too_long).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("flag.safety.notes"),
        "{}",
        status.message()
    );
    assert_eq!(
        flag_count(&mut clerk).await,
        before,
        "refused flags leave the store unchanged"
    );

    for (phone, expected) in [
        ("", "subject.phone"),
        ("573", "subject.phone"),
        ("+1 573 555 0142 ext 9", "subject.phone"),
    ] {
        let status = dispatcher.lookup(lookup_request(phone)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{phone:?}");
        assert!(
            status.message().starts_with(expected),
            "{phone:?}: {}",
            status.message()
        );
    }
    let huge_name = pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::NameAndBirthDate(pb::NameAndBirthDate {
                given_name: mebibyte.clone(),
                family_name: "Avery".into(),
                birth_date: "1988-04-12".into(),
            })),
        }),
        ..lookup_request("")
    };
    let status = dispatcher.lookup(huge_name).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = dispatcher
        .lookup(pb::LookupRequest {
            incident_id: "CAD-１".into(),
            ..lookup_request("573-555-0142")
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // consents: a missing 42 CFR 2.31 element is named; unknown flags are not found; revoking twice is refused
    let flag_id = clerk
        .put_flag(flag_request("Ana", "573-555-0150"))
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
        .flag_id;
    let now = OffsetDateTime::now_utc();
    let year = time::Duration::days(365);
    let mut missing_signature = full_consent(&flag_id, "Ana Reyes", &["phelps-so"], now, now + year);
    missing_signature.signature_reference.clear();
    let status = clerk
        .record_consent(pb::RecordConsentRequest {
            consent: Some(missing_signature),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("consent.signature_reference"),
        "{}",
        status.message()
    );
    let bad_recipient = full_consent(&flag_id, "Ana Reyes", &["Phelps SO"], now, now + year);
    let status = clerk
        .record_consent(pb::RecordConsentRequest {
            consent: Some(bad_recipient),
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("consent.scope.recipients[0]"),
        "{}",
        status.message()
    );
    let unknown_flag = full_consent(
        &uuid::Uuid::new_v4().to_string(),
        "Ana Reyes",
        &["phelps-so"],
        now,
        now + year,
    );
    let status = clerk
        .record_consent(pb::RecordConsentRequest {
            consent: Some(unknown_flag),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let listed = clerk
        .list_consents(pb::ListConsentsRequest {
            flag_id: flag_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.consents.is_empty(), "refused consents leave nothing behind");

    let consent = full_consent(
        &flag_id,
        "Ana Reyes",
        &["phelps-so"],
        now - time::Duration::hours(1),
        now + year,
    );
    let recorded = clerk
        .record_consent(pb::RecordConsentRequest { consent: Some(consent) })
        .await
        .unwrap()
        .into_inner();
    let consent_id = recorded.consent.unwrap().consent_id;
    assert_eq!(
        dispatcher
            .lookup(lookup_request("573-555-0150"))
            .await
            .unwrap()
            .into_inner()
            .matches
            .len(),
        1
    );
    let revoke = pb::RevokeConsentRequest {
        consent_id: consent_id.clone(),
        reason: "subject asked".into(),
    };
    clerk.revoke_consent(revoke.clone()).await.unwrap();
    assert!(
        dispatcher
            .lookup(lookup_request("573-555-0150"))
            .await
            .unwrap()
            .into_inner()
            .matches
            .is_empty(),
        "revocation takes effect on the next request"
    );
    let status = clerk.revoke_consent(revoke).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = clerk
        .revoke_consent(pb::RevokeConsentRequest {
            consent_id,
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    sandbox.shutdown().await;
}
