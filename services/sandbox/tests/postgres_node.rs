//! A federation whose nodes keep their stores in PostgreSQL (one schema per
//! node), when `FLAGNET_TEST_POSTGRES` names a server; the same lookups and
//! consent rules as on SQLite. Without the variable the test says it was
//! skipped.

use flagnet_proto::v1 as pb;
use flagnet_sandbox::seed::ConsentCase;
use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};

fn by_phone(phone: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-PG".into(),
        scope: pb::LookupScope::Federated as i32,
        override_reason: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_postgres_answer_like_nodes_on_sqlite() {
    let Ok(server) = std::env::var("FLAGNET_TEST_POSTGRES") else {
        eprintln!("SKIPPED nodes_on_postgres_answer_like_nodes_on_sqlite: FLAGNET_TEST_POSTGRES is not set");
        return;
    };
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into(), "rolla-pd".into()],
        postgres: Some(server),
        ..Default::default()
    })
    .await
    .unwrap();
    let config = std::fs::read_to_string(sandbox.node_config_path("phelps-so").unwrap()).unwrap();
    assert!(config.contains("url = \"postgres://"), "{config}");
    let subjects = seed_demo(&sandbox).await.unwrap();
    let regional = subjects
        .iter()
        .find(|s| s.agency == "phelps-so" && s.consent == ConsentCase::Region)
        .unwrap();
    let revoked = subjects
        .iter()
        .find(|s| s.agency == "phelps-so" && s.consent == ConsentCase::Revoked)
        .unwrap();
    let mut dispatcher = sandbox.client("rolla-pd", "dispatcher").await.unwrap();
    let answer = dispatcher.lookup(by_phone(regional.phone)).await.unwrap().into_inner();
    assert_eq!(answer.matches.len(), 1);
    assert!(answer.matches[0].presence.is_some() && answer.matches[0].safety.is_none());
    assert!(
        dispatcher
            .lookup(by_phone(revoked.phone))
            .await
            .unwrap()
            .into_inner()
            .matches
            .is_empty()
    );
    sandbox.shutdown().await;
}
