//! SIGHUP reloads a node's certificate, trust bundle and CRLs at once. A
//! signal reaches the whole test process, so this test has a process (a
//! test binary) of its own.

use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_sandbox::{Sandbox, SandboxOptions, TlsTiming};
use flagnet_trust::client::ClientProfile;
use flagnet_trust::reload::{ReloadOutcome, ReloadTrigger};
use std::time::{Duration, Instant};

const AGENCY: &str = "phelps-so";

async fn lookup_on_a_new_connection(profile: &ClientProfile) -> Result<(), String> {
    let channel = profile.connect().await.map_err(|error| error.to_string())?;
    let request = pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone("573-555-0142".into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-1".into(),
        scope: pb::LookupScope::Local as i32,
        override_reason: String::new(),
    };
    match tokio::time::timeout(Duration::from_secs(5), FlagIndexClient::new(channel).lookup(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => Err("lookup timed out".into()),
    }
}

/// The poll is too slow to matter here: only the signal can reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_at_once() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![AGENCY.into()],
        tls_timing: TlsTiming {
            reload_interval_ms: 600_000,
            ..TlsTiming::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dispatcher = ClientProfile::load(&sandbox.profile_path(AGENCY, "dispatcher")).unwrap();
    sandbox.federation().revoke_file(&dispatcher.certificate).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lookup_on_a_new_connection(&dispatcher)
        .await
        .expect("no reload without the signal");

    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let signalled = Instant::now();
    while lookup_on_a_new_connection(&dispatcher).await.is_ok() {
        assert!(
            signalled.elapsed() < Duration::from_secs(3),
            "still accepted after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let node = sandbox.running_node(AGENCY).unwrap();
    assert_eq!(node.trust_status().active.trigger, ReloadTrigger::Signal);

    // the reload function the signal runs, called directly
    match node.reload_trust().await {
        ReloadOutcome::Reloaded(reloaded) => {
            assert_eq!(reloaded.trigger, ReloadTrigger::Manual);
            assert!(reloaded.changed.is_empty(), "{:?}", reloaded.changed);
        }
        other => panic!("{other:?}"),
    }
    sandbox.shutdown().await;
}
