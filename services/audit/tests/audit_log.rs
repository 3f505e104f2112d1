//! The durable log end to end on real SQLite files: group commit, signed
//! checkpoints and proofs, search and accounting, tampering with the file
//! directly, injected and real store failures, and the absence of any
//! plaintext subject key in the file's bytes.

use flagnet_audit::merkle::{verify_consistency, verify_inclusion};
use flagnet_audit::{
    AuditAction, AuditError, AuditHealth, AuditLog, AuditLogConfig, AuditOutcome, AuditQuery, AuditRecord, AuditSink,
    AuditTokenKey, CheckpointSigner, DisclosedFields, NullAuditSink, SubjectRef, VerifyReport, WithheldField,
    WithholdReason, certificate_fingerprint,
};
use flagnet_core::{AgencyId, FieldClass, MatchingKey, Purpose, RoleName, SubjectKeyKind, UserId};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

fn agency(name: &str) -> AgencyId {
    AgencyId::parse(name).unwrap()
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::generate(agency("phelps-so"))
}

/// A lookup record by `user` of `actor_agency` about `subject`.
fn lookup(n: u64, actor_agency: &str, user: &str, subject: SubjectRef) -> AuditRecord {
    let mut record = AuditRecord::new(OffsetDateTime::now_utc(), Uuid::new_v4(), AuditAction::Lookup);
    record.outcome = AuditOutcome::Ok;
    record.grpc_code = 0;
    record.actor_agency = Some(agency(actor_agency));
    record.actor_user = Some(UserId::parse(user).unwrap());
    record.actor_roles = vec![RoleName::parse("dispatcher").unwrap()];
    record.caller_identity = Some(format!("spiffe://mo/agency/{actor_agency}/user/{user}"));
    record.caller_fingerprint = Some(certificate_fingerprint(format!("certificate {n}").as_bytes()));
    record.incident_id = Some(format!("CAD-{n}"));
    record.purpose = Some(Purpose::EmergencyResponse);
    record.subject_refs = vec![subject];
    record.disclosed = vec![DisclosedFields {
        owner_agency: agency("phelps-so"),
        flag_id: Uuid::from_u128(u128::from(n) + 1),
        classes: [FieldClass::Presence, FieldClass::Response].into_iter().collect(),
    }];
    record.withheld = vec![WithheldField {
        owner_agency: agency("phelps-so"),
        flag_id: Uuid::from_u128(u128::from(n) + 1),
        class: FieldClass::Clinical,
        reason: WithholdReason::Policy,
    }];
    record
}

fn record(n: u64) -> AuditRecord {
    lookup(n, "rolla-pd", "d.jones", [n as u8; 32])
}

fn config(dir: &Path) -> AuditLogConfig {
    let mut config = AuditLogConfig::new(dir.join("audit.sqlite"));
    config.probe_interval = Duration::from_millis(50);
    config
}

