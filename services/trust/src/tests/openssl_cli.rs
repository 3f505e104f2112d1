//! The PKI against a second implementation: our certificates pass
//! `openssl verify -crl_check`, and certificates made with the openssl
//! command line as `certs/README.md` says are accepted by our verifiers.
//! Skipped, with a message, where the `openssl` binary is missing.

use super::support::{Pair, TestFederation, client, connect};
use crate::bundle::TrustBundle;
use crate::pki::FederationDir;
use flagnet_core::{AgencyId, Identity, UserId};
use rustls::CertificateError;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

const README: &str = include_str!("../../../../certs/README.md");

fn openssl_cli_present() -> bool {
    let present = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !present {
        println!("skipped: the openssl command line is not installed");
    }
    present
}

fn openssl(directory: &Path, arguments: &[&str]) -> Output {
    Command::new("openssl")
        .args(arguments)
        .current_dir(directory)
        .output()
        .expect("openssl runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn verify(directory: &Path, purpose: &str, certificate: &Path) -> Output {
    openssl(
        directory,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-purpose",
            purpose,
            certificate.to_str().unwrap(),
        ],
    )
}

#[test]
fn our_certificates_pass_openssl_verify_with_crl_check() {
    if !openssl_cli_present() {
        return;
    }
    let federation = TestFederation::new();
    let agency_dir = federation.dir.agency_dir(&federation.rolla);
    let node = &federation.rolla_node.cert_path;
    let user = federation
        .dir
        .issue_user(
            &federation.rolla,
            &UserId::parse("dispatcher1").unwrap(),
            Some("pass phrase"),
        )
        .unwrap();

    for (purpose, certificate) in [("sslserver", node), ("sslclient", node), ("sslclient", &user.cert_path)] {
        let output = verify(&agency_dir, purpose, certificate);
        assert!(
            output.status.success(),
            "{purpose} {}: {}",
            certificate.display(),
            text(&output)
        );
        assert!(text(&output).contains(": OK"), "{}", text(&output));
    }
    let output = verify(&agency_dir, "sslserver", &user.cert_path);
    assert!(
        !output.status.success(),
        "a person's certificate passed as a server: {}",
        text(&output)
    );

    let pkcs12 = user.pkcs12_path.as_ref().unwrap().to_str().unwrap();
    let output = openssl(
        &agency_dir,
        &["pkcs12", "-in", pkcs12, "-passin", "pass:pass phrase", "-noout"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let output = openssl(
        &agency_dir,
        &["pkcs12", "-in", pkcs12, "-passin", "pass:wrong", "-noout"],
    );
    assert!(!output.status.success());

    federation.dir.revoke(&federation.rolla, &user.serial).unwrap();
    let output = verify(&agency_dir, "sslclient", &user.cert_path);
    assert!(!output.status.success());
    assert!(text(&output).contains("certificate revoked"), "{}", text(&output));
    let output = verify(&agency_dir, "sslserver", node);
    assert!(output.status.success(), "{}", text(&output));
}

/// The ```sh blocks of the README before (or after) its revocation section.
fn readme_script(after_revocation_heading: bool) -> String {
    let (before, after) = README
        .split_once("\n## Revoking")
        .expect("the readme has a revocation section");
    let part = if after_revocation_heading { after } else { before };
    let mut script = String::from("set -euo pipefail\n");
    let mut in_block = false;
    for line in part.lines() {
        match (in_block, line.trim_end()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, command) => {
                script.push_str(command);
                script.push('\n');
            }
            (false, _) => {}
        }
    }
    script
}

fn run_bash(directory: &Path, script: &str, stdin: &str) {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "readme commands failed:\n{}", text(&output));
}

#[tokio::test]
async fn certificates_made_with_the_readme_commands_are_accepted() {
    if !openssl_cli_present() {
        return;
    }
    let temporary = tempfile::tempdir().unwrap();
    run_bash(temporary.path(), &readme_script(false), "readme pass phrase\n");

    // The README's own names.
    let federation_name = "flagnet.demo";
    let dent = AgencyId::parse("dent-so").unwrap();
    let trust_dir = temporary.path().join("federation/agencies");
    let agency_dir = trust_dir.join("dent-so");
    let node = Pair {
        cert: agency_dir.join("nodes/node.pem"),
        key: agency_dir.join("nodes/node.key"),
    };
    let user = Pair {
        cert: agency_dir.join("users/jdoe.pem"),
        key: agency_dir.join("users/jdoe.key"),
    };
    let bundle = || Arc::new(TrustBundle::load(federation_name, &trust_dir).unwrap());
    let server = || crate::tls::server_config(bundle(), &node.cert, &node.key).unwrap();

    let accepted = connect(server(), client(bundle(), &dent, &user)).await.accepted();
    let jdoe = Identity::user(federation_name, dent.clone(), UserId::parse("jdoe").unwrap());
    assert_eq!(accepted.peer.unwrap().identity, jdoe);
    let accepted = connect(server(), client(bundle(), &dent, &node)).await.accepted();
    assert_eq!(
        accepted.peer.unwrap().identity,
        Identity::node(federation_name, dent.clone())
    );

    let pkcs12 = openssl::pkcs12::Pkcs12::from_der(&std::fs::read(agency_dir.join("users/jdoe.p12")).unwrap()).unwrap();
    assert!(pkcs12.parse2("readme pass phrase").unwrap().pkey.is_some());

    // flagctl's side reads the directory openssl made.
    let listing = FederationDir::open(&temporary.path().join("federation"))
        .unwrap()
        .list()
        .unwrap();
    let identities: Vec<_> = listing[0]
        .certificates
        .iter()
        .map(|record| record.identity.clone().unwrap())
        .collect();
    assert_eq!(
        identities,
        vec![Identity::node(federation_name, dent.clone()), jdoe.clone()]
    );

    run_bash(&agency_dir, &readme_script(true), "");
    let listing = FederationDir::open(&temporary.path().join("federation"))
        .unwrap()
        .list()
        .unwrap();
    assert!(listing[0].certificates[1].revoked_at.is_some());
    let error = connect(server(), client(bundle(), &dent, &user)).await.server_error();
    assert_eq!(error, rustls::Error::InvalidCertificate(CertificateError::Revoked));
    connect(server(), client(bundle(), &dent, &node)).await.accepted();
}
