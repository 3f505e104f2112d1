//! Every acceptance and refusal of the verifiers, over real TLS
//! connections on 127.0.0.1 with certificates made for the test.

use super::support::{
    FEDERATION, Pair, TestFederation, client, client_presenting, connect, connect_to, server_presenting,
};
use crate::error::{CertificateRefusal, ExtendedPurpose, TrustError};
use crate::pki::FederationDir;
use crate::pki::IssueOptions;
use crate::tls::crypto_provider;
use crate::verifier::{AgencyServerVerifier, ExpectedServer};
use flagnet_core::{AgencyId, Identity, UserId};
use rustls::{CertificateError, HandshakeKind};
use rustls_pki_types::ServerName;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

fn path_refusal(error: rustls::Error) -> CertificateError {
    match error {
        rustls::Error::InvalidCertificate(certificate_error) => certificate_error,
        other => panic!("not a certificate error: {other}"),
    }
}

#[tokio::test]
async fn accepts_a_user_of_agency_a_with_identity_and_fingerprint() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let accepted = connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .accepted();
    let peer = accepted.peer.expect("a verified peer has an identity");
    assert_eq!(peer.identity, user.identity);
    assert_eq!(
        peer.identity.spiffe_uri(),
        "spiffe://flagnet.test/agency/rolla-pd/user/dispatcher1"
    );
    assert_eq!(peer.fingerprint_sha256, user.fingerprint_sha256);
    assert_eq!(accepted.alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn accepts_a_user_and_the_node_of_another_agency() {
    let federation = TestFederation::new();
    let phelps_user = federation.user(&federation.phelps, "cit7");
    let accepted = connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&phelps_user)),
    )
    .await
    .accepted();
    assert_eq!(accepted.peer.unwrap().identity, phelps_user.identity);

    let phelps_node = federation.dir.issue_node(&federation.phelps).unwrap();
    let accepted = connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&phelps_node)),
    )
    .await
    .accepted();
    assert_eq!(
        accepted.peer.unwrap().identity,
        Identity::node(FEDERATION, federation.phelps.clone())
    );
}

#[tokio::test]
async fn refuses_a_client_without_a_certificate() {
    let federation = TestFederation::new();
    let bundle = federation.bundle();
    let error = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, None),
    )
    .await
    .server_error();
    assert_eq!(error, rustls::Error::NoCertificatesPresented);
}

#[tokio::test]
async fn refuses_a_certificate_from_an_unknown_ca() {
    let federation = TestFederation::new();
    // Same federation name, same agency name, another CA.
    let impostor = FederationDir::init(&federation.temporary.path().join("impostor"), FEDERATION).unwrap();
    impostor.add_agency(&federation.rolla).unwrap();
    let user = impostor
        .issue_user(&federation.rolla, &UserId::parse("dispatcher1").unwrap(), None)
        .unwrap();
    // The public client config lets it through: the node decides.
    let error = connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .server_error();
    assert_not_vouched_for(path_refusal(error));
}

/// A CA the verifier does not hold: webpki reports the unknown issuer, or,
/// when the impostor CA has the same name as the real one, the bad
/// signature of the real one over the leaf.
fn assert_not_vouched_for(error: CertificateError) {
    assert!(
        matches!(error, CertificateError::UnknownIssuer | CertificateError::BadSignature),
        "{error:?}"
    );
}

#[tokio::test]
async fn refuses_a_certificate_of_agency_a_ca_claiming_agency_b() {
    let federation = TestFederation::new();
    let claims_phelps = federation.user_profile(&federation.phelps, "sheriff");
    let pair = federation.odd(&federation.rolla, &claims_phelps);
    let bundle = federation.bundle();
    let error = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_error();
    assert_eq!(path_refusal(error), CertificateError::UnknownIssuer);
}

#[tokio::test]
async fn refuses_an_identity_of_another_federation() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.uris = vec!["spiffe://elsewhere.test/agency/rolla-pd/user/dispatcher1".into()];
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(
        refusal,
        CertificateRefusal::ForeignFederation {
            expected: FEDERATION.into(),
            presented: "elsewhere.test".into()
        }
    );
}