async fn wait_for_health(log: &AuditLog, writable: bool, within: Duration) -> AuditHealth {
    let mut health = log.health();
    tokio::time::timeout(within, health.wait_for(|health| health.is_writable() == writable))
        .await
        .unwrap_or_else(|_| panic!("health did not turn writable={writable} within {within:?}"))
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_acknowledges_64_concurrent_appends_in_fewer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(dir.path()), signer()).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for n in 0..64u64 {
        let log = log.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let expected_request = record(n);
            let request_id = expected_request.request_id;
            (request_id, log.append(expected_request).await.unwrap())
        }));
    }
    let mut receipts = Vec::new();
    for task in tasks {
        receipts.push(task.await.unwrap());
    }
    let mut indices: Vec<u64> = receipts.iter().map(|(_, receipt)| receipt.index).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..64).collect::<Vec<_>>(), "indices are contiguous from 0");

    let stats = log.stats();
    assert_eq!(stats.appended, 64);
    assert_eq!(stats.tree_size, 64);
    assert!(stats.commits < 64, "group commit shared commits: {stats:?}");
    assert!(stats.largest_batch > 1, "{stats:?}");
    for (request_id, receipt) in &receipts {
        let stored = log.get(receipt.index).await.unwrap();
        assert_eq!(stored.leaf_hash, receipt.leaf_hash);
        assert_eq!(&stored.record.request_id, request_id);
    }
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.size, 64);
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_records_and_proofs_verify_against_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.checkpoint_every = 10;
    let log = AuditLog::open(config.clone(), signer()).await.unwrap();
    let verifier = log.verifier().clone();
    let mut receipts = Vec::new();
    for n in 0..25 {
        receipts.push(log.append(record(n)).await.unwrap());
    }
    let sizes: Vec<u64> = log.checkpoints().await.unwrap().iter().map(|c| c.tree_size).collect();
    assert_eq!(sizes, vec![10, 20]);

    let now = log.checkpoint_now().await.unwrap();
    assert_eq!(now.tree_size, 25);
    now.verify(&verifier).unwrap();
    let ten = log.checkpoints().await.unwrap().remove(0);
    ten.verify(&verifier).unwrap();

    let inclusion = log.inclusion_proof(13, 25).await.unwrap();
    assert_eq!(inclusion.leaf_hash, receipts[13].leaf_hash);
    assert_eq!(inclusion.root_hash, now.root_hash);
    verify_inclusion(13, 25, &receipts[13].leaf_hash, &inclusion.hashes, &now.root_hash).unwrap();
    let consistency = log.consistency_proof(10, 25).await.unwrap();
    verify_consistency(10, 25, &ten.root_hash, &now.root_hash, &consistency.hashes).unwrap();
    assert!(log.inclusion_proof(25, 25).await.is_err());
    assert!(matches!(log.inclusion_proof(3, 26).await, Err(AuditError::NotFound(_))));

    log.shutdown().await;
    assert!(matches!(log.append(record(99)).await, Err(AuditError::Unavailable(_))));
    drop(log);

    let reopened = AuditLog::open(config, CheckpointSigner::generate(agency("phelps-so")))
        .await
        .unwrap();
    assert_eq!(reopened.size(), 25);
    assert!(reopened.health().borrow().is_writable());
    assert_eq!(reopened.append(record(25)).await.unwrap().index, 25);
    assert_eq!(
        reopened.get(7).await.unwrap().record.incident_id.as_deref(),
        Some("CAD-7")
    );
    assert!(matches!(reopened.get(26).await, Err(AuditError::NotFound(_))));
}

