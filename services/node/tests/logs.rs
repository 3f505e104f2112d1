//! The demo's logs, at debug level, never hold plaintext subject data: run
//! the real `flagnet-node demo`, exercise it (lookups, bad input, records
//! work), stop it with SIGTERM, and search everything it logged for the
//! seeded names, birth dates and phone numbers.

use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_trust::client::ClientProfile;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

async fn client(dir: &std::path::Path, profile: &str) -> Option<FlagIndexClient<tonic::transport::Channel>> {
    let profile = ClientProfile::load(&dir.join("profiles").join(format!("{profile}.toml"))).ok()?;
    Some(FlagIndexClient::new(profile.connect().await.ok()?))
}

fn lookup(phone: &str, purpose: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: purpose.into(),
        incident_id: "CAD-LOGS".into(),
        scope: pb::LookupScope::Federated as i32,
        override_reason: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_logs_hold_no_subject_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_flagnet-node"))
        .args(["demo", "--dir", &dir.path().display().to_string()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = demo.stderr.take().unwrap();
    let collected = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut dispatcher = None;
    for _ in 0..400 {
        if let Some(mut candidate) = client(dir.path(), "phelps-so-dispatcher").await
            && candidate
                .lookup(lookup("573-555-0142", "emergency_response"))
                .await
                .is_ok_and(|a| !a.into_inner().matches.is_empty())
        {
            dispatcher = Some(candidate);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut dispatcher = dispatcher.expect("the demo serves its seeded subjects");
    let mut rolla = client(dir.path(), "rolla-pd-liaison").await.unwrap();
    for phone in ["573-555-0142", "573-555-0157", "573-555-0178", "+1 573 555 0189"] {
        dispatcher.lookup(lookup(phone, "emergency_response")).await.unwrap();
        rolla.lookup(lookup(phone, "crisis_followup")).await.unwrap();
    }
    let _ = dispatcher.lookup(lookup("573-555-014", "emergency_response")).await;
    let _ = dispatcher.list_flags(pb::ListFlagsRequest::default()).await;
    let mut clerk = client(dir.path(), "phelps-so-records_clerk").await.unwrap();
    let _ = clerk
        .put_flag(pb::PutFlagRequest {
            flag: Some(pb::FlagInput {
                subject: Some(pb::Subject {
                    given_name: "Jordan".into(),
                    family_name: "Avery".into(),
                    birth_date: "1988-04-12x".into(),
                    phones: vec!["573-555-0142".into()],
                    addresses: vec![],
                }),
                status: pb::FlagStatus::Active as i32,
                ..Default::default()
            }),
            change_reason: "typo test".into(),
            ..Default::default()
        })
        .await;

    let terminated = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = demo.wait().unwrap();
    assert!(status.success(), "SIGTERM stops the demo cleanly: {status:?}");
    let logs = collected.join().unwrap();
    assert!(logs.contains("lookup decided"), "debug logs were captured");
    for needle in [
        "Jordan",
        "Avery",
        "María",
        "Maria",
        "Delgado",
        "Okafor",
        "Whitfield",
        "Banks",
        "Kowalski",
        "Morgan",
        "1988-04-12",
        "1975-11-02",
        "555-0142",
        "5550142",
        "555 0142",
        "555-0157",
        "5550157",
        "Pine Street",
        "bipolar",
        "crisis unit",
    ] {
        assert!(!logs.contains(needle), "the logs hold {needle:?}");
    }
}
