//! A node's trust changes under it, over real mTLS on real nodes: a
//! revocation reaches new handshakes within the reload interval and open
//! connections by the maximum connection age; the node's own certificate
//! rotates with no failed request; a torn certificate/key pair is kept out,
//! reported and logged while the old pair serves. SIGHUP is in
//! `trust_sighup.rs`, a process of its own.

use flagnet_core::{AgencyId, Identity, UserId};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_sandbox::{Sandbox, SandboxOptions, TlsTiming};
use flagnet_trust::client::ClientProfile;
use flagnet_trust::events::{HandshakeRefusal, MemorySink, TrustEvent};
use flagnet_trust::reload::ReloadTrigger;
use flagnet_trust::{CertificateRefusal, FederationDir, fingerprint_sha256};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const AGENCY: &str = "phelps-so";

fn agency() -> AgencyId {
    AgencyId::parse(AGENCY).unwrap()
}

async fn sandbox(tls_timing: TlsTiming) -> (Sandbox, Arc<MemorySink>) {
    let events = Arc::new(MemorySink::new());
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![AGENCY.into()],
        tls_timing,
        trust_events: Some(events.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    (sandbox, events)
}

fn timing(reload_interval_ms: u64) -> TlsTiming {
    TlsTiming {
        reload_interval_ms,
        ..TlsTiming::default()
    }
}

fn lookup_request() -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone("573-555-0142".into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-1".into(),
        scope: pb::LookupScope::Local as i32,
        override_reason: String::new(),
    }
}

fn profile(sandbox: &Sandbox, role: &str) -> ClientProfile {
    ClientProfile::load(&sandbox.profile_path(AGENCY, role)).unwrap()
}

/// One lookup over a new connection, so a new handshake.
async fn lookup_on_a_new_connection(profile: &ClientProfile) -> Result<(), String> {
    let channel = profile.connect().await.map_err(|error| error.to_string())?;
    lookup(&mut FlagIndexClient::new(channel)).await
}

async fn lookup(client: &mut FlagIndexClient<Channel>) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(5), client.lookup(lookup_request())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => Err("lookup timed out".into()),
    }
}

/// Waits until `check` holds, polling every 25 ms; panics after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The SHA-256 of the certificate the node presents to a new handshake.
async fn presented_node_fingerprint(sandbox: &Sandbox, role: &str) -> String {
    let config = profile(sandbox, role).tls_config().unwrap();
    let address = sandbox.node_addr(AGENCY).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(address).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(config, server_name).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).unwrap();
        }
        fingerprint_sha256(&tls.peer_certificates().unwrap()[0])
    })
    .await
    .unwrap()
}

async fn trust_health(sandbox: &Sandbox) -> (i32, i32) {
    let channel = profile(sandbox, "auditor").connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    let mut statuses = Vec::new();
    for service in ["flagnet.v1.Trust", ""] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        statuses.push(health.check(request).await.unwrap().into_inner().status);
    }
    (statuses[0], statuses[1])
}