#[tokio::test]
async fn refuses_an_agency_that_is_not_in_the_bundle() {
    let federation = TestFederation::new();
    let server = federation.rolla_server();
    let bundle = federation.bundle();
    let dent = AgencyId::parse("dent-so").unwrap();
    federation.dir.add_agency(&dent).unwrap();
    let user = federation.user(&dent, "deputy1");
    let refusal = connect(
        server,
        client_presenting(&bundle, &federation.rolla, Some(&Pair::from(&user))),
    )
    .await
    .server_refusal();
    assert_eq!(refusal, CertificateRefusal::UnknownAgency(dent));
}

#[tokio::test]
async fn refuses_an_expired_certificate() {
    let federation = TestFederation::new();
    let now = OffsetDateTime::now_utc();
    let options = IssueOptions {
        not_before: Some(now - Duration::days(400)),
        not_after: Some(now - Duration::days(35)),
        ..IssueOptions::default()
    };
    let user = federation.user_with(&federation.rolla, "retired", &options);
    let bundle = federation.bundle();
    let error = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&Pair::from(&user))),
    )
    .await
    .server_error();
    assert!(matches!(path_refusal(error), CertificateError::ExpiredContext { .. }));
}

#[tokio::test]
async fn refuses_a_certificate_that_is_not_yet_valid() {
    let federation = TestFederation::new();
    let now = OffsetDateTime::now_utc();
    let options = IssueOptions {
        not_before: Some(now + Duration::days(1)),
        not_after: Some(now + Duration::days(30)),
        ..IssueOptions::default()
    };
    let user = federation.user_with(&federation.rolla, "future", &options);
    let bundle = federation.bundle();
    let error = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&Pair::from(&user))),
    )
    .await
    .server_error();
    assert!(matches!(
        path_refusal(error),
        CertificateError::NotValidYetContext { .. }
    ));
}

#[tokio::test]
async fn refuses_a_leaf_with_two_uri_sans() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile
        .uris
        .push("spiffe://flagnet.test/agency/rolla-pd/user/supervisor".into());
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(refusal, CertificateRefusal::SeveralUriSans(2));
}

#[tokio::test]
async fn refuses_a_leaf_without_uri_san_whatever_its_cn_and_dns_names_say() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.uris.clear();
    profile.common_name = "spiffe://flagnet.test/agency/rolla-pd/user/dispatcher1".into();
    profile.dns_names = vec!["rolla-pd".into(), "localhost".into()];
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(refusal, CertificateRefusal::NoUriSan);
}

#[tokio::test]
async fn refuses_a_uri_san_that_is_not_spiffe() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.uris = vec!["https://rolla-pd.example/user/dispatcher1".into()];
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert!(
        matches!(refusal, CertificateRefusal::NotAFlagnetIdentity(_)),
        "{refusal}"
    );
}

#[tokio::test]
async fn refuses_a_ca_certificate_as_leaf() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.is_ca = true;
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(refusal, CertificateRefusal::LeafIsCa);
}

#[tokio::test]
async fn refuses_a_leaf_with_key_cert_sign() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.key_usage.key_cert_sign = true;
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(refusal, CertificateRefusal::LeafSignsCertificates);
}

#[tokio::test]
async fn refuses_a_client_certificate_without_client_auth() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.extended_key_usage = vec![ExtendedPurpose::ServerAuth];
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(
        refusal,
        CertificateRefusal::MissingExtendedKeyUsage(ExtendedPurpose::ClientAuth)
    );
}

#[tokio::test]
async fn refuses_a_client_certificate_without_extended_key_usage() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.extended_key_usage.clear();
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(
        refusal,
        CertificateRefusal::NoExtendedKeyUsage(ExtendedPurpose::ClientAuth)
    );
}

#[tokio::test]
async fn refuses_duplicate_extensions() {
    let federation = TestFederation::new();
    let mut profile = federation.user_profile(&federation.rolla, "dispatcher1");
    profile.repeat_extended_key_usage = true;
    let pair = federation.odd(&federation.rolla, &profile);
    let bundle = federation.bundle();
    let refusal = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&pair)),
    )
    .await
    .server_refusal();
    assert_eq!(
        refusal,
        CertificateRefusal::DuplicateExtension("extendedKeyUsage".into())
    );
}

