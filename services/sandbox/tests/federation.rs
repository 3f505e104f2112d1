//! Federation over real nodes on 127.0.0.1: redaction per role across
//! agencies, consent enforced at the owner, dead and black-holed peers within
//! the deadline, the circuit breaker, and encounters delivered once to an
//! owner that was down, then pushed to its liaisons.

use flagnet_proto::v1 as pb;
use flagnet_sandbox::seed::ConsentCase;
use flagnet_sandbox::{FederationTiming, Sandbox, SandboxOptions, SeededSubject, seed_demo};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

const PHELPS: &str = "phelps-so";
const ROLLA: &str = "rolla-pd";
const PULASKI: &str = "pulaski-so";

fn by_phone(phone: &str, purpose: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: purpose.into(),
        incident_id: "CAD-2026-1201-0042".into(),
        scope: pb::LookupScope::Federated as i32,
        override_reason: String::new(),
    }
}

async fn lookup(sandbox: &Sandbox, agency: &str, role: &str, request: pb::LookupRequest) -> pb::LookupResponse {
    let mut client = sandbox.client(agency, role).await.expect("client");
    client.lookup(request).await.expect("lookup").into_inner()
}

fn peer_state(answer: &pb::LookupResponse, agency: &str) -> pb::PeerState {
    let status = answer
        .peers
        .iter()
        .find(|peer| peer.agency == agency)
        .expect("peer listed");
    pb::PeerState::try_from(status.state).expect("known state")
}

fn subject<'a>(subjects: &'a [SeededSubject], agency: &str, case: ConsentCase) -> &'a SeededSubject {
    subjects
        .iter()
        .find(|s| s.agency == agency && s.consent == case)
        .expect("seeded")
}

fn fast_timing() -> FederationTiming {
    FederationTiming {
        lookup_budget_ms: 3_000,
        peer_timeout_ms: 600,
        breaker_failures: 2,
        breaker_cooldown_ms: 400,
        delivery_retry_ms: 150,
    }
}