fn certificate_fingerprint(path: &Path) -> String {
    fingerprint_sha256(&flagnet_trust::pem::certificates(path).unwrap()[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_person_is_refused_at_new_handshakes_within_the_reload_interval() {
    let (sandbox, events) = sandbox(timing(200)).await;
    let dispatcher = profile(&sandbox, "dispatcher");
    lookup_on_a_new_connection(&dispatcher).await.unwrap();

    sandbox.federation().revoke_file(&dispatcher.certificate).unwrap();
    let refused_after = eventually(Duration::from_secs(5), "new handshakes refused", || async {
        lookup_on_a_new_connection(&dispatcher).await.is_err()
    })
    .await;
    // the interval, plus one handshake and the time to notice
    assert!(refused_after < Duration::from_millis(200 + 1_500), "{refused_after:?}");
    // nobody else is affected
    lookup_on_a_new_connection(&profile(&sandbox, "officer")).await.unwrap();

    let dispatcher_identity = Identity::user(
        sandbox.federation().federation(),
        agency(),
        UserId::parse("dispatcher1").unwrap(),
    );
    let events = events.events();
    let refused = events
        .iter()
        .find_map(|event| match event {
            TrustEvent::HandshakeRefused(refused) => Some(refused),
            _ => None,
        })
        .expect("the refused handshake is reported");
    assert_eq!(refused.reason.code(), "revoked");
    assert!(
        matches!(
            &refused.reason,
            HandshakeRefusal::Certificate(CertificateRefusal::Path(_))
        ),
        "{:?}",
        refused.reason
    );
    assert_eq!(refused.claimed_identity.as_ref(), Some(&dispatcher_identity));
    assert_eq!(
        refused.fingerprint_sha256.as_deref(),
        Some(certificate_fingerprint(&dispatcher.certificate).as_str())
    );
    assert!(refused.remote_addr.ip().is_loopback());
    let reloaded = events
        .iter()
        .find_map(|event| match event {
            TrustEvent::Reloaded(reloaded) => Some(reloaded),
            _ => None,
        })
        .expect("the reload is reported");
    assert_eq!(reloaded.trigger, ReloadTrigger::Poll);
    assert_eq!(reloaded.changed, vec![sandbox.federation().crl_path(&agency())]);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_connection_of_a_revoked_person_is_closed_by_the_maximum_age() {
    const AGE: Duration = Duration::from_secs(3);
    const GRACE: Duration = Duration::from_secs(1);
    let (sandbox, _events) = sandbox(TlsTiming {
        reload_interval_ms: 100,
        max_connection_age_secs: AGE.as_secs(),
        max_connection_age_grace_secs: GRACE.as_secs(),
    })
    .await;
    let dispatcher = profile(&sandbox, "dispatcher");
    let mut open_before = sandbox.client(AGENCY, "dispatcher").await.unwrap();
    let opened = Instant::now();
    lookup(&mut open_before).await.unwrap();

    sandbox.federation().revoke_file(&dispatcher.certificate).unwrap();
    eventually(Duration::from_secs(2), "new handshakes refused", || async {
        lookup_on_a_new_connection(&dispatcher).await.is_err()
    })
    .await;
    // the reload leaves the connection opened before it alone
    lookup(&mut open_before).await.unwrap();
    assert!(
        opened.elapsed() < AGE,
        "too slow to tell the reload from the age: {:?}",
        opened.elapsed()
    );

    let last_error = loop {
        if let Err(error) = lookup(&mut open_before).await {
            break error;
        }
        assert!(
            opened.elapsed() < AGE + GRACE + Duration::from_secs(2),
            "the old connection still serves after {:?}",
            opened.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= AGE - Duration::from_millis(300),
        "{closed_after:?}: {last_error}"
    );
    assert!(closed_after <= AGE + GRACE + Duration::from_secs(2), "{closed_after:?}");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_certificate_rotates_without_a_failed_request() {
    let (sandbox, events) = sandbox(timing(100)).await;
    let before = presented_node_fingerprint(&sandbox, "dispatcher").await;
    assert_eq!(
        before,
        sandbox
            .running_node(AGENCY)
            .unwrap()
            .trust_status()
            .active
            .node_fingerprint_sha256
    );

    let stop = Arc::new(AtomicBool::new(false));
    let dispatcher = profile(&sandbox, "dispatcher");
    let mut long_lived = sandbox.client(AGENCY, "dispatcher").await.unwrap();
    let looping = tokio::spawn({
        let stop = stop.clone();
        async move {
            let (mut succeeded, mut failed) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for result in [
                    lookup_on_a_new_connection(&dispatcher).await,
                    lookup(&mut long_lived).await,
                ] {
                    match result {
                        Ok(()) => succeeded += 1,
                        Err(error) => failed.push(error),
                    }
                }
            }
            (succeeded, failed)
        }
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated = sandbox.federation().issue_node(&agency()).unwrap();
    assert_ne!(rotated.fingerprint_sha256, before);
    eventually(Duration::from_secs(3), "the rotated certificate in use", || async {
        sandbox
            .running_node(AGENCY)
            .unwrap()
            .trust_status()
            .active
            .node_fingerprint_sha256
            == rotated.fingerprint_sha256
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (succeeded, failed) = looping.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} failed requests during the rotation: {failed:?}",
        failed.len()
    );
    assert!(succeeded >= 10, "only {succeeded} requests during the rotation");

    assert_eq!(
        presented_node_fingerprint(&sandbox, "officer").await,
        rotated.fingerprint_sha256
    );
    assert!(events.events().iter().any(|event| matches!(
        event,
        TrustEvent::Reloaded(reloaded) if reloaded.active.node_fingerprint_sha256 == rotated.fingerprint_sha256
    )));
    sandbox.shutdown().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_certificate_and_key_pair_is_kept_out_while_the_old_pair_serves() {
    let (sandbox, events) = sandbox(timing(100)).await;
    let node = || sandbox.running_node(AGENCY).unwrap();
    let original = node().trust_status().active;
    let node_cert = sandbox.federation().agency_dir(&agency()).join("nodes/node.pem");
    let node_key = sandbox.federation().agency_dir(&agency()).join("nodes/node.key");

    // a new pair made apart, so that its certificate can arrive alone
    let staging_root = sandbox.dir().join("staging-pki");
    copy_dir(sandbox.federation().root(), &staging_root);
    let staged = FederationDir::open(&staging_root)
        .unwrap()
        .issue_node(&agency())
        .unwrap();
    std::fs::rename(&staged.cert_path, &node_cert).unwrap();

    eventually(Duration::from_secs(3), "the torn pair refused", || async {
        node().trust_status().last_error.is_some()
    })
    .await;
    let status = node().trust_status();
    let refusal = status.last_error.unwrap();
    assert!(
        refusal.error.contains("keys may not be consistent"),
        "{}",
        refusal.error
    );
    assert!(
        refusal.error.contains(&node_cert.display().to_string()),
        "{}",
        refusal.error
    );
    assert!(!refusal.bundle_applied);
    assert_eq!(refusal.changed, vec![node_cert.clone()]);
    assert_eq!(status.active.node_fingerprint_sha256, original.node_fingerprint_sha256);
    assert_eq!(
        trust_health(&sandbox).await,
        (ServingStatus::NotServing as i32, ServingStatus::Serving as i32)
    );
    // the old pair serves on
    lookup_on_a_new_connection(&profile(&sandbox, "dispatcher"))
        .await
        .unwrap();
    assert_eq!(
        presented_node_fingerprint(&sandbox, "dispatcher").await,
        original.node_fingerprint_sha256
    );
    assert!(events.events().iter().any(|event| matches!(
        event,
        TrustEvent::ReloadRefused(refused) if refused.trigger == ReloadTrigger::Poll && refused.error == refusal.error
    )));

    // the key arrives: the new pair loads and the health entry recovers
    std::fs::rename(&staged.key_path, &node_key).unwrap();
    eventually(Duration::from_secs(3), "the completed pair in use", || async {
        node().trust_status().active.node_fingerprint_sha256 == staged.fingerprint_sha256
    })
    .await;
    assert!(node().trust_status().last_error.is_none());
    assert_eq!(
        trust_health(&sandbox).await,
        (ServingStatus::Serving as i32, ServingStatus::Serving as i32)
    );
    lookup_on_a_new_connection(&profile(&sandbox, "dispatcher"))
        .await
        .unwrap();
    assert_eq!(
        presented_node_fingerprint(&sandbox, "dispatcher").await,
        staged.fingerprint_sha256
    );
    sandbox.shutdown().await;
}
