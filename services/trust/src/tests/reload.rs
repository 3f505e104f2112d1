//! Reloading a node's certificate, trust bundle and CRLs: every set that
//! must be refused is refused with the last good set kept, a good set is
//! swapped in whole, new handshakes use it and open connections go on.

use super::support::{FEDERATION, Pair, TestFederation, client, connect};
use crate::error::CertificateRefusal;
use crate::events::{TrustReloadRefused, TrustReloaded};
use crate::reload::{NodeTrustPaths, ReloadOutcome, ReloadTrigger, ReloadingServerConfig};
use crate::verifier::capture_client_refusal;
use rustls::CertificateError;
use rustls_pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn paths(federation: &TestFederation) -> NodeTrustPaths {
    NodeTrustPaths {
        federation: FEDERATION.into(),
        agency: federation.rolla.clone(),
        certificate: federation.rolla_node.cert_path.clone(),
        private_key: federation.rolla_node.key_path.clone(),
        trust_dir: federation.dir.trust_dir(),
    }
}

fn loaded(federation: &TestFederation) -> ReloadingServerConfig {
    ReloadingServerConfig::load(paths(federation)).unwrap()
}

fn reloaded(outcome: ReloadOutcome) -> TrustReloaded {
    match outcome {
        ReloadOutcome::Reloaded(reloaded) => reloaded,
        other => panic!("expected a reload, got {other:?}"),
    }
}