#[tokio::test]
async fn refuses_a_revoked_certificate() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let kept = federation.user(&federation.rolla, "dispatcher2");
    federation.dir.revoke(&federation.rolla, &user.serial).unwrap();
    let error = connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .server_error();
    assert_eq!(path_refusal(error), CertificateError::Revoked);
    connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.rolla, &Pair::from(&kept)),
    )
    .await
    .accepted();
}

#[tokio::test]
async fn refuses_every_certificate_of_an_agency_whose_crl_is_past_its_next_update() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.phelps, "cit7");
    let now = OffsetDateTime::now_utc();
    federation
        .dir
        .renew_crl_until(&federation.phelps, now - Duration::days(40), now - Duration::days(10))
        .unwrap();
    let bundle = federation.bundle();
    let error = connect(
        federation.rolla_server(),
        client_presenting(&bundle, &federation.rolla, Some(&Pair::from(&user))),
    )
    .await
    .server_error();
    assert!(matches!(
        path_refusal(error),
        CertificateError::ExpiredRevocationListContext { .. }
    ));
}

#[tokio::test]
async fn tls12_accepts_and_refuses_alike() {
    let federation = TestFederation::new();
    let bundle = federation.bundle();
    let tls12_client = |pair: &Pair| {
        let verifier = AgencyServerVerifier::new(
            &bundle,
            ExpectedServer::Agency(federation.rolla.clone()),
            crypto_provider(),
        )
        .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(
                crate::pem::certificates(&pair.cert).unwrap(),
                crate::pem::private_key(&pair.key).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    };
    let user = federation.user(&federation.rolla, "dispatcher1");
    let accepted = connect(federation.rolla_server(), tls12_client(&Pair::from(&user)))
        .await
        .accepted();
    assert_eq!(accepted.peer.unwrap().identity, user.identity);

    let mut profile = federation.user_profile(&federation.rolla, "dispatcher2");
    profile.is_ca = true;
    let ca_leaf = federation.odd(&federation.rolla, &profile);
    let refusal = connect(federation.rolla_server(), tls12_client(&ca_leaf))
        .await
        .server_refusal();
    assert_eq!(refusal, CertificateRefusal::LeafIsCa);
}

#[tokio::test]
async fn never_resumes_a_session() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let server = federation.rolla_server();
    let client = client(federation.bundle(), &federation.rolla, &Pair::from(&user));
    for _ in 0..2 {
        let accepted = connect(server.clone(), client.clone()).await.accepted();
        assert_eq!(accepted.handshake_kind, Some(HandshakeKind::Full));
    }
}

#[tokio::test]
async fn client_refuses_the_node_of_an_unexpected_agency() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let refusal = connect(
        federation.rolla_server(),
        client(federation.bundle(), &federation.phelps, &Pair::from(&user)),
    )
    .await
    .client_refusal();
    assert_eq!(
        refusal,
        CertificateRefusal::UnexpectedServer {
            expected: "the node of agency phelps-so".into(),
            presented: "spiffe://flagnet.test/agency/rolla-pd/node".into(),
        }
    );
}

