//! The audit log wired into real nodes: one record per call with the right
//! outcome, fail-closed serving when the log cannot be written, the same
//! request id on both sides of a federated disclosure, no plaintext subject
//! data in the log file, and tampering found through the auditor's service.

use flagnet_audit::{AuditAction, AuditLog, AuditOutcome, AuditQuery};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::audit_log_client::AuditLogClient;
use flagnet_sandbox::seed::ConsentCase;
use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const PHELPS: &str = "phelps-so";

fn by_phone(phone: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-77".into(),
        scope: pb::LookupScope::Federated as i32,
        override_reason: String::new(),
    }
}

async fn last_record(log: &AuditLog) -> flagnet_audit::AuditRecord {
    let size = log.size();
    log.get(size - 1).await.expect("last record").record
}

/// Runs `call` and checks it left exactly one record with `action` and `outcome`.
async fn expect_one_record<F, Fut>(log: &Arc<AuditLog>, action: AuditAction, outcome: AuditOutcome, call: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = log.size();
    call().await;
    assert_eq!(log.size(), before + 1, "{action:?} must leave exactly one record");
    let record = last_record(log).await;
    assert_eq!(record.action, action);
    assert_eq!(record.outcome, outcome, "{action:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_leaves_exactly_one_record_with_its_outcome() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    let covered = subjects
        .iter()
        .find(|s| s.consent == ConsentCase::Region)
        .unwrap()
        .clone();
    let log = sandbox.audit_log(PHELPS).expect("durable log");
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
    let mut clerk = sandbox.client(PHELPS, "records_clerk").await.unwrap();
    let mut officer = sandbox.client(PHELPS, "officer").await.unwrap();

    expect_one_record(&log, AuditAction::Lookup, AuditOutcome::Ok, || async {
        let answer = dispatcher
            .clone()
            .lookup(by_phone(covered.phone))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.matches.len(), 1);
    })
    .await;
    let record = last_record(&log).await;
    assert_eq!(
        record.actor_user.as_ref().map(ToString::to_string).as_deref(),
        Some("dispatcher1")
    );
    assert_eq!(record.incident_id.as_deref(), Some("CAD-77"));
    assert_eq!(record.disclosed.len(), 1);
    assert!(
        record
            .withheld
            .iter()
            .any(|w| w.class == flagnet_core::FieldClass::Clinical)
    );
    assert!(!record.subject_refs.is_empty());
    assert!(record.caller_fingerprint.is_some());

    expect_one_record(&log, AuditAction::Lookup, AuditOutcome::Invalid, || async {
        let status = dispatcher
            .lookup(pb::LookupRequest {
                purpose: String::new(),
                ..by_phone(covered.phone)
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    })
    .await;
    expect_one_record(&log, AuditAction::Lookup, AuditOutcome::Ok, || async {
        let answer = dispatcher.lookup(by_phone("573-555-0199")).await.unwrap().into_inner();
        assert!(answer.matches.is_empty());
    })
    .await;
    expect_one_record(&log, AuditAction::ListFlags, AuditOutcome::Denied, || async {
        assert_eq!(
            dispatcher
                .list_flags(pb::ListFlagsRequest::default())
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
    })
    .await;
    expect_one_record(&log, AuditAction::ListFlags, AuditOutcome::Ok, || async {
        clerk.list_flags(pb::ListFlagsRequest::default()).await.unwrap();
    })
    .await;
    expect_one_record(&log, AuditAction::GetFlag, AuditOutcome::Ok, || async {
        clerk
            .get_flag(pb::GetFlagRequest {
                flag_id: covered.flag_id.clone(),
            })
            .await
            .unwrap();
    })
    .await;
    expect_one_record(&log, AuditAction::GetFlag, AuditOutcome::Error, || async {
        let status = clerk
            .get_flag(pb::GetFlagRequest {
                flag_id: uuid::Uuid::new_v4().to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    })
    .await;
    expect_one_record(&log, AuditAction::PutFlag, AuditOutcome::Invalid, || async {
        let status = clerk.put_flag(pb::PutFlagRequest::default()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    })
    .await;
    expect_one_record(&log, AuditAction::PutFlag, AuditOutcome::Denied, || async {
        let status = officer
            .put_flag(pb::PutFlagRequest {
                change_reason: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(status.code(), Code::PermissionDenied | Code::InvalidArgument),
            "{status:?}"
        );
    })
    .await;
    expect_one_record(&log, AuditAction::ListConsents, AuditOutcome::Ok, || async {
        clerk
            .list_consents(pb::ListConsentsRequest {
                flag_id: covered.flag_id.clone(),
            })
            .await
            .unwrap();
    })
    .await;
    expect_one_record(&log, AuditAction::RecordConsent, AuditOutcome::Invalid, || async {
        let status = clerk
            .record_consent(pb::RecordConsentRequest { consent: None })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    })
    .await;
    expect_one_record(&log, AuditAction::RevokeConsent, AuditOutcome::Error, || async {
        let status = clerk
            .revoke_consent(pb::RevokeConsentRequest {
                consent_id: uuid::Uuid::new_v4().to_string(),
                reason: "asked".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    })
    .await;
    expect_one_record(&log, AuditAction::Encounter, AuditOutcome::Ok, || async {
        let encounter = pb::Encounter {
            encounter_id: uuid::Uuid::new_v4().to_string(),
            flag_id: covered.flag_id.clone(),
            owner_agency: PHELPS.into(),
            occurred_at: "2026-12-01T03:00:00Z".into(),
            location: "Rolla".into(),
            disposition: "resolved on scene".into(),
            ..Default::default()
        };
        assert!(
            officer
                .report_encounter(pb::ReportEncounterRequest {
                    encounter: Some(encounter)
                })
                .await
                .unwrap()
                .into_inner()
                .delivered
        );
    })
    .await;

    // reading the audit log is audited, and only auditors may
    let mut auditor = AuditLogClient::new(sandbox.channel(PHELPS, "auditor").await.unwrap());
    expect_one_record(&log, AuditAction::AuditRead, AuditOutcome::Ok, || async {
        let page = auditor
            .search(pb::AuditSearchRequest {
                subject: Some(pb::SubjectQuery {
                    key: Some(pb::subject_query::Key::Phone(covered.phone.into())),
                }),
                action: "lookup".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.records.len(), 1, "the auditor finds the lookup of that phone");
        assert!(page.records[0].record_json.contains("dispatcher1"));
    })
    .await;
    let mut not_auditor = AuditLogClient::new(sandbox.channel(PHELPS, "privacy_officer").await.unwrap());
    expect_one_record(&log, AuditAction::AuditRead, AuditOutcome::Denied, || async {
        assert_eq!(
            not_auditor.verify(pb::AuditVerifyRequest {}).await.unwrap_err().code(),
            Code::PermissionDenied
        );
    })
    .await;
    let accounting = auditor
        .disclosures(pb::DisclosuresRequest {
            subject: Some(pb::SubjectQuery {
                key: Some(pb::subject_query::Key::Phone(covered.phone.into())),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        accounting
            .disclosures
            .iter()
            .any(|d| d.recipient_user == "dispatcher1" && d.field_classes.contains(&"presence".to_owned()))
    );
    let verified = auditor.verify(pb::AuditVerifyRequest {}).await.unwrap().into_inner();
    assert!(verified.ok, "{}", verified.reason);
    let checkpoint = auditor
        .checkpoint(pb::AuditCheckpointRequest { fresh: true })
        .await
        .unwrap()
        .into_inner();
    assert!(checkpoint.tree_size > 0 && checkpoint.public_key_pem.contains("PUBLIC KEY"));
    let proof = auditor
        .inclusion_proof(pb::InclusionProofRequest {
            leaf_index: 0,
            tree_size: checkpoint.tree_size,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proof.root_hash, checkpoint.root_hash);

    // the log file holds no plaintext subject data
    let dir = sandbox.dir().join("nodes").join(PHELPS);
    let mut bytes = std::fs::read(dir.join("audit.sqlite")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("audit.sqlite-wal")) {
        bytes.extend(wal);
    }
    for needle in ["5735550142", "573-555-0142", "Jordan", "Avery", "1988-04-12"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} found in the audit log"
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_log_fails_closed_and_recovers() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    let covered = subjects
        .iter()
        .find(|s| s.consent == ConsentCase::Region)
        .unwrap()
        .clone();
    let log = sandbox.audit_log(PHELPS).unwrap();
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
    let mut health = HealthClient::new(sandbox.channel(PHELPS, "auditor").await.unwrap());
    let status_of = |health: &mut HealthClient<_>| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: "flagnet.v1.FlagIndex".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status
        }
    };
    assert_eq!(status_of(&mut health).await, ServingStatus::Serving as i32);

    log.fault_injector().fail_all_commits();
    let status = dispatcher.lookup(by_phone(covered.phone)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().contains("Avery") && !status.message().contains("CIT"));
    let mut not_serving = false;
    for _ in 0..50 {
        if status_of(&mut health).await == ServingStatus::NotServing as i32 {
            not_serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(not_serving, "health turns NOT_SERVING while the log fails");

    log.fault_injector().clear();
    let mut serving = false;
    for _ in 0..100 {
        if status_of(&mut health).await == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(serving, "health recovers once the log is writable");
    let answer = dispatcher.lookup(by_phone(covered.phone)).await.unwrap().into_inner();
    assert_eq!(answer.matches.len(), 1);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_logs_hold_the_request_id_of_a_federated_disclosure() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into(), "rolla-pd".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    let covered = subjects
        .iter()
        .find(|s| s.agency == PHELPS && s.consent == ConsentCase::Region)
        .unwrap()
        .clone();
    let mut dispatcher = sandbox.client("rolla-pd", "dispatcher").await.unwrap();
    let answer = dispatcher.lookup(by_phone(covered.phone)).await.unwrap().into_inner();
    assert_eq!(answer.matches.len(), 1);
    let request_id: uuid::Uuid = answer.request_id.parse().unwrap();
    let query = |log: Arc<AuditLog>| async move {
        log.search(AuditQuery {
            request_id: Some(request_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .records
    };
    let home = query(sandbox.audit_log("rolla-pd").unwrap()).await;
    let owner = query(sandbox.audit_log(PHELPS).unwrap()).await;
    assert_eq!(home.len(), 1);
    assert_eq!(home[0].record.action, AuditAction::Lookup);
    assert_eq!(owner.len(), 1);
    assert_eq!(owner[0].record.action, AuditAction::FederatedQuery);
    assert_eq!(
        owner[0].record.actor_user.as_ref().map(ToString::to_string).as_deref(),
        Some("dispatcher1")
    );
    assert_eq!(
        owner[0].record.disclosed.len(),
        1,
        "the owner records what it disclosed"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_found_by_the_auditors_verify() {
    let mut sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seed_demo(&sandbox).await.unwrap();
    sandbox.stop_node(PHELPS).await.unwrap();
    let path = sandbox.dir().join("nodes").join(PHELPS).join("audit.sqlite");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let mut entry: Vec<u8> = connection
            .query_row("SELECT entry FROM audit_records WHERE leaf_index = 2", [], |row| {
                row.get(0)
            })
            .unwrap();
        let last = entry.len() - 1;
        entry[last] ^= 0x01;
        connection
            .execute("UPDATE audit_records SET entry = ?1 WHERE leaf_index = 2", [entry])
            .unwrap();
    }
    sandbox.start_node(PHELPS).await.unwrap();
    let mut auditor = AuditLogClient::new(sandbox.channel(PHELPS, "auditor").await.unwrap());
    let report = auditor.verify(pb::AuditVerifyRequest {}).await.unwrap().into_inner();
    assert!(!report.ok);
    assert_eq!(report.first_bad_index, 2, "{}", report.reason);
    sandbox.shutdown().await;
}
