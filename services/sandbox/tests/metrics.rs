//! The admin listener: Prometheus text on 127.0.0.1, with calls, latency,
//! decisions, the audit log, peers and certificate expiry, and no subject data.

use flagnet_proto::v1 as pb;
use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_decisions_audit_and_peers() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into(), "rolla-pd".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seed_demo(&sandbox).await.unwrap();
    let mut dispatcher = sandbox.client("rolla-pd", "dispatcher").await.unwrap();
    let answer = dispatcher
        .lookup(pb::LookupRequest {
            subject: Some(pb::SubjectQuery {
                key: Some(pb::subject_query::Key::Phone("573-555-0142".into())),
            }),
            purpose: "emergency_response".into(),
            incident_id: "CAD-M".into(),
            scope: pb::LookupScope::Federated as i32,
            override_reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.matches.len(), 1);
    let addr = sandbox.admin_addr("rolla-pd").unwrap();
    assert!(addr.ip().is_loopback());
    let text = scrape(addr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for expected in [
        "flagnet_requests_total{action=\"lookup\",code=\"Ok\",agency=\"rolla-pd\"} 1",
        "flagnet_lookup_duration_seconds_count{agency=\"rolla-pd\"} 1",
        "flagnet_peer_calls_total{peer=\"phelps-so\",state=\"PEER_STATE_OK\",agency=\"rolla-pd\"} 1",
        "flagnet_peer_breaker{peer=\"phelps-so\",state=\"closed\",agency=\"rolla-pd\"} 1",
        "flagnet_audit_log{counter=\"appended\",agency=\"rolla-pd\"}",
        "flagnet_audit_durable_seconds_count",
        "flagnet_certificate_not_after_seconds{certificate=\"node\",agency=\"rolla-pd\"}",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    let owner = scrape(sandbox.admin_addr("phelps-so").unwrap(), "/metrics").await;
    assert!(
        owner.contains("flagnet_decisions_total{outcome=\"disclosed\",agency=\"phelps-so\"}"),
        "{owner}"
    );
    assert!(
        owner.contains("flagnet_requests_total{action=\"federated_query\",code=\"Ok\",agency=\"phelps-so\"} 1"),
        "{owner}"
    );
    for text in [&text, &owner] {
        assert!(
            !text.contains("555") && !text.contains("Avery"),
            "no subject data in metrics"
        );
    }
    assert!(scrape(addr, "/other").await.starts_with("HTTP/1.1 404"));
    sandbox.shutdown().await;
}