async fn federation() -> (Sandbox, Vec<SeededSubject>) {
    let sandbox = Sandbox::start(SandboxOptions {
        federation_timing: fast_timing(),
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    (sandbox, subjects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbours_see_what_the_owner_allows() {
    let (sandbox, subjects) = federation().await;
    let regional = subject(&subjects, PHELPS, ConsentCase::Region);

    // a rolla-pd dispatcher sees the neighbour's redacted view
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(regional.phone, "emergency_response"),
    )
    .await;
    assert!(answer.complete, "{:?}", answer.peers);
    assert_eq!(peer_state(&answer, PHELPS), pb::PeerState::Ok);
    assert_eq!(peer_state(&answer, PULASKI), pb::PeerState::Ok);
    assert_eq!(answer.matches.len(), 1);
    let found = &answer.matches[0];
    assert_eq!(found.owner_agency, PHELPS);
    assert_eq!(found.flag_id, regional.flag_id);
    assert!(found.presence.is_some() && found.response.is_some());
    assert!(found.identity.is_none() && found.safety.is_none() && found.clinical.is_none());

    // a rolla-pd officer adds safety; a rolla-pd liaison adds contacts but never clinical
    let officer = lookup(
        &sandbox,
        ROLLA,
        "officer",
        by_phone(regional.phone, "emergency_response"),
    )
    .await;
    assert!(officer.matches[0].safety.is_some() && officer.matches[0].contacts.is_none());
    let liaison = lookup(&sandbox, ROLLA, "liaison", by_phone(regional.phone, "crisis_followup")).await;
    assert!(liaison.matches[0].contacts.is_some() && liaison.matches[0].clinical.is_none());
    // the owner's own liaison sees more, from its own node
    let own = lookup(&sandbox, PHELPS, "liaison", by_phone(regional.phone, "crisis_followup")).await;
    assert_eq!(own.matches.len(), 1);
    assert!(own.matches[0].clinical.is_some());

    // home-agency-only consent: invisible to rolla-pd, visible at home
    let home_only = subject(&subjects, PHELPS, ConsentCase::HomeAgencyOnly);
    let answer = lookup(
        &sandbox,
        ROLLA,
        "officer",
        by_phone(home_only.phone, "emergency_response"),
    )
    .await;
    assert!(answer.matches.is_empty() && answer.complete);
    let answer = lookup(
        &sandbox,
        PHELPS,
        "dispatcher",
        by_phone(home_only.phone, "emergency_response"),
    )
    .await;
    assert_eq!(answer.matches.len(), 1);

    // a flag of rolla-pd itself and one of pulaski-so come back together with their owners
    let pulaski_subject = subject(&subjects, PULASKI, ConsentCase::Region);
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(pulaski_subject.phone, "emergency_response"),
    )
    .await;
    assert_eq!(
        answer
            .matches
            .iter()
            .map(|m| m.owner_agency.as_str())
            .collect::<Vec<_>>(),
        vec![PULASKI]
    );

    // consent revoked at the owner: the next federated lookup gets no match
    let mut clerk = sandbox.client(PHELPS, "records_clerk").await.unwrap();
    let consents = clerk
        .list_consents(pb::ListConsentsRequest {
            flag_id: regional.flag_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .consents;
    for consent in consents {
        clerk
            .revoke_consent(pb::RevokeConsentRequest {
                consent_id: consent.consent_id,
                reason: "subject asked".into(),
            })
            .await
            .unwrap();
    }
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(regional.phone, "emergency_response"),
    )
    .await;
    assert!(answer.matches.is_empty(), "revocation reaches neighbours at once");
    assert!(answer.complete);

    // a local lookup does not ask the peers
    let local = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        pb::LookupRequest {
            scope: pb::LookupScope::Local as i32,
            ..by_phone(regional.phone, "emergency_response")
        },
    )
    .await;
    assert!(local.peers.is_empty());
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_silent_peers_cost_at_most_their_deadline() {
    let (mut sandbox, subjects) = federation().await;
    let timing = fast_timing();
    let pulaski_subject = subject(&subjects, PULASKI, ConsentCase::Region);
    let phelps_subject = subject(&subjects, PHELPS, ConsentCase::Region);

    // a stopped peer: unavailable, the others' results present, marked incomplete
    let pulaski_addr = sandbox.node_addr(PULASKI).unwrap();
    sandbox.stop_node(PULASKI).await.unwrap();
    let started = Instant::now();
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(phelps_subject.phone, "emergency_response"),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(timing.peer_timeout_ms + 1_000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(peer_state(&answer, PULASKI), pb::PeerState::Unavailable);
    assert_eq!(peer_state(&answer, PHELPS), pb::PeerState::Ok);
    assert_eq!(answer.matches.len(), 1);
    assert!(!answer.complete, "partial results are never complete");

    // the breaker opened after two failures: the next lookup skips pulaski at once
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(phelps_subject.phone, "emergency_response"),
    )
    .await;
    assert_eq!(peer_state(&answer, PULASKI), pb::PeerState::Unavailable);
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(phelps_subject.phone, "emergency_response"),
    )
    .await;
    let detail = &answer.peers.iter().find(|p| p.agency == PULASKI).unwrap().detail;
    assert!(detail.contains("circuit breaker open"), "{detail}");

    // a peer that accepts connections and never answers: timeout within its deadline
    let black_hole = tokio::net::TcpListener::bind(pulaski_addr)
        .await
        .expect("take over the peer's port");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = black_hole.accept().await {
            open.push(socket);
        }
    });
    tokio::time::sleep(Duration::from_millis(timing.breaker_cooldown_ms + 50)).await;
    let started = Instant::now();
    let answer = lookup(
        &sandbox,
        ROLLA,
        "dispatcher",
        by_phone(phelps_subject.phone, "emergency_response"),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(
        peer_state(&answer, PULASKI),
        pb::PeerState::Timeout,
        "{:?}",
        answer.peers
    );
    assert!(
        elapsed >= Duration::from_millis(timing.peer_timeout_ms / 2),
        "{elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(timing.peer_timeout_ms + 1_000),
        "{elapsed:?}"
    );
    assert_eq!(answer.matches.len(), 1, "the others still answer");
    held.abort();
    let _ = held.await;

    // the peer comes back: after the cooldown one probe closes the breaker
    sandbox.start_node(PULASKI).await.unwrap();
    tokio::time::sleep(Duration::from_millis(timing.breaker_cooldown_ms + 50)).await;
    let mut recovered = false;
    for _ in 0..20 {
        let answer = lookup(
            &sandbox,
            ROLLA,
            "dispatcher",
            by_phone(pulaski_subject.phone, "emergency_response"),
        )
        .await;
        if peer_state(&answer, PULASKI) == pb::PeerState::Ok {
            assert_eq!(answer.matches.len(), 1);
            assert!(answer.complete);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(timing.breaker_cooldown_ms)).await;
    }
    assert!(recovered, "the breaker closes again once the peer answers");
    sandbox.shutdown().await;
}

fn encounter(id: &str, flag_id: &str) -> pb::Encounter {
    pb::Encounter {
        encounter_id: id.into(),
        flag_id: flag_id.into(),
        owner_agency: PHELPS.into(),
        occurred_at: "2026-12-01T03:10:00Z".into(),
        location: "Waynesville, Historic Route 66".into(),
        disposition: "transported for 96-hour evaluation".into(),
        narrative: "calm once the CIT officer spoke with him".into(),
        reporter_agency: String::new(),
        reporter_user: String::new(),
        incident_id: "PCSO-2026-991".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encounter_reported_while_the_owner_is_down_arrives_once() {
    let (mut sandbox, subjects) = federation().await;
    let regional = subject(&subjects, PHELPS, ConsentCase::Region);

    sandbox.stop_node(PHELPS).await.unwrap();
    let mut pulaski_officer = sandbox.client(PULASKI, "officer").await.unwrap();
    let encounter_id = uuid::Uuid::new_v4().to_string();
    let report = pb::ReportEncounterRequest {
        encounter: Some(encounter(&encounter_id, &regional.flag_id)),
    };
    let answer = pulaski_officer
        .report_encounter(report.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.delivered, "the owner is down: queued");
    // the officer's client retries: still one encounter
    pulaski_officer.report_encounter(report.clone()).await.unwrap();

    // a dispatcher may not report, and nobody reports for an unknown owner
    let mut dispatcher = sandbox.client(PULASKI, "dispatcher").await.unwrap();
    assert_eq!(
        dispatcher.report_encounter(report.clone()).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );

    sandbox.start_node(PHELPS).await.unwrap();
    let mut liaison = sandbox.client(PHELPS, "liaison").await.unwrap();
    let mut alerts = liaison
        .watch_alerts(pb::WatchAlertsRequest { after_cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), alerts.next())
        .await
        .expect("delivered after the owner returned")
        .unwrap()
        .unwrap();
    let delivered = first.encounter.clone().unwrap();
    assert_eq!(delivered.encounter_id, encounter_id);
    assert_eq!(delivered.reporter_agency, PULASKI);
    assert_eq!(delivered.reporter_user, "officer1");
    // no second copy arrives
    assert!(
        tokio::time::timeout(Duration::from_millis(800), alerts.next())
            .await
            .is_err(),
        "delivered once"
    );

    // a new encounter is pushed live, in order
    let second_id = uuid::Uuid::new_v4().to_string();
    let live = pulaski_officer
        .report_encounter(pb::ReportEncounterRequest {
            encounter: Some(encounter(&second_id, &regional.flag_id)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(live.delivered);
    let second = tokio::time::timeout(Duration::from_secs(5), alerts.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.encounter.unwrap().encounter_id, second_id);
    assert!(second.cursor > first.cursor);
    drop(alerts);

    // reconnecting with the first cursor gets exactly what came after it
    let mut resumed = liaison
        .watch_alerts(pb::WatchAlertsRequest {
            after_cursor: first.cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let next = tokio::time::timeout(Duration::from_secs(5), resumed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.cursor, second.cursor);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), resumed.next())
            .await
            .is_err()
    );
    drop(resumed);

    // only the owner's liaisons watch alerts
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
    let refused = dispatcher
        .watch_alerts(pb::WatchAlertsRequest { after_cursor: 0 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_peer_nodes_call_federation_and_only_for_their_own_people() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into(), ROLLA.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let endpoint = format!("https://{}", sandbox.node_addr(PHELPS).unwrap());
    let bundle = std::sync::Arc::new(
        flagnet_trust::TrustBundle::load(sandbox.federation().federation(), &sandbox.federation().trust_dir()).unwrap(),
    );
    let phelps = flagnet_core::AgencyId::parse(PHELPS).unwrap();
    let rolla = flagnet_core::AgencyId::parse(ROLLA).unwrap();
    let connect = |cert: &std::path::Path, key: &std::path::Path| {
        let tls = flagnet_trust::client_config(
            bundle.clone(),
            flagnet_trust::ExpectedServer::Agency(phelps.clone()),
            cert,
            key,
        )
        .unwrap();
        pb::federation_client::FederationClient::new(flagnet_trust::channel::connect_lazy(&endpoint, tls).unwrap())
    };
    let query = |agency: &str, roles: &[&str]| pb::FederatedQueryRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        actor: Some(pb::FederatedActor {
            agency: agency.into(),
            user: "dispatcher1".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-9".into(),
        tokens: vec![pb::BlindTokenMessage {
            kind: "phone".into(),
            token: vec![7; 32],
        }],
        override_reason: String::new(),
        deadline_ms: 1000,
    };

    // rolla-pd's node, for a rolla-pd dispatcher: answered (no match for this token)
    let node = sandbox.federation().issue_node(&rolla).unwrap();
    let mut peer = connect(&node.cert_path, &node.key_path);
    let answer = peer.query(query(ROLLA, &["dispatcher"])).await.unwrap().into_inner();
    assert!(answer.matches.is_empty());
    // speaking for another agency's people, or asserting a role rolla-pd does not hold
    assert_eq!(
        peer.query(query(PHELPS, &["dispatcher"])).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        peer.query(query(ROLLA, &["sheriff"])).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    // malformed tokens are invalid
    let mut bad = query(ROLLA, &["dispatcher"]);
    bad.tokens[0].token = vec![1; 5];
    assert_eq!(peer.query(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);

    // a person's certificate may not call Federation at all
    let profile = flagnet_trust::client::ClientProfile::load(&sandbox.profile_path(ROLLA, "dispatcher")).unwrap();
    let mut person = connect(&profile.certificate, &profile.private_key);
    assert_eq!(
        person.query(query(ROLLA, &["dispatcher"])).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    sandbox.shutdown().await;
}