fn refused(outcome: ReloadOutcome) -> TrustReloadRefused {
    match outcome {
        ReloadOutcome::Refused(refused) => refused,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Polls, expects a refusal mentioning `expected`, and checks that the
/// node still serves with its previous certificate and reports the refusal.
async fn assert_refused_and_kept(federation: &TestFederation, reloading: &ReloadingServerConfig, expected: &str) {
    let before = reloading.status().active;
    let refusal = refused(reloading.reload(ReloadTrigger::Poll));
    assert!(
        refusal.error.contains(expected),
        "{expected:?} not in {}",
        refusal.error
    );
    assert_eq!(refusal.kept.node_fingerprint_sha256, before.node_fingerprint_sha256);
    let status = reloading.status();
    assert_eq!(status.active.node_fingerprint_sha256, before.node_fingerprint_sha256);
    assert_eq!(
        status.last_error.as_ref().map(|error| &error.error),
        Some(&refusal.error)
    );
    assert!(status.refusals >= 1);
    // the same files again: nothing new to say
    assert!(matches!(
        reloading.reload(ReloadTrigger::Poll),
        ReloadOutcome::Unchanged
    ));
    // and the node still accepts its people
    let user = federation.user(&federation.rolla, "cit7");
    connect(
        reloading.current(),
        client(federation.client_bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .accepted();
}

impl TestFederation {
    /// A client's copy of the trust directory, taken at the start, which
    /// the node's files (broken on purpose by a test) do not change.
    fn client_bundle(&self) -> Arc<crate::bundle::TrustBundle> {
        Arc::new(crate::bundle::TrustBundle::load(FEDERATION, &self.temporary.path().join("client-trust")).unwrap())
    }

    fn keep_client_trust(&self) {
        let copy = self.temporary.path().join("client-trust");
        for agency in [&self.rolla, &self.phelps] {
            let directory = copy.join(agency.as_str());
            std::fs::create_dir_all(&directory).unwrap();
            for file in ["ca.pem", "crl.pem"] {
                std::fs::copy(self.dir.agency_dir(agency).join(file), directory.join(file)).unwrap();
            }
        }
    }
}

fn setup() -> (TestFederation, ReloadingServerConfig) {
    let federation = TestFederation::new();
    federation.keep_client_trust();
    let reloading = loaded(&federation);
    (federation, reloading)
}

#[test]
fn start_loads_the_node_set_and_a_poll_without_change_does_nothing() {
    let (federation, reloading) = setup();
    let status = reloading.status();
    assert_eq!(status.active.node_identity, federation.rolla_node.identity);
    assert_eq!(status.active.node_serial, federation.rolla_node.serial);
    assert_eq!(
        status.active.node_fingerprint_sha256,
        federation.rolla_node.fingerprint_sha256
    );
    assert_eq!(status.active.node_not_after, federation.rolla_node.not_after);
    assert_eq!(
        status.active.agencies,
        vec![federation.phelps.clone(), federation.rolla.clone()]
    );
    assert_eq!(status.active.trigger, ReloadTrigger::Start);
    assert!(status.last_error.is_none());
    assert!(matches!(
        reloading.reload(ReloadTrigger::Poll),
        ReloadOutcome::Unchanged
    ));
    assert_eq!(reloading.status().reloads, 0);
}

#[test]
fn a_signal_reloads_even_unchanged_files() {
    let (_federation, reloading) = setup();
    let reloaded = reloaded(reloading.reload(ReloadTrigger::Signal));
    assert_eq!(reloaded.trigger, ReloadTrigger::Signal);
    assert!(reloaded.changed.is_empty(), "{:?}", reloaded.changed);
    assert_eq!(reloading.status().active.trigger, ReloadTrigger::Signal);
    assert_eq!(reloading.status().reloads, 1);
}

#[test]
fn a_new_crl_is_swapped_in_and_named_as_changed() {
    let (federation, reloading) = setup();
    let user = federation.user(&federation.rolla, "dispatcher1");
    federation.dir.revoke(&federation.rolla, &user.serial).unwrap();
    let reloaded = reloaded(reloading.reload(ReloadTrigger::Poll));
    assert_eq!(reloaded.changed, vec![federation.dir.crl_path(&federation.rolla)]);
    assert_eq!(reloaded.active.trigger, ReloadTrigger::Poll);
    assert_eq!(reloading.status().reloads, 1);
}

#[test]
fn a_rotated_node_certificate_is_swapped_in() {
    let (federation, reloading) = setup();
    let rotated = federation.dir.issue_node(&federation.rolla).unwrap();
    let reloaded = reloaded(reloading.reload(ReloadTrigger::Poll));
    assert_eq!(reloaded.active.node_fingerprint_sha256, rotated.fingerprint_sha256);
    assert_eq!(reloaded.active.node_serial, rotated.serial);
    assert_eq!(
        reloaded.changed,
        vec![rotated.key_path.clone(), rotated.cert_path.clone()]
    );
}

#[tokio::test]
async fn keeps_the_last_good_set_when_the_key_does_not_match_the_certificate() {
    let (federation, reloading) = setup();
    // a new certificate for the node, beside the old key
    let old_key = std::fs::read(&federation.rolla_node.key_path).unwrap();
    let rotated = federation.dir.issue_node(&federation.rolla).unwrap();
    let new_key = std::fs::read(&rotated.key_path).unwrap();
    std::fs::write(&rotated.key_path, &old_key).unwrap();
    assert_refused_and_kept(&federation, &reloading, "keys may not be consistent: KeyMismatch").await;
    assert!(!reloading.status().last_error.unwrap().bundle_applied);
    // its key arrives: the pair loads
    std::fs::write(&rotated.key_path, &new_key).unwrap();
    let reloaded = reloaded(reloading.reload(ReloadTrigger::Poll));
    assert_eq!(reloaded.active.node_fingerprint_sha256, rotated.fingerprint_sha256);
    // both files differ from the pair in use before
    assert_eq!(
        reloaded.changed,
        vec![rotated.key_path.clone(), rotated.cert_path.clone()]
    );
    assert!(reloading.status().last_error.is_none());
}

#[tokio::test]
async fn keeps_the_last_good_set_when_the_key_is_there_without_its_certificate() {
    let (federation, reloading) = setup();
    std::fs::remove_file(&federation.rolla_node.cert_path).unwrap();
    assert_refused_and_kept(&federation, &reloading, "node.pem").await;
    std::fs::write(&federation.rolla_node.cert_path, "").unwrap();
    let refusal = refused(reloading.reload(ReloadTrigger::Poll));
    assert!(
        refusal.error.contains("no certificate in the file"),
        "{}",
        refusal.error
    );
}

#[tokio::test]
async fn keeps_the_last_good_set_when_the_key_is_missing() {
    let (federation, reloading) = setup();
    std::fs::remove_file(&federation.rolla_node.key_path).unwrap();
    assert_refused_and_kept(&federation, &reloading, "node.key").await;
}

#[tokio::test]
async fn keeps_the_last_good_set_when_a_crl_is_unparsable() {
    let (federation, reloading) = setup();
    std::fs::write(
        federation.dir.crl_path(&federation.phelps),
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    assert_refused_and_kept(&federation, &reloading, "crl ").await;
    let refusal = reloading.status().last_error.unwrap();
    assert!(!refusal.bundle_applied);
    assert_eq!(refusal.changed, vec![federation.dir.crl_path(&federation.phelps)]);
}

#[tokio::test]
async fn keeps_the_last_good_set_when_a_crl_is_missing() {
    let (federation, reloading) = setup();
    std::fs::remove_file(federation.dir.crl_path(&federation.phelps)).unwrap();
    assert_refused_and_kept(&federation, &reloading, "crl.pem").await;
}

#[tokio::test]
async fn keeps_the_last_good_set_when_a_ca_has_expired() {
    let (federation, reloading) = setup();
    let eleven_years_ago = OffsetDateTime::now_utc() - time::Duration::days(11 * 365);
    let profile = crate::pki::build::CertificateProfile::agency_ca(FEDERATION, &federation.phelps, eleven_years_ago);
    let expired = crate::pki::build::self_signed(&profile).unwrap();
    std::fs::write(
        federation.dir.ca_certificate_path(&federation.phelps),
        expired.to_pem().unwrap(),
    )
    .unwrap();
    assert_refused_and_kept(&federation, &reloading, "ca expired").await;
}

#[tokio::test]
async fn keeps_the_last_good_set_when_an_agency_directory_is_not_an_agency_id() {
    let (federation, reloading) = setup();
    std::fs::create_dir(federation.dir.trust_dir().join("Not An Agency")).unwrap();
    assert_refused_and_kept(&federation, &reloading, "is not an agency id").await;
}

#[tokio::test]
async fn keeps_the_last_good_set_when_the_node_certificate_is_a_persons() {
    let (federation, reloading) = setup();
    let user = federation.user(&federation.rolla, "dispatcher1");
    std::fs::copy(&user.cert_path, &federation.rolla_node.cert_path).unwrap();
    std::fs::copy(&user.key_path, &federation.rolla_node.key_path).unwrap();
    assert_refused_and_kept(&federation, &reloading, "is not a node identity").await;
}

#[tokio::test]
async fn keeps_the_last_good_set_when_the_node_certificate_is_of_another_agency() {
    let (federation, reloading) = setup();
    let phelps_node = federation.dir.issue_node(&federation.phelps).unwrap();
    std::fs::copy(&phelps_node.cert_path, &federation.rolla_node.cert_path).unwrap();
    std::fs::copy(&phelps_node.key_path, &federation.rolla_node.key_path).unwrap();
    assert_refused_and_kept(
        &federation,
        &reloading,
        "expected the node of agency rolla-pd, the server presented spiffe://flagnet.test/agency/phelps-so/node",
    )
    .await;
}

#[tokio::test]
async fn keeps_the_last_good_set_when_the_node_certificate_has_expired() {
    let (federation, reloading) = setup();
    let now = OffsetDateTime::now_utc();
    let options = crate::pki::IssueOptions {
        not_before: Some(now - time::Duration::days(400)),
        not_after: Some(now - time::Duration::days(1)),
        ..Default::default()
    };
    federation.dir.issue_node_with(&federation.rolla, &options).unwrap();
    assert_refused_and_kept(&federation, &reloading, "certificate expired").await;
}

/// A CRL that revokes the node's own certificate and a person at once: the
/// node's pair is refused, but the new CRL is in use, so the person is
/// refused at once.
#[tokio::test]
async fn a_refused_node_pair_does_not_hold_back_a_new_crl() {
    let (federation, reloading) = setup();
    let user = federation.user(&federation.rolla, "dispatcher1");
    connect(
        reloading.current(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .accepted();
    federation.dir.revoke(&federation.rolla, &user.serial).unwrap();
    federation
        .dir
        .revoke(&federation.rolla, &federation.rolla_node.serial)
        .unwrap();
    let refusal = refused(reloading.reload(ReloadTrigger::Poll));
    assert!(refusal.error.contains("Revoked"), "{}", refusal.error);
    assert!(refusal.bundle_applied);
    assert_eq!(
        refusal.kept.node_fingerprint_sha256,
        federation.rolla_node.fingerprint_sha256
    );
    let error = connect(
        reloading.current(),
        super::support::client_presenting(&federation.client_bundle(), &federation.rolla, Some(&Pair::from(&user))),
    )
    .await
    .server
    .unwrap_err();
    let error = error.get_ref().unwrap().downcast_ref::<rustls::Error>().unwrap();
    assert_eq!(error, &rustls::Error::InvalidCertificate(CertificateError::Revoked));
    assert!(reloading.status().last_error.unwrap().bundle_applied);
}

#[tokio::test]
async fn a_refused_set_is_reported_until_a_good_one_loads() {
    let (federation, reloading) = setup();
    let crl_path = federation.dir.crl_path(&federation.phelps);
    let good_crl = std::fs::read(&crl_path).unwrap();
    std::fs::write(&crl_path, "not a crl").unwrap();
    refused(reloading.reload(ReloadTrigger::Poll));
    assert!(reloading.status().last_error.is_some());
    // putting the old file back restores the state on disk: it loads again
    std::fs::write(&crl_path, &good_crl).unwrap();
    let reloaded = reloaded(reloading.reload(ReloadTrigger::Poll));
    assert!(reloaded.changed.is_empty(), "{:?}", reloaded.changed);
    let status = reloading.status();
    assert!(status.last_error.is_none());
    assert_eq!((status.reloads, status.refusals), (1, 1));
}

/// Serves `reloading` on 127.0.0.1: each connection takes the config in use
/// when it arrives and echoes what it reads; refused handshakes are sent to
/// the returned channel with what the verifier captured.
async fn echo_server(
    reloading: Arc<ReloadingServerConfig>,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Option<crate::verifier::RefusedCertificate>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (refusals, refused) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = TlsAcceptor::from(reloading.current());
            let refusals = refusals.clone();
            tokio::spawn(async move {
                let (result, captured) = capture_client_refusal(acceptor.accept(tcp)).await;
                let Ok(mut tls) = result else {
                    let _ = refusals.send(captured);
                    return;
                };
                let mut buffer = [0u8; 4];
                while tls.read_exact(&mut buffer).await.is_ok() {
                    if tls.write_all(&buffer).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, refused)
}

async fn open(
    address: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(address).await.unwrap();
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

async fn echo(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) -> std::io::Result<()> {
    tokio::time::timeout(Duration::from_secs(5), async {
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await?;
        assert_eq!(&pong, b"ping");
        Ok(())
    })
    .await
    .expect("echo timed out")
}

#[tokio::test]
async fn after_a_reload_new_handshakes_use_the_new_crl_and_open_connections_go_on() {
    let (federation, reloading) = setup();
    let reloading = Arc::new(reloading);
    let (address, mut refused_handshakes) = echo_server(reloading.clone()).await;
    let user = federation.user(&federation.rolla, "dispatcher1");
    let user_client = client(federation.bundle(), &federation.rolla, &Pair::from(&user));
    let mut open_before = open(address, user_client.clone()).await;
    echo(&mut open_before).await.unwrap();

    federation.dir.revoke(&federation.rolla, &user.serial).unwrap();
    reloaded(reloading.reload(ReloadTrigger::Poll));

    // the connection opened before the revocation is not dropped by the reload
    echo(&mut open_before).await.unwrap();
    // a new one is refused, and the verifier's finding reaches the listener
    let mut opened_after = open(address, user_client).await;
    assert!(echo(&mut opened_after).await.is_err());
    let captured = tokio::time::timeout(Duration::from_secs(5), refused_handshakes.recv())
        .await
        .unwrap()
        .unwrap()
        .expect("the verifier saw the certificate");
    assert_eq!(
        captured.refusal,
        CertificateRefusal::Path(rustls::Error::InvalidCertificate(CertificateError::Revoked))
    );
    assert_eq!(captured.claimed_identity, Some(user.identity.clone()));
    assert_eq!(captured.fingerprint_sha256, user.fingerprint_sha256);
}

#[tokio::test]
async fn the_verifier_captures_a_certificate_without_identity_too() {
    let (federation, reloading) = setup();
    let reloading = Arc::new(reloading);
    let (address, mut refused_handshakes) = echo_server(reloading).await;
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.uris.clear();
    let pair = federation.odd(&federation.rolla, &profile);
    let config = super::support::client_presenting(&federation.bundle(), &federation.rolla, Some(&pair));
    let mut tls = open(address, config).await;
    assert!(echo(&mut tls).await.is_err());
    let captured = tokio::time::timeout(Duration::from_secs(5), refused_handshakes.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(captured.refusal, CertificateRefusal::NoUriSan);
    assert_eq!(captured.claimed_identity, None);
    assert_eq!(captured.fingerprint_sha256.len(), 64);
}

#[test]
fn start_refuses_a_node_certificate_of_another_agency() {
    let federation = TestFederation::new();
    let mut wrong = paths(&federation);
    wrong.agency = federation.phelps.clone();
    let error = ReloadingServerConfig::load(wrong).unwrap_err();
    assert!(
        matches!(
            &error,
            crate::TrustError::RefusedFile {
                refusal: CertificateRefusal::UnexpectedServer { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().starts_with(&format!(
        "certificate {}",
        Path::new(&federation.rolla_node.cert_path).display()
    )));
}

/// A node calling a peer presents its certificate in use and checks the
/// peer against the CRLs in use, both taken at each handshake.
#[tokio::test]
async fn a_peer_client_config_follows_reloads_of_the_node_certificate_and_crls() {
    let (federation, reloading) = setup();
    let reloading = Arc::new(reloading);
    let phelps_node = federation.dir.issue_node(&federation.phelps).unwrap();
    let phelps_server =
        crate::tls::server_config(federation.bundle(), &phelps_node.cert_path, &phelps_node.key_path).unwrap();
    let to_phelps = reloading
        .peer_client_config(crate::ExpectedServer::Agency(federation.phelps.clone()))
        .unwrap();
    let peer = connect(phelps_server.clone(), to_phelps.clone())
        .await
        .accepted()
        .peer
        .unwrap();
    assert_eq!(peer.fingerprint_sha256, federation.rolla_node.fingerprint_sha256);

    let rotated = federation.dir.issue_node(&federation.rolla).unwrap();
    reloaded(reloading.reload(ReloadTrigger::Poll));
    let peer = connect(phelps_server.clone(), to_phelps.clone())
        .await
        .accepted()
        .peer
        .unwrap();
    assert_eq!(peer.fingerprint_sha256, rotated.fingerprint_sha256);

    federation.dir.revoke(&federation.phelps, &phelps_node.serial).unwrap();
    reloaded(reloading.reload(ReloadTrigger::Poll));
    let error = connect(phelps_server, to_phelps).await.client_error();
    assert_eq!(error, rustls::Error::InvalidCertificate(CertificateError::Revoked));

    let dent = flagnet_core::AgencyId::parse("dent-so").unwrap();
    assert!(
        reloading
            .peer_client_config(crate::ExpectedServer::Agency(dent))
            .is_err()
    );
}