#[tokio::test]
async fn a_checkpoint_is_signed_after_the_interval_without_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.checkpoint_interval = Duration::from_millis(200);
    let log = AuditLog::open(config, signer()).await.unwrap();
    for n in 0..3 {
        log.append(record(n)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if log
            .latest_checkpoint()
            .await
            .unwrap()
            .is_some_and(|checkpoint| checkpoint.tree_size == 3)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no timed checkpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn search_pages_and_accounting_of_disclosures() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(dir.path()), signer()).await.unwrap();
    let subject: SubjectRef = [0x5a; 32];
    let other: SubjectRef = [0x5b; 32];
    let before = OffsetDateTime::now_utc();
    log.append(lookup(0, "rolla-pd", "d.jones", subject)).await.unwrap();
    log.append(lookup(1, "phelps-so", "a.smith", subject)).await.unwrap();
    let mut denied = lookup(2, "rolla-pd", "d.jones", subject);
    denied.outcome = AuditOutcome::Denied;
    denied.grpc_code = 7;
    denied.disclosed.clear();
    log.append(denied).await.unwrap();
    let mut nothing_disclosed = lookup(3, "rolla-pd", "b.brown", subject);
    nothing_disclosed.disclosed.clear();
    log.append(nothing_disclosed).await.unwrap();
    let federated = lookup(4, "rolla-pd", "d.jones", other);
    let federated_request = federated.request_id;
    log.append(federated).await.unwrap();
    let after = OffsetDateTime::now_utc() + time::Duration::seconds(1);

    let indices = |page: &flagnet_audit::AuditPage| page.records.iter().map(|r| r.index).collect::<Vec<_>>();
    let by_agency = log
        .search(AuditQuery {
            actor_agency: Some(agency("rolla-pd")),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(indices(&by_agency), vec![0, 2, 3, 4]);
    let by_user = log
        .search(AuditQuery {
            actor_user: Some(UserId::parse("a.smith").unwrap()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(indices(&by_user), vec![1]);
    let denied_only = log
        .search(AuditQuery {
            outcome: Some(AuditOutcome::Denied),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(indices(&denied_only), vec![2]);
    let by_incident = log
        .search(AuditQuery {
            incident_id: Some("CAD-3".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(indices(&by_incident), vec![3]);
    let by_subject = log
        .search(AuditQuery {
            subject_refs: vec![other],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(indices(&by_subject), vec![4]);
    let by_request = log
        .search(AuditQuery {
            request_id: Some(federated_request),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(indices(&by_request), vec![4]);
    let in_window = log
        .search(AuditQuery {
            from: Some(before),
            to: Some(after),
            action: Some(AuditAction::Lookup),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(in_window.records.len(), 5);
    let empty_window = log
        .search(AuditQuery {
            to: Some(before - time::Duration::seconds(1)),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(empty_window.records.is_empty());

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = log
            .search(AuditQuery {
                page_size: 2,
                page_token: token.clone(),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(page.records.len() <= 2);
        seen.extend(indices(&page));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    let bad_token = log
        .search(AuditQuery {
            page_token: Some("page two please".into()),
            ..AuditQuery::default()
        })
        .await;
    assert!(matches!(bad_token, Err(AuditError::Invalid { ref field, .. }) if field == "page_token"));

    let accounting = log.disclosures(vec![subject]).await.unwrap();
    let recipients: Vec<(u64, &str)> = accounting
        .iter()
        .map(|entry| (entry.index, entry.recipient_user.as_ref().unwrap().as_str()))
        .collect();
    assert_eq!(
        recipients,
        vec![(0, "d.jones"), (1, "a.smith")],
        "only successful disclosures count"
    );
    assert_eq!(accounting[1].recipient_agency, Some(agency("phelps-so")));
    assert_eq!(accounting[0].purpose, Some(Purpose::EmergencyResponse));
    assert!(accounting[0].classes.contains(FieldClass::Response));
    assert!(!accounting[0].classes.contains(FieldClass::Clinical));
    assert!(log.disclosures(Vec::new()).await.is_err());
}

#[tokio::test]
async fn export_streams_every_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(dir.path()), signer()).await.unwrap();
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.append(record(n)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut stream = log.export(0);
    let mut next = 0;
    while let Some(item) = stream.recv().await {
        let stored = item.unwrap();
        assert_eq!(stored.index, next);
        assert_eq!(flagnet_audit::merkle::leaf_hash(&stored.entry), stored.leaf_hash);
        next += 1;
    }
    assert_eq!(next, 300);
    let mut tail = log.export(295);
    let mut count = 0;
    while let Some(item) = tail.recv().await {
        item.unwrap();
        count += 1;
    }
    assert_eq!(count, 5);
    let line = serde_json::to_string(&log.get(0).await.unwrap()).unwrap();
    assert!(line.contains("\"action\":\"lookup\""), "{line}");
}

/// Writes 10 records and a checkpoint at 10, closes the log, lets `tamper`
/// edit the SQLite file directly, reopens and verifies.
async fn tampered(tamper: impl FnOnce(&Connection)) -> (AuditLog, VerifyReport, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let signer_pem_path = dir.path().join("checkpoint.key");
    CheckpointSigner::generate_key_file(&signer_pem_path).unwrap();
    let signer = CheckpointSigner::load(agency("phelps-so"), &signer_pem_path).unwrap();
    let log = AuditLog::open(config.clone(), signer).await.unwrap();
    for n in 0..10 {
        log.append(record(n)).await.unwrap();
    }
    assert_eq!(log.checkpoint_now().await.unwrap().tree_size, 10);
    assert!(log.verify().await.unwrap().is_ok());
    log.shutdown().await;
    drop(log);

    let conn = Connection::open(&config.path).unwrap();
    tamper(&conn);
    drop(conn);

    let signer = CheckpointSigner::load(agency("phelps-so"), &signer_pem_path).unwrap();
    let log = AuditLog::open(config.clone(), signer).await.unwrap();
    let report = log.verify().await.unwrap();
    (log, report, config.path, dir)
}

fn entry_of(conn: &Connection, index: i64) -> Vec<u8> {
    conn.query_row(
        "SELECT entry FROM audit_records WHERE leaf_index = ?1",
        params![index],
        |row| row.get(0),
    )
    .unwrap()
}

fn bad(report: &VerifyReport) -> (u64, &str) {
    let (index, reason) = report.first_bad.as_ref().expect("verify must report the tampering");
    (*index, reason.as_str())
}

#[tokio::test]
async fn verify_names_a_flipped_byte() {
    let (log, report, _, _dir) = tampered(|conn| {
        let mut entry = entry_of(conn, 4);
        let last = entry.len() - 40;
        entry[last] ^= 0x01;
        conn.execute(
            "UPDATE audit_records SET entry = ?1 WHERE leaf_index = 4",
            params![entry],
        )
        .unwrap();
    })
    .await;
    let (index, reason) = bad(&report);
    assert_eq!(index, 4);
    assert!(reason.contains("leaf hash does not match"), "{reason}");
    assert!(log.get(4).await.is_err(), "a damaged row is never returned");
}

#[tokio::test]
async fn verify_catches_a_rewritten_record_with_a_recomputed_hash_by_its_checkpoint() {
    let (_log, report, _, _dir) = tampered(|conn| {
        let entry = entry_of(conn, 6);
        let text = String::from_utf8_lossy(&entry).into_owned();
        assert!(text.contains("d.jones"));
        let mut forged = entry.clone();
        let at = forged.windows(7).position(|window| window == b"d.jones").unwrap();
        forged[at] = b'x';
        let forged_hash = flagnet_audit::merkle::leaf_hash(&forged);
        conn.execute(
            "UPDATE audit_records SET entry = ?1, leaf_hash = ?2, actor_user = 'x.jones' WHERE leaf_index = 6",
            params![forged, &forged_hash[..]],
        )
        .unwrap();
    })
    .await;
    let (index, reason) = bad(&report);
    assert_eq!(index, 0, "no earlier checkpoint vouches for any record below 10");
    assert!(reason.contains("root at size 10 does not match"), "{reason}");
}

#[tokio::test]
async fn verify_names_a_deleted_middle_row_and_the_log_refuses_appends() {
    let (log, report, _, _dir) = tampered(|conn| {
        conn.execute("DELETE FROM audit_records WHERE leaf_index = 5", [])
            .unwrap();
    })
    .await;
    let (index, reason) = bad(&report);
    assert_eq!(index, 5);
    assert!(reason.contains("record missing"), "{reason}");
    assert_eq!(report.size, 9);
    assert!(
        !log.health().borrow().is_writable(),
        "a log with a gap must not be extended"
    );
    assert!(matches!(log.append(record(11)).await, Err(AuditError::Unavailable(_))));
    let mut export = log.export(0);
    let mut last = None;
    while let Some(item) = export.recv().await {
        last = Some(item);
    }
    assert!(last.unwrap().is_err(), "export ends with an error at the gap");
}

#[tokio::test]
async fn verify_names_two_swapped_rows() {
    let (_log, report, _, _dir) = tampered(|conn| {
        let (two, six) = (entry_of(conn, 2), entry_of(conn, 6));
        conn.execute("UPDATE audit_records SET entry = ?1 WHERE leaf_index = 2", params![six])
            .unwrap();
        conn.execute("UPDATE audit_records SET entry = ?1 WHERE leaf_index = 6", params![two])
            .unwrap();
    })
    .await;
    let (index, reason) = bad(&report);
    assert_eq!(index, 2);
    assert!(reason.contains("leaf hash does not match"), "{reason}");
}

#[tokio::test]
async fn verify_names_two_swapped_rows_even_with_their_hashes() {
    let (_log, report, _, _dir) = tampered(|conn| {
        let hash_of = |index: i64| -> Vec<u8> {
            conn.query_row(
                "SELECT leaf_hash FROM audit_records WHERE leaf_index = ?1",
                params![index],
                |row| row.get(0),
            )
            .unwrap()
        };
        let (two, six) = ((entry_of(conn, 2), hash_of(2)), (entry_of(conn, 6), hash_of(6)));
        conn.execute(
            "UPDATE audit_records SET entry = ?1, leaf_hash = ?2 WHERE leaf_index = 2",
            params![six.0, six.1],
        )
        .unwrap();
        conn.execute(
            "UPDATE audit_records SET entry = ?1, leaf_hash = ?2 WHERE leaf_index = 6",
            params![two.0, two.1],
        )
        .unwrap();
    })
    .await;
    let (index, reason) = bad(&report);
    assert_eq!(index, 2);
    assert!(reason.contains("carries index 6"), "{reason}");
}

#[tokio::test]
async fn verify_catches_a_truncated_tail_against_the_stored_checkpoint() {
    let (log, report, _, _dir) = tampered(|conn| {
        conn.execute("DELETE FROM audit_records WHERE leaf_index >= 7", [])
            .unwrap();
    })
    .await;
    let (index, reason) = bad(&report);
    assert_eq!(index, 7);
    assert!(reason.contains("truncated"), "{reason}");
    assert_eq!(report.size, 7);
    assert!(!log.health().borrow().is_writable());
}

#[tokio::test]
async fn a_truncation_that_also_removed_the_checkpoints_is_caught_by_a_saved_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let log = AuditLog::open(config.clone(), CheckpointSigner::generate(agency("phelps-so")))
        .await
        .unwrap();
    for n in 0..10 {
        log.append(record(n)).await.unwrap();
    }
    let saved_by_a_peer = log.checkpoint_now().await.unwrap();
    let conn = Connection::open(&config.path).unwrap();
    conn.execute("DELETE FROM audit_records WHERE leaf_index >= 6", [])
        .unwrap();
    conn.execute("DELETE FROM audit_subjects WHERE leaf_index >= 6", [])
        .unwrap();
    conn.execute("DELETE FROM audit_checkpoints", []).unwrap();
    drop(conn);

    assert!(
        log.verify().await.unwrap().is_ok(),
        "nothing in the file shows the truncation"
    );
    let report = log.verify_against(vec![saved_by_a_peer.clone()]).await.unwrap();
    let (index, reason) = bad(&report);
    assert_eq!(index, 6);
    assert!(reason.contains("truncated"), "{reason}");

    let mut forged = saved_by_a_peer;
    forged.tree_size = 4;
    let report = log.verify_against(vec![forged]).await.unwrap();
    assert!(bad(&report).1.contains("bad signature"), "{report:?}");
}

#[tokio::test]
async fn injected_commit_failures_make_appends_unavailable_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.append_deadline = Duration::from_millis(400);
    let log = AuditLog::open(config, signer()).await.unwrap();
    log.append(record(0)).await.unwrap();
    let faults = log.fault_injector();

    faults.fail_all_commits();
    let started = Instant::now();
    let refused = log.append(record(1)).await;
    assert!(matches!(refused, Err(AuditError::Unavailable(_))), "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "fails within the deadline"
    );
    let health = wait_for_health(&log, false, Duration::from_secs(2)).await;
    assert!(
        matches!(health, AuditHealth::Failing { ref reason } if reason.contains("injected")),
        "{health:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !log.health().borrow().is_writable(),
        "probes keep failing while the fault is armed"
    );

    faults.clear();
    wait_for_health(&log, true, Duration::from_secs(2)).await;
    assert_eq!(
        log.append(record(2)).await.unwrap().index,
        1,
        "the refused record was never stored"
    );
    let stats = log.stats();
    assert!(stats.failed_commits >= 1 && stats.refused_appends == 1, "{stats:?}");
    assert!(log.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn a_commit_slower_than_the_deadline_is_unavailable_in_time_and_health_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.append_deadline = Duration::from_millis(300);
    let log = AuditLog::open(config, signer()).await.unwrap();
    log.append(record(0)).await.unwrap();
    let faults = log.fault_injector();

    faults.delay_commits(Duration::from_millis(800));
    let started = Instant::now();
    let refused = log.append(record(1)).await;
    let elapsed = started.elapsed();
    assert!(matches!(refused, Err(AuditError::Unavailable(_))), "{refused:?}");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(600),
        "returns at the deadline, not when the disk finishes: {elapsed:?}"
    );
    assert!(!log.health().borrow().is_writable());

    faults.clear();
    wait_for_health(&log, true, Duration::from_secs(3)).await;
    log.append(record(2)).await.unwrap();
    assert!(log.verify().await.unwrap().is_ok());
}

/// Sets or clears the immutable attribute, which even root cannot write
/// through; `false` when this machine does not allow it.
fn set_immutable(paths: &[PathBuf], immutable: bool) -> bool {
    let flag = if immutable { "+i" } else { "-i" };
    paths.iter().all(|path| {
        std::process::Command::new("chattr")
            .arg(flag)
            .arg(path)
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false)
    })
}

struct ImmutableGuard(Vec<PathBuf>);

impl Drop for ImmutableGuard {
    fn drop(&mut self) {
        set_immutable(&self.0, false);
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn a_read_only_file_at_open_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let log = AuditLog::open(config.clone(), signer()).await.unwrap();
    log.append(record(0)).await.unwrap();
    log.shutdown().await;
    drop(log);

    let mut permissions = std::fs::metadata(&config.path).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&config.path, permissions).unwrap();
    let _guard = ImmutableGuard(vec![config.path.clone()]);
    if running_as_root() && !set_immutable(std::slice::from_ref(&config.path), true) {
        eprintln!("skipped: root ignores file modes and chattr +i is not permitted here");
        return;
    }
    let opened = AuditLog::open(config, signer()).await;
    assert!(matches!(opened, Err(AuditError::Unavailable(_))), "{opened:?}");
}

#[tokio::test]
async fn a_file_turned_read_only_while_serving_is_unavailable_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.append_deadline = Duration::from_millis(500);
    let log = AuditLog::open(config.clone(), signer()).await.unwrap();
    log.append(record(0)).await.unwrap();

    let wal = PathBuf::from(format!("{}-wal", config.path.display()));
    let files = vec![config.path.clone(), wal];
    let guard = ImmutableGuard(files.clone());
    if !set_immutable(&files, true) {
        eprintln!("skipped: chattr +i is not permitted here");
        return;
    }
    let refused = log.append(record(1)).await;
    assert!(matches!(refused, Err(AuditError::Unavailable(_))), "{refused:?}");
    wait_for_health(&log, false, Duration::from_secs(2)).await;

    drop(guard);
    wait_for_health(&log, true, Duration::from_secs(3)).await;
    assert_eq!(log.append(record(2)).await.unwrap().index, 1);
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.size, 2);
}

#[tokio::test]
async fn the_file_holds_no_plaintext_subject_key_and_no_matching_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let log = AuditLog::open(config.clone(), signer()).await.unwrap();
    let matching_key = MatchingKey::from_bytes(vec![7; 32]).unwrap();
    let audit_key = AuditTokenKey::from_bytes(vec![9; 32]).unwrap();
    let phone = "+15735550100";
    let name_and_birth_date = "margaret okonkwo-reyes|1984-02-29";
    let tokens = [
        matching_key.token(SubjectKeyKind::Phone, phone).token,
        matching_key
            .token(SubjectKeyKind::NameBirthDate, name_and_birth_date)
            .token,
    ];
    for n in 0..20 {
        let mut record = record(n);
        record.subject_refs = audit_key.subject_refs(tokens.iter());
        log.append(record).await.unwrap();
    }
    let refs = audit_key.subject_refs(tokens.iter());
    assert_eq!(log.disclosures(refs).await.unwrap().len(), 20);
    log.shutdown().await;
    drop(log);

    let mut bytes = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(file.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 4096);
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    for needle in [
        "5735550100",
        "573-555-0100",
        "margaret",
        "Margaret",
        "okonkwo",
        "Okonkwo",
        "1984-02-29",
    ] {
        assert!(!contains(needle.as_bytes()), "{needle:?} found in the audit file");
    }
    for token in &tokens {
        assert!(!contains(token.as_bytes()), "a matching token found in the audit file");
    }
    assert!(
        contains(&audit_key.subject_ref(&tokens[0])),
        "the keyed ref is what is stored"
    );
}

#[tokio::test]
async fn the_null_sink_acknowledges_without_storing() {
    let sink: Arc<dyn AuditSink> = Arc::new(NullAuditSink::new());
    assert!(sink.health().borrow().is_writable());
    assert_eq!(sink.append(record(0)).await.unwrap().index, 0);
    assert_eq!(sink.append(record(1)).await.unwrap().index, 1);
}

#[tokio::test]
async fn the_log_is_an_audit_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn AuditSink> = Arc::new(AuditLog::open(config(dir.path()), signer()).await.unwrap());
    let receipt = sink.append(record(0)).await.unwrap();
    assert_eq!(receipt.index, 0);
    assert!(sink.health().borrow().is_writable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_closed_before_its_first_record_opens_and_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("checkpoint.key");
    CheckpointSigner::generate_key_file(&key).unwrap();
    let log = AuditLog::open(
        config(dir.path()),
        CheckpointSigner::load(agency("phelps-so"), &key).unwrap(),
    )
    .await
    .unwrap();
    log.checkpoint_now().await.unwrap();
    log.shutdown().await;
    drop(log);
    let reopened = AuditLog::open(
        config(dir.path()),
        CheckpointSigner::load(agency("phelps-so"), &key).unwrap(),
    )
    .await
    .unwrap();
    reopened
        .append(record(0))
        .await
        .expect("an empty log with a size-0 checkpoint takes records again");
    let report = reopened.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.first_bad);
    reopened.shutdown().await;
}
