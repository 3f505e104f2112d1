//! A real `flagnet-node` process killed with SIGKILL during sustained
//! lookups: after a restart its audit log verifies, and every lookup a
//! client saw answered has its record.

use flagnet_proto::v1 as pb;
use flagnet_proto::v1::audit_log_client::AuditLogClient;
use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PHELPS: &str = "phelps-so";

fn serve(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_flagnet-node"))
        .args(["serve", "--config", &config.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("flagnet-node starts")
}

async fn wait_until_serving(sandbox: &Sandbox) {
    for _ in 0..200 {
        if let Ok(mut client) = sandbox.client(PHELPS, "dispatcher").await
            && client.lookup(lookup()).await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node process did not start serving");
}

fn lookup() -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone("573-555-0142".into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-CRASH".into(),
        scope: pb::LookupScope::Local as i32,
        override_reason: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_no_acknowledged_record() {
    let mut sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seed_demo(&sandbox).await.unwrap();
    sandbox.stop_node(PHELPS).await.unwrap();
    let config = sandbox.node_config_path(PHELPS).unwrap();

    let mut child = serve(&config);
    wait_until_serving(&sandbox).await;
    let answered: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let mut client = sandbox.client(PHELPS, "dispatcher").await.unwrap();
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            for _ in 0..2_000 {
                match client.lookup(lookup()).await {
                    Ok(answer) => {
                        answered.lock().unwrap().insert(answer.into_inner().request_id);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 20,
        "lookups were answered before the kill ({})",
        answered.len()
    );

    let mut child = serve(&config);
    wait_until_serving(&sandbox).await;
    let mut auditor = AuditLogClient::new(sandbox.channel(PHELPS, "auditor").await.unwrap());
    let report = auditor.verify(pb::AuditVerifyRequest {}).await.unwrap().into_inner();
    assert!(report.ok, "after the crash the log verifies: {}", report.reason);
    let mut recorded = BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let page = auditor
            .search(pb::AuditSearchRequest {
                action: "lookup".into(),
                incident_id: "CAD-CRASH".into(),
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for entry in &page.records {
            let record: serde_json::Value = serde_json::from_str(&entry.record_json).unwrap();
            recorded.insert(record["request_id"].as_str().unwrap().to_owned());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let missing: Vec<&String> = answered.difference(&recorded).collect();
    assert!(
        missing.is_empty(),
        "{} answered lookups have no record, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