#[tokio::test]
async fn client_refuses_a_server_presenting_a_user_certificate() {
    let federation = TestFederation::new();
    let bundle = federation.bundle();
    let impostor = federation.user(&federation.rolla, "dispatcher9");
    let user = federation.user(&federation.rolla, "dispatcher1");
    let refusal = connect(
        server_presenting(&bundle, &Pair::from(&impostor)),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .client_refusal();
    assert!(
        matches!(refusal, CertificateRefusal::UnexpectedServer { .. }),
        "{refusal}"
    );
}

#[tokio::test]
async fn client_refuses_a_node_certificate_without_server_auth() {
    let federation = TestFederation::new();
    let bundle = federation.bundle();
    let mut profile = federation.node_profile(&federation.rolla);
    profile.extended_key_usage = vec![ExtendedPurpose::ClientAuth];
    let node = federation.odd(&federation.rolla, &profile);
    let user = federation.user(&federation.rolla, "dispatcher1");
    let refusal = connect(
        server_presenting(&bundle, &node),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .client_refusal();
    assert_eq!(
        refusal,
        CertificateRefusal::MissingExtendedKeyUsage(ExtendedPurpose::ServerAuth)
    );
}

#[tokio::test]
async fn client_refuses_a_revoked_node() {
    let federation = TestFederation::new();
    let server = federation.rolla_server();
    let user = federation.user(&federation.rolla, "dispatcher1");
    federation
        .dir
        .revoke(&federation.rolla, &federation.rolla_node.serial)
        .unwrap();
    let error = connect(
        server,
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .client_error();
    assert_eq!(path_refusal(error), CertificateError::Revoked);
}

#[tokio::test]
async fn client_refuses_a_node_of_an_unknown_ca() {
    let federation = TestFederation::new();
    let impostor = FederationDir::init(&federation.temporary.path().join("impostor"), FEDERATION).unwrap();
    impostor.add_agency(&federation.rolla).unwrap();
    let impostor_node = impostor.issue_node(&federation.rolla).unwrap();
    let impostor_bundle = crate::bundle::TrustBundle::load(FEDERATION, &impostor.trust_dir()).unwrap();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let error = connect(
        server_presenting(&impostor_bundle, &Pair::from(&impostor_node)),
        client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
    )
    .await
    .client_error();
    assert_not_vouched_for(path_refusal(error));
}

#[tokio::test]
async fn client_ignores_the_host_name_it_dialled() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    for name in ["node.elsewhere.example", "192.0.2.7"] {
        connect_to(
            federation.rolla_server(),
            client(federation.bundle(), &federation.rolla, &Pair::from(&user)),
            ServerName::try_from(name).unwrap(),
        )
        .await
        .accepted();
    }
}

#[test]
fn server_config_refuses_a_certificate_its_peers_would_refuse() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let error = crate::tls::server_config(federation.bundle(), &user.cert_path, &user.key_path).unwrap_err();
    assert!(
        matches!(
            &error,
            TrustError::RefusedFile {
                refusal: CertificateRefusal::NotANode(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("certificate {}", user.cert_path.display()))
    );

    federation
        .dir
        .revoke(&federation.rolla, &federation.rolla_node.serial)
        .unwrap();
    let error = crate::tls::server_config(
        federation.bundle(),
        &federation.rolla_node.cert_path,
        &federation.rolla_node.key_path,
    )
    .unwrap_err();
    assert!(error.to_string().contains("Revoked"), "{error}");
}

#[test]
fn configs_refuse_a_key_that_does_not_match_the_certificate() {
    let federation = TestFederation::new();
    let user = federation.user(&federation.rolla, "dispatcher1");
    let error = crate::tls::client_config(
        federation.bundle(),
        ExpectedServer::Agency(federation.rolla.clone()),
        &user.cert_path,
        &federation.rolla_node.key_path,
    )
    .unwrap_err();
    assert!(matches!(error, TrustError::Tls { .. }), "{error}");
    assert!(
        error.to_string().contains(&user.cert_path.display().to_string()),
        "{error}"
    );
}

#[test]
fn client_config_refuses_an_identity_of_another_federation() {
    let federation = TestFederation::new();
    let elsewhere = FederationDir::init(&federation.temporary.path().join("elsewhere"), "elsewhere.test").unwrap();
    elsewhere.add_agency(&federation.rolla).unwrap();
    let stranger = elsewhere
        .issue_user(&federation.rolla, &UserId::parse("dispatcher1").unwrap(), None)
        .unwrap();
    let error = crate::tls::client_config(
        federation.bundle(),
        ExpectedServer::Agency(federation.rolla.clone()),
        &stranger.cert_path,
        &stranger.key_path,
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            TrustError::RefusedFile {
                refusal: CertificateRefusal::ForeignFederation { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_certificate_file_without_uri_san_is_named_in_the_error() {
    let federation = TestFederation::new();
    let mut profile = federation.node_profile(&federation.rolla);
    profile.uris.clear();
    let pair = federation.odd(&federation.rolla, &profile);
    let error = crate::tls::server_config(federation.bundle(), &pair.cert, &pair.key).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("certificate {}: no URI SAN", pair.cert.display())
    );
}
